// Knowledge bases of a conversation: the "Knowledge" button with its checklist of the user's
// bases, and the attached ones as chips under the title.

import { useEffect, useId, useRef, useState } from 'react';
import type { ApiError } from '../../api/client';
import type { KnowledgeBase } from '../../api/types';
import { knowledgeBaseName, toggleId } from '../../chat/knowledge';
import { knowledgeBaseHref } from '../../chat/sources';
import { Link } from '../../router';
import { FormError, toApiError } from '../forms';

interface PickerProps {
  /** The user's bases; null while loading. */
  bases: KnowledgeBase[] | null;
  loadError: ApiError | null;
  attached: readonly string[];
  /** Saves the new list (a new chat keeps it until it is created); rejects when it could not. */
  onChange: (ids: string[]) => Promise<void>;
  /** The list was opened: load the bases again (one may have been created meanwhile). */
  onOpen: () => void;
}

/** The "Knowledge" button and its checklist. */
export function KnowledgePicker({ bases, loadError, attached, onChange, onOpen }: PickerProps) {
  const [open, setOpen] = useState(false);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const root = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  const popoverId = useId();

  // Closes on a click elsewhere or Escape.
  useEffect(() => {
    if (!open) return;
    const onPointer = (event: PointerEvent) => {
      if (root.current && event.target instanceof Node && !root.current.contains(event.target)) setOpen(false);
    };
    const onKey = (event: globalThis.KeyboardEvent) => {
      if (event.key === 'Escape') {
        setOpen(false);
        button.current?.focus();
      }
    };
    document.addEventListener('pointerdown', onPointer);
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('pointerdown', onPointer);
      document.removeEventListener('keydown', onKey);
    };
  }, [open]);

  const toggleOpen = () => {
    if (!open) {
      setError(null);
      onOpen();
    }
    setOpen(!open);
  };

  const toggle = async (id: string, on: boolean) => {
    setSaving(true);
    setError(null);
    try {
      await onChange(toggleId(attached, id, on));
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setSaving(false);
    }
  };

  return (
    <div className="kb-picker" ref={root}>
      <button
        ref={button}
        type="button"
        className={attached.length > 0 ? 'btn btn-secondary kb-button active' : 'btn btn-secondary kb-button'}
        aria-expanded={open}
        aria-controls={open ? popoverId : undefined}
        onClick={toggleOpen}
      >
        Knowledge
        {attached.length > 0 ? (
          <span className="kb-count" aria-hidden="true">
            {attached.length}
          </span>
        ) : null}
      </button>
      {open ? (
        <div className="popover kb-popover" id={popoverId} role="dialog" aria-label="Knowledge bases">
          <p className="popover-title">Answer from knowledge bases</p>
          <p className="muted small">Answers search the checked bases first and cite the passages they use.</p>
          <FormError error={error ?? loadError} />
          {bases === null ? (
            loadError ? null : <p className="muted small">Loading…</p>
          ) : bases.length === 0 ? (
            <p className="small">
              No knowledge bases yet. <Link to="/knowledge">Create one</Link> and add documents to it.
            </p>
          ) : (
            <ul className="kb-options">
              {bases.map((kb) => (
                <li key={kb.id}>
                  <label className="check">
                    <input
                      type="checkbox"
                      checked={attached.includes(kb.id)}
                      disabled={saving}
                      onChange={(e) => void toggle(kb.id, e.target.checked)}
                    />
                    <span className="kb-option-name">{kb.name}</span>
                    <span className="kb-option-meta">
                      {kb.documents} {kb.documents === 1 ? 'document' : 'documents'}
                    </span>
                  </label>
                </li>
              ))}
            </ul>
          )}
        </div>
      ) : null}
    </div>
  );
}

interface ChipsProps {
  bases: KnowledgeBase[] | null;
  attached: readonly string[];
  onDetach: (ids: string[]) => Promise<void>;
}

/** The attached bases, each linking to its page, with a button to detach it. */
export function KnowledgeChips({ bases, attached, onDetach }: ChipsProps) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (attached.length === 0) return null;

  const detach = async (id: string) => {
    setBusy(true);
    setError(null);
    try {
      await onDetach(toggleId(attached, id, false));
    } catch (err) {
      setError(toApiError(err).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="kb-chips-row">
      <span className="muted small">Answers use</span>
      <ul className="kb-chips" aria-label="Attached knowledge bases">
        {attached.map((id) => {
          const name = knowledgeBaseName(bases, id);
          return (
            <li key={id} className="chip" data-testid="kb-chip">
              <Link to={knowledgeBaseHref(id)} className="chip-label">
                {name}
              </Link>
              <button type="button" className="chip-remove" aria-label={`Detach ${name}`} disabled={busy} onClick={() => void detach(id)}>
                ×
              </button>
            </li>
          );
        })}
      </ul>
      {error ? <span className="row-error">{error}</span> : null}
    </div>
  );
}
