import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import { api, ApiError } from '../api/client';
import type { AdminModel, Provider, UpdateModelRequest } from '../api/types';
import { Field, FormError, toApiError } from '../components/forms';
import { PageHeader } from '../components/Layout';
import { Link } from '../router';

/** "$1.25" per million tokens, or "—". */
export function formatPrice(value: number | null | undefined): string {
  if (value === null || value === undefined) return '—';
  return `$${value.toLocaleString(undefined, { maximumFractionDigits: 4 })}`;
}

function Checkbox({ label, checked, onChange }: { label: string; checked: boolean; onChange: (v: boolean) => void }) {
  const id = useId();
  return (
    <div className="check">
      <input id={id} type="checkbox" checked={checked} onChange={(e) => onChange(e.target.checked)} />
      <label htmlFor={id}>{label}</label>
    </div>
  );
}

/** A number field's value, or undefined when blank; an ApiError naming the field when invalid. */
function parseNumber(text: string, field: string, integer = false): number | undefined {
  const trimmed = text.trim();
  if (!trimmed) return undefined;
  const value = Number(trimmed);
  if (!Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw new ApiError(0, 'invalid_input', `${integer ? 'Use a whole number' : 'Use a number'} of 0 or more.`, field);
  }
  return value;
}

function EditModelForm({ model, onSaved, onCancel }: { model: AdminModel; onSaved: (m: AdminModel) => void; onCancel: () => void }) {
  const [displayName, setDisplayName] = useState(model.display_name);
  const [aliases, setAliases] = useState(model.aliases.join(', '));
  const [inputPrice, setInputPrice] = useState(model.input_price_per_mtok?.toString() ?? '');
  const [outputPrice, setOutputPrice] = useState(model.output_price_per_mtok?.toString() ?? '');
  const [contextLength, setContextLength] = useState(model.capabilities.context_length?.toString() ?? '');
  const [streaming, setStreaming] = useState(model.capabilities.streaming);
  const [tools, setTools] = useState(model.capabilities.tools);
  const [vision, setVision] = useState(model.capabilities.vision);
  const [embeddings, setEmbeddings] = useState(model.capabilities.embeddings);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    let patch: UpdateModelRequest;
    try {
      patch = {
        display_name: displayName.trim(),
        aliases: aliases
          .split(',')
          .map((a) => a.trim())
          .filter(Boolean),
        supports_streaming: streaming,
        supports_tools: tools,
        supports_vision: vision,
        supports_embeddings: embeddings,
      };
      const input = parseNumber(inputPrice, 'input_price_per_mtok');
      const output = parseNumber(outputPrice, 'output_price_per_mtok');
      const context = parseNumber(contextLength, 'context_length', true);
      if (input !== undefined) patch.input_price_per_mtok = input;
      if (output !== undefined) patch.output_price_per_mtok = output;
      if (context !== undefined) patch.context_length = context;
    } catch (err) {
      setError(toApiError(err));
      return;
    }
    setBusy(true);
    try {
      onSaved(await api.updateModel(model.id, patch));
    } catch (err) {
      setError(toApiError(err));
      setBusy(false);
    }
  };

  return (
    <form className="model-form" onSubmit={submit} noValidate>
      <div className="grid-form grid-form-3">
        <Field label="Display name" name="display_name" value={displayName} onChange={setDisplayName} error={error} />
        <Field label="Aliases" name="aliases" value={aliases} onChange={setAliases} error={error} hint="Comma-separated." />
        <Field
          label="Context length"
          name="context_length"
          inputMode="numeric"
          value={contextLength}
          onChange={setContextLength}
          error={error}
          placeholder="unknown"
        />
        <Field
          label="Input $ / M tokens"
          name="input_price_per_mtok"
          inputMode="decimal"
          value={inputPrice}
          onChange={setInputPrice}
          error={error}
          placeholder="not priced"
        />
        <Field
          label="Output $ / M tokens"
          name="output_price_per_mtok"
          inputMode="decimal"
          value={outputPrice}
          onChange={setOutputPrice}
          error={error}
          placeholder="not priced"
        />
        <fieldset className="checks">
          <legend>Capabilities</legend>
          <Checkbox label="Streaming" checked={streaming} onChange={setStreaming} />
          <Checkbox label="Tools" checked={tools} onChange={setTools} />
          <Checkbox label="Vision" checked={vision} onChange={setVision} />
          <Checkbox label="Embeddings" checked={embeddings} onChange={setEmbeddings} />
        </fieldset>
      </div>
      <div className="form-actions">
        <button type="submit" className="btn btn-primary btn-small" disabled={busy}>
          Save
        </button>
        <button type="button" className="btn btn-ghost btn-small" onClick={onCancel}>
          Cancel
        </button>
      </div>
      <FormError error={error} />
    </form>
  );
}

function Capabilities({ model }: { model: AdminModel }) {
  const c = model.capabilities;
  return (
    <span className="caps">
      {c.streaming ? <span className="badge">streaming</span> : null}
      {c.tools ? <span className="badge">tools</span> : null}
      {c.vision ? <span className="badge">vision</span> : null}
      {c.embeddings ? (
        <span className="badge">embeddings{c.embedding_dimensions ? ` · ${c.embedding_dimensions}d` : ''}</span>
      ) : null}
      {c.context_length ? <span className="badge">{Math.round(c.context_length / 1024)}k ctx</span> : null}
    </span>
  );
}

function ModelRow({ model, provider, onChanged }: { model: AdminModel; provider: string; onChanged: (m: AdminModel) => void }) {
  const [editing, setEditing] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const toggleId = useId();

  const toggle = async () => {
    setBusy(true);
    setError(null);
    try {
      onChanged(await api.updateModel(model.id, { enabled: !model.enabled }));
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <tr className={model.enabled ? undefined : 'row-disabled'}>
        <td>
          <div className="cell-main">{model.name}</div>
          {model.display_name !== model.name || model.upstream_id !== model.name ? (
            <div className="cell-sub">
              {model.display_name !== model.name ? model.display_name : null}
              {model.upstream_id !== model.name ? ` · upstream ${model.upstream_id}` : null}
            </div>
          ) : null}
        </td>
        <td>{provider}</td>
        <td>
          <span className="switch">
            <input
              id={toggleId}
              type="checkbox"
              role="switch"
              checked={model.enabled}
              disabled={busy}
              onChange={() => void toggle()}
              aria-label={`${model.name} enabled`}
            />
            <label htmlFor={toggleId}>{model.enabled ? 'On' : 'Off'}</label>
          </span>
        </td>
        <td>{model.aliases.length ? model.aliases.join(', ') : <span className="muted">—</span>}</td>
        <td className="nowrap">
          {formatPrice(model.input_price_per_mtok)} / {formatPrice(model.output_price_per_mtok)}
        </td>
        <td>
          <Capabilities model={model} />
        </td>
        <td className="actions">
          <button type="button" className="btn btn-ghost btn-small" aria-expanded={editing} onClick={() => setEditing((v) => !v)}>
            Edit
          </button>
        </td>
      </tr>
      {editing || error ? (
        <tr className="row-detail">
          <td colSpan={7}>
            {editing ? (
              <EditModelForm
                model={model}
                onCancel={() => setEditing(false)}
                onSaved={(m) => {
                  setEditing(false);
                  onChanged(m);
                }}
              />
            ) : null}
            <FormError error={error} />
          </td>
        </tr>
      ) : null}
    </>
  );
}

export function AdminModelsPage() {
  const [models, setModels] = useState<AdminModel[] | null>(null);
  const [providers, setProviders] = useState<Provider[]>([]);
  const [error, setError] = useState<ApiError | null>(null);

  const load = useCallback(async () => {
    try {
      const [m, p] = await Promise.all([api.listAdminModels(), api.listProviders()]);
      setModels(m);
      setProviders(p);
      setError(null);
    } catch (err) {
      setError(toApiError(err));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  const providerName = (id: string) => providers.find((p) => p.id === id)?.name ?? '—';
  const replace = (changed: AdminModel) => setModels((list) => (list ?? []).map((m) => (m.id === changed.id ? changed : m)));

  return (
    <>
      <PageHeader
        title="Models"
        description="Which models users may pick, what they are called, what they can do, and what they cost (US dollars per million tokens)."
      />
      <section className="card" aria-labelledby="models-title">
        <div className="card-header">
          <h2 id="models-title">
            Models {models ? <span className="count">{models.length}</span> : null}
          </h2>
        </div>
        <FormError error={error} />
        {models === null ? (
          error ? null : <p className="muted">Loading models…</p>
        ) : models.length === 0 ? (
          <p className="empty">
            No models yet. <Link to="/admin/providers">Add a provider</Link> and sync it.
          </p>
        ) : (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Provider</th>
                  <th scope="col">Enabled</th>
                  <th scope="col">Aliases</th>
                  <th scope="col">Price in / out</th>
                  <th scope="col">Capabilities</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {models.map((m) => (
                  <ModelRow key={m.id} model={m} provider={providerName(m.provider_id)} onChanged={replace} />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}
