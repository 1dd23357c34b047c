import { useState, type FormEvent, type KeyboardEvent } from 'react';
import type { ApiError } from '../../api/client';
import { FormError, toApiError } from '../forms';

interface Props {
  /** Nothing can be sent (no model, still loading). */
  disabled: boolean;
  disabledReason?: string;
  /** An answer is being written: Stop instead of Send. */
  running: boolean;
  /** The run is known, so it can be stopped. */
  canStop: boolean;
  /** Resolves once the answer is finished; rejects when it could not start. */
  onSend: (text: string) => Promise<void>;
  onStop: () => Promise<void>;
}

/** The message box: Enter sends, Shift+Enter starts a new line. */
export function Composer({ disabled, disabledReason, running, canStop, onSend, onStop }: Props) {
  const [text, setText] = useState('');
  const [error, setError] = useState<ApiError | null>(null);
  const [stopping, setStopping] = useState(false);

  const submit = (event?: FormEvent) => {
    event?.preventDefault();
    const content = text;
    if (!content.trim() || disabled || running) return;
    setError(null);
    setText('');
    onSend(content).catch((err: unknown) => {
      // Not sent: give the text back.
      setText((current) => current || content);
      setError(toApiError(err));
    });
  };

  const stop = async () => {
    setStopping(true);
    setError(null);
    try {
      await onStop();
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setStopping(false);
    }
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) submit(event);
  };

  return (
    <form className="composer" onSubmit={submit}>
      <FormError error={error} />
      <div className="composer-row">
        <label htmlFor="composer-input" className="visually-hidden">
          Message
        </label>
        <textarea
          id="composer-input"
          value={text}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKeyDown}
          placeholder={disabled && disabledReason ? disabledReason : 'Send a message (Shift+Enter for a new line)'}
          rows={2}
          disabled={disabled}
        />
        {running ? (
          <button type="button" className="btn btn-secondary" disabled={!canStop || stopping} onClick={() => void stop()}>
            <span className="stop-square" aria-hidden="true" />
            Stop
          </button>
        ) : (
          <button type="submit" className="btn btn-primary" disabled={disabled || !text.trim()}>
            Send
          </button>
        )}
      </div>
    </form>
  );
}
