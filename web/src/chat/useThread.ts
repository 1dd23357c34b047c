// The open conversation: loads it, follows the run writing its answer (resuming one left
// streaming by a reload), and performs send / edit / regenerate / stop / approve / branch
// switches. A run lives on the server, so leaving the page or losing the connection never
// stops it; the UI only stops reading, and reads on from the last sequence number it has.

import { useCallback, useEffect, useReducer, useRef, useState } from 'react';
import { api, ApiError } from '../api/client';
import type { Conversation, MessageView, UpdateConversationRequest } from '../api/types';
import { toApiError } from '../components/forms';
import { editRequest } from './branches';
import { readRunEvents } from './sse';
import { conversationOf, EMPTY_THREAD, isRunning, runToResume, threadReducer, type Thread } from './thread';

/** Attempts to read on after a stream broke before `done`. */
const RESUME_ATTEMPTS = 4;

export const STREAM_LOST_MESSAGE = 'Lost the connection while the answer was being written. Reload the page to see the rest.';

function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === 'AbortError';
}

/** Waits `ms`, or less when `signal` aborts. A back-off between reconnects, not synchronisation. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

export interface ThreadControls {
  thread: Thread;
  loading: boolean;
  loadError: ApiError | null;
  /** Shows a conversation just created here, without loading it. */
  adopt: (conversation: Conversation) => void;
  /** Resolves when the answer is finished; rejects (and undoes the send) when it could not start. */
  send: (text: string, model?: string) => Promise<void>;
  edit: (message: MessageView, text: string, model?: string) => Promise<void>;
  regenerate: (message: MessageView, model?: string) => Promise<void>;
  stop: () => Promise<void>;
  answerApproval: (callId: string, approve: boolean) => Promise<void>;
  switchBranch: (messageId: string) => Promise<void>;
  update: (patch: Omit<UpdateConversationRequest, 'active_message_id'>) => Promise<void>;
}

/**
 * @param conversationId the conversation in the URL, or null for a new chat
 * @param onActivity called when the conversation list may have changed (title, order)
 */
export function useThread(conversationId: string | null, onActivity: () => void): ThreadControls {
  const [thread, dispatch] = useReducer(threadReducer, EMPTY_THREAD);
  const [loading, setLoading] = useState(false);
  const [loadError, setLoadError] = useState<ApiError | null>(null);
  const threadRef = useRef(thread);
  threadRef.current = thread;
  /** The conversation whose messages are in `thread`. */
  const loadedId = useRef<string | null>(null);
  /** Aborts reading the run being followed. */
  const following = useRef<AbortController | null>(null);
  const activity = useRef(onActivity);
  activity.current = onActivity;

  const stopFollowing = useCallback(() => {
    following.current?.abort();
    following.current = null;
  }, []);

  /**
   * Reads a run's events from `open()` into the thread until `done`, reconnecting from the last
   * sequence number when the stream breaks. Rejects only when `open()` itself fails.
   */
  const follow = useCallback(
    async (conversation: string, open: (signal: AbortSignal) => Promise<Response>, known: { runId: string | null }) => {
      stopFollowing();
      const controller = new AbortController();
      following.current = controller;
      const { signal } = controller;
      let runId = known.runId;
      let lastSeq = 0;
      let done = false;

      let response: Response | null;
      try {
        response = await open(signal);
      } catch (err) {
        if (signal.aborted || isAbort(err)) return;
        if (following.current === controller) following.current = null;
        throw err;
      }

      for (let failures = 0; !done && !signal.aborted; ) {
        if (response?.body) {
          try {
            for await (const event of readRunEvents(response.body)) {
              if (signal.aborted) break;
              // A connection that delivered events worked: only consecutive failures count.
              failures = 0;
              if (event.type === 'run_started') runId = event.run_id;
              lastSeq = Math.max(lastSeq, event.seq);
              dispatch({ type: 'event', event });
              if (event.type === 'done') {
                done = true;
                break;
              }
            }
          } catch {
            // The connection broke mid-stream: read on below.
          }
        }
        if (done || signal.aborted) break;
        failures += 1;
        if (runId === null || failures > RESUME_ATTEMPTS) {
          dispatch({ type: 'lost', message: STREAM_LOST_MESSAGE });
          break;
        }
        await pause(300 * failures, signal);
        if (signal.aborted) break;
        try {
          response = await api.streamRunEvents(conversation, runId, lastSeq, signal);
        } catch {
          response = null;
        }
      }

      if (following.current === controller) following.current = null;
      if (!done || signal.aborted) return;
      activity.current();
      // The finished answer changes siblings and maybe the title: take the server's view.
      try {
        const detail = await api.getConversation(conversation);
        if (loadedId.current === conversation) dispatch({ type: 'loaded', detail, ifIdle: true });
      } catch {
        // The streamed state stays; the next load corrects it.
      }
    },
    [stopFollowing],
  );

  useEffect(() => stopFollowing, [stopFollowing]);

  useEffect(() => {
    if (conversationId === loadedId.current) return;
    stopFollowing();
    loadedId.current = null;
    dispatch({ type: 'reset' });
    setLoadError(null);
    if (conversationId === null) {
      setLoading(false);
      return;
    }
    const controller = new AbortController();
    setLoading(true);
    api
      .getConversation(conversationId)
      .then((detail) => {
        if (controller.signal.aborted) return;
        loadedId.current = conversationId;
        dispatch({ type: 'loaded', detail });
        setLoading(false);
        const target = runToResume(detail.messages);
        if (target) {
          // Reloaded mid-answer: replay the run from its first event and follow it live.
          dispatch({ type: 'resume', ...target });
          void follow(conversationId, (signal) => api.streamRunEvents(conversationId, target.runId, 0, signal), {
            runId: target.runId,
          }).catch(() => dispatch({ type: 'lost', message: STREAM_LOST_MESSAGE }));
        }
      })
      .catch((err: unknown) => {
        if (controller.signal.aborted) return;
        setLoadError(toApiError(err));
        setLoading(false);
      });
    return () => controller.abort();
  }, [conversationId, follow, stopFollowing]);

  const adopt = useCallback((conversation: Conversation) => {
    loadedId.current = conversation.id;
    dispatch({ type: 'loaded', detail: { ...conversation, messages: [] } });
    setLoadError(null);
    setLoading(false);
  }, []);

  const current = (): string => {
    const id = loadedId.current;
    if (!id) throw new ApiError(0, 'no_conversation', 'Open or start a conversation first.');
    return id;
  };

  /** Starts an answer; on failure to start, puts the messages back as they were. */
  const startRun = useCallback(
    async (
      start: { parentId: string | null; userText?: string; siblings?: string[] },
      open: (conversation: string, signal: AbortSignal) => Promise<Response>,
    ) => {
      const conversation = current();
      const before = threadRef.current.messages;
      dispatch({ type: 'start', ...start });
      try {
        await follow(conversation, (signal) => open(conversation, signal), { runId: null });
      } catch (err) {
        if (loadedId.current === conversation) dispatch({ type: 'rollback', messages: before });
        throw toApiError(err);
      }
    },
    [follow],
  );

  const send = useCallback(
    (text: string, model?: string) => {
      const messages = threadRef.current.messages;
      const last = messages[messages.length - 1];
      return startRun({ parentId: last?.id ?? null, userText: text }, (conversation, signal) =>
        api.streamMessage(conversation, model ? { content: text, model } : { content: text }, signal),
      );
    },
    [startRun],
  );

  const edit = useCallback(
    (message: MessageView, text: string, model?: string) =>
      startRun({ parentId: message.parent_id ?? null, userText: text, siblings: message.sibling_ids }, (conversation, signal) =>
        api.streamMessage(conversation, editRequest(message, text, model), signal),
      ),
    [startRun],
  );

  const regenerate = useCallback(
    (message: MessageView, model?: string) =>
      startRun({ parentId: message.parent_id ?? null, siblings: message.sibling_ids }, (conversation, signal) =>
        api.streamRegenerate(conversation, message.id, model ? { model } : {}, signal),
      ),
    [startRun],
  );

  const stop = useCallback(async () => {
    const runId = threadRef.current.live?.runId;
    if (runId) await api.stopRun(runId);
  }, []);

  const answerApproval = useCallback(async (callId: string, approve: boolean) => {
    const runId = threadRef.current.live?.runId;
    if (runId) await api.answerApproval(runId, callId, approve);
  }, []);

  const switchBranch = useCallback(
    async (messageId: string) => {
      const conversation = current();
      if (isRunning(threadRef.current)) return;
      const detail = await api.updateConversation(conversation, { active_message_id: messageId });
      if (loadedId.current !== conversation) return;
      dispatch({ type: 'loaded', detail, ifIdle: true });
      // A branch whose answer is still being written (in another tab): follow it.
      const target = runToResume(detail.messages);
      if (target) {
        dispatch({ type: 'resume', ...target });
        void follow(conversation, (signal) => api.streamRunEvents(conversation, target.runId, 0, signal), {
          runId: target.runId,
        }).catch(() => dispatch({ type: 'lost', message: STREAM_LOST_MESSAGE }));
      }
    },
    [follow],
  );

  const update = useCallback(async (patch: Omit<UpdateConversationRequest, 'active_message_id'>) => {
    const conversation = current();
    // Shown at once (a picker must not jump back while the request is out), undone on failure.
    const before = threadRef.current.conversation;
    if (before?.id === conversation) dispatch({
        type: 'conversation',
        conversation: {
          ...before,
          ...patch,
          title: patch.title ?? before.title,
          knowledge_base_ids: patch.knowledge_base_ids ?? before.knowledge_base_ids,
        },
      });
    try {
      const detail = await api.updateConversation(conversation, patch);
      if (loadedId.current === conversation) dispatch({ type: 'conversation', conversation: conversationOf(detail) });
    } catch (err) {
      if (before?.id === conversation && loadedId.current === conversation) dispatch({ type: 'conversation', conversation: before });
      throw err;
    }
    activity.current();
  }, []);

  return { thread, loading, loadError, adopt, send, edit, regenerate, stop, answerApproval, switchBranch, update };
}
