import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type ApiError } from '../api/client';
import type { AdminModel, CreateProviderRequest, Provider, ProviderKind, UpdateProviderRequest } from '../api/types';
import { Field, FormError, formatDate, toApiError } from '../components/forms';
import { PageHeader } from '../components/Layout';
import { Link } from '../router';

const KIND_LABEL: Record<ProviderKind, string> = {
  openai: 'OpenAI-compatible',
  anthropic: 'Anthropic',
  local: 'Local (built-in)',
};

function AddProviderForm({ onAdded }: { onAdded: (provider: Provider) => void }) {
  const [kind, setKind] = useState<CreateProviderRequest['kind']>('openai');
  const [name, setName] = useState('');
  const [baseUrl, setBaseUrl] = useState('');
  const [apiKey, setApiKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const provider = await api.createProvider({
        kind,
        name: name.trim(),
        ...(baseUrl.trim() ? { base_url: baseUrl.trim() } : {}),
        ...(apiKey ? { api_key: apiKey } : {}),
      });
      setName('');
      setBaseUrl('');
      setApiKey('');
      onAdded(provider);
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby="add-provider-title">
      <div className="card-header">
        <h2 id="add-provider-title">Add a provider</h2>
        <p className="muted">
          An OpenAI-compatible server (OpenAI, vLLM, Ollama, LM Studio, …) or Anthropic. Then sync to read its models.
        </p>
      </div>
      <form className="grid-form" onSubmit={submit} noValidate>
        <div className={error?.field === 'kind' ? 'field field-invalid' : 'field'}>
          <label htmlFor="provider-kind">Kind</label>
          <select id="provider-kind" name="kind" value={kind} onChange={(e) => setKind(e.target.value as CreateProviderRequest['kind'])}>
            <option value="openai">{KIND_LABEL.openai}</option>
            <option value="anthropic">{KIND_LABEL.anthropic}</option>
          </select>
        </div>
        <Field label="Name" name="name" autoComplete="off" value={name} onChange={setName} error={error} placeholder="e.g. openai" required />
        <Field
          label="Base URL"
          name="base_url"
          type="url"
          autoComplete="off"
          value={baseUrl}
          onChange={setBaseUrl}
          error={error}
          placeholder={kind === 'openai' ? 'https://api.openai.com/v1' : 'default: the public Anthropic API'}
          hint={kind === 'openai' ? 'Required; ends in /v1 for most servers.' : 'Optional.'}
        />
        <Field
          label="API key"
          name="api_key"
          type="password"
          autoComplete="new-password"
          value={apiKey}
          onChange={setApiKey}
          error={error}
          placeholder="optional"
          hint="Stored encrypted; never shown again."
        />
        <div className="grid-form-submit">
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy ? 'Adding…' : 'Add provider'}
          </button>
        </div>
      </form>
      <FormError error={error} />
    </section>
  );
}

function EditProviderForm({ provider, onSaved, onCancel }: { provider: Provider; onSaved: (p: Provider) => void; onCancel: () => void }) {
  const [name, setName] = useState(provider.name);
  const [baseUrl, setBaseUrl] = useState(provider.base_url ?? '');
  const [apiKey, setApiKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const save = async (patch: UpdateProviderRequest) => {
    setBusy(true);
    setError(null);
    try {
      onSaved(await api.updateProvider(provider.id, patch));
    } catch (err) {
      setError(toApiError(err));
      setBusy(false);
    }
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const patch: UpdateProviderRequest = {};
    if (name.trim() !== provider.name) patch.name = name.trim();
    if (baseUrl.trim() !== (provider.base_url ?? '')) patch.base_url = baseUrl.trim();
    if (apiKey) patch.api_key = apiKey;
    void save(patch);
  };

  return (
    <form className="inline-form" onSubmit={submit} noValidate>
      <Field label="Name" name="name" value={name} onChange={setName} error={error} />
      <Field label="Base URL" name="base_url" value={baseUrl} onChange={setBaseUrl} error={error} />
      <Field
        label="New API key"
        name="api_key"
        type="password"
        autoComplete="new-password"
        value={apiKey}
        onChange={setApiKey}
        error={error}
        placeholder={provider.has_api_key ? 'unchanged' : 'none'}
      />
      <button type="submit" className="btn btn-primary btn-small" disabled={busy}>
        Save
      </button>
      {provider.has_api_key ? (
        <button type="button" className="btn btn-danger-ghost btn-small" disabled={busy} onClick={() => void save({ api_key: '' })}>
          Remove key
        </button>
      ) : null}
      <button type="button" className="btn btn-ghost btn-small" onClick={onCancel}>
        Cancel
      </button>
      <FormError error={error} />
    </form>
  );
}

type Detail = { kind: 'edit' } | { kind: 'synced'; models: AdminModel[] } | { kind: 'delete' } | null;

function ProviderRow({ provider, onChanged, onDeleted }: { provider: Provider; onChanged: (p: Provider) => void; onDeleted: () => void }) {
  const [busy, setBusy] = useState<'toggle' | 'sync' | 'delete' | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [detail, setDetail] = useState<Detail>(null);

  const act = async (what: 'toggle' | 'sync' | 'delete', task: () => Promise<void>) => {
    setBusy(what);
    setError(null);
    try {
      await task();
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(null);
    }
  };

  const toggle = () => act('toggle', async () => onChanged(await api.updateProvider(provider.id, { enabled: !provider.enabled })));
  const sync = () =>
    act('sync', async () => {
      setDetail(null);
      setDetail({ kind: 'synced', models: await api.syncProvider(provider.id) });
    });
  const remove = () =>
    act('delete', async () => {
      await api.deleteProvider(provider.id);
      onDeleted();
    });

  return (
    <>
      <tr className={provider.enabled ? undefined : 'row-disabled'}>
        <td className="nowrap">
          <strong>{provider.name}</strong>
        </td>
        <td>{KIND_LABEL[provider.kind]}</td>
        <td className="cell-url">{provider.base_url ?? <span className="muted">default</span>}</td>
        <td>{provider.has_api_key ? 'Set' : <span className="muted">None</span>}</td>
        <td>
          <span className={provider.enabled ? 'status status-on' : 'status status-off'}>{provider.enabled ? 'Enabled' : 'Disabled'}</span>
        </td>
        <td className="nowrap" title={formatDate(provider.created_at)}>
          {formatDate(provider.created_at, '—', false)}
        </td>
        <td className="actions">
          <button type="button" className="btn btn-secondary btn-small" disabled={busy !== null} onClick={() => void sync()}>
            {busy === 'sync' ? 'Syncing…' : 'Sync models'}
          </button>
          <button
            type="button"
            className="btn btn-ghost btn-small"
            aria-expanded={detail?.kind === 'edit'}
            onClick={() => setDetail(detail?.kind === 'edit' ? null : { kind: 'edit' })}
          >
            Edit
          </button>
          <button
            type="button"
            className={provider.enabled ? 'btn btn-danger-ghost btn-small' : 'btn btn-ghost btn-small'}
            disabled={busy !== null}
            onClick={() => void toggle()}
          >
            {provider.enabled ? 'Disable' : 'Enable'}
          </button>
          <button type="button" className="btn btn-danger-ghost btn-small" disabled={busy !== null} onClick={() => setDetail({ kind: 'delete' })}>
            Delete
          </button>
        </td>
      </tr>
      {detail || error ? (
        <tr className="row-detail">
          <td colSpan={7}>
            {detail?.kind === 'edit' ? (
              <EditProviderForm
                provider={provider}
                onCancel={() => setDetail(null)}
                onSaved={(p) => {
                  setDetail(null);
                  onChanged(p);
                }}
              />
            ) : null}
            {detail?.kind === 'synced' ? (
              <div className="alert alert-success" role="status" data-testid="sync-result">
                Synced {detail.models.length} {detail.models.length === 1 ? 'model' : 'models'}
                {detail.models.length ? ': ' + detail.models.map((m) => m.name).join(', ') : ''}.{' '}
                <Link to="/admin/models">Manage models</Link>
              </div>
            ) : null}
            {detail?.kind === 'delete' ? (
              <div className="confirm">
                Delete {provider.name} and all its models?
                <button type="button" className="btn btn-danger-ghost btn-small" disabled={busy !== null} onClick={() => void remove()}>
                  Yes, delete
                </button>
                <button type="button" className="btn btn-ghost btn-small" onClick={() => setDetail(null)}>
                  Keep
                </button>
              </div>
            ) : null}
            <FormError error={error} />
          </td>
        </tr>
      ) : null}
    </>
  );
}

export function AdminProvidersPage() {
  const [providers, setProviders] = useState<Provider[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);

  const load = useCallback(async () => {
    try {
      setProviders(await api.listProviders());
      setError(null);
    } catch (err) {
      setError(toApiError(err));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  const replace = (changed: Provider) => setProviders((list) => (list ?? []).map((p) => (p.id === changed.id ? changed : p)));

  return (
    <>
      <PageHeader title="Providers" description="Where models come from: hosted APIs and self-hosted OpenAI-compatible servers." />
      <section className="card" aria-labelledby="providers-title">
        <div className="card-header">
          <h2 id="providers-title">
            Providers {providers ? <span className="count">{providers.length}</span> : null}
          </h2>
        </div>
        <FormError error={error} />
        {providers === null ? (
          error ? null : <p className="muted">Loading providers…</p>
        ) : providers.length === 0 ? (
          <p className="empty">No providers yet. Add one below, then sync its models.</p>
        ) : (
          <div className="table-wrap">
            <table className="table-compact">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Base URL</th>
                  <th scope="col">API key</th>
                  <th scope="col">Status</th>
                  <th scope="col">Added</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {providers.map((p) => (
                  <ProviderRow
                    key={p.id}
                    provider={p}
                    onChanged={replace}
                    onDeleted={() => setProviders((list) => (list ?? []).filter((x) => x.id !== p.id))}
                  />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <AddProviderForm onAdded={(p) => setProviders((list) => [...(list ?? []), p])} />
    </>
  );
}
