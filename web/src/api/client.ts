// The Hearth API client.
//
// - The access token lives in memory only (never localStorage / sessionStorage).
// - The refresh token is an httpOnly SameSite=Strict cookie set by the server; the
//   browser sends it to POST /api/v1/auth/refresh, the UI never reads it.
// - Every call carries `Authorization: Bearer <access token>`. On a 401 the client
//   refreshes once (single-flight: concurrent callers share one refresh) and
//   retries once; if that fails the session is cleared and `onAuthLost` fires.
// - A proactive refresh is scheduled a little before the access token expires.

import type {
  AdminModel,
  ApiKey,
  AuthResponse,
  AuthStatus,
  Conversation,
  ConversationDetail,
  CreateConversationRequest,
  CreateApiKeyRequest,
  CreatedApiKey,
  CreateKnowledgeBaseRequest,
  CreateProviderRequest,
  CreateUserRequest,
  DocumentView,
  ErrorBody,
  ExportFormat,
  Invite,
  KnowledgeBase,
  LoginRequest,
  Memory,
  Provider,
  RegisterRequest,
  SearchRequest,
  SearchResults,
  SendMessageRequest,
  Trace,
  TraceFilter,
  UpdateConversationRequest,
  UpdateKnowledgeBaseRequest,
  UpdateModelRequest,
  UpdateProviderRequest,
  UpdateUserRequest,
  UploadResult,
  UsageSummary,
  User,
  UserModel,
} from './types';

/** An error from the API, or from the network (status 0, code "network_error"). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field?: string;

  constructor(status: number, code: string, message: string, field?: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    if (field) this.field = field;
  }

  get isNetwork(): boolean {
    return this.status === 0;
  }
}

export const NETWORK_ERROR_MESSAGE = 'Cannot reach the Hearth server. Check your connection and try again.';

function isErrorBody(value: unknown): value is ErrorBody {
  if (typeof value !== 'object' || value === null) return false;
  const err = (value as { error?: unknown }).error;
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as { code?: unknown }).code === 'string' &&
    typeof (err as { message?: unknown }).message === 'string'
  );
}

/** Turns a non-2xx response into an {@link ApiError}, using the `{"error":{…}}` envelope when present. */
export async function parseError(res: Response): Promise<ApiError> {
  let text = '';
  try {
    text = await res.text();
  } catch {
    // Body unreadable: fall through to the generic message.
  }
  if (text) {
    try {
      const body: unknown = JSON.parse(text);
      if (isErrorBody(body)) {
        const { code, message, field } = body.error;
        return new ApiError(res.status, code, message, typeof field === 'string' && field ? field : undefined);
      }
    } catch {
      // Not JSON.
    }
  }
  const reason = res.statusText || (res.status >= 500 ? 'Server error' : 'Request failed');
  return new ApiError(res.status, `http_${res.status}`, `${reason} (HTTP ${res.status})`);
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface ApiClientOptions {
  /** Prefix for request paths; '' means same origin. */
  baseUrl?: string;
  /** Injected for tests; defaults to the global fetch. */
  fetch?: FetchLike;
  /** Called when the session is lost (a refresh failed after a 401, or a scheduled refresh was rejected). */
  onAuthLost?: () => void;
  /**
   * Serialises refreshes across browser tabs. The server rotates the refresh token and treats
   * reuse of an old one as theft (revoking the session), so two tabs must not refresh with the
   * same cookie at once. Defaults to a Web Lock where the browser has them.
   */
  refreshLock?: <T>(task: () => Promise<T>) => Promise<T>;
  /** Makes the XMLHttpRequest of an upload (fetch cannot report upload progress); injected for tests. */
  xhr?: () => XMLHttpRequest;
}

/** Bytes of an upload sent so far; `total` is 0 when the browser does not know it. */
export interface UploadProgress {
  loaded: number;
  total: number;
}

export interface UploadOptions {
  onProgress?: (progress: UploadProgress) => void;
  signal?: AbortSignal;
  /** Stored with each uploaded document. */
  metadata?: Record<string, unknown>;
}

/** A cross-tab mutex from the Web Locks API, or a pass-through where it is unavailable. */
function defaultRefreshLock<T>(task: () => Promise<T>): Promise<T> {
  const locks = typeof navigator === 'undefined' ? undefined : navigator.locks;
  if (!locks) return task();
  return locks.request('hearth-auth-refresh', task) as Promise<T>;
}

type SessionListener = (user: User | null) => void;

interface RequestOptions {
  /** Attach the bearer token and handle 401 with refresh + retry (default true). */
  auth?: boolean;
  /** The Accept header (default JSON); `text/event-stream` asks for a run's events as SSE. */
  accept?: string;
  signal?: AbortSignal;
}

/** `?a=1&b=2` from the defined, non-empty values, or '' when there are none. */
export function queryString(params: Record<string, string | number | boolean | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === '') continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** The file name of a `Content-Disposition: attachment; filename="…"` header. */
function attachmentName(header: string | null, fallback: string): string {
  const match = header ? /filename="?([^";]+)"?/i.exec(header) : null;
  return match?.[1] ?? fallback;
}

/** One path segment, escaped. */
const seg = (value: string) => encodeURIComponent(value);

const REFRESH_PATH = '/api/v1/auth/refresh';

export class ApiClient {
  private readonly baseUrl: string;
  private readonly fetchImpl: FetchLike;
  private readonly refreshLock: <T>(task: () => Promise<T>) => Promise<T>;
  private readonly xhrFactory: () => XMLHttpRequest;
  onAuthLost: (() => void) | undefined;

  private accessToken: string | null = null;
  private user: User | null = null;
  /** Incremented on every sign-out, so a refresh started before it cannot sign back in. */
  private sessionEpoch = 0;
  private refreshInFlight: Promise<AuthResponse> | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly listeners = new Set<SessionListener>();

  constructor(options: ApiClientOptions = {}) {
    this.baseUrl = options.baseUrl ?? '';
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.onAuthLost = options.onAuthLost;
    this.refreshLock = options.refreshLock ?? defaultRefreshLock;
    this.xhrFactory = options.xhr ?? (() => new XMLHttpRequest());
  }

  // ---- session state -------------------------------------------------------

  /** The in-memory access token, if signed in. */
  get token(): string | null {
    return this.accessToken;
  }

  get currentUser(): User | null {
    return this.user;
  }

  /** Subscribes to sign-in / sign-out / user changes. Returns the unsubscribe function. */
  subscribe(listener: SessionListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Stores the token and user from an auth response and schedules the proactive refresh. */
  acceptAuth(auth: AuthResponse): void {
    this.accessToken = auth.access_token;
    this.user = auth.user;
    this.scheduleRefresh(auth.expires_in);
    this.emit();
  }

  /** Forgets the token and user and cancels the scheduled refresh. */
  clearSession(): void {
    this.sessionEpoch += 1;
    const had = this.accessToken !== null || this.user !== null;
    this.accessToken = null;
    this.user = null;
    this.cancelRefresh();
    if (had) this.emit();
  }

  private emit(): void {
    for (const listener of this.listeners) listener(this.user);
  }

  private cancelRefresh(): void {
    if (this.refreshTimer !== null) {
      clearTimeout(this.refreshTimer);
      this.refreshTimer = null;
    }
  }

  /** Refresh a little before expiry: 20% of the lifetime early, at most 60 s, at least 1 s from now. */
  private scheduleRefresh(expiresInSeconds: number): void {
    this.cancelRefresh();
    if (!Number.isFinite(expiresInSeconds) || expiresInSeconds <= 0) return;
    const lead = Math.min(60, expiresInSeconds * 0.2);
    const delayMs = Math.max(1000, (expiresInSeconds - lead) * 1000);
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.refresh().catch((err: unknown) => {
        if (err instanceof ApiError && err.isNetwork && this.accessToken !== null) {
          // Offline for a moment: try again soon while the token may still be valid.
          this.refreshTimer = setTimeout(() => this.scheduleRefresh(1), 15_000);
          return;
        }
        this.loseSession();
      });
    }, delayMs);
  }

  private loseSession(): void {
    this.clearSession();
    this.onAuthLost?.();
  }

  // ---- transport ----------------------------------------------------------

  private async send(
    method: string,
    path: string,
    body: unknown,
    token: string | null,
    options: RequestOptions = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { Accept: options.accept ?? 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = `Bearer ${token}`;
    try {
      return await this.fetchImpl(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        signal: options.signal,
      });
    } catch (err) {
      if (err instanceof DOMException && err.name === 'AbortError') throw err;
      throw new ApiError(0, 'network_error', NETWORK_ERROR_MESSAGE);
    }
  }

  private static async decode<T>(res: Response): Promise<T> {
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    if (!text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(res.status, 'bad_response', 'The server sent a response the UI could not read.');
    }
  }

  /**
   * Exchanges the refresh cookie for a new access token. Concurrent callers share one
   * request. Resolves with the auth response (and stores it); rejects with an ApiError.
   */
  refresh(): Promise<AuthResponse> {
    if (!this.refreshInFlight) {
      // A sign-out while this refresh is under way must not be undone by its answer.
      const epoch = this.sessionEpoch;
      this.refreshInFlight = this.refreshLock(async () => {
        const res = await this.send('POST', REFRESH_PATH, {}, null);
        if (!res.ok) throw await parseError(res);
        const auth = await ApiClient.decode<AuthResponse>(res);
        if (epoch === this.sessionEpoch) this.acceptAuth(auth);
        return auth;
      }).finally(() => {
        this.refreshInFlight = null;
      });
    }
    return this.refreshInFlight;
  }

  /** Performs one API call; see the module comment for the 401 handling. */
  async request<T>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    return ApiClient.decode<T>(await this.fetchOk(method, path, body, options));
  }

  /**
   * Performs one API call and returns the successful response unread (for streams and
   * downloads); throws an ApiError for any other status. Same 401 handling as `request`.
   */
  async fetchOk(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<Response> {
    const auth = options.auth ?? true;
    return this.withAuthRetry(auth, (token) => this.send(method, path, body, token, options));
  }

  /**
   * Sends with the current token (when `auth`); on a 401, refreshes once and sends again.
   * Resolves with a 2xx response, throws an ApiError for anything else.
   */
  private async withAuthRetry(auth: boolean, attempt: (token: string | null) => Promise<Response>): Promise<Response> {
    const sentWith = auth ? this.accessToken : null;
    let res = await attempt(sentWith);

    if (res.status === 401 && auth) {
      const firstError = await parseError(res);
      let token: string | null;
      if (this.accessToken !== null && this.accessToken !== sentWith) {
        // Someone refreshed while this call was in flight: just use the new token.
        token = this.accessToken;
      } else {
        try {
          token = (await this.refresh()).access_token;
        } catch (err) {
          if (err instanceof ApiError && err.isNetwork) throw err;
          this.loseSession();
          throw firstError;
        }
      }
      res = await attempt(token);
      if (res.status === 401) {
        const err = await parseError(res);
        this.loseSession();
        throw err;
      }
    }

    if (!res.ok) throw await parseError(res);
    return res;
  }

  /**
   * POSTs a form with an XMLHttpRequest, reporting upload progress, and answers with the
   * response as a `Response` (so errors are read like any other).
   */
  private sendForm(path: string, form: FormData, token: string | null, options: UploadOptions): Promise<Response> {
    return new Promise((resolve, reject) => {
      const { signal, onProgress } = options;
      if (signal?.aborted) {
        reject(new DOMException('The upload was aborted.', 'AbortError'));
        return;
      }
      const xhr = this.xhrFactory();
      const onAbort = () => xhr.abort();
      const settle = () => signal?.removeEventListener('abort', onAbort);
      xhr.open('POST', this.baseUrl + path);
      xhr.setRequestHeader('Accept', 'application/json');
      if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
      if (onProgress) {
        xhr.upload.onprogress = (event) => onProgress({ loaded: event.loaded, total: event.lengthComputable ? event.total : 0 });
      }
      xhr.onload = () => {
        settle();
        const status = xhr.status;
        if (status < 200 || status > 599) {
          reject(new ApiError(0, 'network_error', NETWORK_ERROR_MESSAGE));
          return;
        }
        const empty = status === 204 || status === 205 || status === 304;
        resolve(new Response(empty ? null : xhr.responseText, { status, statusText: xhr.statusText }));
      };
      xhr.onerror = xhr.ontimeout = () => {
        settle();
        reject(new ApiError(0, 'network_error', NETWORK_ERROR_MESSAGE));
      };
      xhr.onabort = () => {
        settle();
        reject(new DOMException('The upload was aborted.', 'AbortError'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      xhr.send(form);
    });
  }

  // ---- endpoints ----------------------------------------------------------

  authStatus(): Promise<AuthStatus> {
    return this.request<AuthStatus>('GET', '/api/v1/auth/status', undefined, { auth: false });
  }

  async register(body: RegisterRequest): Promise<User> {
    const auth = await this.request<AuthResponse>('POST', '/api/v1/auth/register', body, { auth: false });
    this.acceptAuth(auth);
    return auth.user;
  }

  async login(body: LoginRequest): Promise<User> {
    const auth = await this.request<AuthResponse>('POST', '/api/v1/auth/login', body, { auth: false });
    this.acceptAuth(auth);
    return auth.user;
  }

  /**
   * Restores a session from the refresh cookie. Resolves with the user, or null when
   * there is no valid session (401/403); rejects on network and server errors.
   */
  async restoreSession(): Promise<User | null> {
    try {
      return (await this.refresh()).user;
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        this.clearSession();
        return null;
      }
      throw err;
    }
  }

  /** Revokes the session on the server (best effort) and always clears it locally. */
  async logout(): Promise<void> {
    try {
      if (this.accessToken !== null) {
        // Through request(): an expired access token is refreshed first, so the
        // server still gets to revoke the refresh token behind the cookie.
        await this.request<void>('POST', '/api/v1/auth/logout', {});
      }
    } catch {
      // Offline or already signed out: the local session is still cleared.
    } finally {
      this.clearSession();
    }
  }

  me(): Promise<User> {
    return this.request<User>('GET', '/api/v1/me');
  }

  changePassword(current_password: string, new_password: string, revoke_api_keys = false): Promise<void> {
    return this.request<void>('POST', '/api/v1/me/password', { current_password, new_password, revoke_api_keys });
  }

  listApiKeys(): Promise<ApiKey[]> {
    return this.request<ApiKey[]>('GET', '/api/v1/api-keys');
  }

  createApiKey(req: CreateApiKeyRequest): Promise<CreatedApiKey> {
    return this.request<CreatedApiKey>('POST', '/api/v1/api-keys', req);
  }

  revokeApiKey(id: string): Promise<void> {
    return this.request<void>('DELETE', `/api/v1/api-keys/${encodeURIComponent(id)}`);
  }

  listUsers(): Promise<User[]> {
    return this.request<User[]>('GET', '/api/v1/admin/users');
  }

  createUser(body: CreateUserRequest): Promise<User> {
    return this.request<User>('POST', '/api/v1/admin/users', body);
  }

  updateUser(id: string, patch: UpdateUserRequest): Promise<User> {
    return this.request<User>('PATCH', `/api/v1/admin/users/${encodeURIComponent(id)}`, patch);
  }

  resetUserPassword(id: string, new_password: string): Promise<void> {
    return this.request<void>('POST', `/api/v1/admin/users/${encodeURIComponent(id)}/password`, { new_password });
  }

  createInvite(email?: string): Promise<Invite> {
    return this.request<Invite>('POST', '/api/v1/admin/invites', email ? { email } : {});
  }

  // ---- chat ----

  listModels(): Promise<UserModel[]> {
    return this.request<UserModel[]>('GET', '/api/v1/models');
  }

  listConversations(q?: string): Promise<Conversation[]> {
    return this.request<Conversation[]>('GET', `/api/v1/conversations${queryString({ q: q?.trim() })}`);
  }

  createConversation(body: CreateConversationRequest): Promise<Conversation> {
    return this.request<Conversation>('POST', '/api/v1/conversations', body);
  }

  getConversation(conversationId: string): Promise<ConversationDetail> {
    return this.request<ConversationDetail>('GET', `/api/v1/conversations/${seg(conversationId)}`);
  }

  updateConversation(conversationId: string, patch: UpdateConversationRequest): Promise<ConversationDetail> {
    return this.request<ConversationDetail>('PATCH', `/api/v1/conversations/${seg(conversationId)}`, patch);
  }

  deleteConversation(conversationId: string): Promise<void> {
    return this.request<void>('DELETE', `/api/v1/conversations/${seg(conversationId)}`);
  }

  /** The shown branch as a file, with the name the server suggests. */
  async exportConversation(conversationId: string, format: ExportFormat): Promise<{ blob: Blob; filename: string }> {
    const res = await this.fetchOk('GET', `/api/v1/conversations/${seg(conversationId)}/export${queryString({ format })}`, undefined, {
      accept: format === 'json' ? 'application/json' : 'text/markdown',
    });
    const fallback = `conversation-${conversationId}.${format === 'json' ? 'json' : 'md'}`;
    return { blob: await res.blob(), filename: attachmentName(res.headers.get('Content-Disposition'), fallback) };
  }

  /** Saves the shown branch as a Markdown document in one of the user's knowledge bases. */
  exportToKnowledge(conversationId: string, knowledgeBaseId: string): Promise<UploadResult> {
    return this.request<UploadResult>('POST', `/api/v1/conversations/${seg(conversationId)}/export-to-knowledge`, {
      knowledge_base_id: knowledgeBaseId,
    });
  }

  /** Sends a message; the response body is the run's events as SSE. */
  streamMessage(conversationId: string, body: SendMessageRequest, signal?: AbortSignal): Promise<Response> {
    return this.fetchOk('POST', `/api/v1/conversations/${seg(conversationId)}/messages`, body, {
      accept: 'text/event-stream',
      signal,
    });
  }

  /** Writes another answer to a message; the response body is the run's events as SSE. */
  streamRegenerate(conversationId: string, messageId: string, body: { model?: string }, signal?: AbortSignal): Promise<Response> {
    return this.fetchOk('POST', `/api/v1/conversations/${seg(conversationId)}/messages/${seg(messageId)}/regenerate`, body, {
      accept: 'text/event-stream',
      signal,
    });
  }

  /** A run's events after `after`, as SSE: live until it ends, or the stored log of a finished run. */
  streamRunEvents(conversationId: string, runId: string, after: number, signal?: AbortSignal): Promise<Response> {
    return this.fetchOk('GET', `/api/v1/conversations/${seg(conversationId)}/runs/${seg(runId)}/events${queryString({ after })}`, undefined, {
      accept: 'text/event-stream',
      signal,
    });
  }

  stopRun(runId: string): Promise<{ status: string }> {
    return this.request<{ status: string }>('POST', `/api/v1/runs/${seg(runId)}/stop`, {});
  }

  answerApproval(runId: string, callId: string, approve: boolean): Promise<void> {
    return this.request<void>('POST', `/api/v1/runs/${seg(runId)}/approvals/${seg(callId)}`, { approve });
  }

  // ---- admin: providers, models, traces ----

  listProviders(): Promise<Provider[]> {
    return this.request<Provider[]>('GET', '/api/v1/admin/providers');
  }

  createProvider(body: CreateProviderRequest): Promise<Provider> {
    return this.request<Provider>('POST', '/api/v1/admin/providers', body);
  }

  updateProvider(providerId: string, patch: UpdateProviderRequest): Promise<Provider> {
    return this.request<Provider>('PATCH', `/api/v1/admin/providers/${seg(providerId)}`, patch);
  }

  deleteProvider(providerId: string): Promise<void> {
    return this.request<void>('DELETE', `/api/v1/admin/providers/${seg(providerId)}`);
  }

  /** Reads the provider's model list; returns its models (new ones added). */
  syncProvider(providerId: string): Promise<AdminModel[]> {
    return this.request<AdminModel[]>('POST', `/api/v1/admin/providers/${seg(providerId)}/sync`, {});
  }

  listAdminModels(): Promise<AdminModel[]> {
    return this.request<AdminModel[]>('GET', '/api/v1/admin/models');
  }

  updateModel(modelId: string, patch: UpdateModelRequest): Promise<AdminModel> {
    return this.request<AdminModel>('PATCH', `/api/v1/admin/models/${seg(modelId)}`, patch);
  }

  // ---- knowledge ----

  listKnowledgeBases(): Promise<KnowledgeBase[]> {
    return this.request<KnowledgeBase[]>('GET', '/api/v1/knowledge-bases');
  }

  createKnowledgeBase(body: CreateKnowledgeBaseRequest): Promise<KnowledgeBase> {
    return this.request<KnowledgeBase>('POST', '/api/v1/knowledge-bases', body);
  }

  getKnowledgeBase(id: string): Promise<KnowledgeBase> {
    return this.request<KnowledgeBase>('GET', `/api/v1/knowledge-bases/${seg(id)}`);
  }

  updateKnowledgeBase(id: string, patch: UpdateKnowledgeBaseRequest): Promise<KnowledgeBase> {
    return this.request<KnowledgeBase>('PATCH', `/api/v1/knowledge-bases/${seg(id)}`, patch);
  }

  deleteKnowledgeBase(id: string): Promise<void> {
    return this.request<void>('DELETE', `/api/v1/knowledge-bases/${seg(id)}`);
  }

  listDocuments(knowledgeBaseId: string): Promise<DocumentView[]> {
    return this.request<DocumentView[]>('GET', `/api/v1/knowledge-bases/${seg(knowledgeBaseId)}/documents`);
  }

  /**
   * Uploads files (one `files` part each) as `multipart/form-data`, reporting progress. Same 401
   * handling as `request`; a retry after a refresh sends the whole body again.
   */
  async uploadDocuments(knowledgeBaseId: string, files: File[], options: UploadOptions = {}): Promise<UploadResult> {
    const form = new FormData();
    for (const file of files) form.append('files', file, file.name);
    if (options.metadata) form.append('metadata', JSON.stringify(options.metadata));
    const path = `/api/v1/knowledge-bases/${seg(knowledgeBaseId)}/documents`;
    const res = await this.withAuthRetry(true, (token) => this.sendForm(path, form, token, options));
    return ApiClient.decode<UploadResult>(res);
  }

  deleteDocument(knowledgeBaseId: string, documentId: string): Promise<void> {
    return this.request<void>('DELETE', `/api/v1/knowledge-bases/${seg(knowledgeBaseId)}/documents/${seg(documentId)}`);
  }

  retryDocument(knowledgeBaseId: string, documentId: string): Promise<DocumentView> {
    return this.request<DocumentView>('POST', `/api/v1/knowledge-bases/${seg(knowledgeBaseId)}/documents/${seg(documentId)}/retry`, {});
  }

  searchKnowledgeBase(knowledgeBaseId: string, body: SearchRequest, signal?: AbortSignal): Promise<SearchResults> {
    return this.request<SearchResults>('POST', `/api/v1/knowledge-bases/${seg(knowledgeBaseId)}/search`, body, { signal });
  }

  // ---- memory ----

  /** The user's memories, newest first. */
  listMemories(): Promise<Memory[]> {
    return this.request<Memory[]>('GET', '/api/v1/memories');
  }

  createMemory(text: string): Promise<Memory> {
    return this.request<Memory>('POST', '/api/v1/memories', { text });
  }

  updateMemory(id: string, text: string): Promise<Memory> {
    return this.request<Memory>('PATCH', `/api/v1/memories/${seg(id)}`, { text });
  }

  deleteMemory(id: string): Promise<void> {
    return this.request<void>('DELETE', `/api/v1/memories/${seg(id)}`);
  }

  // ---- admin: traces ----

  listTraces(filter: TraceFilter = {}): Promise<Trace[]> {
    const query = queryString({
      user_id: filter.user_id,
      model: filter.model,
      since: filter.since,
      until: filter.until,
      errors_only: filter.errors_only ? true : undefined,
      limit: filter.limit,
    });
    return this.request<Trace[]>('GET', `/api/v1/admin/llm-calls${query}`);
  }

  usageSummary(days: number, userId?: string): Promise<UsageSummary[]> {
    return this.request<UsageSummary[]>('GET', `/api/v1/admin/usage${queryString({ days, user_id: userId })}`);
  }
}

/** The app-wide client. */
export const api = new ApiClient();
