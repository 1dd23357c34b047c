// Adding documents: a drop zone and a file picker. Each file is its own request, so each has a
// progress bar and the server's answer for it (queued, duplicate, or refused and why).

import { useCallback, useEffect, useId, useRef, useState, type DragEvent } from 'react';
import { api } from '../../api/client';
import type { DocumentView } from '../../api/types';
import { formatBytes } from '../../knowledge/documents';
import {
  ACCEPTED_EXTENSIONS,
  outcomeLabel,
  PARALLEL_UPLOADS,
  TaskQueue,
  uploadOutcome,
  uploadPercent,
  type UploadItem,
} from '../../knowledge/uploads';
import { toApiError } from '../forms';

const PHASE_LABEL: Record<UploadItem['phase'], string> = {
  waiting: 'Waiting…',
  uploading: 'Uploading…',
  processing: 'Processing…',
  done: '',
};

function outcomeClass(item: UploadItem): string {
  switch (item.outcome?.kind) {
    case 'queued':
      return 'upload-outcome upload-ok';
    case 'duplicate':
      return 'upload-outcome upload-duplicate';
    case 'rejected':
    case 'error':
      return 'upload-outcome upload-failed';
    default:
      return 'upload-outcome muted';
  }
}

export function UploadPanel({ knowledgeBaseId, onDocument }: { knowledgeBaseId: string; onDocument: (doc: DocumentView) => void }) {
  const inputId = useId();
  const hintId = useId();
  const [items, setItems] = useState<UploadItem[]>([]);
  const [dragging, setDragging] = useState(false);
  const zone = useRef<HTMLDivElement>(null);
  const nextKey = useRef(0);
  const queue = useRef(new TaskQueue(PARALLEL_UPLOADS));
  /** Aborts the uploads still running when the page is left. */
  const aborter = useRef(new AbortController());
  const accepted = useRef(onDocument);
  accepted.current = onDocument;

  useEffect(() => {
    const controller = new AbortController();
    aborter.current = controller;
    return () => controller.abort();
  }, [knowledgeBaseId]);

  // Files dropped beside the zone would make the browser leave the page to show them: refuse them.
  useEffect(() => {
    const refuse = (event: globalThis.DragEvent) => {
      if (!event.dataTransfer?.types.includes('Files')) return;
      if (zone.current?.contains(event.target as Node | null)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'none';
    };
    window.addEventListener('dragover', refuse);
    window.addEventListener('drop', refuse);
    return () => {
      window.removeEventListener('dragover', refuse);
      window.removeEventListener('drop', refuse);
    };
  }, []);

  const update = useCallback((key: string, patch: Partial<UploadItem>) => {
    setItems((list) => list.map((item) => (item.key === key ? { ...item, ...patch } : item)));
  }, []);

  const addFiles = useCallback(
    (files: File[]) => {
      if (files.length === 0) return;
      const signal = aborter.current.signal;
      const added = files.map((file) => {
        nextKey.current += 1;
        const item: UploadItem = { key: `upload-${nextKey.current}`, name: file.name, size: file.size, phase: 'waiting', loaded: 0, total: file.size };
        return { item, file };
      });
      setItems((list) => [...list, ...added.map((a) => a.item)]);
      for (const { item, file } of added) {
        queue.current.push(async () => {
          if (signal.aborted) return;
          update(item.key, { phase: 'uploading' });
          try {
            const result = await api.uploadDocuments(knowledgeBaseId, [file], {
              signal,
              onProgress: ({ loaded, total }) => {
                const size = total || file.size;
                update(item.key, { loaded, total: size, phase: loaded >= size ? 'processing' : 'uploading' });
              },
            });
            const outcome = uploadOutcome(result);
            update(item.key, { phase: 'done', outcome });
            if (outcome.kind === 'queued' || outcome.kind === 'duplicate') accepted.current(outcome.document);
          } catch (err) {
            if (signal.aborted) return;
            update(item.key, { phase: 'done', outcome: uploadOutcome(toApiError(err)) });
          }
        });
      }
    },
    [knowledgeBaseId, update],
  );

  const onDrop = (event: DragEvent<HTMLDivElement>) => {
    event.preventDefault();
    setDragging(false);
    addFiles(Array.from(event.dataTransfer.files));
  };

  const onDragOver = (event: DragEvent<HTMLDivElement>) => {
    if (!event.dataTransfer.types.includes('Files')) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    setDragging(true);
  };

  const finished = items.filter((i) => i.phase === 'done').length;

  return (
    <section className="card" aria-labelledby="upload-title">
      <div className="card-header">
        <h2 id="upload-title">Add documents</h2>
        <p className="muted" id={hintId}>
          Text, Markdown, HTML, PDF, Word (.docx), CSV and JSON. Each file is parsed, split into passages and embedded in the
          background.
        </p>
      </div>
      <div
        ref={zone}
        className={dragging ? 'drop-zone dragging' : 'drop-zone'}
        data-testid="drop-zone"
        onDragEnter={onDragOver}
        onDragOver={onDragOver}
        onDragLeave={(event) => {
          if (!event.currentTarget.contains(event.relatedTarget as Node | null)) setDragging(false);
        }}
        onDrop={onDrop}
      >
        <svg width="28" height="28" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
          <path
            d="M12 16V4m0 0-4 4m4-4 4 4M4 15v3a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-3"
            fill="none"
            stroke="currentColor"
            strokeWidth="1.7"
            strokeLinecap="round"
            strokeLinejoin="round"
          />
        </svg>
        <p>
          Drop files here, or{' '}
          <label htmlFor={inputId} className="btn btn-secondary btn-small file-button">
            Choose files
          </label>
        </p>
        <input
          id={inputId}
          type="file"
          multiple
          accept={ACCEPTED_EXTENSIONS}
          className="visually-hidden"
          aria-describedby={hintId}
          onChange={(event) => {
            addFiles(Array.from(event.target.files ?? []));
            // Choosing the same file again must fire `change` again.
            event.target.value = '';
          }}
        />
      </div>
      {items.length > 0 ? (
        <>
          <ul className="upload-list" aria-label="Uploads">
            {items.map((item) => (
              <li key={item.key} className="upload-item" data-testid="upload-item" data-phase={item.phase} data-outcome={item.outcome?.kind}>
                <div className="upload-head">
                  <span className="upload-name">{item.name}</span>
                  <span className="muted small">{formatBytes(item.size)}</span>
                </div>
                {item.phase === 'done' ? (
                  <span className={outcomeClass(item)} role={item.outcome?.kind === 'error' || item.outcome?.kind === 'rejected' ? 'alert' : undefined}>
                    {item.outcome ? outcomeLabel(item.outcome) : ''}
                  </span>
                ) : (
                  <div className="upload-progress">
                    <progress max={100} value={uploadPercent(item)} aria-label={`Uploading ${item.name}`} />
                    <span className="muted small">{PHASE_LABEL[item.phase]}</span>
                  </div>
                )}
              </li>
            ))}
          </ul>
          {finished > 0 ? (
            <button
              type="button"
              className="btn btn-ghost btn-small upload-clear"
              onClick={() => setItems((list) => list.filter((i) => i.phase !== 'done'))}
            >
              Clear finished
            </button>
          ) : null}
        </>
      ) : null}
    </section>
  );
}
