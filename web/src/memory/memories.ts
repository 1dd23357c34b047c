// Memories (Settings › Memory): labels, the server's limits checked before sending, and keeping
// the shown list in step with what the server answered. Pure functions for the page.

import type { Memory, MemorySource } from '../api/types';

/** The server's limit, in characters (Unicode scalar values, as Rust counts them). */
export const MAX_MEMORY_CHARS = 2000;

export const SOURCE_LABELS: Record<MemorySource, string> = {
  saved: 'Saved in chat',
  extracted: 'Learned from a chat',
  user: 'Added by you',
};

/** The badge text of a memory's source (a newer server's source is shown as it is). */
export function sourceLabel(source: string): string {
  return SOURCE_LABELS[source as MemorySource] ?? source;
}

/** Characters as the server counts them (code points, not UTF-16 units). */
export function charCount(text: string): number {
  return [...text].length;
}

/** Why `text` cannot be saved, or null when it can. */
export function memoryProblem(text: string): string | null {
  if (!text.trim()) return 'Write what Hearth should remember.';
  const count = charCount(text.trim());
  if (count > MAX_MEMORY_CHARS) return `A memory is at most ${MAX_MEMORY_CHARS} characters (this one has ${count}).`;
  return null;
}

/** Newest first, by creation. */
function byNewest(a: Memory, b: Memory): number {
  return a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0;
}

/** The list with `memory` added or replaced (by id), newest first. */
export function upsertMemory(list: readonly Memory[], memory: Memory): Memory[] {
  const rest = list.filter((m) => m.id !== memory.id);
  return [memory, ...rest].sort(byNewest);
}

export function removeMemory(list: readonly Memory[], id: string): Memory[] {
  return list.filter((m) => m.id !== id);
}

/** Whether the memory was changed after it was made. */
export function wasEdited(memory: Memory): boolean {
  return memory.updated_at !== memory.created_at;
}
