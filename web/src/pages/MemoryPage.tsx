// Settings › Memory (`/settings/memory`): the facts Hearth keeps about the user, which it adds to
// new conversations when they are relevant. Listed newest first; added, edited and deleted here.

import { useCallback, useEffect, useId, useState, type FormEvent, type KeyboardEvent } from 'react';
import { api, ApiError } from '../api/client';
import type { Memory } from '../api/types';
import { FormError, formatDate, toApiError } from '../components/forms';
import { PageHeader } from '../components/Layout';
import { SettingsNav } from '../components/SettingsNav';
import { charCount, MAX_MEMORY_CHARS, memoryProblem, removeMemory, sourceLabel, upsertMemory, wasEdited } from '../memory/memories';
import { Link } from '../router';

/** A problem found before sending, shaped like the server's answer so the field lights up. */
function localError(text: string): ApiError | null {
  const problem = memoryProblem(text);
  return problem ? new ApiError(0, 'invalid_input', problem, 'text') : null;
}

/** A textarea for a memory's text, with its label, a character count near the limit, and the field error. */
function MemoryText({
  label,
  value,
  onChange,
  error,
  onSubmit,
  onCancel,
  autoFocus,
  placeholder,
}: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  error: ApiError | null;
  onSubmit: () => void;
  onCancel?: () => void;
  autoFocus?: boolean;
  placeholder?: string;
}) {
  const id = useId();
  const count = charCount(value);
  const invalid = error?.field === 'text';
  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      onSubmit();
    }
    if (event.key === 'Escape' && onCancel) onCancel();
  };
  return (
    <div className={invalid ? 'field field-invalid' : 'field'}>
      <label htmlFor={id}>{label}</label>
      <textarea
        id={id}
        value={value}
        rows={2}
        onChange={(e) => onChange(e.target.value)}
        onKeyDown={onKeyDown}
        aria-invalid={invalid || undefined}
        aria-describedby={`${id}-count`}
        autoFocus={autoFocus}
        placeholder={placeholder}
      />
      <p className={count > MAX_MEMORY_CHARS ? 'field-hint memory-count over' : 'field-hint memory-count'} id={`${id}-count`}>
        {count} / {MAX_MEMORY_CHARS}
      </p>
    </div>
  );
}

function AddMemoryForm({ onAdded }: { onAdded: (memory: Memory) => void }) {
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const submit = async (event?: FormEvent) => {
    event?.preventDefault();
    const problem = localError(text);
    if (problem) {
      setError(problem);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      onAdded(await api.createMemory(text.trim()));
      setText('');
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="memory-add" onSubmit={(e) => void submit(e)} noValidate>
      <MemoryText
        label="New memory"
        value={text}
        onChange={(value) => {
          setText(value);
          if (error) setError(null);
        }}
        error={error}
        onSubmit={() => void submit()}
        placeholder="e.g. I prefer metric units"
      />
      <FormError error={error} />
      <div>
        <button type="submit" className="btn btn-primary" disabled={busy || !text.trim()}>
          {busy ? 'Saving…' : 'Add memory'}
        </button>
      </div>
    </form>
  );
}

type RowMode = 'view' | 'edit' | 'delete';

function MemoryRow({ memory, onSaved, onDeleted }: { memory: Memory; onSaved: (memory: Memory) => void; onDeleted: (id: string) => void }) {
  const [mode, setMode] = useState<RowMode>('view');
  const [text, setText] = useState(memory.text);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const startEdit = () => {
    setText(memory.text);
    setError(null);
    setMode('edit');
  };

  const save = async (event?: FormEvent) => {
    event?.preventDefault();
    const problem = localError(text);
    if (problem) {
      setError(problem);
      return;
    }
    if (text.trim() === memory.text) {
      setMode('view');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      onSaved(await api.updateMemory(memory.id, text.trim()));
      setMode('view');
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.deleteMemory(memory.id);
      onDeleted(memory.id);
    } catch (err) {
      const apiError = toApiError(err);
      // Already gone (deleted in another tab): it is what was asked.
      if (apiError.status === 404) onDeleted(memory.id);
      else {
        setError(apiError);
        setBusy(false);
      }
    }
  };

  return (
    <li className="memory-row" data-testid="memory-row" data-source={memory.source}>
      {mode === 'edit' ? (
        <form className="memory-edit" onSubmit={(e) => void save(e)} noValidate>
          <MemoryText
            label="Edit memory"
            value={text}
            onChange={setText}
            error={error}
            onSubmit={() => void save()}
            onCancel={() => setMode('view')}
            autoFocus
          />
          <FormError error={error} />
          <div className="memory-actions">
            <button type="submit" className="btn btn-primary btn-small" disabled={busy || !text.trim()}>
              {busy ? 'Saving…' : 'Save'}
            </button>
            <button type="button" className="btn btn-ghost btn-small" onClick={() => setMode('view')}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <>
          <p className="memory-text" data-testid="memory-text">
            {memory.text}
          </p>
          <div className="memory-meta">
            <span className={`badge memory-source memory-source-${memory.source}`}>{sourceLabel(memory.source)}</span>
            <span title={formatDate(memory.created_at)}>{formatDate(memory.created_at, '—', false)}</span>
            {wasEdited(memory) ? <span title={formatDate(memory.updated_at)}>edited {formatDate(memory.updated_at, '—', false)}</span> : null}
            {memory.conversation_id ? <Link to={`/chat/${encodeURIComponent(memory.conversation_id)}`}>From this chat</Link> : null}
          </div>
          <div className="memory-actions">
            {mode === 'delete' ? (
              <span className="confirm">
                Delete this memory?
                <button type="button" className="btn btn-danger-ghost btn-small" disabled={busy} onClick={() => void remove()}>
                  Yes, delete
                </button>
                <button type="button" className="btn btn-ghost btn-small" onClick={() => setMode('view')}>
                  Keep
                </button>
              </span>
            ) : (
              <>
                <button type="button" className="btn btn-ghost btn-small" onClick={startEdit}>
                  Edit
                </button>
                <button type="button" className="btn btn-danger-ghost btn-small" onClick={() => setMode('delete')}>
                  Delete
                </button>
              </>
            )}
          </div>
          <FormError error={error} />
        </>
      )}
    </li>
  );
}

export function MemoryPage() {
  const [memories, setMemories] = useState<Memory[] | null>(null);
  const [loadError, setLoadError] = useState<ApiError | null>(null);

  const load = useCallback(async () => {
    try {
      setMemories(await api.listMemories());
      setLoadError(null);
    } catch (err) {
      setLoadError(toApiError(err));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  const saved = (memory: Memory) => setMemories((list) => upsertMemory(list ?? [], memory));
  const deleted = (id: string) => setMemories((list) => removeMemory(list ?? [], id));

  return (
    <>
      <SettingsNav />
      <PageHeader
        title="Memory"
        description="Hearth remembers facts you ask it to remember, and adds relevant ones to new conversations."
      />
      <section className="card" aria-labelledby="memory-add-title">
        <div className="card-header">
          <h2 id="memory-add-title">Add a memory</h2>
          <p className="muted">
            A short fact about you or how you like answers, for example your units, your stack or your role. In a chat you can also
            say “remember that …”.
          </p>
        </div>
        <AddMemoryForm onAdded={saved} />
      </section>
      <section className="card" aria-labelledby="memory-list-title">
        <div className="card-header">
          <h2 id="memory-list-title">
            Memories {memories ? <span className="count">{memories.length}</span> : null}
          </h2>
          <p className="muted">Only you can see them. Edit one that is out of date, or delete it and Hearth forgets it.</p>
        </div>
        <FormError error={loadError} />
        {memories === null ? (
          loadError ? null : <p className="muted">Loading memories…</p>
        ) : memories.length === 0 ? (
          <p className="empty">No memories yet. Add one above, or ask Hearth to remember something in a chat.</p>
        ) : (
          <ul className="memory-list">
            {memories.map((memory) => (
              <MemoryRow key={memory.id} memory={memory} onSaved={saved} onDeleted={deleted} />
            ))}
          </ul>
        )}
      </section>
    </>
  );
}
