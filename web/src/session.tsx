// Session state for the whole app: boot (status → setup or refresh), the signed-in user,
// and the registration mode. The token itself stays inside the API client.

import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { api, ApiError, NETWORK_ERROR_MESSAGE } from './api/client';
import type { LoginRequest, RegisterRequest, RegistrationMode, User } from './api/types';
import { navigate } from './router';

export type Phase = 'loading' | 'error' | 'setup' | 'anonymous' | 'authenticated';

interface SessionValue {
  phase: Phase;
  user: User | null;
  registration: RegistrationMode;
  bootError: string | null;
  retryBoot: () => void;
  login: (body: LoginRequest) => Promise<void>;
  register: (body: RegisterRequest) => Promise<void>;
  logout: () => Promise<void>;
}

const SessionContext = createContext<SessionValue | null>(null);

/** Where to go after logging in, when the session was missing or lost on a page. Memory only. */
let returnTo: string | null = null;

const PUBLIC_PATHS = new Set(['/', '/login', '/register', '/setup']);

/** Remembers the current page, unless it is a public one, to come back to after logging in. */
function rememberCurrentPage(): void {
  const { pathname, search } = window.location;
  returnTo = PUBLIC_PATHS.has(pathname) ? null : pathname + search;
}

function takeReturnTo(): string {
  const to = returnTo ?? '/chat';
  returnTo = null;
  return to;
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [phase, setPhase] = useState<Phase>('loading');
  const [user, setUser] = useState<User | null>(api.currentUser);
  const [registration, setRegistration] = useState<RegistrationMode>('closed');
  const [bootError, setBootError] = useState<string | null>(null);
  const bootId = useRef(0);

  const boot = useCallback(async () => {
    const id = ++bootId.current;
    setPhase('loading');
    setBootError(null);
    try {
      const status = await api.authStatus();
      if (id !== bootId.current) return;
      setRegistration(status.registration);
      if (status.needs_setup) {
        setPhase('setup');
        return;
      }
      const restored = await api.restoreSession();
      if (id !== bootId.current) return;
      if (!restored) rememberCurrentPage();
      setUser(restored);
      setPhase(restored ? 'authenticated' : 'anonymous');
    } catch (err) {
      if (id !== bootId.current) return;
      setBootError(err instanceof ApiError ? err.message : NETWORK_ERROR_MESSAGE);
      setPhase('error');
    }
  }, []);

  useEffect(() => {
    void boot();
  }, [boot]);

  useEffect(() => {
    const unsubscribe = api.subscribe((next) => {
      setUser(next);
      setPhase((current) => {
        if (next) return 'authenticated';
        return current === 'authenticated' ? 'anonymous' : current;
      });
    });
    api.onAuthLost = () => {
      rememberCurrentPage();
      navigate('/login', { replace: true });
    };
    return () => {
      unsubscribe();
      api.onAuthLost = undefined;
    };
  }, []);

  const login = useCallback(async (body: LoginRequest) => {
    await api.login(body);
    navigate(takeReturnTo(), { replace: true });
  }, []);

  const register = useCallback(async (body: RegisterRequest) => {
    await api.register(body);
    navigate('/chat', { replace: true });
  }, []);

  const logout = useCallback(async () => {
    returnTo = null;
    await api.logout();
    navigate('/login', { replace: true });
  }, []);

  const value = useMemo<SessionValue>(
    () => ({ phase, user, registration, bootError, retryBoot: () => void boot(), login, register, logout }),
    [phase, user, registration, bootError, boot, login, register, logout],
  );

  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession outside <SessionProvider>');
  return value;
}
