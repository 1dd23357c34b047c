// Pages shown before signing in: first-run setup, login and registration.

import { useEffect, useState, type FormEvent, type ReactNode } from 'react';
import type { ApiError } from '../api/client';
import { Field, FormError, toApiError } from '../components/forms';
import { Flame } from '../components/Flame';
import { Link, useLocation } from '../router';
import { useSession } from '../session';

function AuthCard({ title, subtitle, children }: { title: string; subtitle?: ReactNode; children: ReactNode }) {
  return (
    <main className="auth-screen">
      <div className="auth-card">
        <div className="auth-brand">
          <Flame size={30} />
          <span>Hearth</span>
        </div>
        <h1>{title}</h1>
        {subtitle ? <p className="muted">{subtitle}</p> : null}
        {children}
      </div>
    </main>
  );
}

/** Runs an async submit handler with busy and error state. */
function useSubmit() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const run = (action: () => Promise<void>) => async (event: FormEvent) => {
    event.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(toApiError(err));
      setBusy(false);
    }
  };
  return { busy, error, run };
}

export function SetupPage() {
  const { register } = useSession();
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const { busy, error, run } = useSubmit();

  return (
    <AuthCard
      title="Create the admin account"
      subtitle="Welcome to Hearth. This first account administers this server: it manages users, invites and settings."
    >
      <form className="stack" onSubmit={run(() => register({ email, name, password }))} noValidate>
        <FormError error={error} />
        <Field label="Email" name="email" type="email" autoComplete="email" value={email} onChange={setEmail} error={error} required />
        <Field label="Name" name="name" autoComplete="name" value={name} onChange={setName} error={error} required />
        <Field
          label="Password"
          name="password"
          type="password"
          autoComplete="new-password"
          value={password}
          onChange={setPassword}
          error={error}
          hint="At least 8 characters; avoid common passwords."
          required
        />
        <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
          {busy ? 'Creating…' : 'Create admin'}
        </button>
      </form>
    </AuthCard>
  );
}

export function LoginPage() {
  const { login, registration } = useSession();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const { busy, error, run } = useSubmit();

  return (
    <AuthCard title="Log in" subtitle="Sign in to your Hearth workspace.">
      <form className="stack" onSubmit={run(() => login({ email, password }))} noValidate>
        <FormError error={error} />
        <Field label="Email" name="email" type="email" autoComplete="username" value={email} onChange={setEmail} error={error} required />
        <Field
          label="Password"
          name="password"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={setPassword}
          error={error}
          required
        />
        <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
      {registration === 'open' ? (
        <p className="auth-switch">
          New here? <Link to="/register">Create an account</Link>
        </p>
      ) : registration === 'invite' ? (
        <p className="auth-switch">
          Have an invite? <Link to="/register">Register</Link>
        </p>
      ) : null}
    </AuthCard>
  );
}

export function RegisterPage() {
  const { register, registration } = useSession();
  const { search } = useLocation();
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [inviteToken, setInviteToken] = useState(
    () => new URLSearchParams(window.location.hash.slice(1)).get('invite') ?? search.get('invite') ?? '',
  );
  useEffect(() => {
    // Read once; the token should not linger in the address bar or the history.
    if (window.location.hash.includes('invite=') || search.has('invite')) {
      window.history.replaceState(window.history.state, '', window.location.pathname);
    }
  }, [search]);
  const { busy, error, run } = useSubmit();

  if (registration === 'closed') {
    return (
      <AuthCard title="Registration is closed" subtitle="Ask an administrator of this Hearth server to create an account for you.">
        <p className="auth-switch">
          <Link to="/login">Back to log in</Link>
        </p>
      </AuthCard>
    );
  }

  const invite = registration === 'invite';
  const submit = () =>
    register({ email, name, password, ...(invite ? { invite_token: inviteToken.trim() } : {}) });

  return (
    <AuthCard
      title="Create your account"
      subtitle={invite ? 'Registration on this server is by invitation. Paste the token an administrator gave you.' : undefined}
    >
      <form className="stack" onSubmit={run(submit)} noValidate>
        <FormError error={error} />
        {invite ? (
          <Field
            label="Invite token"
            name="invite_token"
            autoComplete="off"
            spellCheck={false}
            value={inviteToken}
            onChange={setInviteToken}
            error={error}
            required
          />
        ) : null}
        <Field label="Email" name="email" type="email" autoComplete="email" value={email} onChange={setEmail} error={error} required />
        <Field label="Name" name="name" autoComplete="name" value={name} onChange={setName} error={error} required />
        <Field
          label="Password"
          name="password"
          type="password"
          autoComplete="new-password"
          value={password}
          onChange={setPassword}
          error={error}
          hint="At least 8 characters; avoid common passwords."
          required
        />
        <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
          {busy ? 'Creating…' : 'Create account'}
        </button>
      </form>
      <p className="auth-switch">
        Already have an account? <Link to="/login">Log in</Link>
      </p>
    </AuthCard>
  );
}
