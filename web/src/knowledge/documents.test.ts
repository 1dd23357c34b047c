import { describe, expect, it } from 'vitest';
import type { DocumentView } from '../api/types';
import { formatBytes, formatScore, isNewer, isPending, mergeDocument, mergeList, progressPercent, statusLabel } from './documents';

const doc = (id: string, status: DocumentView['status'], updated: string, created = '2025-01-01T00:00:00.000Z'): DocumentView => ({
  id,
  knowledge_base_id: 'kb1',
  name: `${id}.md`,
  format: 'markdown',
  size_bytes: 10,
  content_hash: 'h',
  status,
  error: null,
  pages: null,
  chunks: 0,
  metadata: {},
  created_at: created,
  updated_at: updated,
  indexed_at: null,
});

const T0 = '2025-01-01T00:00:00.000Z';
const T1 = '2025-01-01T00:00:00.001Z';
const T2 = '2025-01-01T00:00:01.500Z';

describe('status', () => {
  it('has labels, and shows an unknown status as sent', () => {
    expect(statusLabel('queued')).toBe('Queued');
    expect(statusLabel('embedding')).toBe('Embedding');
    expect(statusLabel('failed')).toBe('Failed');
    expect(statusLabel('archived')).toBe('archived');
  });

  it('knows which are still in the pipeline', () => {
    expect(['queued', 'parsing', 'embedding', 'indexed', 'failed'].map(isPending)).toEqual([true, true, true, false, false]);
  });
});

describe('isNewer', () => {
  it('prefers the later update', () => {
    expect(isNewer(doc('a', 'queued', T1), doc('a', 'indexed', T0))).toBe(true);
    expect(isNewer(doc('a', 'indexed', T0), doc('a', 'queued', T1))).toBe(false);
  });

  it('at the same instant, never steps back in the pipeline', () => {
    expect(isNewer(doc('a', 'embedding', T0), doc('a', 'parsing', T0))).toBe(true);
    expect(isNewer(doc('a', 'queued', T0), doc('a', 'parsing', T0))).toBe(false);
    // Progress frames repeat the same state: each is taken.
    expect(isNewer(doc('a', 'embedding', T0), doc('a', 'embedding', T0))).toBe(true);
  });
});

describe('mergeDocument', () => {
  it('adds a new document in creation order', () => {
    const list = [doc('a', 'indexed', T0, T0), doc('c', 'queued', T2, T2)];
    const merged = mergeDocument(list, doc('b', 'queued', T1, T1));
    expect(merged.map((d) => d.id)).toEqual(['a', 'b', 'c']);
  });

  it('updates a row with a newer state and keeps the list otherwise', () => {
    const list = [doc('a', 'parsing', T1)];
    const newer = mergeDocument(list, doc('a', 'embedding', T1));
    expect(newer[0]!.status).toBe('embedding');
    // The upload answer (queued) arriving after the first frame changes nothing.
    expect(mergeDocument(list, doc('a', 'queued', T0))).toBe(list);
  });

  it('drops the duplicate flag of an upload answer', () => {
    const merged = mergeDocument([], { ...doc('a', 'indexed', T0), duplicate: true });
    expect(merged[0]).not.toHaveProperty('duplicate');
  });
});

describe('mergeList', () => {
  it('takes the server list, keeping rows that are further along', () => {
    const current = [doc('a', 'embedding', T1), doc('gone', 'indexed', T0)];
    const fetched = [doc('a', 'parsing', T0), doc('b', 'queued', T0)];
    const merged = mergeList(current, fetched);
    expect(merged.map((d) => [d.id, d.status])).toEqual([
      ['a', 'embedding'],
      ['b', 'queued'],
    ]);
  });
});

describe('progressPercent', () => {
  it('is a whole percent within 0–100', () => {
    expect(progressPercent(undefined)).toBe(0);
    expect(progressPercent({ done: 0, total: 0 })).toBe(0);
    expect(progressPercent({ done: 1, total: 3 })).toBe(33);
    expect(progressPercent({ done: 3, total: 3 })).toBe(100);
    expect(progressPercent({ done: 5, total: 3 })).toBe(100);
  });
});

describe('formatBytes', () => {
  it('uses binary multiples', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1 KB');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(12.4 * 1024)).toBe('12 KB');
    expect(formatBytes(1024 * 1024 - 1)).toBe('1 MB');
    expect(formatBytes(50 * 1024 * 1024)).toBe('50 MB');
    expect(formatBytes(3.25 * 1024 ** 3)).toBe('3.3 GB');
  });

  it('shows a dash for nonsense', () => {
    expect(formatBytes(-1)).toBe('—');
    expect(formatBytes(Number.NaN)).toBe('—');
  });
});

describe('formatScore', () => {
  it('keeps three significant digits of small scores', () => {
    expect(formatScore(0.0327869)).toBe('0.0328');
    expect(formatScore(0.81234)).toBe('0.812');
    expect(formatScore(7.891)).toBe('7.89');
    expect(formatScore(-2.5)).toBe('-2.50');
    expect(formatScore(0)).toBe('0');
    expect(formatScore(null)).toBe('—');
  });
});
