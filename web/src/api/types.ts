// Wire types of the Hearth HTTP API (v1) used by the web UI. The API's own types are generated
// from the server's OpenAPI document (schema.gen.ts, by `bash scripts/gen-api-types.sh`); the
// ones below the aliases exist only in the UI (filters, socket frames, progress).

import type { components } from './schema.gen';

type S = components['schemas'];

export type Role = S['Role'];
export type User = S['User'];
export type AuthStatus = S['AuthStatus'];
export type AuthResponse = S['AuthResponse'];
export type RegisterRequest = S['RegisterRequest'];
export type LoginRequest = S['LoginRequest'];
export type KeyScope = S['KeyScope'];
export type ApiKey = S['ApiKey'];
export type CreateApiKeyRequest = S['CreateApiKeyRequest'];
export type CreatedApiKey = S['CreatedApiKey'];
export type CreateUserRequest = S['CreateUserRequest'];
export type UpdateUserRequest = S['UpdateUserRequest'];
export type ErrorBody = S['ErrorBody'];
export type Capabilities = S['Capabilities'];
export type UserModel = S['UserModel'];
export type ProviderKind = S['ProviderKind'];
export type CreateProviderRequest = S['CreateProviderRequest'];
export type UpdateProviderRequest = S['UpdateProviderRequest'];
export type UpdateModelRequest = S['UpdateModelRequest'];
export type Trace = S['Trace'];
export type UsageSummary = S['UsageSummary'];
export type Conversation = S['Conversation'];
export type MessageRole = S['MessageRole'];
export type MessageStatus = S['MessageStatus'];
export type ToolCallStatus = S['ToolCallStatus'];
export type Part = S['Part'];
export type Source = S['Source'];
export type MessageView = S['MessageView'];
export type ConversationDetail = S['ConversationDetail'];
export type CreateConversationRequest = S['CreateConversationRequest'];
export type UpdateConversationRequest = S['UpdateConversationRequest'];
export type SendMessageRequest = S['SendMessageRequest'];
export type RunStatus = S['RunStatus'];
export type RunEvent = S['RunEvent'];
export type DocumentStatus = S['DocumentStatus'];
export type DocumentView = S['DocumentView'];
export type RejectedFile = S['RejectedFile'];
export type UploadResult = S['UploadResult'];
export type SearchMode = S['SearchMode'];
export type SearchRequest = S['SearchRequest'];
export type SearchResults = S['SearchResults'];
export type MemorySource = S['MemorySource'];
export type RegistrationMode = S['Registration'];
export type Invite = S['CreatedInvite'];
export type Provider = S['ProviderView'];
export type AdminModel = S['ModelView'];
export type KnowledgeBase = S['KnowledgeBaseView'];
export type CreateKnowledgeBaseRequest = S['CreateKnowledgeBase'];
export type UpdateKnowledgeBaseRequest = S['UpdateKnowledgeBase'];
export type SearchHit = S['Hit'];
export type Memory = S['MemoryView'];

export type TextPart = Extract<Part, { type: 'text' }>;
export type ToolCallPart = Extract<Part, { type: 'tool_call' }>;


// ---- models and providers ----

// ---- traces and usage ----

export interface TraceFilter {
  user_id?: string;
  model?: string;
  /** RFC 3339. */
  since?: string;
  until?: string;
  errors_only?: boolean;
  limit?: number;
}

// ---- conversations ----



export type ExportFormat = 'markdown' | 'json';

// ---- knowledge ----

/** Chunks embedded out of all of a document's chunks. */
export interface IngestProgress {
  done: number;
  total: number;
}

// ---- memory ----

// ---- WebSocket (/api/v1/ws) frames this UI reads ----

export type SocketFrame =
  | { type: 'ready'; user_id?: string }
  | { type: 'ack'; id: string | null; watching?: string | null }
  | { type: 'error'; id: string | null; code: string; message: string }
  | { type: 'document'; document: DocumentView; progress?: IngestProgress }
  | { type: 'documents_missed'; missed: number }
  | { type: 'pong' };
