// Files being uploaded, one request each (so each has its own progress bar and its own answer),
// a few at a time.

import { ApiError } from '../api/client';
import type { DocumentView, UploadResult } from '../api/types';

export type UploadPhase = 'waiting' | 'uploading' | 'processing' | 'done';

/** What became of one file. */
export type UploadOutcome =
  | { kind: 'queued'; document: DocumentView }
  | { kind: 'duplicate'; document: DocumentView }
  | { kind: 'rejected'; message: string }
  | { kind: 'error'; message: string };

export interface UploadItem {
  /** Unique within the page (two files may share a name). */
  key: string;
  name: string;
  size: number;
  phase: UploadPhase;
  /** Bytes sent. */
  loaded: number;
  /** Bytes to send (the request's size, a little more than the file's). */
  total: number;
  outcome?: UploadOutcome;
}

/** Files uploaded at the same time. */
export const PARALLEL_UPLOADS = 3;

/** What the server's answer to a one-file upload (an {@link UploadResult}, or what was thrown) means for that file. */
export function uploadOutcome(answer: unknown): UploadOutcome {
  if (answer instanceof ApiError) {
    // 415 when the only file was refused (its reason is the message), 413 when it is too large.
    if (answer.code === 'unsupported_format') return { kind: 'rejected', message: answer.message };
    return { kind: 'error', message: answer.message };
  }
  if (answer instanceof Error) return { kind: 'error', message: answer.message };
  const result = answer as UploadResult;
  const document = result?.documents?.[0];
  if (document) return { kind: document.duplicate ? 'duplicate' : 'queued', document };
  const rejected = result?.rejected?.[0];
  if (rejected) return { kind: 'rejected', message: rejected.message };
  return { kind: 'error', message: 'The server did not say what became of this file.' };
}

/** A short line for an outcome. */
export function outcomeLabel(outcome: UploadOutcome): string {
  switch (outcome.kind) {
    case 'queued':
      return 'Queued';
    case 'duplicate':
      return `Duplicate of existing document “${outcome.document.name}”`;
    case 'rejected':
    case 'error':
      return outcome.message;
  }
}

/** Percent of the request sent, 0–100. */
export function uploadPercent(item: Pick<UploadItem, 'loaded' | 'total' | 'phase'>): number {
  if (item.phase === 'processing' || item.phase === 'done') return 100;
  if (item.total <= 0) return 0;
  return Math.max(0, Math.min(100, Math.round((item.loaded / item.total) * 100)));
}

/** File extensions the server reads (hearth-rag's `Format::from_file_name`), for the file picker. */
export const ACCEPTED_EXTENSIONS = '.txt,.text,.log,.md,.markdown,.html,.htm,.pdf,.docx,.csv,.json';

/** Runs the tasks pushed into it, at most `limit` at once, in the order they came. */
export class TaskQueue {
  private readonly waiting: (() => Promise<void>)[] = [];
  private running = 0;

  constructor(private readonly limit: number) {}

  /** Queues `task`; it runs once fewer than `limit` are running. Its failure is its own. */
  push(task: () => Promise<void>): void {
    this.waiting.push(task);
    this.pump();
  }

  /** Tasks started and not finished. */
  get active(): number {
    return this.running;
  }

  private pump(): void {
    while (this.running < this.limit && this.waiting.length > 0) {
      const task = this.waiting.shift()!;
      this.running += 1;
      void task()
        .catch(() => undefined)
        .finally(() => {
          this.running -= 1;
          this.pump();
        });
    }
  }
}
