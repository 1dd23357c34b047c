// Creating, renaming and deleting a knowledge base: used by the list and by an open base.

import { useState, type FormEvent } from 'react';
import { api, type ApiError } from '../../api/client';
import type { KnowledgeBase, UpdateKnowledgeBaseRequest } from '../../api/types';
import { Field, FormError, toApiError } from '../forms';

export function CreateKnowledgeBaseForm({ onCreated }: { onCreated: (kb: KnowledgeBase) => void }) {
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const kb = await api.createKnowledgeBase({
        name: name.trim(),
        ...(description.trim() ? { description: description.trim() } : {}),
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
