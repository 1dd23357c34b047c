// The conversation shown in the chat page, and how run events change it. Pure functions: the
// page dispatches server responses and run events here and renders the result.
//
// An answer streams into its assistant message event by event. Events carry a sequence number
// (1, 2, … without gaps); any event at or below the last one applied is a repeat (a resumed
// stream overlapping what was already read) and is ignored. `run_started` is always seq 1, so
// seeing it means the answer is being rebuilt from the start: the message is reset first.
//
// With knowledge bases attached, `sources` events bring the passages the answer may cite as `[n]`:
// the first before any text, more later (from the `kb_search` tool), numbered after the earlier
// ones, so they are appended. The `done` message carries the final list and replaces the message.

import type { Conversation, ConversationDetail, MessageView, Part, RunEvent, RunStatus, Source, ToolCallPart } from '../api/types';

/** Stands for the user message just sent until `run_started` names it. */
export const PENDING_USER_ID = 'pending-user';

export interface PendingApproval {
  id: string;
  name: string;
  arguments: string;
  timeoutSecs: number;
}

/** The run being followed. */
export interface LiveRun {
  /** Null until `run_started` arrives. */
  runId: string | null;
  messageId: string | null;
  lastSeq: number;
  /** Tool calls waiting for Approve / Deny. */
  approvals: PendingApproval[];
  error: { code: string; message: string } | null;
  usage: { input_tokens: number; output_tokens: number } | null;
  status: RunStatus;
  /** Siblings the new branch point joins (the edited message's, or the regenerated answer's). */
  siblings: string[];
}

export interface Thread {
  conversation: Conversation | null;
  messages: MessageView[];
  live: LiveRun | null;
}

export const EMPTY_THREAD: Thread = { conversation: null, messages: [], live: null };

export type ThreadAction =
  /** The server's view of the conversation. With `ifIdle`, ignored while a run is being followed. */
  | { type: 'loaded'; detail: ConversationDetail; ifIdle?: boolean }
  /** Title or model changed. */
  | { type: 'conversation'; conversation: Conversation }
  | { type: 'reset' }
  | { type: 'start'; parentId: string | null; userText?: string; siblings?: string[]; now?: string }
  | { type: 'resume'; runId: string; messageId: string }
  | { type: 'event'; event: RunEvent }
  /** The stream broke and could not be resumed. */
  | { type: 'lost'; message: string }
  /** Sending failed before the run started: back to the messages from before. */
  | { type: 'rollback'; messages: MessageView[] };

/** The conversation part of a detail response. */
export function conversationOf(detail: ConversationDetail): Conversation {
  return {
    id: detail.id,
    title: detail.title,
    model: detail.model,
    knowledge_base_ids: detail.knowledge_base_ids ?? [],
    created_at: detail.created_at,
    updated_at: detail.updated_at,
  };
}

function newLive(partial: Partial<LiveRun> = {}): LiveRun {
  return {
    runId: null,
    messageId: null,
    lastSeq: 0,
    approvals: [],
    error: null,
    usage: null,
    status: 'running',
    siblings: [],
    ...partial,
  };
}

/** Whether an answer is being written (Send disabled, Stop shown). */
export function isRunning(thread: Thread): boolean {
  return thread.live?.status === 'running';
}

/** The run to resume after a reload: the last message still streaming, if it names its run. */
export function runToResume(messages: MessageView[]): { runId: string; messageId: string } | null {
  const last = messages[messages.length - 1];
  if (!last || last.role !== 'assistant' || last.status !== 'streaming' || !last.run_id) return null;
  return { runId: last.run_id, messageId: last.id };
}

/** A copy of the messages up to and including `parentId` (none for null; all when it is not shown). */
function truncateAfter(messages: MessageView[], parentId: string | null): MessageView[] {
  if (parentId === null) return [];
  const index = messages.findIndex((m) => m.id === parentId);
  return index < 0 ? messages.slice() : messages.slice(0, index + 1);
}

function withText(message: MessageView, text: string): MessageView {
  const parts = message.parts.slice();
  const last = parts[parts.length - 1];
  if (last?.type === 'text') parts[parts.length - 1] = { type: 'text', text: last.text + text };
  else parts.push({ type: 'text', text });
  return { ...message, parts, content: message.content + text };
}

/** The message with `sources` appended to its own; a number it already has is not added again. */
export function withSources(message: MessageView, sources: Source[]): MessageView {
  const have = message.sources ?? [];
  const known = new Set(have.map((s) => s.n));
  const added: Source[] = [];
  for (const source of sources) {
    if (known.has(source.n)) continue;
    known.add(source.n);
    added.push(source);
  }
  if (added.length === 0) return message;
  return { ...message, sources: [...have, ...added] };
}

/** The message emptied for a rebuild from the run's first event. */
function blankAnswer(message: MessageView, blank: Partial<MessageView>): MessageView {
  const next: MessageView = { ...message, ...blank };
  delete next.sources;
  return next;
}

function withCall(message: MessageView, call: { id: string; name: string; arguments: string }): MessageView {
  if (message.parts.some((p) => p.type === 'tool_call' && p.id === call.id)) return message;
  const part: ToolCallPart = {
    type: 'tool_call',
    id: call.id,
    name: call.name,
    arguments: call.arguments,
    status: 'pending',
    output: null,
  };
  return { ...message, parts: [...message.parts, part] };
}

function settleCall(message: MessageView, id: string, status: ToolCallPart['status'], output: string): MessageView {
  const parts: Part[] = message.parts.map((p) => (p.type === 'tool_call' && p.id === id ? { ...p, status, output } : p));
  return { ...message, parts };
}

function updateMessage(messages: MessageView[], id: string | null, change: (m: MessageView) => MessageView): MessageView[] {
  if (id === null) return messages;
  return messages.map((m) => (m.id === id ? change(m) : m));
}

/** Applies one run event to the thread; repeats (by seq) change nothing. */
export function applyEvent(thread: Thread, event: RunEvent): Thread {
  const live = thread.live;
  if (!live || event.seq <= live.lastSeq) return thread;
  const next: LiveRun = { ...live, lastSeq: event.seq };
  let messages = thread.messages;

  switch (event.type) {
    case 'run_started': {
      next.runId = event.run_id;
      next.messageId = event.message_id;
      const parentId = event.user_message_id ?? messages[messages.length - 1]?.id ?? null;
      if (event.user_message_id) {
        const userId = event.user_message_id;
        messages = messages.map((m) =>
          m.id === PENDING_USER_ID ? { ...m, id: userId, sibling_ids: [...live.siblings, userId] } : m,
        );
      }
      const blank = {
        content: '',
        parts: [],
        status: 'streaming' as const,
        error: null,
        model: event.model,
        run_id: event.run_id,
      };
      if (messages.some((m) => m.id === event.message_id)) {
        // Resumed from the start: rebuild the answer from the events.
        messages = updateMessage(messages, event.message_id, (m) => blankAnswer(m, blank));
      } else {
        const siblings = event.user_message_id ? [event.message_id] : [...live.siblings, event.message_id];
        messages = [
          ...messages,
          {
            id: event.message_id,
            conversation_id: event.conversation_id,
            parent_id: parentId,
            role: 'assistant',
            created_at: new Date().toISOString(),
            sibling_ids: siblings,
            ...blank,
          },
        ];
      }
      break;
    }
    case 'sources':
      messages = updateMessage(messages, live.messageId, (m) => withSources(m, event.sources));
      break;
    case 'text_delta':
      messages = updateMessage(messages, live.messageId, (m) => withText(m, event.text));
      break;
    case 'tool_call':
      messages = updateMessage(messages, live.messageId, (m) => withCall(m, event));
      break;
    case 'tool_approval_required':
      messages = updateMessage(messages, live.messageId, (m) => withCall(m, event));
      if (!live.approvals.some((a) => a.id === event.id)) {
        next.approvals = [
          ...live.approvals,
          { id: event.id, name: event.name, arguments: event.arguments, timeoutSecs: event.timeout_secs },
        ];
      }
      break;
    case 'tool_result':
      messages = updateMessage(messages, live.messageId, (m) => settleCall(m, event.id, event.status, event.output));
      next.approvals = live.approvals.filter((a) => a.id !== event.id);
      break;
    case 'usage':
      next.usage = { input_tokens: event.input_tokens, output_tokens: event.output_tokens };
      break;
    case 'error':
      next.error = { code: event.code, message: event.message };
      messages = updateMessage(messages, live.messageId, (m) => ({ ...m, error: event.message }));
      break;
    case 'done': {
      next.status = event.status;
      next.approvals = [];
      const final = event.message;
      next.messageId = final.id;
      messages = messages.some((m) => m.id === final.id)
        ? messages.map((m) => (m.id === final.id ? final : m))
        : [...messages, final];
      break;
    }
    default:
      // A newer server's event type: nothing to show, but the sequence still advances.
      break;
  }
  return { ...thread, messages, live: next };
}

export function threadReducer(thread: Thread, action: ThreadAction): Thread {
  switch (action.type) {
    case 'loaded': {
      if (action.ifIdle && isRunning(thread)) return thread;
      return { conversation: conversationOf(action.detail), messages: action.detail.messages, live: null };
    }
    case 'conversation':
      return { ...thread, conversation: action.conversation };
    case 'reset':
      return EMPTY_THREAD;
    case 'start': {
      const messages = truncateAfter(thread.messages, action.parentId);
      if (action.userText !== undefined) {
        messages.push({
          id: PENDING_USER_ID,
          conversation_id: thread.conversation?.id ?? '',
          parent_id: action.parentId,
          role: 'user',
          content: action.userText,
          parts: [{ type: 'text', text: action.userText }],
          model: null,
          status: 'complete',
          error: null,
          created_at: action.now ?? new Date().toISOString(),
          sibling_ids: [...(action.siblings ?? []), PENDING_USER_ID],
        });
      }
      return { ...thread, messages, live: newLive({ siblings: action.siblings ?? [] }) };
    }
    case 'resume':
      return { ...thread, live: newLive({ runId: action.runId, messageId: action.messageId }) };
    case 'event':
      return applyEvent(thread, action.event);
    case 'lost': {
      if (!thread.live) return thread;
      const error = { code: 'stream_lost', message: action.message };
      return { ...thread, live: { ...thread.live, status: 'error', approvals: [], error } };
    }
    case 'rollback':
      return { ...thread, messages: action.messages, live: null };
  }
}
