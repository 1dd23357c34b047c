import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiClient, ApiError, NETWORK_ERROR_MESSAGE, parseError, queryString, type FetchLike } from './client';
import type { AuthResponse, User } from './types';

const user: User = {
  id: 'u1',
  email: 'admin@example.com',
  name: 'Admin',
  role: 'admin',
  disabled: false,
  created_at: '2025-01-01T00:00:00Z',
};

function authResponse(token: string, expiresIn = 900): AuthResponse {
  return { access_token: token, refresh_token: 'rt', expires_in: expiresIn, token_type: 'Bearer', user };
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

function unauthorized(): Response {
  return json(401, { error: { code: 'unauthorized', message: 'invalid or expired token' } });
}

interface Call {
  url: string;
  method: string;
  auth: string | null;
  accept: string | null;
  body: string | null;
  credentials: RequestCredentials | undefined;
}

/** A fake fetch that records calls and answers with `handler`. */
function fakeFetch(handler: (call: Call) => Response | Promise<Response>) {
  const calls: Call[] = [];
  const fetch: FetchLike = async (url, init = {}) => {
    const headers = new Headers(init.headers);
    const call: Call = {
      url,
      method: init.method ?? 'GET',
      auth: headers.get('Authorization'),
      accept: headers.get('Accept'),
      body: typeof init.body === 'string' ? init.body : null,
      credentials: init.credentials,
    };
    calls.push(call);
    return handler(call);
  };
  return { fetch, calls };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('ApiClient', () => {
  beforeEach(() => {
    vi.useRealTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('attaches the bearer token to API calls', async () => {
    const { fetch, calls } = fakeFetch(() => json(200, user));
    const client = new ApiClient({ fetch });
    client.acceptAuth(authResponse('tok-1'));

    const me = await client.me();

    expect(me.email).toBe('admin@example.com');
    expect(calls).toHaveLength(1);
    expect(calls[0]!.url).toBe('/api/v1/me');
    expect(calls[0]!.auth).toBe('Bearer tok-1');
    client.clearSession();
  });

  it('sends no Authorization header to unauthenticated endpoints', async () => {
    const { fetch, calls } = fakeFetch(() => json(200, { needs_setup: true, registration: 'open' }));
    const client = new ApiClient({ fetch });
    client.acceptAuth(authResponse('tok-1'));

    const status = await client.authStatus();

    expect(status.needs_setup).toBe(true);
    expect(calls[0]!.auth).toBeNull();
    client.clearSession();
  });

  it('a refresh that answers after a sign-out does not sign back in', async () => {
    let answer: (r: Response) => void = () => {};
    const { fetch } = fakeFetch(() => new Promise<Response>((resolve) => (answer = resolve)));
    const client = new ApiClient({ fetch });
    const pending = client.refresh();
    await tick();
    client.clearSession();
    answer(json(200, authResponse('late')));
    await pending;
    expect(client.currentUser).toBeNull();
  });

  it('refreshes once on a 401 and retries with the new token', async () => {
    const { fetch, calls } = fakeFetch((call) => {
      if (call.url === '/api/v1/auth/refresh') return json(200, authResponse('tok-2'));
      return call.auth === 'Bearer tok-2' ? json(200, user) : unauthorized();
    });
    const client = new ApiClient({ fetch });
    client.acceptAuth(authResponse('tok-1'));

    await client.me();

    expect(calls.map((c) => `${c.method} ${c.url} ${c.auth}`)).toEqual([
      'GET /api/v1/me Bearer tok-1',
      'POST /api/v1/auth/refresh null',
      'GET /api/v1/me Bearer tok-2',
    ]);
    const refresh = calls[1]!;
    expect(refresh.body).toBe('{}');
    expect(refresh.credentials).toBe('same-origin');
    expect(client.token).toBe('tok-2');
    client.clearSession();
  });

  it('shares a single refresh between concurrent 401s (single-flight)', async () => {
    let refreshes = 0;
    const { fetch, calls } = fakeFetch(async (call) => {
      if (call.url === '/api/v1/auth/refresh') {
        refreshes += 1;
        await tick(); // keep the refresh in flight while the other 401 arrives
        return json(200, authResponse('tok-2'));
      }
      return call.auth === 'Bearer tok-2' ? json(200, []) : unauthorized();
    });
    const client = new ApiClient({ fetch });
    client.acceptAuth(authResponse('tok-1'));

    const [keys, users] = await Promise.all([client.listApiKeys(), client.listUsers()]);

    expect(keys).toEqual([]);
    expect(users).toEqual([]);
    expect(refreshes).toBe(1);
    const retried = calls.filter((c) => c.auth === 'Bearer tok-2').map((c) => c.url).sort();
    expect(retried).toEqual(['/api/v1/admin/users', '/api/v1/api-keys']);
    client.clearSession();
  });

  it('retries at most once, then clears the session and reports auth lost', async () => {
    const onAuthLost = vi.fn();
    const { fetch, calls } = fakeFetch((call) =>
      call.url === '/api/v1/auth/refresh' ? json(200, authResponse('tok-2')) : unauthorized(),
    );
    const client = new ApiClient({ fetch, onAuthLost });
    client.acceptAuth(authResponse('tok-1'));

    await expect(client.me()).rejects.toMatchObject({ status: 401, code: 'unauthorized' });

    expect(calls).toHaveLength(3);
    expect(client.token).toBeNull();
    expect(onAuthLost).toHaveBeenCalledTimes(1);
  });

  it('clears the session when the refresh itself is rejected', async () => {
    const onAuthLost = vi.fn();
    const { fetch, calls } = fakeFetch(() => unauthorized());
    const client = new ApiClient({ fetch, onAuthLost });
    client.acceptAuth(authResponse('tok-1'));

    await expect(client.me()).rejects.toBeInstanceOf(ApiError);

    expect(calls.map((c) => c.url)).toEqual(['/api/v1/me', '/api/v1/auth/refresh']);
    expect(client.token).toBeNull();
    expect(client.currentUser).toBeNull();
    expect(onAuthLost).toHaveBeenCalledTimes(1);
  });

  it('restoreSession resolves null on 401 and the user on success', async () => {
    let ok = false;
    const { fetch } = fakeFetch(() => (ok ? json(200, authResponse('tok-9')) : unauthorized()));
    const client = new ApiClient({ fetch });

    await expect(client.restoreSession()).resolves.toBeNull();
    ok = true;
    await expect(client.restoreSession()).resolves.toMatchObject({ email: 'admin@example.com' });
    expect(client.token).toBe('tok-9');
    client.clearSession();
  });

  it('parses the error envelope into a typed error with code, message and field', async () => {
    const { fetch } = fakeFetch(() =>
      json(422, { error: { code: 'invalid_input', message: 'password: must be at least 8 characters', field: 'password' } }),
    );
    const client = new ApiClient({ fetch });

    const err = await client.login({ email: 'a@example.com', password: 'x' }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({
      status: 422,
      code: 'invalid_input',
      message: 'password: must be at least 8 characters',
      field: 'password',
    });
  });

  it('parseError falls back to a generic error for non-envelope bodies', async () => {
    const err = await parseError(new Response('<html>oops</html>', { status: 502, statusText: 'Bad Gateway' }));
    expect(err).toMatchObject({ status: 502, code: 'http_502', message: 'Bad Gateway (HTTP 502)' });
    expect(err.field).toBeUndefined();

    const noField = await parseError(json(409, { error: { code: 'conflict', message: 'email already registered' } }));
    expect(noField).toMatchObject({ code: 'conflict', message: 'email already registered' });
    expect(noField.field).toBeUndefined();
  });

  it('turns a failed fetch into a network error', async () => {
    const fetch: FetchLike = () => Promise.reject(new TypeError('Failed to fetch'));
    const client = new ApiClient({ fetch });

    const err = await client.authStatus().catch((e: unknown) => e);

    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 0, code: 'network_error', message: NETWORK_ERROR_MESSAGE });
  });

  it('logout posts {} with the bearer token and clears the token', async () => {
    const { fetch, calls } = fakeFetch(() => new Response(null, { status: 204 }));
    const client = new ApiClient({ fetch });
    const seen: Array<User | null> = [];
    client.subscribe((u) => seen.push(u));
    client.acceptAuth(authResponse('tok-1'));

    await client.logout();

    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ method: 'POST', url: '/api/v1/auth/logout', auth: 'Bearer tok-1', body: '{}' });
    expect(client.token).toBeNull();
    expect(client.currentUser).toBeNull();
    expect(seen).toEqual([user, null]);

    // Later calls go out without a token.
    await client.listApiKeys().catch(() => undefined);
    expect(calls[1]!.auth).toBeNull();
  });

  it('logout clears the token even when the server is unreachable', async () => {
    const fetch: FetchLike = () => Promise.reject(new TypeError('Failed to fetch'));
    const client = new ApiClient({ fetch });
    client.acceptAuth(authResponse('tok-1'));

    await client.logout();

    expect(client.token).toBeNull();
  });

  it('refreshes proactively a little before the token expires', async () => {
    vi.useFakeTimers();
    const { fetch, calls } = fakeFetch(() => json(200, authResponse('tok-2', 900)));
    const client = new ApiClient({ fetch });
    client.acceptAuth(authResponse('tok-1', 300));

    await vi.advanceTimersByTimeAsync(239_000);
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(2_000); // 300 s lifetime, refreshed 60 s early
    expect(calls.map((c) => c.url)).toEqual(['/api/v1/auth/refresh']);
    expect(client.token).toBe('tok-2');

    client.clearSession(); // cancels the next scheduled refresh
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(calls).toHaveLength(1);
  });
});

describe('refresh lock', () => {
  it('runs each refresh inside the cross-tab lock', async () => {
    const events: string[] = [];
    const refreshLock = async <T>(task: () => Promise<T>): Promise<T> => {
      events.push('lock');
      try {
        return await task();
      } finally {
        events.push('unlock');
      }
    };
    const { fetch } = fakeFetch((call) => {
      events.push(`fetch ${call.url}`);
      return json(200, authResponse('tok-2'));
    });
    const client = new ApiClient({ fetch, refreshLock });

    await client.restoreSession();

    expect(events).toEqual(['lock', 'fetch /api/v1/auth/refresh', 'unlock']);
    client.clearSession();
  });
});

describe('chat and admin calls', () => {
  it('asks for a run as SSE, refreshing on a 401 first, and hands back the unread stream', async () => {
    const sse = 'id: 1\nevent: run_started\ndata: {}\n\n';
    const { fetch, calls } = fakeFetch((call) => {
      if (call.url === '/api/v1/auth/refresh') return json(200, authResponse('tok-2'));
      if (call.auth !== 'Bearer tok-2') return unauthorized();
      return new Response(sse, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
    });
    const client = new ApiClient({ fetch });
    client.acceptAuth(authResponse('tok-1'));

    const res = await client.streamMessage('c1', { content: 'hello', model: 'fake-chat' });

    expect(await res.text()).toBe(sse);
    const sent = calls.filter((c) => c.url.startsWith('/api/v1/conversations'));
    expect(sent.map((c) => `${c.method} ${c.url} ${c.auth} ${c.accept}`)).toEqual([
      'POST /api/v1/conversations/c1/messages Bearer tok-1 text/event-stream',
      'POST /api/v1/conversations/c1/messages Bearer tok-2 text/event-stream',
    ]);
    expect(JSON.parse(sent[1]!.body!)).toEqual({ content: 'hello', model: 'fake-chat' });
    client.clearSession();
  });

  it('reports a run that cannot start as an ApiError', async () => {
    const { fetch } = fakeFetch(() => json(400, { error: { code: 'invalid_input', message: 'model is required', field: 'model' } }));
    const client = new ApiClient({ fetch });
    client.acceptAuth(authResponse('tok-1'));

    await expect(client.streamRegenerate('c1', 'm1', {})).rejects.toMatchObject({ status: 400, field: 'model' });
    client.clearSession();
  });

  it('resumes a run after the last sequence number it has', async () => {
    const { fetch, calls } = fakeFetch(() => new Response('', { status: 200 }));
    const client = new ApiClient({ fetch });
    client.acceptAuth(authResponse('tok-1'));

    await client.streamRunEvents('c1', 'r1', 0);
    await client.streamRunEvents('c1', 'r1', 7);

    expect(calls.map((c) => c.url)).toEqual([
      '/api/v1/conversations/c1/runs/r1/events?after=0',
      '/api/v1/conversations/c1/runs/r1/events?after=7',
    ]);
    client.clearSession();
  });

  it('names an export after the server’s Content-Disposition', async () => {
    const { fetch, calls } = fakeFetch(
      () =>
        new Response('# Title', {
          status: 200,
          headers: { 'Content-Disposition': 'attachment; filename="conversation-c1.md"' },
        }),
    );
    const client = new ApiClient({ fetch });
    client.acceptAuth(authResponse('tok-1'));

    const { blob, filename } = await client.exportConversation('c1', 'markdown');

    expect(filename).toBe('conversation-c1.md');
    expect(await blob.text()).toBe('# Title');
    expect(calls[0]!.url).toBe('/api/v1/conversations/c1/export?format=markdown');
    client.clearSession();
  });

  it('leaves unset trace filters out of the query', async () => {
    const { fetch, calls } = fakeFetch(() => json(200, []));
    const client = new ApiClient({ fetch });
    client.acceptAuth(authResponse('tok-1'));

    await client.listTraces({ user_id: '', model: 'fake-chat', errors_only: false, limit: 100 });
    await client.listTraces({ errors_only: true });
    await client.listConversations('  ');

    expect(calls.map((c) => c.url)).toEqual([
      '/api/v1/admin/llm-calls?model=fake-chat&limit=100',
      '/api/v1/admin/llm-calls?errors_only=true',
      '/api/v1/conversations',
    ]);
    client.clearSession();
  });

  it('attaches knowledge bases and exports a conversation into one', async () => {
    const { fetch, calls } = fakeFetch((call) =>
      call.url.endsWith('/export-to-knowledge') ? json(201, { documents: [], rejected: [] }) : json(200, {}),
    );
    const client = new ApiClient({ fetch });
    client.acceptAuth(authResponse('tok-1'));

    await client.createConversation({ model: 'fake-chat', knowledge_base_ids: ['kb1'] });
    await client.updateConversation('c 1', { knowledge_base_ids: [] });
    const result = await client.exportToKnowledge('c 1', 'kb1');

    expect(result).toEqual({ documents: [], rejected: [] });
    expect(calls.map((c) => `${c.method} ${c.url} ${c.body}`)).toEqual([
      'POST /api/v1/conversations {"model":"fake-chat","knowledge_base_ids":["kb1"]}',
      'PATCH /api/v1/conversations/c%201 {"knowledge_base_ids":[]}',
      'POST /api/v1/conversations/c%201/export-to-knowledge {"knowledge_base_id":"kb1"}',
    ]);
    client.clearSession();
  });

  it('lists, adds, edits and deletes memories', async () => {
    const memory = {
      id: 'm1',
      text: 'I prefer metric units',
      source: 'user',
      conversation_id: null,
      created_at: '2025-01-01T00:00:00Z',
      updated_at: '2025-01-01T00:00:00Z',
    };
    const { fetch, calls } = fakeFetch((call) => {
      if (call.method === 'DELETE') return new Response(null, { status: 204 });
      if (call.method === 'GET') return json(200, [memory]);
      return json(call.method === 'POST' ? 201 : 200, { ...memory, text: JSON.parse(call.body!).text });
    });
    const client = new ApiClient({ fetch });
    client.acceptAuth(authResponse('tok-1'));

    expect(await client.listMemories()).toEqual([memory]);
    expect((await client.createMemory('I prefer metric units')).source).toBe('user');
    expect((await client.updateMemory('m1', 'I prefer SI units')).text).toBe('I prefer SI units');
    await expect(client.deleteMemory('m1')).resolves.toBeUndefined();

    expect(calls.map((c) => `${c.method} ${c.url} ${c.body ?? ''}`.trim())).toEqual([
      'GET /api/v1/memories',
      'POST /api/v1/memories {"text":"I prefer metric units"}',
      'PATCH /api/v1/memories/m1 {"text":"I prefer SI units"}',
      'DELETE /api/v1/memories/m1',
    ]);
    client.clearSession();
  });

  it('reports a refused memory with the field the server names', async () => {
    const { fetch } = fakeFetch(() =>
      json(400, { error: { code: 'invalid_input', field: 'text', message: 'a memory is 1 to 2000 characters' } }),
    );
    const client = new ApiClient({ fetch });
    client.acceptAuth(authResponse('tok-1'));

    await expect(client.createMemory('')).rejects.toMatchObject({ status: 400, code: 'invalid_input', field: 'text' });
    client.clearSession();
  });

  it('builds query strings from the set values only', () => {
    expect(queryString({})).toBe('');
    expect(queryString({ a: undefined, b: '' })).toBe('');
    expect(queryString({ q: 'a b&c', n: 0, f: false })).toBe('?q=a+b%26c&n=0&f=false');
  });
});

/** A scripted XMLHttpRequest: answers each send with the next of `answers`, reporting progress first. */
function fakeXhr(answers: { status: number; body: unknown }[]) {
  const sent: { method: string; url: string; headers: Record<string, string>; body: FormData }[] = [];
  class FakeXhr {
    status = 0;
    statusText = '';
    responseText = '';
    upload: { onprogress: ((e: { loaded: number; total: number; lengthComputable: boolean }) => void) | null } = { onprogress: null };
    onload: (() => void) | null = null;
    onerror: (() => void) | null = null;
    ontimeout: (() => void) | null = null;
    onabort: (() => void) | null = null;
    private method = '';
    private url = '';
    private headers: Record<string, string> = {};

    open(method: string, url: string) {
      this.method = method;
      this.url = url;
    }
    setRequestHeader(name: string, value: string) {
      this.headers[name] = value;
    }
    abort() {
      this.onabort?.();
    }
    send(body: FormData) {
      sent.push({ method: this.method, url: this.url, headers: this.headers, body });
      const answer = answers.shift();
      setTimeout(() => {
        if (!answer) {
          this.onerror?.();
          return;
        }
        this.upload.onprogress?.({ loaded: 50, total: 100, lengthComputable: true });
        this.upload.onprogress?.({ loaded: 100, total: 100, lengthComputable: true });
        this.status = answer.status;
        this.responseText = JSON.stringify(answer.body);
        this.onload?.();
      }, 0);
    }
  }
  return { xhr: () => new FakeXhr() as unknown as XMLHttpRequest, sent };
}

describe('document uploads', () => {
  const uploaded = { documents: [{ id: 'd1', name: 'a.md', status: 'queued' }], rejected: [] };

  it('posts the files as multipart with the bearer token and reports progress', async () => {
    const { xhr, sent } = fakeXhr([{ status: 201, body: uploaded }]);
    const client = new ApiClient({ fetch: fakeFetch(() => json(500, {})).fetch, xhr });
    client.acceptAuth(authResponse('tok-1'));
    const progress: number[] = [];

    const result = await client.uploadDocuments('kb 1', [new File(['# Hi'], 'a.md')], {
      onProgress: (p) => progress.push(p.loaded / p.total),
      metadata: { team: 'db' },
    });

    expect(result).toEqual(uploaded);
    expect(progress).toEqual([0.5, 1]);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.method).toBe('POST');
    expect(sent[0]!.url).toBe('/api/v1/knowledge-bases/kb%201/documents');
    expect(sent[0]!.headers.Authorization).toBe('Bearer tok-1');
    const file = sent[0]!.body.get('files') as File;
    expect(file.name).toBe('a.md');
    expect(sent[0]!.body.get('metadata')).toBe('{"team":"db"}');
    client.clearSession();
  });

  it('refreshes on a 401 and sends again', async () => {
    const { xhr, sent } = fakeXhr([
      { status: 401, body: { error: { code: 'unauthorized', message: 'expired' } } },
      { status: 201, body: uploaded },
    ]);
    const { fetch } = fakeFetch(() => json(200, authResponse('tok-2')));
    const client = new ApiClient({ fetch, xhr });
    client.acceptAuth(authResponse('tok-1'));

    await client.uploadDocuments('kb1', [new File(['x'], 'a.md')]);

    expect(sent.map((s) => s.headers.Authorization)).toEqual(['Bearer tok-1', 'Bearer tok-2']);
    client.clearSession();
  });

  it('turns a 413 into an ApiError with the server’s message', async () => {
    const message = 'files `big.md` is larger than the limit of 10 bytes (knowledge.max_file_bytes)';
    const { xhr } = fakeXhr([{ status: 413, body: { error: { code: 'payload_too_large', message, field: 'files' } } }]);
    const client = new ApiClient({ xhr });
    client.acceptAuth(authResponse('tok-1'));

    const err = await client.uploadDocuments('kb1', [new File(['x'], 'big.md')]).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 413, code: 'payload_too_large', message, field: 'files' });
    client.clearSession();
  });

  it('reports a broken connection as a network error', async () => {
    const { xhr } = fakeXhr([]);
    const client = new ApiClient({ xhr });
    client.acceptAuth(authResponse('tok-1'));

    const err = await client.uploadDocuments('kb1', [new File(['x'], 'a.md')]).catch((e: unknown) => e);

    expect(err).toMatchObject({ status: 0, code: 'network_error', message: NETWORK_ERROR_MESSAGE });
    client.clearSession();
  });
});
