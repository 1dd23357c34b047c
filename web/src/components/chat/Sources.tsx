// The knowledge-base passages of an answer: a compact numbered list under it, and a panel with
// the passage a citation or list entry points at. Passage text is rendered by React (as text).

import { useEffect, useRef, type KeyboardEvent } from 'react';
import type { Source } from '../../api/types';
import { knowledgeBaseHref, sourcePage, sourceTitle } from '../../chat/sources';
import { Link } from '../../router';

interface ListProps {
  sources: readonly Source[];
  /** The number whose panel is open. */
  open: number | null;
  onSelect: (n: number) => void;
}

/** "Sources": one line per passage (number, document › headings, page). */
export function SourceList({ sources, open, onSelect }: ListProps) {
  return (
    <div className="sources">
      <span className="sources-label" aria-hidden="true">
        Sources
      </span>
      <ol className="source-list" aria-label="Sources">
        {sources.map((source) => {
          const page = sourcePage(source);
          return (
            <li key={source.n}>
              <button
                type="button"
                className={open === source.n ? 'source-item active' : 'source-item'}
                data-testid="source-item"
                aria-expanded={open === source.n}
                title={sourceTitle(source)}
                onClick={() => onSelect(source.n)}
              >
                <span className="source-n">{source.n}</span>
                <span className="source-name">{sourceTitle(source)}</span>
                {page ? <span className="source-page">{page}</span> : null}
              </button>
            </li>
          );
        })}
      </ol>
    </div>
  );
}

interface PanelProps {
  source: Source;
  onClose: () => void;
}

/** The passage behind a citation: document, headings, page, text and a link to its knowledge base. */
export function SourcePanel({ source, onClose }: PanelProps) {
  const ref = useRef<HTMLElement>(null);
  // Opened by a click: bring it into view and give it the keyboard (Escape closes it).
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.focus({ preventScroll: true });
    el.scrollIntoView?.({ block: 'nearest', behavior: 'smooth' });
  }, [source.n]);

  const onKeyDown = (event: KeyboardEvent<HTMLElement>) => {
    if (event.key === 'Escape') {
      event.stopPropagation();
      onClose();
    }
  };

  const page = sourcePage(source);
  const headings = source.headings.trim();
  return (
    <section
      ref={ref}
      className="source-panel"
      data-testid="source-panel"
      aria-label={`Source ${source.n}`}
      tabIndex={-1}
      onKeyDown={onKeyDown}
    >
      <header className="source-panel-head">
        <span className="source-n">{source.n}</span>
        <div className="source-panel-where">
          <div className="source-panel-doc">{source.document_name}</div>
          {headings || page ? (
            <div className="source-panel-meta">
              {headings ? <span>{headings}</span> : null}
              {headings && page ? <span aria-hidden="true"> · </span> : null}
              {page ? <span>{page}</span> : null}
            </div>
          ) : null}
        </div>
        <button type="button" className="btn btn-ghost btn-icon" aria-label="Close source" onClick={onClose}>
          ×
        </button>
      </header>
      <blockquote className="source-text" data-testid="source-text">
        {source.text}
      </blockquote>
      <footer className="source-panel-foot">
        <Link to={knowledgeBaseHref(source.knowledge_base_id)}>Open knowledge base</Link>
      </footer>
    </section>
  );
}
