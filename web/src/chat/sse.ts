// Server-sent events over fetch. EventSource can neither POST nor send an Authorization header,
// so run events are read from a fetch body; the line protocol itself is eventsource-parser's.

import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { RunEvent } from '../api/types';

export type { EventSourceMessage };

/**
 * Yields each SSE message of a response body as it arrives. Comment lines (the server's
 * heartbeats) are skipped. Leaving the loop early cancels the body, closing the connection.
 */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<EventSourceMessage> {
  const ready: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (message) => ready.push(message) });
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        finished = true;
        parser.feed(decoder.decode());
        // A message is complete only at its blank line; a cut-off one is dropped, as EventSource does.
        break;
      }
      parser.feed(decoder.decode(value, { stream: true }));
      while (ready.length > 0) yield ready.shift()!;
    }
    while (ready.length > 0) yield ready.shift()!;
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

/** The run event carried by an SSE message, or null when its data is not one. */
export function parseRunEvent(message: EventSourceMessage): RunEvent | null {
  let value: unknown;
  try {
    value = JSON.parse(message.data);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { seq, type } = value as { seq?: unknown; type?: unknown };
  if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 1 || typeof type !== 'string') return null;
  return value as RunEvent;
}

/** Yields the run events of an SSE body, skipping messages that are not run events. */
export async function* readRunEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<RunEvent> {
  for await (const message of readSse(body)) {
    const event = parseRunEvent(message);
    if (event) yield event;
  }
}
