// Searching a knowledge base: hybrid (full-text and vector rankings fused), or either ranking alone.

import { useEffect, useRef, useState, type FormEvent } from 'react';
import { api, type ApiError } from '../../api/client';
import type { SearchMode, SearchResults } from '../../api/types';
import { formatScore } from '../../knowledge/documents';
import { highlight } from '../../knowledge/highlight';
import { FormError, toApiError } from '../forms';

const MODES: { value: SearchMode; label: string }[] = [
  { value: 'hybrid', label: 'Hybrid' },
  { value: 'bm25', label: 'BM25 (keywords)' },
  { value: 'vector', label: 'Vector (meaning)' },
];

/** The server's bounds for `top_k`. */
const MAX_TOP_K = 50;
const DEFAULT_TOP_K = 8;

export function SearchPanel({ knowledgeBaseId }: { knowledgeBaseId: string }) {
  const [query, setQuery] = useState('');
  const [mode, setMode] = useState<SearchMode>('hybrid');
  const [topK, setTopK] = useState(String(DEFAULT_TOP_K));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [results, setResults] = useState<SearchResults | null>(null);
  const inFlight = useRef<AbortController | null>(null);

  useEffect(() => {
    setResults(null);
    setError(null);
    return () => inFlight.current?.abort();
  }, [knowledgeBaseId]);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    inFlight.current?.abort();
    const controller = new AbortController();
    inFlight.current = controller;
    const k = Math.round(Number(topK));
    setBusy(true);
    setError(null);
    try {
      const found = await api.searchKnowledgeBase(
        knowledgeBaseId,
        { query: query.trim(), mode, ...(Number.isFinite(k) && k > 0 ? { top_k: Math.min(k, MAX_TOP_K) } : {}) },
        controller.signal,
      );
      setResults(found);
    } catch (err) {
      if (controller.signal.aborted) return;
      setError(toApiError(err));
      setResults(null);
    } finally {
      if (inFlight.current === controller) {
        inFlight.current = null;
        setBusy(false);
      }
    }
  };

  return (
    <section className="card" aria-labelledby="search-title">
      <div className="card-header">
        <h2 id="search-title">Search</h2>
        <p className="muted">Find the passages closest to a question: by its words (BM25), by meaning (vectors), or both.</p>
      </div>
      <form className="inline-form search-form" role="search" aria-label="Search this knowledge base" onSubmit={submit} noValidate>
        <div className={error?.field === 'query' ? 'field field-invalid search-query' : 'field search-query'}>
          <label htmlFor="kb-search-query">Query</label>
          <input
            id="kb-search-query"
            type="search"
            value={query}
            onChange={(e) => setQuery(e.target.value)}
            placeholder="e.g. when does autovacuum run?"
            maxLength={2000}
            aria-invalid={error?.field === 'query' || undefined}
          />
        </div>
        <div className={error?.field === 'mode' ? 'field field-invalid search-mode' : 'field search-mode'}>
          <label htmlFor="kb-search-mode">Mode</label>
          <select id="kb-search-mode" value={mode} onChange={(e) => setMode(e.target.value as SearchMode)}>
            {MODES.map((m) => (
              <option key={m.value} value={m.value}>
                {m.label}
              </option>
            ))}
          </select>
        </div>
        <div className={error?.field === 'top_k' ? 'field field-invalid search-top-k' : 'field search-top-k'}>
          <label htmlFor="kb-search-top-k">Results</label>
          <input
            id="kb-search-top-k"
            type="number"
            min={1}
            max={MAX_TOP_K}
            step={1}
            value={topK}
            onChange={(e) => setTopK(e.target.value)}
          />
        </div>
        <button type="submit" className="btn btn-primary" disabled={busy || !query.trim()}>
          {busy ? 'Searching…' : 'Search'}
        </button>
      </form>
      <FormError error={error} />
      {results ? (
        results.hits.length === 0 ? (
          <p className="empty">No passages match.</p>
        ) : (
          <ol className="search-hits" aria-label="Search results">
            {results.hits.map((hit) => (
              <li key={hit.chunk_id} className="search-hit" data-testid="search-hit" data-document-id={hit.document_id}>
                <div className="search-hit-head">
                  <span className="cell-main search-hit-doc">{hit.document_name}</span>
                  {hit.headings ? <span className="search-hit-headings">{hit.headings}</span> : null}
                  {hit.page !== null ? <span className="badge">page {hit.page}</span> : null}
                  <span className="search-hit-score" title="Fused score (or the single ranking's score)">
                    score {formatScore(hit.score)}
                    <span className="muted small">
                      {' '}
                      bm25 {formatScore(hit.bm25_score)} · vector {formatScore(hit.vector_score)}
                    </span>
                  </span>
                </div>
                <p className="search-hit-text">{highlight(hit.text, results.terms)}</p>
              </li>
            ))}
          </ol>
        )
      ) : null}
    </section>
  );
}
