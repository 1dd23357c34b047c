// Branches: every edit or regeneration adds a sibling; the UI shows one branch at a time and a
// "< 2/3 >" switcher on messages that have alternatives.

import type { MessageView, SendMessageRequest } from '../api/types';

export interface BranchPosition {
  /** 0-based place of the message among its siblings (oldest first). */
  index: number;
  total: number;
  /** The sibling to show for "<" and ">", or null at either end. */
  previous: string | null;
  next: string | null;
}

/** Where a message stands among its alternatives; null when it has none. */
export function branchPosition(message: Pick<MessageView, 'id' | 'sibling_ids'>): BranchPosition | null {
  const siblings = message.sibling_ids;
  const index = siblings.indexOf(message.id);
  if (siblings.length < 2 || index < 0) return null;
  return {
    index,
    total: siblings.length,
    previous: index > 0 ? siblings[index - 1]! : null,
    next: index < siblings.length - 1 ? siblings[index + 1]! : null,
  };
}

/** "2/3" for the switcher. */
export function branchLabel(position: BranchPosition): string {
  return `${position.index + 1}/${position.total}`;
}

/**
 * The request that edits a user message into a new branch: the new text answers the edited
 * message's parent (an assistant message), or starts at the top when it was the first message.
 */
export function editRequest(message: Pick<MessageView, 'parent_id'>, content: string, model?: string): SendMessageRequest {
  const request: SendMessageRequest = { content };
  if (message.parent_id) request.parent_id = message.parent_id;
  else request.edit_root = true;
  if (model) request.model = model;
  return request;
}
