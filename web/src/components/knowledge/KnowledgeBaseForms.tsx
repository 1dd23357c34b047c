// Creating, renaming and deleting a knowledge base: used by the list and by an open base.

import { useEffect, useState, type FormEvent } from 'react';
import { api, type ApiError } from '../../api/client';
import type { KnowledgeBase, UpdateKnowledgeBaseRequest, UserModel } from '../../api/types';
import { Field, FormError, toApiError } from '../forms';

/** The provider name of the built-in models. */
const BUILT_IN = 'Built-in';

export function CreateKnowledgeBaseForm({ onCreated }: { onCreated: (kb: KnowledgeBase) => void }) {
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [embeddingModel, setEmbeddingModel] = useState('');
  const [embedders, setEmbedders] = useState<UserModel[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  // The built-in embedders and the providers' embedding models. "" is the server's default
  // (`knowledge.embedding_model`, else the first built-in embedder); with no built-in embedder
  // the first provider model is preselected, as the default may name none.
  useEffect(() => {
    api
      .listModels()
      .then((list) => {
        const found = list.filter((m) => m.capabilities.embeddings);
        setEmbedders(found);
        if (found.length > 0 && !found.some((m) => m.provider === BUILT_IN)) setEmbeddingModel(found[0].name);
      })
      .catch(() => setEmbedders([]));
  }, []);
  const hasBuiltIn = embedders.some((m) => m.provider === BUILT_IN);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const kb = await api.createKnowledgeBase({
        name: name.trim(),
        ...(description.trim() ? { description: description.trim() } : {}),
        ...(embeddingModel ? { embedding_model: embeddingModel } : {}),
      });
      setName('');
      setDescription('');
      onCreated(kb);
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby="create-kb-title">
      <div className="card-header">
        <h2 id="create-kb-title">New knowledge base</h2>
        <p className="muted">A collection of documents to search, and to ground answers in.</p>
      </div>
      <form className="grid-form" onSubmit={submit} noValidate>
        <Field label="Name" name="name" autoComplete="off" value={name} onChange={setName} error={error} maxLength={200} required />
        <Field
          label="Description"
          name="description"
          autoComplete="off"
          value={description}
          onChange={setDescription}
          error={error}
          maxLength={2000}
          placeholder="optional"
        />
        {embedders.length > 1 || (embedders.length === 1 && !hasBuiltIn) ? (
          <div className={error?.field === 'embedding_model' ? 'field field-invalid' : 'field'}>
            <label htmlFor="kb-embedding-model">Embedding model</label>
            <select
              id="kb-embedding-model"
              name="embedding_model"
              value={embeddingModel}
              onChange={(e) => setEmbeddingModel(e.target.value)}
            >
              <option value="">Default (server setting)</option>
              {embedders.map((m) => (
                <option key={m.name} value={m.name}>
                  {m.display_name} ({m.provider}
                  {m.capabilities.embedding_dimensions ? `, ${m.capabilities.embedding_dimensions} dimensions` : ''})
                </option>
              ))}
            </select>
          </div>
        ) : null}
        <div className="grid-form-submit">
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create knowledge base'}
          </button>
        </div>
      </form>
      <FormError error={error} />
    </section>
  );
}

export function EditKnowledgeBaseForm({
  kb,
  onSaved,
  onCancel,
}: {
  kb: KnowledgeBase;
  onSaved: (kb: KnowledgeBase) => void;
  onCancel: () => void;
}) {
  const [name, setName] = useState(kb.name);
  const [description, setDescription] = useState(kb.description);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const patch: UpdateKnowledgeBaseRequest = {};
    if (name.trim() !== kb.name) patch.name = name.trim();
    if (description.trim() !== kb.description) patch.description = description.trim();
    if (patch.name === undefined && patch.description === undefined) {
      onCancel();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      onSaved(await api.updateKnowledgeBase(kb.id, patch));
    } catch (err) {
      setError(toApiError(err));
      setBusy(false);
    }
  };

  return (
    <form className="inline-form" onSubmit={submit} noValidate aria-label={`Rename ${kb.name}`}>
      <Field label="New name" name="name" autoComplete="off" value={name} onChange={setName} error={error} maxLength={200} autoFocus />
      <Field
        label="Description"
        name="description"
        autoComplete="off"
        value={description}
        onChange={setDescription}
        error={error}
        maxLength={2000}
      />
      <button type="submit" className="btn btn-primary btn-small" disabled={busy}>
        {busy ? 'Saving…' : 'Save'}
      </button>
      <button type="button" className="btn btn-ghost btn-small" onClick={onCancel}>
        Cancel
      </button>
      <FormError error={error} />
    </form>
  );
}

/** "Delete X?" with a confirming and a cancelling button. */
export function ConfirmDeleteKnowledgeBase({
  kb,
  onDeleted,
  onCancel,
}: {
  kb: KnowledgeBase;
  onDeleted: () => void;
  onCancel: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const remove = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.deleteKnowledgeBase(kb.id);
      onDeleted();
    } catch (err) {
      setError(toApiError(err));
      setBusy(false);
    }
  };

  return (
    <>
      <div className="confirm">
        {kb.documents > 0
          ? `Delete ${kb.name} and its ${kb.documents} ${kb.documents === 1 ? 'document' : 'documents'}? This cannot be undone.`
          : `Delete ${kb.name}?`}
        <button type="button" className="btn btn-danger-ghost btn-small" disabled={busy} onClick={() => void remove()}>
          {busy ? 'Deleting…' : 'Yes, delete'}
        </button>
        <button type="button" className="btn btn-ghost btn-small" onClick={onCancel}>
          Keep
        </button>
      </div>
      <FormError error={error} />
    </>
  );
}
