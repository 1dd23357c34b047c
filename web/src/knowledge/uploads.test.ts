import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import type { DocumentView } from '../api/types';
import { outcomeLabel, TaskQueue, uploadOutcome, uploadPercent } from './uploads';

const doc: DocumentView = {
  id: 'd1',
  knowledge_base_id: 'kb1',
  name: 'notes.md',
  format: 'markdown',
  size_bytes: 10,
  content_hash: 'h',
  status: 'queued',
  error: null,
  pages: null,
  chunks: 0,
  metadata: {},
  created_at: '2025-01-01T00:00:00.000Z',
  updated_at: '2025-01-01T00:00:00.000Z',
  indexed_at: null,
};

describe('uploadOutcome', () => {
  it('reads a queued document', () => {
    const outcome = uploadOutcome({ documents: [doc], rejected: [] });
    expect(outcome).toEqual({ kind: 'queued', document: doc });
    expect(outcomeLabel(outcome)).toBe('Queued');
  });

  it('reads a duplicate', () => {
    const outcome = uploadOutcome({ documents: [{ ...doc, name: 'old.md', duplicate: true }], rejected: [] });
    expect(outcome.kind).toBe('duplicate');
    expect(outcomeLabel(outcome)).toBe('Duplicate of existing document “old.md”');
  });

  it('reads a rejection in a 201 answer and as a 415', () => {
    const message = 'x.exe: unsupported file type; Hearth reads .txt, .md, .html, .pdf, .docx, .csv and .json';
    expect(uploadOutcome({ documents: [], rejected: [{ name: 'x.exe', code: 'unsupported_format', message }] })).toEqual({
      kind: 'rejected',
      message,
    });
    expect(uploadOutcome(new ApiError(415, 'unsupported_format', message, 'files'))).toEqual({ kind: 'rejected', message });
  });

  it('shows the server message of a 413', () => {
    const message = 'files `big.pdf` is larger than the limit of 10 bytes (knowledge.max_file_bytes)';
    expect(outcomeLabel(uploadOutcome(new ApiError(413, 'payload_too_large', message, 'files')))).toBe(message);
  });

  it('reports anything else as an error', () => {
    expect(uploadOutcome(new Error('boom'))).toEqual({ kind: 'error', message: 'boom' });
    expect(uploadOutcome({ documents: [], rejected: [] }).kind).toBe('error');
    expect(uploadOutcome(undefined).kind).toBe('error');
  });
});

describe('uploadPercent', () => {
  it('follows the bytes sent, then stays full', () => {
    expect(uploadPercent({ loaded: 0, total: 0, phase: 'waiting' })).toBe(0);
    expect(uploadPercent({ loaded: 50, total: 200, phase: 'uploading' })).toBe(25);
    expect(uploadPercent({ loaded: 0, total: 0, phase: 'processing' })).toBe(100);
    expect(uploadPercent({ loaded: 10, total: 200, phase: 'done' })).toBe(100);
  });
});

describe('TaskQueue', () => {
  it('runs every task, at most `limit` at once, in order, past failures', async () => {
    const queue = new TaskQueue(3);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const finished: Promise<void>[] = [];
    const push = (n: number) =>
      finished.push(
        new Promise<void>((settle) =>
          queue.push(async () => {
            started.push(n);
            running += 1;
            most = Math.max(most, running);
            try {
              await new Promise((resolve) => setTimeout(resolve, n % 3));
              if (n === 2) throw new Error('fails');
            } finally {
              running -= 1;
              settle();
            }
          }),
        ),
      );
    [1, 2, 3, 4, 5].forEach(push);
    expect(queue.active).toBe(3);
    // Pushed later, still limited together with the first ones.
    [6, 7].forEach(push);
    await Promise.all(finished);
    expect(most).toBe(3);
    expect(started).toEqual([1, 2, 3, 4, 5, 6, 7]);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(queue.active).toBe(0);
  });
});
