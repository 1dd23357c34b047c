// A knowledge base's documents, kept current: listed over HTTP, then updated from the WebSocket's
// `document` frames (listed again whenever frames may have been missed), from upload answers and
// from the page's own deletes and retries.

import { useCallback, useEffect, useRef, useState } from 'react';
import { api, type ApiError } from '../api/client';
import { watchDocuments, type SocketStatus } from '../api/socket';
import type { DocumentView, IngestProgress } from '../api/types';
import { toApiError } from '../components/forms';
import { isPending, mergeDocument, mergeList } from './documents';

/** Follows the signed-in user's document events while mounted; returns the socket's state. */
export function useDocumentWatch(
  onDocument: (document: DocumentView, progress: IngestProgress | undefined) => void,
  onResync: () => void,
): SocketStatus {
  const [status, setStatus] = useState<SocketStatus>('connecting');
  const handlers = useRef({ onDocument, onResync });
  handlers.current = { onDocument, onResync };
  useEffect(
    () =>
      watchDocuments(api, {
        onDocument: (document, progress) => handlers.current.onDocument(document, progress),
        onResync: () => handlers.current.onResync(),
        onStatus: setStatus,
      }),
    [],
  );
  return status;
}

export interface DocumentsState {
  /** Null until the first list arrives. */
  documents: readonly DocumentView[] | null;
  /** Embedding progress of documents being embedded, by id. */
  progress: Readonly<Record<string, IngestProgress>>;
  error: ApiError | null;
  live: SocketStatus;
  /** Adds or updates a document the page learnt of (an upload's answer). */
  accept: (document: DocumentView) => void;
  remove: (documentId: string) => Promise<void>;
  retry: (documentId: string) => Promise<void>;
}

/**
 * @param knowledgeBaseId the open knowledge base
 * @param onSettled called when a document of it was indexed, failed or was deleted (its counts changed)
 */
export function useDocuments(knowledgeBaseId: string, onSettled: () => void): DocumentsState {
  const [documents, setDocuments] = useState<readonly DocumentView[] | null>(null);
  const [progress, setProgress] = useState<Record<string, IngestProgress>>({});
  const [error, setError] = useState<ApiError | null>(null);
  /** Deleted here: a frame sent before the delete must not bring the row back. */
  const deleted = useRef(new Set<string>());
  /** Only the answer to the latest list request is used. */
  const listSeq = useRef(0);
  const settled = useRef(onSettled);
  settled.current = onSettled;

  const load = useCallback(async () => {
    const seq = ++listSeq.current;
    try {
      const fetched = await api.listDocuments(knowledgeBaseId);
      if (seq !== listSeq.current) return;
      const kept = fetched.filter((d) => !deleted.current.has(d.id));
      setDocuments((current) => (current ? mergeList(current, kept) : kept));
      setError(null);
    } catch (err) {
      if (seq === listSeq.current) setError(toApiError(err));
    }
  }, [knowledgeBaseId]);

  useEffect(() => {
    setDocuments(null);
    setProgress({});
    deleted.current = new Set();
    void load();
  }, [load]);

  const accept = useCallback(
    (document: DocumentView) => {
      if (document.knowledge_base_id !== knowledgeBaseId || deleted.current.has(document.id)) return;
      setDocuments((current) => (current ? mergeDocument(current, document) : current));
    },
    [knowledgeBaseId],
  );

  const onDocument = useCallback(
    (document: DocumentView, update: IngestProgress | undefined) => {
      if (document.knowledge_base_id !== knowledgeBaseId || deleted.current.has(document.id)) return;
      accept(document);
      setProgress((current) => {
        if (update && document.status === 'embedding') return { ...current, [document.id]: update };
        if (!(document.id in current)) return current;
        const { [document.id]: _done, ...rest } = current;
        return rest;
      });
      if (!isPending(document.status)) settled.current();
    },
    [knowledgeBaseId, accept],
  );

  const live = useDocumentWatch(onDocument, () => void load());

  const remove = useCallback(
    async (documentId: string) => {
      await api.deleteDocument(knowledgeBaseId, documentId);
      deleted.current.add(documentId);
      setDocuments((current) => current?.filter((d) => d.id !== documentId) ?? current);
      settled.current();
    },
    [knowledgeBaseId],
  );

  const retry = useCallback(
    async (documentId: string) => {
      accept(await api.retryDocument(knowledgeBaseId, documentId));
    },
    [knowledgeBaseId, accept],
  );

  return { documents, progress, error, live, accept, remove, retry };
}
