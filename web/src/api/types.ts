// Wire types of the Hearth HTTP API (v1) used by the web UI.

export type Role = 'admin' | 'user';
export type RegistrationMode = 'open' | 'invite' | 'closed';

export interface User {
  id: string;
  email: string;
  name: string;
  role: Role;
  disabled: boolean;
  created_at: string;
}

export interface AuthStatus {
  needs_setup: boolean;
  registration: RegistrationMode;
}

/** Body of register, login and refresh responses. */
export interface AuthResponse {
  access_token: string;
  /** Also set as an httpOnly cookie by the server; the UI ignores this field. */
  refresh_token?: string;
  /** Lifetime of the access token in seconds. */
  expires_in: number;
  token_type: 'Bearer';
  user: User;
}

export interface RegisterRequest {
  email: string;
  name: string;
  password: string;
  invite_token?: string;
}

export interface LoginRequest {
  email: string;
  password: string;
}

/** What an API key may do; `admin` only for admins. */
export type KeyScope = 'read' | 'chat' | 'knowledge' | 'admin';

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  scopes: KeyScope[];
}

export interface CreateApiKeyRequest {
  name: string;
  expires_in_days?: number;
  scopes: KeyScope[];
  /** The caller's password, asked again to create a key. */
  password: string;
}

export interface CreatedApiKey {
  /** The full secret (`hk_…`), returned exactly once. */
  key: string;
  api_key: ApiKey;
}

export interface CreateUserRequest {
  email: string;
  password: string;
  name: string;
  role: Role;
}

export interface UpdateUserRequest {
  role?: Role;
  disabled?: boolean;
}

export interface Invite {
  token: string;
  expires_at: string;
}

/** The server's error envelope: `{"error":{"code","message","field"?}}`. */
export interface ErrorBody {
  error: {
    code: string;
    message: string;
    field?: string;
  };
}

// ---- models and providers ----

export interface Capabilities {
  streaming: boolean;
  tools: boolean;
  vision: boolean;
  context_length: number | null;
  /** Makes embeddings (for knowledge bases and memories), not chat answers. */
  embeddings: boolean;
  /** Length of its vectors, once learnt from a first call. */
  embedding_dimensions: number | null;
}

/** A model the signed-in user may pick (`GET /api/v1/models`). */
export interface UserModel {
  name: string;
  display_name: string;
  aliases: string[];
  capabilities: Capabilities;
  provider: string;
}

export type ProviderKind = 'openai' | 'anthropic';

export interface Provider {
  id: string;
  kind: ProviderKind;
  name: string;
  base_url: string | null;
  has_api_key: boolean;
  enabled: boolean;
  created_at: string;
}

export interface CreateProviderRequest {
  kind: ProviderKind;
  name: string;
  base_url?: string;
  api_key?: string;
}

/** Absent fields stay as they are; `api_key: ""` removes the key. */
export interface UpdateProviderRequest {
  name?: string;
  base_url?: string;
  api_key?: string;
  enabled?: boolean;
}

/** A model as an admin sees it. */
export interface AdminModel {
  id: string;
  provider_id: string;
  name: string;
  upstream_id: string;
  display_name: string;
  aliases: string[];
  capabilities: Capabilities;
  /** US dollars per million tokens. */
  input_price_per_mtok: number | null;
  output_price_per_mtok: number | null;
  enabled: boolean;
}

export interface UpdateModelRequest {
  display_name?: string;
  aliases?: string[];
  supports_streaming?: boolean;
  supports_tools?: boolean;
  supports_vision?: boolean;
  supports_embeddings?: boolean;
  context_length?: number;
  input_price_per_mtok?: number;
  output_price_per_mtok?: number;
  enabled?: boolean;
}

// ---- traces and usage ----

/** One model call. */
export interface Trace {
  id: string;
  user_id: string | null;
  run_id: string | null;
  source: 'chat' | 'openai_api' | string;
  model: string;
  provider_id: string | null;
  input_tokens: number;
  output_tokens: number;
  latency_ms: number;
  ttft_ms: number | null;
  cost_usd: number | null;
  tool_calls: number;
  error: string | null;
  created_at: string;
}

export interface TraceFilter {
  user_id?: string;
  model?: string;
  /** RFC 3339. */
  since?: string;
  until?: string;
  errors_only?: boolean;
  limit?: number;
}

export interface UsageSummary {
  user_id: string | null;
  model: string;
  calls: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number | null;
}

// ---- conversations ----

export interface Conversation {
  id: string;
  title: string;
  model: string | null;
  /** Knowledge bases answers retrieve passages from (none: no retrieval). */
  knowledge_base_ids: string[];
  created_at: string;
  updated_at: string;
}

export type MessageRole = 'user' | 'assistant' | 'system';
export type MessageStatus = 'complete' | 'streaming' | 'error' | 'stopped';
export type ToolCallStatus = 'pending' | 'ok' | 'error' | 'denied';

export interface TextPart {
  type: 'text';
  text: string;
}

export interface ToolCallPart {
  type: 'tool_call';
  id: string;
  name: string;
  /** The arguments as the model wrote them (JSON text). */
  arguments: string;
  status: ToolCallStatus;
  /** The result, or why there is none; null while pending. */
  output: string | null;
}

export type Part = TextPart | ToolCallPart;

/** A knowledge-base passage given to the model with an answer, which cites it as `[n]`. */
export interface Source {
  /** The number the answer cites it by (1, 2, … within the message). */
  n: number;
  chunk_id: string;
  document_id: string;
  document_name: string;
  knowledge_base_id: string;
  /** The heading path above the passage ("A > B"); may be empty. */
  headings: string;
  page: number | null;
  /** Order of the passage in its document. */
  position: number;
  text: string;
}

export interface MessageView {
  id: string;
  conversation_id: string;
  parent_id: string | null;
  role: MessageRole;
  /** All text parts joined. */
  content: string;
  parts: Part[];
  model: string | null;
  status: MessageStatus;
  error: string | null;
  created_at: string;
  /** This message and its alternatives (edits or regenerations), oldest first. */
  sibling_ids: string[];
  /** The run writing this message, while it streams. */
  run_id?: string;
  /** Passages the answer was given, cited as `[n]`; absent when there are none. */
  sources?: Source[];
}

export interface ConversationDetail extends Conversation {
  /** The branch shown, oldest first. */
  messages: MessageView[];
}

export interface CreateConversationRequest {
  title?: string;
  model?: string;
  knowledge_base_ids?: string[];
}

export interface UpdateConversationRequest {
  title?: string;
  model?: string;
  active_message_id?: string;
  /** Replaces the attached knowledge bases (`[]` detaches them all). */
  knowledge_base_ids?: string[];
}

export interface SendMessageRequest {
  content: string;
  model?: string;
  parent_id?: string;
  edit_root?: boolean;
  tools?: string[];
}

export type RunStatus = 'running' | 'complete' | 'error' | 'stopped';

/** One event of a run; `seq` starts at 1 and has no gaps, and `done` is always last. */
export type RunEvent = { seq: number } & (
  | {
      type: 'run_started';
      run_id: string;
      conversation_id: string;
      message_id: string;
      user_message_id: string | null;
      model: string;
    }
  /** Passages retrieved for the answer; more may follow (numbered after the earlier ones). */
  | { type: 'sources'; sources: Source[] }
  | { type: 'text_delta'; text: string }
  | { type: 'tool_call'; id: string; name: string; arguments: string }
  | { type: 'tool_approval_required'; id: string; name: string; arguments: string; timeout_secs: number }
  | { type: 'tool_result'; id: string; name: string; status: ToolCallStatus; output: string }
  | { type: 'usage'; input_tokens: number; output_tokens: number }
  | { type: 'error'; code: string; message: string }
  | { type: 'done'; status: Exclude<RunStatus, 'running'>; message: MessageView }
);

export type ExportFormat = 'markdown' | 'json';

// ---- knowledge ----

export interface KnowledgeBase {
  id: string;
  name: string;
  description: string;
  embedding_model: string;
  dimensions: number;
  documents: number;
  chunks: number;
  created_at: string;
  updated_at: string;
}

export interface CreateKnowledgeBaseRequest {
  name: string;
  description?: string;
  /** A built-in embedder or a provider's embedding model; the server's default when absent. */
  embedding_model?: string;
}

export interface UpdateKnowledgeBaseRequest {
  name?: string;
  description?: string;
}

/** A document's place in the ingest pipeline. */
export type DocumentStatus = 'queued' | 'parsing' | 'embedding' | 'indexed' | 'failed';

export interface DocumentView {
  id: string;
  knowledge_base_id: string;
  name: string;
  format: string;
  size_bytes: number;
  content_hash: string;
  status: DocumentStatus;
  /** Why it failed. */
  error: string | null;
  pages: number | null;
  chunks: number;
  metadata: Record<string, unknown>;
  /** In an upload's answer: the knowledge base already held this content (this is the existing document). */
  duplicate?: true;
  created_at: string;
  updated_at: string;
  indexed_at: string | null;
}

/** A file of an upload that was not taken, and why. */
export interface RejectedFile {
  name: string;
  code: string;
  message: string;
}

/** Answer of `POST /api/v1/knowledge-bases/{id}/documents`. */
export interface UploadResult {
  documents: DocumentView[];
  rejected: RejectedFile[];
}

export type SearchMode = 'hybrid' | 'bm25' | 'vector';

export interface SearchRequest {
  query: string;
  top_k?: number;
  mode?: SearchMode;
}

export interface SearchHit {
  chunk_id: string;
  document_id: string;
  document_name: string;
  knowledge_base_id: string;
  text: string;
  /** The heading path above the passage ("A > B"). */
  headings: string;
  position: number;
  page: number | null;
  /** The fused score (or the single ranking's score for bm25 / vector). */
  score: number;
  bm25_score: number | null;
  vector_score: number | null;
}

export interface SearchResults {
  mode: SearchMode;
  /** The query's lower-cased words, for highlighting. */
  terms: string[];
  hits: SearchHit[];
}

/** Chunks embedded out of all of a document's chunks. */
export interface IngestProgress {
  done: number;
  total: number;
}

// ---- memory ----

/** Who made a memory: the model's memory tool, extraction after a conversation, or the user. */
export type MemorySource = 'saved' | 'extracted' | 'user';

export interface Memory {
  id: string;
  text: string;
  source: MemorySource;
  /** The conversation it came from, for saved and extracted memories. */
  conversation_id: string | null;
  created_at: string;
  updated_at: string;
}

// ---- WebSocket (/api/v1/ws) frames this UI reads ----

export type SocketFrame =
  | { type: 'ready'; user_id?: string }
  | { type: 'ack'; id: string | null; watching?: string | null }
  | { type: 'error'; id: string | null; code: string; message: string }
  | { type: 'document'; document: DocumentView; progress?: IngestProgress }
  | { type: 'documents_missed'; missed: number }
  | { type: 'pong' };
