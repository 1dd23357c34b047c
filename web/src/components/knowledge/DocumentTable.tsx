// The documents of a knowledge base with their ingest status, updated live.

import { useState } from 'react';
import type { ApiError } from '../../api/client';
import type { SocketStatus } from '../../api/socket';
import type { DocumentView, IngestProgress } from '../../api/types';
import { formatBytes, isPending, progressPercent, statusLabel } from '../../knowledge/documents';
import { FormError, formatDate, toApiError } from '../forms';

const LIVE_LABEL: Record<SocketStatus, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  offline: 'Reconnecting…',
};

function LiveStatus({ live, pending }: { live: SocketStatus; pending: boolean }) {
  // Worth mentioning only while something is being ingested, or when updates are not arriving.
  if (live === 'live' && !pending) return null;
  return (
    <span
      className={live === 'live' ? 'status status-on small' : 'status status-off small'}
      role="status"
      title={live === 'live' ? 'Statuses update as documents are processed.' : 'Live updates are paused; statuses may be out of date.'}
    >
      {LIVE_LABEL[live]}
    </span>
  );
}

function StatusCell({ doc, progress }: { doc: DocumentView; progress: IngestProgress | undefined }) {
  const embedding = doc.status === 'embedding';
  return (
    <td className="doc-status-cell">
      <span className={`doc-status doc-status-${doc.status}`}>{statusLabel(doc.status)}</span>
      {embedding && progress ? (
        <span className="doc-progress">
          <progress max={100} value={progressPercent(progress)} aria-label={`Embedding ${doc.name}`} />
          <span className="muted small">
            {progress.done}/{progress.total}
          </span>
        </span>
      ) : null}
      {doc.status === 'failed' && doc.error ? <span className="row-error">{doc.error}</span> : null}
    </td>
  );
}

type Pending = 'delete' | 'retry' | null;

function DocumentRow({
  doc,
  progress,
  onRemove,
  onRetry,
}: {
  doc: DocumentView;
  progress: IngestProgress | undefined;
  onRemove: () => Promise<void>;
  onRetry: () => Promise<void>;
}) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState<Pending>(null);
  const [error, setError] = useState<ApiError | null>(null);

  const act = async (what: Exclude<Pending, null>, task: () => Promise<void>) => {
    setBusy(what);
    setError(null);
    try {
      await task();
    } catch (err) {
      setError(toApiError(err));
      setBusy(null);
      return;
    }
    // A deleted row unmounts; a retried one stays and is usable again.
    if (what === 'retry') setBusy(null);
  };

  return (
    <>
      <tr data-testid="document-row" data-status={doc.status} data-document-id={doc.id}>
        <td className="cell-main doc-name">{doc.name}</td>
        <td>
          <span className="badge">{doc.format}</span>
        </td>
        <td className="num nowrap">{formatBytes(doc.size_bytes)}</td>
        <StatusCell doc={doc} progress={progress} />
        <td className="num">{doc.status === 'indexed' || doc.chunks > 0 ? doc.chunks : <span className="muted">—</span>}</td>
        <td className="num">{doc.pages ?? <span className="muted">—</span>}</td>
        <td className="nowrap" title={formatDate(doc.created_at)}>
          {formatDate(doc.created_at, '—', false)}
        </td>
        <td className="actions">
          {doc.status === 'failed' ? (
            <button
              type="button"
              className="btn btn-secondary btn-small"
              disabled={busy !== null}
              aria-label={`Retry ${doc.name}`}
              onClick={() => void act('retry', onRetry)}
            >
              {busy === 'retry' ? 'Retrying…' : 'Retry'}
            </button>
          ) : null}
          <button
            type="button"
            className="btn btn-danger-ghost btn-small"
            disabled={busy !== null}
            aria-label={`Delete ${doc.name}`}
            aria-expanded={confirming}
            onClick={() => setConfirming(true)}
          >
            Delete
          </button>
        </td>
      </tr>
      {confirming || error ? (
        <tr className="row-detail">
          <td colSpan={8}>
            {confirming ? (
              <div className="confirm">
                Delete {doc.name} and its passages?
                <button type="button" className="btn btn-danger-ghost btn-small" disabled={busy !== null} onClick={() => void act('delete', onRemove)}>
                  {busy === 'delete' ? 'Deleting…' : 'Yes, delete'}
                </button>
                <button type="button" className="btn btn-ghost btn-small" onClick={() => setConfirming(false)}>
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

export function DocumentTable({
  documents,
  progress,
  error,
  live,
  onRemove,
  onRetry,
}: {
  documents: readonly DocumentView[] | null;
  progress: Readonly<Record<string, IngestProgress>>;
  error: ApiError | null;
  live: SocketStatus;
  onRemove: (documentId: string) => Promise<void>;
  onRetry: (documentId: string) => Promise<void>;
}) {
  const pending = documents?.some((d) => isPending(d.status)) ?? false;
  return (
    <section className="card" aria-labelledby="documents-title">
      <div className="card-header card-header-row">
        <h2 id="documents-title">
          Documents {documents ? <span className="count">{documents.length}</span> : null}
        </h2>
        <LiveStatus live={live} pending={pending} />
      </div>
      <FormError error={error} />
      {documents === null ? (
        error ? null : <p className="muted">Loading documents…</p>
      ) : documents.length === 0 ? (
        <p className="empty">No documents yet. Add some above.</p>
      ) : (
        <div className="table-wrap">
          <table className="table-compact" aria-labelledby="documents-title">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Format</th>
                <th scope="col" className="num">
                  Size
                </th>
                <th scope="col">Status</th>
                <th scope="col" className="num">
                  Chunks
                </th>
                <th scope="col" className="num">
                  Pages
                </th>
                <th scope="col">Added</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {documents.map((doc) => (
                <DocumentRow
                  key={doc.id}
                  doc={doc}
                  progress={progress[doc.id]}
                  onRemove={() => onRemove(doc.id)}
                  onRetry={() => onRetry(doc.id)}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
