// Knowledge: the user's knowledge bases (`/knowledge`), and one open base (`/knowledge/<id>`) with
// uploads, its documents as they are ingested, and search.

import { useCallback, useEffect, useRef, useState } from 'react';
import { api, type ApiError } from '../api/client';
import type { KnowledgeBase } from '../api/types';
import { FormError, formatDate, toApiError } from '../components/forms';
import { DocumentTable } from '../components/knowledge/DocumentTable';
import { ConfirmDeleteKnowledgeBase, CreateKnowledgeBaseForm, EditKnowledgeBaseForm } from '../components/knowledge/KnowledgeBaseForms';
import { SearchPanel } from '../components/knowledge/SearchPanel';
import { UploadPanel } from '../components/knowledge/UploadPanel';
import { PageHeader } from '../components/Layout';
import { isPending } from '../knowledge/documents';
import { useDocumentWatch, useDocuments } from '../knowledge/useDocuments';
import { Link, navigate } from '../router';

/** Counts change in bursts (many documents finishing together): reload them once per burst. */
const COUNTS_SETTLE_MS = 400;

/** Calls `task` once, `ms` after the last of a burst of calls. A coalescing timer, not synchronisation. */
function useCoalesced(task: () => void, ms: number): () => void {
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const latest = useRef(task);
  latest.current = task;
  useEffect(
    () => () => {
      if (timer.current !== null) clearTimeout(timer.current);
    },
    [],
  );
  return useCallback(() => {
    if (timer.current !== null) clearTimeout(timer.current);
    timer.current = setTimeout(() => {
      timer.current = null;
      latest.current();
    }, ms);
  }, [ms]);
}

export const knowledgeBasePath = (id: string) => `/knowledge/${encodeURIComponent(id)}`;

function EmbeddingModel({ kb }: { kb: KnowledgeBase }) {
  return (
    <>
      <span>{kb.embedding_model || '—'}</span>
      {kb.dimensions ? <span className="cell-sub"> {kb.dimensions} dimensions</span> : null}
    </>
  );
}

type RowDetail = 'edit' | 'delete' | null;

function KnowledgeBaseRow({ kb, onChanged, onDeleted }: { kb: KnowledgeBase; onChanged: (kb: KnowledgeBase) => void; onDeleted: () => void }) {
  const [detail, setDetail] = useState<RowDetail>(null);
  return (
    <>
      <tr data-testid="knowledge-base-row">
        <td>
          <Link to={knowledgeBasePath(kb.id)} className="cell-main">
            {kb.name}
          </Link>
          {kb.description ? <div className="cell-sub">{kb.description}</div> : null}
        </td>
        <td className="num">{kb.documents}</td>
        <td className="num">{kb.chunks}</td>
        <td>
          <EmbeddingModel kb={kb} />
        </td>
        <td className="nowrap" title={formatDate(kb.updated_at)}>
          {formatDate(kb.updated_at, '—', false)}
        </td>
        <td className="actions">
          <button type="button" className="btn btn-secondary btn-small" onClick={() => navigate(knowledgeBasePath(kb.id))} aria-label={`Open ${kb.name}`}>
            Open
          </button>
          <button
            type="button"
            className="btn btn-ghost btn-small"
            aria-expanded={detail === 'edit'}
            aria-label={`Rename ${kb.name}`}
            onClick={() => setDetail(detail === 'edit' ? null : 'edit')}
          >
            Rename
          </button>
          <button type="button" className="btn btn-danger-ghost btn-small" aria-label={`Delete ${kb.name}`} onClick={() => setDetail('delete')}>
            Delete
          </button>
        </td>
      </tr>
      {detail ? (
        <tr className="row-detail">
          <td colSpan={6}>
            {detail === 'edit' ? (
              <EditKnowledgeBaseForm
                kb={kb}
                onCancel={() => setDetail(null)}
                onSaved={(saved) => {
                  setDetail(null);
                  onChanged(saved);
                }}
              />
            ) : (
              <ConfirmDeleteKnowledgeBase kb={kb} onCancel={() => setDetail(null)} onDeleted={onDeleted} />
            )}
          </td>
        </tr>
      ) : null}
    </>
  );
}

/** `/knowledge`: the list, and a form for a new base. */
export function KnowledgePage() {
  const [bases, setBases] = useState<KnowledgeBase[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);

  const load = useCallback(async () => {
    try {
      setBases(await api.listKnowledgeBases());
      setError(null);
    } catch (err) {
      setError(toApiError(err));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  // Documents finishing in the background change the counts shown here.
  const reloadSoon = useCoalesced(() => void load(), COUNTS_SETTLE_MS);
  useDocumentWatch((doc) => {
    if (!isPending(doc.status)) reloadSoon();
  }, reloadSoon);

  return (
    <>
      <PageHeader title="Knowledge" description="Knowledge bases built from your documents, searched by keywords and by meaning." />
      <section className="card" aria-labelledby="bases-title">
        <div className="card-header">
          <h2 id="bases-title">
            Knowledge bases {bases ? <span className="count">{bases.length}</span> : null}
          </h2>
        </div>
        <FormError error={error} />
        {bases === null ? (
          error ? null : <p className="muted">Loading knowledge bases…</p>
        ) : bases.length === 0 ? (
          <p className="empty">No knowledge bases yet. Create one below, then add documents to it.</p>
        ) : (
          <div className="table-wrap">
            <table className="table-compact" aria-labelledby="bases-title">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col" className="num">
                    Documents
                  </th>
                  <th scope="col" className="num">
                    Chunks
                  </th>
                  <th scope="col">Embedding model</th>
                  <th scope="col">Updated</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {bases.map((kb) => (
                  <KnowledgeBaseRow
                    key={kb.id}
                    kb={kb}
                    onChanged={(saved) => setBases((list) => (list ?? []).map((b) => (b.id === saved.id ? saved : b)))}
                    onDeleted={() => setBases((list) => (list ?? []).filter((b) => b.id !== kb.id))}
                  />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <CreateKnowledgeBaseForm onCreated={(kb) => navigate(knowledgeBasePath(kb.id))} />
    </>
  );
}

function plural(n: number, one: string, many: string): string {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}

/** The open base: its documents live, once the base itself is known. */
function KnowledgeBaseContent({ kb, onCountsChanged }: { kb: KnowledgeBase; onCountsChanged: () => void }) {
  const docs = useDocuments(kb.id, onCountsChanged);
  return (
    <>
      <UploadPanel
        knowledgeBaseId={kb.id}
        onDocument={(doc) => {
          docs.accept(doc);
          if (!doc.duplicate) onCountsChanged();
        }}
      />
      <DocumentTable
        documents={docs.documents}
        progress={docs.progress}
        error={docs.error}
        live={docs.live}
        onRemove={docs.remove}
        onRetry={docs.retry}
      />
      <SearchPanel knowledgeBaseId={kb.id} />
    </>
  );
}

/** `/knowledge/<id>`. */
export function KnowledgeBasePage({ id }: { id: string }) {
  const [kb, setKb] = useState<KnowledgeBase | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [detail, setDetail] = useState<RowDetail>(null);

  const load = useCallback(async () => {
    try {
      setKb(await api.getKnowledgeBase(id));
      setError(null);
    } catch (err) {
      setError(toApiError(err));
    }
  }, [id]);

  useEffect(() => {
    setKb(null);
    setDetail(null);
    void load();
  }, [load]);

  const reloadCounts = useCoalesced(() => void load(), COUNTS_SETTLE_MS);

  const back = (
    <nav aria-label="Breadcrumb" className="breadcrumb">
      <Link to="/knowledge">← All knowledge bases</Link>
    </nav>
  );

  if (!kb) {
    if (error?.status === 404) {
      return (
        <>
          {back}
          <PageHeader title="Knowledge base not found" />
          <p className="card">This knowledge base does not exist, or it is not yours.</p>
        </>
      );
    }
    return (
      <>
        {back}
        <PageHeader title="Knowledge" />
        {error ? <FormError error={error} /> : <p className="muted">Loading the knowledge base…</p>}
      </>
    );
  }

  return (
    <>
      {back}
      <PageHeader
        title={kb.name}
        description={kb.description || undefined}
        actions={
          <>
            <button type="button" className="btn btn-ghost" aria-expanded={detail === 'edit'} onClick={() => setDetail(detail === 'edit' ? null : 'edit')}>
              Rename
            </button>
            <button type="button" className="btn btn-danger-ghost" onClick={() => setDetail('delete')}>
              Delete
            </button>
          </>
        }
      />
      <p className="kb-stats muted" data-testid="knowledge-base-stats">
        {plural(kb.documents, 'document', 'documents')} · {plural(kb.chunks, 'chunk', 'chunks')} · embedded with{' '}
        <code>{kb.embedding_model || '—'}</code>
        {kb.dimensions ? ` (${kb.dimensions} dimensions)` : ''}
      </p>
      {detail ? (
        <section className="card">
          {detail === 'edit' ? (
            <EditKnowledgeBaseForm
              kb={kb}
              onCancel={() => setDetail(null)}
              onSaved={(saved) => {
                setDetail(null);
                setKb(saved);
              }}
            />
          ) : (
            <ConfirmDeleteKnowledgeBase kb={kb} onCancel={() => setDetail(null)} onDeleted={() => navigate('/knowledge', { replace: true })} />
          )}
        </section>
      ) : null}
      <KnowledgeBaseContent key={kb.id} kb={kb} onCountsChanged={reloadCounts} />
    </>
  );
}
