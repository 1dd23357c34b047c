import { useState } from 'react';
import type { ToolCallPart } from '../../api/types';
import type { PendingApproval } from '../../chat/thread';
import { toApiError } from '../forms';

/** The arguments as indented JSON, or as written when they are not JSON. */
export function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

const STATUS_LABEL: Record<ToolCallPart['status'], string> = {
  pending: 'Running',
  ok: 'Done',
  error: 'Failed',
  denied: 'Declined',
};

interface Props {
  call: ToolCallPart;
  /** Set while the call waits for the user's decision. */
  approval?: PendingApproval;
  onAnswer: (callId: string, approve: boolean) => Promise<void>;
}

/** A tool call of an answer: name, arguments, status and output; Approve / Deny while it waits. */
export function ToolCallCard({ call, approval, onAnswer }: Props) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const status = approval && call.status === 'pending' ? 'Needs approval' : STATUS_LABEL[call.status];

  const answer = async (approve: boolean) => {
    setBusy(true);
    setError(null);
    try {
      await onAnswer(call.id, approve);
    } catch (err) {
      setError(toApiError(err).message);
      setBusy(false);
    }
  };

  return (
    <section className={`tool-call tool-call-${call.status}`} data-testid="tool-call" data-status={call.status} aria-label={`Tool ${call.name}`}>
      <header className="tool-call-head">
        <span className="tool-call-icon" aria-hidden="true">
          ⚙
        </span>
        <span className="tool-call-name">{call.name}</span>
        <span className={`badge tool-status tool-status-${approval && call.status === 'pending' ? 'ask' : call.status}`}>{status}</span>
      </header>
      <div className="tool-call-section">
        <div className="tool-call-label">Arguments</div>
        <pre className="tool-call-pre">{prettyJson(call.arguments)}</pre>
      </div>
      {call.output !== null && call.output !== undefined ? (
        <div className="tool-call-section">
          <div className="tool-call-label">{call.status === 'ok' ? 'Output' : 'Reason'}</div>
          <pre className="tool-call-pre" data-testid="tool-output">
            {call.output}
          </pre>
        </div>
      ) : null}
      {approval && call.status === 'pending' ? (
        <div className="tool-call-approval" role="group" aria-label="Approval">
          <span>Run this tool? The answer waits for you{approval.timeoutSecs ? ` (up to ${Math.round(approval.timeoutSecs / 60) || 1} min)` : ''}.</span>
          <button type="button" className="btn btn-primary btn-small" disabled={busy} onClick={() => void answer(true)}>
            Approve
          </button>
          <button type="button" className="btn btn-danger-ghost btn-small" disabled={busy} onClick={() => void answer(false)}>
            Deny
          </button>
          {error ? <span className="row-error">{error}</span> : null}
        </div>
      ) : null}
    </section>
  );
}
