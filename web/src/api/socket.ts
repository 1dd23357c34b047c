// The WebSocket at /api/v1/ws, for ingest progress of the signed-in user's documents.
//
// Browsers cannot set headers on a WebSocket, so the first frame authenticates
// (`{"type":"auth","token":…}` → `{"type":"ready"}`); then `watch_documents` starts `document`
// frames. Whenever events may have been lost (the server says `documents_missed`, or the socket
// was (re)connected, since nothing is delivered while it is down) the page is told to list the
// documents again. A dropped socket reconnects with back-off; a refused token is refreshed first.

import type { DocumentView, IngestProgress, SocketFrame } from './types';

export const SOCKET_PATH = '/api/v1/ws';
const WATCH_ID = 'watch-documents';

export type SocketStatus = 'connecting' | 'live' | 'offline';

/** What the watcher needs of the API client. */
export interface SocketAuth {
  readonly token: string | null;
  refresh(): Promise<unknown>;
}

export interface DocumentWatchHandlers {
  onDocument: (document: DocumentView, progress: IngestProgress | undefined) => void;
  /** Events may have been missed: list the documents again. */
  onResync: () => void;
  onStatus?: (status: SocketStatus) => void;
}

/** The part of the WebSocket API used here, so tests can pass a fake. */
export interface SocketLike {
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
  send(data: string): void;
  close(): void;
}

export interface WatchOptions {
  /** Default: /api/v1/ws on this page's host, ws: or wss: to match the page. */
  url?: string;
  /** Default: the browser's WebSocket. */
  connect?: (url: string) => SocketLike;
  /** Default: {@link reconnectDelay}. */
  delay?: (attempt: number) => number;
}

/** The socket URL for a page at `location`. */
export function socketUrl(location: { protocol: string; host: string }): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${SOCKET_PATH}`;
}

/** Milliseconds before reconnect number `attempt` (0-based): 1 s, 2 s, 4 s, … at most 30 s. */
export function reconnectDelay(attempt: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, Math.min(attempt, 5)));
}

const KNOWN_TYPES = new Set(['ready', 'ack', 'error', 'document', 'documents_missed', 'pong']);

/** A text frame as a known frame, or null (not JSON, not an object, or of a type this UI ignores). */
export function parseFrame(data: unknown): SocketFrame | null {
  if (typeof data !== 'string') return null;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string' || !KNOWN_TYPES.has(type)) return null;
  if (type === 'document') {
    const doc = (value as { document?: unknown }).document;
    if (typeof doc !== 'object' || doc === null || typeof (doc as { id?: unknown }).id !== 'string') return null;
  }
  return value as SocketFrame;
}

/** Follows the caller's document events until the returned function is called. */
export function watchDocuments(auth: SocketAuth, handlers: DocumentWatchHandlers, options: WatchOptions = {}): () => void {
  const url = options.url ?? socketUrl(window.location);
  const open = options.connect ?? ((u: string) => new WebSocket(u));
  const delay = options.delay ?? reconnectDelay;
  let stopped = false;
  let socket: SocketLike | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let attempt = 0;

  const status = (s: SocketStatus) => {
    if (!stopped) handlers.onStatus?.(s);
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      timer = null;
      connect();
    }, delay(attempt));
    attempt += 1;
  };

  function connect() {
    if (stopped) return;
    status('connecting');
    let refused = false;
    const ws = open(url);
    socket = ws;
    ws.onopen = () => {
      const token = auth.token;
      if (!token) {
        refused = true;
        ws.close();
        return;
      }
      ws.send(JSON.stringify({ type: 'auth', token }));
    };
    ws.onmessage = (event) => {
      if (stopped) return;
      const frame = parseFrame(event.data);
      if (!frame) return;
      switch (frame.type) {
        case 'ready':
          ws.send(JSON.stringify({ type: 'watch_documents', id: WATCH_ID }));
          break;
        case 'ack':
          if (frame.id === WATCH_ID) {
            attempt = 0;
            status('live');
            handlers.onResync();
          }
          break;
        case 'document':
          handlers.onDocument(frame.document, frame.progress);
          break;
        case 'documents_missed':
          handlers.onResync();
          break;
        case 'error':
          // Before `ready` the only error is a refused token; the server then closes.
          if (frame.code === 'unauthorized') refused = true;
          break;
        case 'pong':
          break;
      }
    };
    ws.onerror = () => {
      // A close event follows; reconnecting is handled there.
    };
    ws.onclose = () => {
      if (socket === ws) socket = null;
      if (stopped) return;
      status('offline');
      if (!refused) {
        schedule();
        return;
      }
      // An expired access token: get a new one, then connect again. A failed refresh means the
      // session is gone; the next API call takes the user to the login page.
      auth.refresh().then(schedule, () => undefined);
    };
  }

  connect();
  return () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
    timer = null;
    const ws = socket;
    socket = null;
    if (ws) {
      ws.onmessage = null;
      ws.close();
    }
  };
}
