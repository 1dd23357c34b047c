import { useCallback, useEffect, useLayoutEffect, useReducer, useRef, useState, type FormEvent } from 'react';
import { api, type ApiError } from '../api/client';
import type { Conversation, ExportFormat, KnowledgeBase, MessageView, UserModel } from '../api/types';
import { exportOutcome, knowledgeBaseName, type ExportOutcome } from '../chat/knowledge';
import { knowledgeBaseHref } from '../chat/sources';
import { isRunning } from '../chat/thread';
import { useThread } from '../chat/useThread';
import { Composer } from '../components/chat/Composer';
import { KnowledgeChips, KnowledgePicker } from '../components/chat/KnowledgePicker';
import { MessageItem } from '../components/chat/MessageItem';
import { FormError, formatDate, toApiError } from '../components/forms';
import { Link, navigate } from '../router';
import { useSession } from '../session';

/** The model picked last, used for the next new chat. Memory only. */
let lastPickedModel = '';

function ConversationList({ activeId, version }: { activeId: string | null; version: number }) {
  const [query, setQuery] = useState('');
  const [items, setItems] = useState<Conversation[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);

  useEffect(() => {
    let cancelled = false;
    // Typing debounces the search; other reloads go at once.
    const timer = setTimeout(
      () => {
        api
          .listConversations(query)
          .then((list) => {
            if (cancelled) return;
            setItems(list);
            setError(null);
          })
          .catch((err: unknown) => {
            if (!cancelled) setError(toApiError(err));
          });
      },
      query ? 250 : 0,
    );
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [query, version]);

  return (
    <aside className="chat-sidebar" aria-label="Conversations">
      <button type="button" className="btn btn-primary btn-block" onClick={() => navigate('/chat')}>
        New chat
      </button>
      <div className="field">
        <label htmlFor="conversation-search" className="visually-hidden">
          Search conversations
        </label>
        <input
          id="conversation-search"
          type="search"
          placeholder="Search chats…"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
      </div>
      <FormError error={error} />
      {items === null ? (
        error ? null : <p className="muted small">Loading…</p>
      ) : items.length === 0 ? (
        <p className="muted small">{query.trim() ? 'No chats match.' : 'No chats yet.'}</p>
      ) : (
        <ul className="conversation-list">
          {items.map((c) => (
            <li key={c.id}>
              <Link
                to={`/chat/${c.id}`}
                className={c.id === activeId ? 'conversation-link active' : 'conversation-link'}
                aria-current={c.id === activeId ? 'page' : undefined}
              >
                <span className="conversation-title">{c.title}</span>
                <span className="conversation-date">{formatDate(c.updated_at, '', false)}</span>
              </Link>
            </li>
          ))}
        </ul>
      )}
    </aside>
  );
}

/** Saves a blob under a file name through a temporary link. */
function saveFile(blob: Blob, filename: string) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  // The download has the data by the next task; freeing it later is only housekeeping.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** "Export to knowledge base": pick one of the user's bases, save the conversation into it as Markdown. */
function ExportToKnowledgeForm({
  conversation,
  bases,
  onDone,
  onCancel,
}: {
  conversation: Conversation;
  bases: KnowledgeBase[] | null;
  onDone: (outcome: ExportOutcome & { knowledgeBaseId: string }) => void;
  onCancel: () => void;
}) {
  const [target, setTarget] = useState('');
  const [working, setWorking] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const chosen = target || bases?.[0]?.id || '';

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!chosen) return;
    setWorking(true);
    setError(null);
    try {
      const result = await api.exportToKnowledge(conversation.id, chosen);
      onDone({ ...exportOutcome(result, knowledgeBaseName(bases, chosen)), knowledgeBaseId: chosen });
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setWorking(false);
    }
  };

  if (bases !== null && bases.length === 0) {
    return (
      <div className="export-kb">
        <span className="small">
          No knowledge bases yet. <Link to="/knowledge">Create one</Link> first.
        </span>
        <button type="button" className="btn btn-ghost btn-small" onClick={onCancel}>
          Cancel
        </button>
      </div>
    );
  }

  return (
    <form className="export-kb" onSubmit={(e) => void submit(e)}>
      <label htmlFor="export-kb-select" className="small">
        Knowledge base
      </label>
      <select id="export-kb-select" value={chosen} disabled={bases === null || working} onChange={(e) => setTarget(e.target.value)}>
        {(bases ?? []).map((kb) => (
          <option key={kb.id} value={kb.id}>
            {kb.name}
          </option>
        ))}
      </select>
      <button type="submit" className="btn btn-primary btn-small" disabled={!chosen || working}>
        {working ? 'Exporting…' : 'Export'}
      </button>
      <button type="button" className="btn btn-ghost btn-small" onClick={onCancel}>
        Cancel
      </button>
      <FormError error={error} />
    </form>
  );
}

interface HeaderProps {
  conversation: Conversation | null;
  models: UserModel[] | null;
  model: string;
  busy: boolean;
  onModel: (name: string) => void;
  onRename: (title: string) => Promise<void>;
  onDeleted: () => void;
  /** The user's knowledge bases (null while loading) and the ones this chat answers from. */
  bases: KnowledgeBase[] | null;
  basesError: ApiError | null;
  onLoadBases: () => void;
  attached: readonly string[];
  onAttach: (ids: string[]) => Promise<void>;
}

function ThreadHeader({
  conversation,
  models,
  model,
  busy,
  onModel,
  onRename,
  onDeleted,
  bases,
  basesError,
  onLoadBases,
  attached,
  onAttach,
}: HeaderProps) {
  const [renaming, setRenaming] = useState(false);
  const [title, setTitle] = useState('');
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [exportingToKb, setExportingToKb] = useState(false);
  const [exported, setExported] = useState<(ExportOutcome & { knowledgeBaseId: string }) | null>(null);
  const [working, setWorking] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  useEffect(() => {
    setRenaming(false);
    setConfirmDelete(false);
    setExportingToKb(false);
    setExported(null);
    setError(null);
  }, [conversation?.id]);

  const run = async (task: () => Promise<void>) => {
    setWorking(true);
    setError(null);
    try {
      await task();
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setWorking(false);
    }
  };

  const rename = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      await onRename(title.trim());
      setRenaming(false);
    });
  };

  const exportAs = (format: ExportFormat) =>
    run(async () => {
      if (!conversation) return;
      const { blob, filename } = await api.exportConversation(conversation.id, format);
      saveFile(blob, filename);
    });

  const remove = () =>
    run(async () => {
      if (!conversation) return;
      await api.deleteConversation(conversation.id);
      onDeleted();
    });

  const known = models?.some((m) => m.name === model) ?? true;

  return (
    <header className="chat-header">
      <div className="chat-title-row">
        {renaming && conversation ? (
          <form className="rename-form" onSubmit={rename}>
            <label htmlFor="rename-input" className="visually-hidden">
              Title
            </label>
            <input id="rename-input" value={title} onChange={(e) => setTitle(e.target.value)} maxLength={200} autoFocus />
            <button type="submit" className="btn btn-primary btn-small" disabled={working || !title.trim()}>
              Save
            </button>
            <button type="button" className="btn btn-ghost btn-small" onClick={() => setRenaming(false)}>
              Cancel
            </button>
          </form>
        ) : (
          <h1 className="chat-title">{conversation?.title ?? 'New chat'}</h1>
        )}
        <div className="chat-tools">
          <KnowledgePicker bases={bases} loadError={basesError} attached={attached} onChange={onAttach} onOpen={onLoadBases} />
          <div className="field model-field">
            <label htmlFor="model-picker" className="visually-hidden">
              Model
            </label>
            <select
              id="model-picker"
              value={model}
              disabled={!models || models.length === 0 || busy}
              onChange={(e) => onModel(e.target.value)}
            >
              {!known && model ? <option value={model}>{model} (unavailable)</option> : null}
              {(models ?? []).map((m) => (
                <option key={m.name} value={m.name}>
                  {m.display_name && m.display_name !== m.name ? `${m.display_name} (${m.name})` : m.name}
                </option>
              ))}
            </select>
          </div>
        </div>
      </div>
      <KnowledgeChips bases={bases} attached={attached} onDetach={onAttach} />
      {conversation ? (
        <div className="chat-actions">
          {!renaming ? (
            <button
              type="button"
              className="btn btn-ghost btn-small"
              onClick={() => {
                setTitle(conversation.title);
                setRenaming(true);
              }}
            >
              Rename
            </button>
          ) : null}
          <span className="button-group" role="group" aria-label="Export">
            <button type="button" className="btn btn-ghost btn-small" disabled={working} onClick={() => void exportAs('markdown')}>
              Export Markdown
            </button>
            <button type="button" className="btn btn-ghost btn-small" disabled={working} onClick={() => void exportAs('json')}>
              Export JSON
            </button>
            <button
              type="button"
              className="btn btn-ghost btn-small"
              aria-expanded={exportingToKb}
              onClick={() => {
                setExported(null);
                if (!exportingToKb) onLoadBases();
                setExportingToKb(!exportingToKb);
              }}
            >
              Export to knowledge base
            </button>
          </span>
          {confirmDelete ? (
            <span className="confirm">
              Delete this chat?
              <button type="button" className="btn btn-danger-ghost btn-small" disabled={working} onClick={() => void remove()}>
                Yes, delete
              </button>
              <button type="button" className="btn btn-ghost btn-small" onClick={() => setConfirmDelete(false)}>
                Keep
              </button>
            </span>
          ) : (
            <button type="button" className="btn btn-danger-ghost btn-small" onClick={() => setConfirmDelete(true)}>
              Delete
            </button>
          )}
        </div>
      ) : null}
      {conversation && exportingToKb ? (
        <ExportToKnowledgeForm
          conversation={conversation}
          bases={bases}
          onCancel={() => setExportingToKb(false)}
          onDone={(outcome) => {
            setExportingToKb(false);
            setExported(outcome);
          }}
        />
      ) : null}
      {exported ? (
        <div className={exported.ok ? 'alert alert-success export-notice' : 'alert alert-error export-notice'} role={exported.ok ? 'status' : 'alert'}>
          {exported.message}{' '}
          {exported.ok ? <Link to={knowledgeBaseHref(exported.knowledgeBaseId)}>Open knowledge base</Link> : null}
          <button type="button" className="btn btn-link btn-small" aria-label="Dismiss" onClick={() => setExported(null)}>
            ×
          </button>
        </div>
      ) : null}
      <FormError error={error} />
    </header>
  );
}

export function ChatPage({ conversationId }: { conversationId: string | null }) {
  const { user } = useSession();
  const [models, setModels] = useState<UserModel[] | null>(null);
  const [modelsError, setModelsError] = useState<ApiError | null>(null);
  const [draftModel, setDraftModel] = useState(lastPickedModel);
  const [modelError, setModelError] = useState<ApiError | null>(null);
  /** Edit or regenerate that could not start. */
  const [actionError, setActionError] = useState<ApiError | null>(null);
  const [listVersion, reloadList] = useReducer((n: number) => n + 1, 0);
  const [bases, setBases] = useState<KnowledgeBase[] | null>(null);
  const [basesError, setBasesError] = useState<ApiError | null>(null);
  /** Knowledge bases picked for a chat not created yet. */
  const [draftBases, setDraftBases] = useState<string[]>([]);
  const controls = useThread(conversationId, reloadList);
  const { thread, loading, loadError } = controls;
  const running = isRunning(thread);
  const live = thread.live;

  useEffect(() => {
    api
      .listModels()
      .then((list) => {
        // Embedding models serve knowledge bases, not chat.
        setModels(list.filter((m) => !m.capabilities.embeddings));
        setModelsError(null);
      })
      .catch((err: unknown) => setModelsError(toApiError(err)));
  }, []);

  const loadBases = useCallback(() => {
    api
      .listKnowledgeBases()
      .then((list) => {
        setBases(list);
        setBasesError(null);
      })
      .catch((err: unknown) => setBasesError(toApiError(err)));
  }, []);

  useEffect(() => loadBases(), [loadBases]);

  useEffect(() => {
    if (conversationId === null) setDraftBases([]);
  }, [conversationId]);

  const model = thread.conversation?.model || draftModel || models?.[0]?.name || '';
  const attached = thread.conversation ? (thread.conversation.knowledge_base_ids ?? []) : draftBases;

  const attach = async (ids: string[]) => {
    if (thread.conversation) await controls.update({ knowledge_base_ids: ids });
    else setDraftBases(ids);
  };

  // Follow the answer down while the reader is at the bottom.
  const scroller = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);

  const pickModel = (name: string) => {
    lastPickedModel = name;
    setDraftModel(name);
    setModelError(null);
    if (thread.conversation) controls.update({ model: name }).catch((err: unknown) => setModelError(toApiError(err)));
  };

  /** Sends from the composer; a new chat is created on the server first. */
  const send = async (text: string) => {
    atBottom.current = true;
    if (!thread.conversation) {
      const created = await api.createConversation({
        ...(model ? { model } : {}),
        ...(draftBases.length > 0 ? { knowledge_base_ids: draftBases } : {}),
      });
      controls.adopt(created);
      navigate(`/chat/${created.id}`);
      reloadList();
    }
    await controls.send(text, model || undefined);
  };

  useEffect(() => {
    atBottom.current = true;
    setActionError(null);
  }, [conversationId]);

  const startAction = (task: Promise<void>) => {
    atBottom.current = true;
    setActionError(null);
    task.catch((err: unknown) => setActionError(toApiError(err)));
  };

  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && atBottom.current) el.scrollTop = el.scrollHeight;
  }, [thread.messages]);

  const noModels = models !== null && models.length === 0;
  const waiting = conversationId !== null && (loading || !thread.conversation);
  const disabledReason = noModels ? 'No models available yet' : undefined;
  const approvalsFor = (m: MessageView) => (live && m.id === live.messageId ? live.approvals : []);
  const liveErrorFor = (m: MessageView) =>
    live?.error && m.id === live.messageId && live.error.code === 'stream_lost' ? live.error.message : null;

  return (
    <div className="chat">
      <ConversationList activeId={conversationId} version={listVersion} />
      <section className="chat-main" aria-label="Chat">
        <ThreadHeader
          conversation={thread.conversation}
          models={models}
          model={model}
          busy={running}
          onModel={pickModel}
          onRename={(title) => controls.update({ title })}
          onDeleted={() => {
            reloadList();
            navigate('/chat', { replace: true });
          }}
          bases={bases}
          basesError={basesError}
          onLoadBases={loadBases}
          attached={attached}
          onAttach={attach}
        />
        <FormError error={modelsError ?? modelError} />
        <div
          className="chat-messages"
          ref={scroller}
          onScroll={(e) => {
            const el = e.currentTarget;
            atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
          }}
        >
          {loadError ? (
            <div className="chat-empty">
              <FormError error={loadError} />
              <p>
                <Link to="/chat">Start a new chat</Link>
              </p>
            </div>
          ) : waiting ? (
            <p className="chat-empty muted">Loading…</p>
          ) : thread.messages.length === 0 ? (
            <div className="chat-empty">
              {noModels ? (
                <p className="card">
                  No models are available yet.{' '}
                  {user?.role === 'admin' ? (
                    <>
                      Add a provider under <Link to="/admin/providers">Admin › Providers</Link> and sync its models.
                    </>
                  ) : (
                    'Ask an administrator to add a provider.'
                  )}
                </p>
              ) : (
                <p className="muted">Ask anything. Answers stream in as they are written; you can stop, edit and regenerate.</p>
              )}
            </div>
          ) : (
            <div className="message-list">
              {thread.messages.map((m) => (
                <MessageItem
                  key={m.id}
                  message={m}
                  busy={running}
                  approvals={approvalsFor(m)}
                  liveError={liveErrorFor(m)}
                  onEdit={(message, text) => startAction(controls.edit(message, text, model || undefined))}
                  onRegenerate={(message) => startAction(controls.regenerate(message, model || undefined))}
                  onSwitch={controls.switchBranch}
                  onAnswer={controls.answerApproval}
                />
              ))}
            </div>
          )}
        </div>
        {actionError ? (
          <div className="chat-notice">
            <FormError error={actionError} />
          </div>
        ) : null}
        <Composer
          disabled={noModels || waiting || !model || loadError !== null}
          disabledReason={disabledReason}
          running={running}
          canStop={Boolean(live?.runId)}
          onSend={send}
          onStop={controls.stop}
        />
      </section>
    </div>
  );
}
