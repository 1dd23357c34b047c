import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import { api, ApiError } from '../api/client';
import type { ApiKey, CreatedApiKey, KeyScope } from '../api/types';
import { CopyBox } from '../components/CopyBox';
import { Field, FormError, formatDate, toApiError } from '../components/forms';
import { PageHeader } from '../components/Layout';
import { SettingsNav } from '../components/SettingsNav';
import { useSession } from '../session';

const SCOPES: { scope: KeyScope; label: string; hint: string }[] = [
  { scope: 'read', label: 'Read', hint: 'read conversations, knowledge bases and memories' },
  { scope: 'chat', label: 'Chat', hint: 'conversations, runs, memories and the OpenAI-compatible /v1 API' },
  { scope: 'knowledge', label: 'Knowledge', hint: 'knowledge bases, documents and search' },
  { scope: 'admin', label: 'Admin', hint: 'the admin API' },
];

function ScopeCheck({ scope, label, hint, checked, onChange }: { scope: KeyScope; label: string; hint: string; checked: boolean; onChange: (on: boolean) => void }) {
  const id = useId();
  return (
    <div className="check" title={hint}>
      <input id={id} type="checkbox" name={`scope-${scope}`} checked={checked} onChange={(e) => onChange(e.target.checked)} />
      <label htmlFor={id}>{label}</label>
    </div>
  );
}

/** `version` changes when the keys changed elsewhere on the page (a password change revoked them). */
function ApiKeysSection({ version, isAdmin }: { version: number; isAdmin: boolean }) {
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [loadError, setLoadError] = useState<ApiError | null>(null);
  const [name, setName] = useState('');
  const [days, setDays] = useState('');
  const [scopes, setScopes] = useState<KeyScope[]>(['read', 'chat']);
  const [password, setPassword] = useState('');
  const [creating, setCreating] = useState(false);
  const [createError, setCreateError] = useState<ApiError | null>(null);
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const [revoking, setRevoking] = useState<string | null>(null);
  const [rowError, setRowError] = useState<{ id: string; error: ApiError } | null>(null);

  const load = useCallback(async () => {
    try {
      setKeys(await api.listApiKeys());
      setLoadError(null);
    } catch (err) {
      setLoadError(toApiError(err));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load, version]);

  const create = async (event: FormEvent) => {
    event.preventDefault();
    setCreateError(null);
    const trimmedDays = days.trim();
    let expires: number | undefined;
    if (trimmedDays) {
      expires = Number(trimmedDays);
      if (!Number.isInteger(expires) || expires <= 0) {
        setCreateError(new ApiError(0, 'invalid_input', 'Expiry must be a whole number of days.', 'expires_in_days'));
        return;
      }
    }
    if (scopes.length === 0) {
      setCreateError(new ApiError(0, 'invalid_input', 'Choose at least one scope.', 'scopes'));
      return;
    }
    setCreating(true);
    try {
      const result = await api.createApiKey({ name: name.trim(), expires_in_days: expires, scopes, password });
      setCreated(result);
      setName('');
      setDays('');
      setPassword('');
      await load();
    } catch (err) {
      setCreateError(toApiError(err));
    } finally {
      setCreating(false);
    }
  };

  const revoke = async (key: ApiKey) => {
    setRevoking(key.id);
    setRowError(null);
    try {
      await api.revokeApiKey(key.id);
      if (created?.api_key.id === key.id) setCreated(null);
      await load();
    } catch (err) {
      setRowError({ id: key.id, error: toApiError(err) });
    } finally {
      setRevoking(null);
    }
  };

  return (
    <section className="card" aria-labelledby="api-keys-title">
      <div className="card-header">
        <h2 id="api-keys-title">API keys</h2>
        <p className="muted">
          Keys let scripts and other tools call the Hearth API as you. Send one as <code>Authorization: Bearer hk_…</code>.
        </p>
      </div>

      <form className="inline-form" onSubmit={create} noValidate>
        <Field label="Key name" name="name" value={name} onChange={setName} error={createError} placeholder="e.g. laptop scripts" required />
        <Field
          label="Expires in days"
          name="expires_in_days"
          type="number"
          min={1}
          inputMode="numeric"
          value={days}
          onChange={setDays}
          error={createError}
          placeholder="never"
        />
        <Field
          label="Your password"
          name="password"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={setPassword}
          error={createError}
          required
        />
        <fieldset className="checks" aria-invalid={createError?.field === 'scopes' || undefined}>
          <legend>Scopes</legend>
          {SCOPES.filter((s) => isAdmin || s.scope !== 'admin').map((s) => (
            <ScopeCheck
              key={s.scope}
              {...s}
              checked={scopes.includes(s.scope)}
              onChange={(on) => setScopes((cur) => (on ? [...cur, s.scope] : cur.filter((x) => x !== s.scope)))}
            />
          ))}
        </fieldset>
        <button type="submit" className="btn btn-primary" disabled={creating}>
          {creating ? 'Creating…' : 'Create key'}
        </button>
      </form>
      <FormError error={createError} />

      {created ? (
        <div className="new-key" role="status">
          <p>
            <strong>New key “{created.api_key.name}”.</strong> Copy it now: it will not be shown again.
          </p>
          <CopyBox value={created.key} testId="new-api-key" label="New API key" />
          <button type="button" className="btn btn-link" onClick={() => setCreated(null)}>
            I have saved it
          </button>
        </div>
      ) : null}

      <FormError error={loadError} />
      {keys === null ? (
        loadError ? null : <p className="muted">Loading keys…</p>
      ) : keys.length === 0 ? (
        <p className="empty">No API keys yet.</p>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Key</th>
                <th scope="col">Scopes</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col">Expires</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.map((key) => (
                <tr key={key.id}>
                  <td>{key.name}</td>
                  <td>
                    <code>{key.prefix}…</code>
                  </td>
                  <td>{key.scopes.join(', ')}</td>
                  <td>{formatDate(key.created_at)}</td>
                  <td>{formatDate(key.last_used_at, 'Never')}</td>
                  <td>{formatDate(key.expires_at, 'Never')}</td>
                  <td className="actions">
                    <button
                      type="button"
                      className="btn btn-danger-ghost btn-small"
                      disabled={revoking === key.id}
                      onClick={() => void revoke(key)}
                    >
                      Revoke
                    </button>
                    {rowError?.id === key.id ? <span className="row-error">{rowError.error.message}</span> : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function ChangePasswordSection({ onKeysRevoked }: { onKeysRevoked: () => void }) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [revokeKeys, setRevokeKeys] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [done, setDone] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setDone(false);
    try {
      await api.changePassword(current, next, revokeKeys);
      setCurrent('');
      setNext('');
      if (revokeKeys) onKeysRevoked();
      setRevokeKeys(false);
      setDone(true);
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby="password-title">
      <div className="card-header">
        <h2 id="password-title">Change password</h2>
      </div>
      <form className="stack narrow" onSubmit={submit} noValidate>
        <FormError error={error} />
        {done ? (
          <div className="alert alert-success" role="status">
            Your password was changed.
          </div>
        ) : null}
        <Field
          label="Current password"
          name="current_password"
          type="password"
          autoComplete="current-password"
          value={current}
          onChange={setCurrent}
          error={error}
          required
        />
        <Field
          label="New password"
          name="new_password"
          type="password"
          autoComplete="new-password"
          value={next}
          onChange={setNext}
          error={error}
          hint="At least 8 characters; avoid common passwords."
          required
        />
        <div className="check">
          <input
            id="revoke-api-keys"
            type="checkbox"
            name="revoke_api_keys"
            checked={revokeKeys}
            onChange={(e) => setRevokeKeys(e.target.checked)}
          />
          <label htmlFor="revoke-api-keys">Also revoke all my API keys</label>
        </div>
        <div>
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy ? 'Saving…' : 'Change password'}
          </button>
        </div>
      </form>
    </section>
  );
}

export function SettingsPage() {
  const { user } = useSession();
  const [keysVersion, setKeysVersion] = useState(0);
  return (
    <>
      <SettingsNav />
      <PageHeader title="Settings" description={user ? `Signed in as ${user.name} (${user.email}).` : undefined} />
      <ApiKeysSection version={keysVersion} isAdmin={user?.role === 'admin'} />
      <ChangePasswordSection onKeysRevoked={() => setKeysVersion((v) => v + 1)} />
    </>
  );
}
