import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseFrame, reconnectDelay, socketUrl, watchDocuments, type SocketLike, type SocketStatus } from './socket';
import type { DocumentView, IngestProgress } from './types';

class FakeSocket implements SocketLike {
  onopen: ((event: Event) => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  sent: unknown[] = [];
  closed = false;

  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }

  close(): void {
    this.closed = true;
  }

  /** The server side of the fake. */
  open(): void {
    this.onopen?.(new Event('open'));
  }

  receive(frame: unknown): void {
    this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) } as MessageEvent);
  }

  drop(): void {
    this.onclose?.({} as CloseEvent);
  }
}

const doc = (id: string, status: DocumentView['status'] = 'queued'): DocumentView => ({
  id,
  knowledge_base_id: 'kb1',
  name: `${id}.md`,
  format: 'markdown',
  size_bytes: 10,
  content_hash: 'h',
  status,
  error: null,
  pages: null,
  chunks: 0,
  metadata: {},
  created_at: '2025-01-01T00:00:00.000Z',
  updated_at: '2025-01-01T00:00:00.000Z',
  indexed_at: null,
});

function setup(token: string | null = 't1') {
  const sockets: FakeSocket[] = [];
  const urls: string[] = [];
  const documents: [DocumentView, IngestProgress | undefined][] = [];
  const statuses: SocketStatus[] = [];
  const onResync = vi.fn();
  const auth = { token, refresh: vi.fn(async () => undefined) };
  const stop = watchDocuments(
    auth,
    { onDocument: (d, p) => documents.push([d, p]), onResync, onStatus: (s) => statuses.push(s) },
    {
      url: 'ws://example.test/api/v1/ws',
      connect: (url) => {
        urls.push(url);
        const socket = new FakeSocket();
        sockets.push(socket);
        return socket;
      },
    },
  );
  return { sockets, urls, documents, statuses, onResync, auth, stop };
}

/** Opens the latest socket and walks it through auth and watch. */
function handshake(socket: FakeSocket) {
  socket.open();
  socket.receive({ type: 'ready', user_id: 'u1' });
  socket.receive({ type: 'ack', id: 'watch-documents', watching: 'documents' });
}

describe('socketUrl', () => {
  it('follows the page scheme', () => {
    expect(socketUrl({ protocol: 'http:', host: '127.0.0.1:8080' })).toBe('ws://127.0.0.1:8080/api/v1/ws');
    expect(socketUrl({ protocol: 'https:', host: 'hearth.example' })).toBe('wss://hearth.example/api/v1/ws');
  });
});

describe('reconnectDelay', () => {
  it('doubles up to 30 s', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 50].map(reconnectDelay)).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });
});

describe('parseFrame', () => {
  it('reads known frames', () => {
    expect(parseFrame('{"type":"ready","user_id":"u"}')).toEqual({ type: 'ready', user_id: 'u' });
    expect(parseFrame('{"type":"documents_missed","missed":3}')).toEqual({ type: 'documents_missed', missed: 3 });
  });

  it('ignores what it cannot use', () => {
    expect(parseFrame('not json')).toBeNull();
    expect(parseFrame('[1]')).toBeNull();
    expect(parseFrame('null')).toBeNull();
    expect(parseFrame('{"type":"event","run_id":"r"}')).toBeNull();
    expect(parseFrame('{"type":"document"}')).toBeNull();
    expect(parseFrame(new ArrayBuffer(2))).toBeNull();
  });
});

describe('watchDocuments', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('authenticates, then watches, then forwards document frames', () => {
    const { sockets, urls, documents, statuses, onResync } = setup();
    expect(urls).toEqual(['ws://example.test/api/v1/ws']);
    const socket = sockets[0]!;
    socket.open();
    expect(socket.sent).toEqual([{ type: 'auth', token: 't1' }]);
    socket.receive({ type: 'ready', user_id: 'u1' });
    expect(socket.sent[1]).toEqual({ type: 'watch_documents', id: 'watch-documents' });
    socket.receive({ type: 'ack', id: 'watch-documents', watching: 'documents' });
    expect(statuses).toEqual(['connecting', 'live']);
    // Anything before the ack was not delivered: list again.
    expect(onResync).toHaveBeenCalledTimes(1);

    socket.receive({ type: 'document', document: doc('d1', 'embedding'), progress: { done: 2, total: 5 } });
    socket.receive({ type: 'document', document: doc('d1', 'indexed') });
    expect(documents).toEqual([
      [doc('d1', 'embedding'), { done: 2, total: 5 }],
      [doc('d1', 'indexed'), undefined],
    ]);
  });

  it('asks for a new list when events were missed', () => {
    const { sockets, onResync } = setup();
    handshake(sockets[0]!);
    onResync.mockClear();
    sockets[0]!.receive({ type: 'documents_missed', missed: 12 });
    expect(onResync).toHaveBeenCalledTimes(1);
  });

  it('reconnects with back-off after the socket drops, and lists again once watching', () => {
    const { sockets, statuses, onResync } = setup();
    handshake(sockets[0]!);
    sockets[0]!.drop();
    expect(statuses.at(-1)).toBe('offline');
    expect(sockets).toHaveLength(1);
    vi.advanceTimersByTime(999);
    expect(sockets).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(sockets).toHaveLength(2);

    // A second failure in a row waits longer.
    sockets[1]!.drop();
    vi.advanceTimersByTime(1999);
    expect(sockets).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(sockets).toHaveLength(3);

    onResync.mockClear();
    handshake(sockets[2]!);
    expect(onResync).toHaveBeenCalledTimes(1);
    expect(statuses.at(-1)).toBe('live');

    // Back to the shortest delay after a good connection.
    sockets[2]!.drop();
    vi.advanceTimersByTime(1000);
    expect(sockets).toHaveLength(4);
  });

  it('refreshes the token when the server refuses it, then connects again', async () => {
    const { sockets, auth } = setup();
    sockets[0]!.open();
    sockets[0]!.receive({ type: 'error', id: null, code: 'unauthorized', message: 'invalid or expired token' });
    sockets[0]!.drop();
    expect(auth.refresh).toHaveBeenCalledTimes(1);
    await vi.runAllTimersAsync();
    expect(sockets).toHaveLength(2);
  });

  it('stops for good when stopped', () => {
    const { sockets, stop, documents } = setup();
    handshake(sockets[0]!);
    stop();
    expect(sockets[0]!.closed).toBe(true);
    sockets[0]!.receive({ type: 'document', document: doc('d1') });
    sockets[0]!.drop();
    vi.advanceTimersByTime(60_000);
    expect(sockets).toHaveLength(1);
    expect(documents).toEqual([]);
  });

  it('cancels a pending reconnect when stopped', () => {
    const { sockets, stop } = setup();
    sockets[0]!.drop();
    stop();
    vi.advanceTimersByTime(60_000);
    expect(sockets).toHaveLength(1);
  });
});
