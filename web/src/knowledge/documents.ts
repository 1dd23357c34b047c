// Documents of a knowledge base as the page keeps them: labels, sizes, scores, and merging what
// arrives from three sources (the list, HTTP answers, WebSocket frames) that may overtake each
// other, so a row never steps back to an older state.

import type { DocumentStatus, DocumentView, IngestProgress } from '../api/types';

export const STATUS_LABEL: Record<DocumentStatus, string> = {
  queued: 'Queued',
  parsing: 'Parsing',
  embedding: 'Embedding',
  indexed: 'Indexed',
  failed: 'Failed',
};

/** A status for people; an unknown one (a newer server) is shown as sent. */
export function statusLabel(status: string): string {
  return STATUS_LABEL[status as DocumentStatus] ?? status;
}

/** Still in the ingest pipeline. */
export function isPending(status: string): boolean {
  return status === 'queued' || status === 'parsing' || status === 'embedding';
}

/** Order of the pipeline; the two outcomes rank the same. */
const STATUS_RANK: Record<DocumentStatus, number> = { queued: 0, parsing: 1, embedding: 2, indexed: 3, failed: 3 };

function rank(status: string): number {
  return STATUS_RANK[status as DocumentStatus] ?? 3;
}

function time(value: string): number {
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? 0 : ms;
}

/**
 * Whether `incoming` is at least as new as `current` (the same document): a later `updated_at`,
 * or the same instant (the server keeps milliseconds) and no earlier step of the pipeline.
 */
export function isNewer(incoming: DocumentView, current: DocumentView): boolean {
  const a = time(incoming.updated_at);
  const b = time(current.updated_at);
  if (a !== b) return a > b;
  return rank(incoming.status) >= rank(current.status);
}

/** The list order of the server: oldest first. */
function byCreated(a: DocumentView, b: DocumentView): number {
  return time(a.created_at) - time(b.created_at) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * `list` with `doc` added or updated, unless the list already holds a newer state of it.
 * Returns `list` itself when nothing changes. The `duplicate` flag of an upload answer is dropped:
 * it describes the upload, not the document.
 */
export function mergeDocument(list: readonly DocumentView[], doc: DocumentView): readonly DocumentView[] {
  const { duplicate: _duplicate, ...plain } = doc;
  const index = list.findIndex((d) => d.id === doc.id);
  if (index === -1) return [...list, plain].sort(byCreated);
  if (!isNewer(plain, list[index]!)) return list;
  const next = list.slice();
  next[index] = plain;
  return next;
}

/** The list the server sent, keeping rows that changed since it was read (frames that overtook it). */
export function mergeList(current: readonly DocumentView[], fetched: readonly DocumentView[]): readonly DocumentView[] {
  const known = new Map(current.map((d) => [d.id, d]));
  return fetched.map((d) => {
    const mine = known.get(d.id);
    return mine && !isNewer(d, mine) ? mine : d;
  });
}

/** Percent of chunks embedded, 0–100. */
export function progressPercent(progress: IngestProgress | undefined): number {
  if (!progress || progress.total <= 0) return 0;
  return Math.max(0, Math.min(100, Math.round((progress.done / progress.total) * 100)));
}

const UNITS = ['KB', 'MB', 'GB', 'TB'];

/** 1536 → "1.5 KB" (binary multiples; one decimal below 10). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = value < 10 && Math.round(value * 10) % 10 !== 0 ? 1 : 0;
  const shown = value.toFixed(digits);
  // 1023.99 KB rounds to "1024 KB": say "1 MB" instead.
  if (shown === '1024' && unit < UNITS.length - 1) return `1 ${UNITS[unit + 1]}`;
  return `${shown} ${UNITS[unit]}`;
}

/** A score with enough digits to tell hits apart: fused scores are small (≈ 0.03), BM25 ones larger. */
export function formatScore(score: number | null | undefined): string {
  if (score === null || score === undefined || !Number.isFinite(score)) return '—';
  if (score === 0) return '0';
  return Math.abs(score) >= 1 ? score.toFixed(2) : score.toPrecision(3);
}
