// Knowledge bases in a chat: which are attached (the picker's checklist and the chips), and what
// exporting a conversation into one came to. Pure functions for the chat page.

import type { KnowledgeBase, UploadResult } from '../api/types';

/** `ids` with `id` attached (appended once) or detached. */
export function toggleId(ids: readonly string[], id: string, attached: boolean): string[] {
  const rest = ids.filter((other) => other !== id);
  return attached ? [...rest, id] : rest;
}

/** The name of an attached base; one the list no longer has (deleted, or not loaded yet) gets a stand-in. */
export function knowledgeBaseName(bases: readonly KnowledgeBase[] | null, id: string): string {
  return bases?.find((kb) => kb.id === id)?.name ?? (bases ? 'Unavailable knowledge base' : 'Knowledge base');
}

export interface ExportOutcome {
  ok: boolean;
  message: string;
  /** The document made (or the existing one with the same content). */
  documentName?: string;
}

/** What `POST …/export-to-knowledge` answered, in words. */
export function exportOutcome(result: UploadResult, baseName: string): ExportOutcome {
  const doc = result.documents[0];
  if (doc?.duplicate) {
    return { ok: true, documentName: doc.name, message: `“${baseName}” already holds this conversation as “${doc.name}”.` };
  }
  if (doc) return { ok: true, documentName: doc.name, message: `Exported to “${baseName}” as “${doc.name}”. It is searchable once indexed.` };
  const refused = result.rejected[0];
  return { ok: false, message: refused ? `Not exported: ${refused.message}` : 'Not exported: the server took no document.' };
}
