import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type ApiError } from '../api/client';
import type { Invite, Role, User } from '../api/types';
import { CopyBox } from '../components/CopyBox';
import { Field, FormError, formatDate, toApiError } from '../components/forms';
import { PageHeader } from '../components/Layout';
import { useSession } from '../session';

function AddUserForm({ onAdded }: { onAdded: (user: User) => void }) {
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Role>('user');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const user = await api.createUser({ email: email.trim(), name: name.trim(), password, role });
      setEmail('');
      setName('');
      setPassword('');
      setRole('user');
      onAdded(user);
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby="add-user-title">
      <div className="card-header">
        <h2 id="add-user-title">Add a user</h2>
        <p className="muted">Create an account directly and share the password with its owner.</p>
      </div>
      <form className="grid-form" onSubmit={submit} noValidate>
        <Field label="Email" name="email" type="email" autoComplete="off" value={email} onChange={setEmail} error={error} required />
        <Field label="Name" name="name" autoComplete="off" value={name} onChange={setName} error={error} required />
        <Field
          label="Password"
          name="password"
          type="password"
          autoComplete="new-password"
          value={password}
          onChange={setPassword}
          error={error}
          required
        />
        <div className={error?.field === 'role' ? 'field field-invalid' : 'field'}>
          <label htmlFor="add-user-role">Role</label>
          <select id="add-user-role" name="role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
            <option value="user">User</option>
            <option value="admin">Admin</option>
          </select>
        </div>
        <div className="grid-form-submit">
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy ? 'Adding…' : 'Add user'}
          </button>
        </div>
      </form>
      <FormError error={error} />
    </section>
  );
}

function InviteForm() {
  const [email, setEmail] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [invite, setInvite] = useState<Invite | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setInvite(await api.createInvite(email.trim() || undefined));
      setEmail('');
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };

  // In the fragment, the token stays out of server logs and history entries of other pages.
  const link = invite ? `${window.location.origin}/register#invite=${encodeURIComponent(invite.token)}` : '';

  return (
    <section className="card" aria-labelledby="invite-title">
      <div className="card-header">
        <h2 id="invite-title">Invite someone</h2>
        <p className="muted">Create a one-time invite token. Optionally tie it to an email address.</p>
      </div>
      <form className="inline-form" onSubmit={submit} noValidate>
        <Field
          label="Recipient (optional)"
          name="email"
          type="email"
          autoComplete="off"
          value={email}
          onChange={setEmail}
          error={error}
          placeholder="name@example.com"
        />
        <button type="submit" className="btn btn-secondary" disabled={busy}>
          {busy ? 'Creating…' : 'Invite'}
        </button>
      </form>
      <FormError error={error} />
      {invite ? (
        <div className="new-key" role="status">
          <p>
            <strong>Invite token</strong> — share it with the person you invite. It expires {formatDate(invite.expires_at)}.
          </p>
          <CopyBox value={invite.token} testId="invite-token" label="Invite token" />
          <p className="muted small">
            Or send the registration link: <a href={link}>{link}</a>
          </p>
        </div>
      ) : null}
    </section>
  );
}

function ResetPasswordForm({ user, onSaved, onCancel }: { user: User; onSaved: () => void; onCancel: () => void }) {
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.resetUserPassword(user.id, password);
      onSaved();
    } catch (err) {
      setError(toApiError(err));
      setBusy(false);
    }
  };

  return (
    <form className="inline-form reset-form" onSubmit={submit} noValidate>
      <Field
        label="New password"
        name="new_password"
        type="password"
        autoComplete="new-password"
        value={password}
        onChange={setPassword}
        error={error}
        autoFocus
        required
      />
      <button type="submit" className="btn btn-primary btn-small" disabled={busy}>
        Save password
      </button>
      <button type="button" className="btn btn-ghost btn-small" onClick={onCancel}>
        Cancel
      </button>
      <FormError error={error} />
    </form>
  );
}

function UserRow({ user, isSelf, onChanged }: { user: User; isSelf: boolean; onChanged: (user: User) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [resetting, setResetting] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);

  const patch = async (change: { role?: Role; disabled?: boolean }) => {
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      onChanged(await api.updateUser(user.id, change));
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };

  const otherRole: Role = user.role === 'admin' ? 'user' : 'admin';

  return (
    <>
      <tr className={user.disabled ? 'row-disabled' : undefined}>
        <td className="nowrap">
          {user.email}
          {isSelf ? <span className="badge badge-muted">you</span> : null}
        </td>
        <td>{user.name}</td>
        <td>
          <span className={user.role === 'admin' ? 'badge badge-accent' : 'badge'}>{user.role}</span>
        </td>
        <td>
          <span className={user.disabled ? 'status status-off' : 'status status-on'}>{user.disabled ? 'Disabled' : 'Active'}</span>
        </td>
        <td className="nowrap" title={formatDate(user.created_at)}>
          {formatDate(user.created_at, '—', false)}
        </td>
        <td className="actions">
          <button
            type="button"
            className="btn btn-ghost btn-small"
            disabled={busy}
            onClick={() => void patch({ role: otherRole })}
          >
            {otherRole === 'admin' ? 'Make admin' : 'Make user'}
          </button>
          <button
            type="button"
            className={user.disabled ? 'btn btn-ghost btn-small' : 'btn btn-danger-ghost btn-small'}
            disabled={busy}
            onClick={() => void patch({ disabled: !user.disabled })}
          >
            {user.disabled ? 'Enable' : 'Disable'}
          </button>
          <button
            type="button"
            className="btn btn-ghost btn-small"
            disabled={busy}
            onClick={() => {
              setNotice(null);
              setResetting((v) => !v);
            }}
            aria-expanded={resetting}
          >
            Reset password
          </button>
        </td>
      </tr>
      {resetting || error || notice ? (
        <tr className="row-detail">
          <td colSpan={6}>
            {resetting ? (
              <ResetPasswordForm
                user={user}
                onSaved={() => {
                  setResetting(false);
                  setNotice(`Password of ${user.email} was reset.`);
                }}
                onCancel={() => setResetting(false)}
              />
            ) : null}
            {notice ? <div className="alert alert-success">{notice}</div> : null}
            <FormError error={error} />
          </td>
        </tr>
      ) : null}
    </>
  );
}

export function AdminUsersPage() {
  const { user: me } = useSession();
  const [users, setUsers] = useState<User[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);

  const load = useCallback(async () => {
    try {
      setUsers(await api.listUsers());
      setError(null);
    } catch (err) {
      setError(toApiError(err));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  const replace = (changed: User) => setUsers((list) => (list ?? []).map((u) => (u.id === changed.id ? changed : u)));

  return (
    <>
      <PageHeader title="Users" description="Everyone with an account on this Hearth server." />
      <section className="card" aria-labelledby="users-title">
        <div className="card-header">
          <h2 id="users-title">
            All users {users ? <span className="count">{users.length}</span> : null}
          </h2>
        </div>
        <FormError error={error} />
        {users === null ? (
          error ? null : <p className="muted">Loading users…</p>
        ) : (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Email</th>
                  <th scope="col">Name</th>
                  <th scope="col">Role</th>
                  <th scope="col">Status</th>
                  <th scope="col">Created</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {users.map((u) => (
                  <UserRow key={u.id} user={u} isSelf={u.id === me?.id} onChanged={replace} />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <div className="two-col">
        <AddUserForm onAdded={(u) => setUsers((list) => [...(list ?? []), u])} />
        <InviteForm />
      </div>
    </>
  );
}
