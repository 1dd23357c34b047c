import { describe, expect, it } from 'vitest';
import { parseRunEvent, readRunEvents, readSse } from './sse';

/** A body that delivers `chunks` one read at a time, like a network stream. */
function body(chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i >= chunks.length) {
        controller.close();
        return;
      }
      const chunk = chunks[i++]!;
      controller.enqueue(typeof chunk === 'string' ? encoder.encode(chunk) : chunk);
    },
  });
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('readSse', () => {
  it('parses id, event and data fields', async () => {
    const messages = await collect(readSse(body(['id: 1\nevent: text_delta\ndata: {"seq":1}\n\n'])));
    expect(messages).toEqual([{ id: '1', event: 'text_delta', data: '{"seq":1}' }]);
  });

  it('reassembles messages split anywhere across chunks', async () => {
    const text = 'id: 1\nevent: a\ndata: {"x":"hello"}\n\nid: 2\nevent: b\ndata: {"x":"world"}\n\n';
    for (let cut = 1; cut < text.length; cut++) {
      const messages = await collect(readSse(body([text.slice(0, cut), text.slice(cut)])));
      expect(messages.map((m) => m.data)).toEqual(['{"x":"hello"}', '{"x":"world"}']);
    }
  });

  it('skips heartbeat comments', async () => {
    const messages = await collect(readSse(body([':\n\n', ': keep-alive\n\n', 'data: x\n\n', ':\n\n'])));
    expect(messages.map((m) => m.data)).toEqual(['x']);
  });

  it('joins multi-line data and accepts CRLF line ends', async () => {
    const messages = await collect(readSse(body(['data: a\r\ndata: b\r\n\r\n'])));
    expect(messages.map((m) => m.data)).toEqual(['a\nb']);
  });

  it('decodes UTF-8 characters split between chunks', async () => {
    const bytes = new TextEncoder().encode('data: {"text":"héllo 🔥"}\n\n');
    const cut = bytes.indexOf(0xf0) + 2; // inside the four bytes of the emoji
    const messages = await collect(readSse(body([bytes.slice(0, cut), bytes.slice(cut)])));
    expect(JSON.parse(messages[0]!.data)).toEqual({ text: 'héllo 🔥' });
  });

  it('drops a message cut off before its blank line', async () => {
    const messages = await collect(readSse(body(['data: whole\n\n', 'data: cut'])));
    expect(messages.map((m) => m.data)).toEqual(['whole']);
  });

  it('cancels the body when the reader stops early', async () => {
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('data: 1\n\ndata: 2\n\n'));
      },
      cancel() {
        cancelled = true;
      },
    });
    for await (const message of readSse(stream)) {
      expect(message.data).toBe('1');
      break;
    }
    expect(cancelled).toBe(true);
  });
});

describe('run events', () => {
  it('parses run events and skips anything else', async () => {
    const events = await collect(
      readRunEvents(
        body([
          'id: 1\nevent: text_delta\ndata: {"seq":1,"type":"text_delta","text":"hi"}\n\n',
          'data: not json\n\n',
          'data: {"type":"text_delta"}\n\n',
          'id: 2\nevent: done\ndata: {"seq":2,"type":"usage","input_tokens":1,"output_tokens":2}\n\n',
        ]),
      ),
    );
    expect(events).toEqual([
      { seq: 1, type: 'text_delta', text: 'hi' },
      { seq: 2, type: 'usage', input_tokens: 1, output_tokens: 2 },
    ]);
  });

  it('rejects events without a positive integer seq', () => {
    expect(parseRunEvent({ data: '{"seq":0,"type":"x"}' })).toBeNull();
    expect(parseRunEvent({ data: '{"seq":"1","type":"x"}' })).toBeNull();
    expect(parseRunEvent({ data: 'null' })).toBeNull();
    expect(parseRunEvent({ data: '{"seq":3,"type":"x"}' })).toEqual({ seq: 3, type: 'x' });
  });
});
