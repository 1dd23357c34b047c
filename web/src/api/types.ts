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

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
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
