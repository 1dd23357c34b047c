import { useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import type { MessageView } from '../../api/types';
import { branchLabel, branchPosition } from '../../chat/branches';
import type { PendingApproval } from '../../chat/thread';
import { copyText } from '../CopyBox';
import { toApiError } from '../forms';
import { Markdown } from './Markdown';
import { SourceList, SourcePanel } from './Sources';
import { ToolCallCard } from './ToolCallCard';

interface Props {
  message: MessageView;
  /** An answer is being written somewhere in the thread: no edits, regenerations or switches. */
  busy: boolean;
  /** Approvals waiting, when this is the answer being written. */
  approvals: PendingApproval[];
  /** A stream problem of the answer being written (beyond the message's own error). */
  liveError: string | null;
  /** Starts the edited branch; errors are the page's to show (this message may be gone by then). */
  onEdit: (message: MessageView, text: string) => void;
  onRegenerate: (message: MessageView) => void;
  onSwitch: (messageId: string) => Promise<void>;
  onAnswer: (callId: string, approve: boolean) => Promise<void>;
}

function BranchSwitcher({ message, disabled, onSwitch }: { message: MessageView; disabled: boolean; onSwitch: (id: string) => Promise<void> }) {
  const position = branchPosition(message);
  const [error, setError] = useState<string | null>(null);
  if (!position) return null;
  const go = (id: string | null) => {
    if (!id) return;
    setError(null);
    onSwitch(id).catch((err: unknown) => setError(toApiError(err).message));
  };
  return (
    <span className="branch-switcher" role="group" aria-label="Versions">
      <button
        type="button"
        className="btn btn-ghost btn-icon"
        aria-label="Previous version"
        disabled={disabled || !position.previous}
        onClick={() => go(position.previous)}
      >
        ‹
      </button>
      <span className="branch-position" data-testid="branch-position">
        {branchLabel(position)}
      </span>
      <button
        type="button"
        className="btn btn-ghost btn-icon"
        aria-label="Next version"
        disabled={disabled || !position.next}
        onClick={() => go(position.next)}
      >
        ›
      </button>
      {error ? <span className="row-error">{error}</span> : null}
    </span>
  );
}

function EditForm({ message, onSave, onCancel }: { message: MessageView; onSave: (text: string) => void; onCancel: () => void }) {
  const [text, setText] = useState(message.content);

  const submit = (event?: FormEvent) => {
    event?.preventDefault();
    if (text.trim()) onSave(text);
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) submit(event);
    if (event.key === 'Escape') onCancel();
  };

  return (
    <form className="edit-form" onSubmit={submit}>
      <label className="visually-hidden" htmlFor={`edit-${message.id}`}>
        Edit message
      </label>
      <textarea id={`edit-${message.id}`} value={text} onChange={(e) => setText(e.target.value)} onKeyDown={onKeyDown} rows={3} autoFocus />
      <div className="edit-form-actions">
        <button type="submit" className="btn btn-primary btn-small" disabled={!text.trim()}>
          Save and send
        </button>
        <button type="button" className="btn btn-ghost btn-small" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

const STATUS_BADGE: Partial<Record<MessageView['status'], { label: string; className: string }>> = {
  streaming: { label: 'Writing…', className: 'badge badge-accent' },
  stopped: { label: 'Stopped', className: 'badge' },
  error: { label: 'Error', className: 'badge badge-danger' },
};

/** One message of the thread. */
export function MessageItem({ message, busy, approvals, liveError, onEdit, onRegenerate, onSwitch, onAnswer }: Props) {
  const [editing, setEditing] = useState(false);
  const [copied, setCopied] = useState(false);
  /** The source whose passage is shown. */
  const [openSource, setOpenSource] = useState<number | null>(null);
  const textRef = useRef<HTMLDivElement>(null);
  const isUser = message.role === 'user';
  const sources = isUser ? undefined : message.sources;
  const shownSource = openSource === null ? undefined : sources?.find((s) => s.n === openSource);
  const toggleSource = (n: number) => setOpenSource((current) => (current === n ? null : n));
  const badge = STATUS_BADGE[message.status];
  const error = message.error ?? liveError;

  const copy = async () => {
    if (await copyText(message.content, textRef.current)) {
      setCopied(true);
      setTimeout(() => setCopied(false), 2000);
    }
  };

  return (
    <article
      className={`message message-${message.role}`}
      data-testid="message"
      data-role={message.role}
      data-status={message.status}
      aria-label={isUser ? 'Your message' : 'Answer'}
    >
      <div className="message-meta">
        <span className="message-author">{isUser ? 'You' : (message.model ?? 'Assistant')}</span>
        {badge ? <span className={badge.className}>{badge.label}</span> : null}
      </div>

      {isUser && editing ? (
        <EditForm
          message={message}
          onCancel={() => setEditing(false)}
          onSave={(text) => {
            setEditing(false);
            onEdit(message, text);
          }}
        />
      ) : isUser ? (
        <div className="message-text" ref={textRef}>
          {message.content}
        </div>
      ) : (
        <div className="message-body" ref={textRef}>
          {message.parts.map((part, i) =>
            part.type === 'text' ? (
              <Markdown key={`t${i}`} text={part.text} sources={sources} onCite={toggleSource} />
            ) : (
              <ToolCallCard key={part.id} call={part} approval={approvals.find((a) => a.id === part.id)} onAnswer={onAnswer} />
            ),
          )}
          {message.status === 'streaming' && message.parts.length === 0 ? <p className="muted thinking">Thinking…</p> : null}
        </div>
      )}

      {sources && sources.length > 0 ? <SourceList sources={sources} open={shownSource ? shownSource.n : null} onSelect={toggleSource} /> : null}
      {shownSource ? <SourcePanel source={shownSource} onClose={() => setOpenSource(null)} /> : null}

      {!isUser && error ? (
        <div className="alert alert-error message-error" role="alert">
          {error}
        </div>
      ) : null}

      {!editing ? (
        <div className="message-actions">
          <BranchSwitcher message={message} disabled={busy} onSwitch={onSwitch} />
          {isUser ? (
            <button type="button" className="btn btn-link btn-action" disabled={busy} onClick={() => setEditing(true)}>
              Edit
            </button>
          ) : (
            <>
              <button type="button" className="btn btn-link btn-action" disabled={busy} onClick={() => onRegenerate(message)}>
                Regenerate
              </button>
              {message.content ? (
                <button type="button" className="btn btn-link btn-action" onClick={() => void copy()}>
                  {copied ? 'Copied' : 'Copy'}
                </button>
              ) : null}
            </>
          )}
        </div>
      ) : null}
    </article>
  );
}
