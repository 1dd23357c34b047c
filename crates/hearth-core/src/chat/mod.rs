//! Conversations and streaming answers. Every answer is a server-side run (see [`runs`]) that
//! goes on when the client disconnects; its events can be read again from any sequence number.
//! Titles and message contents are encrypted with the owner's key before they are stored.

pub mod api;
pub mod config;
pub mod content;
mod context;
mod direct;
mod engine;
mod remember;
pub mod retrieval;
pub mod runs;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::{Stream, StreamExt as _};
use hearth_llm::Role;
use hearth_store::ids::{ConversationId, MessageId, RunId, UserId};
use hearth_store::{NewMessage, Sealed, Store, Timestamp};
use hearth_tools::Registry;

use crate::access::{self, Owned, Principal};
use crate::crypto::{Binding, Crypto};
use crate::error::{CoreError, Result};
use crate::providers::Providers;
use api::{
    Conversation, ConversationDetail, CreateConversationRequest, MessageRole, MessageStatus,
    MessageView, RegenerateRequest, RunEvent, RunStarted, RunStatus, SendMessageRequest,
    UpdateConversationRequest,
};
pub use config::{ChatConfig, ToolPolicy};
use content::Content;
use runs::{LiveRun, Published, RunHub};

const TITLE_MAX: usize = 200;
const INTERRUPTED: &str = "the server stopped while this answer was being written";
/// How often an instance records that it is alive.
pub const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(15);
/// An instance silent this long is taken as stopped, and its runs as interrupted.
const INSTANCE_STALE_MS: i64 = 60_000;

fn alive_since() -> Timestamp {
    Timestamp::from_millis(Timestamp::now().millis() - INSTANCE_STALE_MS)
}
const DEFAULT_TITLE: &str = "New chat";
const LIST_LIMIT: i64 = 500;
/// Messages scanned (newest first) when searching a user's conversations.
const SEARCH_MESSAGES: i64 = 5000;
/// Messages read and decrypted at a time while searching (bounds a search's memory).
const SEARCH_PAGE: i64 = 200;

impl Owned for hearth_store::Conversation {
    fn owner(&self) -> UserId {
        self.user_id
    }
    const KIND: &'static str = "conversation";
}

impl Owned for hearth_store::Run {
    fn owner(&self) -> UserId {
        self.user_id
    }
    const KIND: &'static str = "run";
}

impl Owned for Arc<LiveRun> {
    fn owner(&self) -> UserId {
        self.owner
    }
    const KIND: &'static str = "run";
}

/// The chat service.
#[derive(Clone)]
pub struct Chat {
    store: Store,
    crypto: Crypto,
    providers: Providers,
    tools: Arc<Registry>,
    config: Arc<ChatConfig>,
    hub: RunHub,
    /// Searches scanning at once (decrypting is CPU work, done off the async threads).
    search_slots: Arc<tokio::sync::Semaphore>,
    recorder: crate::usage::Recorder,
    /// The daily token quota, by reservation.
    quota: crate::usage::Quota,
    /// This process among the instances sharing the store; runs carry it.
    instance: Arc<str>,
    /// Knowledge bases to retrieve from, when the server has them.
    knowledge: Option<crate::knowledge::Knowledge>,
    /// What the assistant remembers about users, when enabled.
    memories: Option<crate::memory::Memories>,
}

/// Where a new answer goes.
struct AnswerPlan {
    conversation: hearth_store::Conversation,
    /// The user message to insert first, if any.
    user_message: Option<NewMessage>,
    /// The message the answer replies to.
    parent: MessageId,
    model: Option<String>,
    tools: Option<Vec<String>>,
    /// The conversation's messages as the caller already read them.
    messages: Vec<hearth_store::Message>,
    /// A new title (sealed) to write with the messages: the first message names the conversation.
    title_enc: Option<String>,
}

impl Chat {
    /// The service.
    pub fn new(
        store: Store,
        crypto: Crypto,
        providers: Providers,
        tools: Registry,
        config: ChatConfig,
        recorder: crate::usage::Recorder,
    ) -> Self {
        Self {
            recorder,
            quota: crate::usage::Quota::new(store.clone(), config.daily_token_quota),
            instance: uuid::Uuid::now_v7().to_string().into(),
            store,
            crypto,
            providers,
            tools: Arc::new(tools),
            config: Arc::new(config),
            hub: RunHub::default(),
            search_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            knowledge: None,
            memories: None,
        }
    }

    /// Adds relevant memories to answers and offers the `memory_save` tool (when
    /// `memory.enabled`).
    pub fn with_memory(mut self, memories: crate::memory::Memories) -> Self {
        if memories.settings().enabled {
            self.memories = Some(memories);
        }
        self
    }

    /// Lets answers retrieve from knowledge bases and offers the `kb_search` tool.
    pub fn with_knowledge(mut self, knowledge: crate::knowledge::Knowledge) -> Self {
        self.knowledge = Some(knowledge);
        self
    }

    /// Names of the tools answers may use: the registry's and, with knowledge, `kb_search`.
    fn tool_names(&self) -> Vec<String> {
        let mut names = self.tools.names();
        if self.knowledge.is_some() {
            names.push(retrieval::KB_SEARCH.to_owned());
        }
        if self.memories.is_some() {
            names.push(remember::MEMORY_SAVE.to_owned());
        }
        names
    }

    async fn attach_knowledge(
        &self,
        principal: &Principal,
        conv: ConversationId,
        ids: &[hearth_store::ids::KnowledgeBaseId],
    ) -> Result<hearth_store::Conversation> {
        let Some(knowledge) = &self.knowledge else {
            return Err(CoreError::invalid(
                "knowledge_base_ids",
                "knowledge bases are not available on this server",
            ));
        };
        let ids = knowledge.owned_ids(principal, ids).await?;
        let json = serde_json::to_string(&ids).map_err(|e| CoreError::other(e.to_string()))?;
        Ok(self.store.set_conversation_knowledge(conv, &json).await?)
    }

    /// This instance's id among those sharing the store.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Runs in progress on this instance.
    pub fn hub(&self) -> &RunHub {
        &self.hub
    }

    /// The settings.
    pub fn config(&self) -> &ChatConfig {
        &self.config
    }

    /// Registers this instance and fails the answers a stopped process left streaming: with
    /// SQLite (one process) every run of another instance, with PostgreSQL (several instances)
    /// those of instances that stopped beating. Call once at start, then [`Chat::heartbeat`].
    pub async fn recover(&self) -> Result<u64> {
        self.store.heartbeat_instance(&self.instance).await?;
        let only_process = self.store.backend() == hearth_store::Backend::Sqlite;
        Ok(self
            .store
            .fail_orphaned_runs(
                INTERRUPTED,
                alive_since(),
                only_process.then_some(&*self.instance),
            )
            .await?)
    }

    /// Tells other instances this one is alive and fails runs of instances that are not.
    /// Call every [`HEARTBEAT_EVERY`].
    pub async fn heartbeat(&self) -> Result<u64> {
        self.store.heartbeat_instance(&self.instance).await?;
        Ok(self
            .store
            .fail_orphaned_runs(INTERRUPTED, alive_since(), None)
            .await?)
    }

    fn seal_title(&self, user: UserId, id: ConversationId, title: &str) -> Result<String> {
        let at = Binding::user(Sealed::ConversationTitle, id, user);
        self.crypto.encrypt(&at, title)
    }

    fn open_title(&self, c: &hearth_store::Conversation) -> Result<String> {
        let at = Binding::user(Sealed::ConversationTitle, c.id, c.user_id);
        self.crypto.decrypt(&at, &c.title_enc)
    }

    fn seal_content(&self, user: UserId, id: MessageId, content: &Content) -> Result<String> {
        let json = serde_json::to_string(content).map_err(|e| CoreError::other(e.to_string()))?;
        let at = Binding::user(Sealed::MessageContent, id, user);
        self.crypto.encrypt(&at, &json)
    }

    fn open_content(&self, user: UserId, id: MessageId, stored: &str) -> Result<Content> {
        open_content(&self.crypto, user, id, stored)
    }

    fn conversation_view(&self, c: &hearth_store::Conversation) -> Result<Conversation> {
        Ok(Conversation {
            id: c.id,
            title: self.open_title(c)?,
            model: c.model.clone(),
            knowledge_base_ids: serde_json::from_str(&c.knowledge_base_ids).unwrap_or_default(),
            created_at: c.created_at.to_datetime(),
            updated_at: c.updated_at.to_datetime(),
        })
    }

    async fn owned_conversation(
        &self,
        principal: &Principal,
        id: ConversationId,
    ) -> Result<hearth_store::Conversation> {
        access::owned(principal, self.store.find_conversation(id).await?)
    }

    /// The caller's conversation and all its messages, read at once (the messages are only
    /// looked at once the conversation is known to be the caller's).
    async fn conversation_and_messages(
        &self,
        principal: &Principal,
        id: ConversationId,
    ) -> Result<(hearth_store::Conversation, Vec<hearth_store::Message>)> {
        let (conv, all) = tokio::join!(
            self.owned_conversation(principal, id),
            self.store.list_messages(id)
        );
        Ok((conv?, all?))
    }

    /// Starts a conversation.
    pub async fn create(
        &self,
        principal: &Principal,
        req: CreateConversationRequest,
    ) -> Result<Conversation> {
        let title = match req.title.as_deref() {
            Some(t) => crate::input::text("title", t, TITLE_MAX)?,
            None => DEFAULT_TITLE.to_owned(),
        };
        let model = match req.model.as_deref() {
            Some(m) => Some(self.providers.resolve(principal, m).await?.model.name),
            None => None,
        };
        if let (Some(ids), Some(knowledge)) = (&req.knowledge_base_ids, &self.knowledge) {
            // Checked before anything is stored.
            knowledge.owned_ids(principal, ids).await?;
        }
        let owner = access::list_scope(principal);
        let id = ConversationId::new();
        let mut row = self
            .store
            .create_conversation(
                id,
                owner,
                &self.seal_title(owner, id, &title)?,
                model.as_deref(),
            )
            .await?;
        if let Some(ids) = &req.knowledge_base_ids {
            row = self.attach_knowledge(principal, row.id, ids).await?;
        }
        self.conversation_view(&row)
    }

    /// The caller's conversations, most recent first; with `q`, those whose title or messages
    /// contain it (case-insensitive).
    pub async fn list(&self, principal: &Principal, q: Option<&str>) -> Result<Vec<Conversation>> {
        let owner = access::list_scope(principal);
        let rows = self.store.list_conversations(owner, LIST_LIMIT).await?;
        let mut views = Vec::with_capacity(rows.len());
        for row in &rows {
            views.push(self.conversation_view(row)?);
        }
        let needle = q
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_lowercase);
        let Some(needle) = needle else {
            return Ok(views);
        };
        // Contents are encrypted, so search decrypts the caller's recent messages in memory.
        let mut hits: HashSet<ConversationId> = views
            .iter()
            .filter(|c| c.title.to_lowercase().contains(&needle))
            .map(|c| c.id)
            .collect();
        // Page by page, each page decrypted and scanned on a blocking thread, at most a few
        // searches at once: a search holds one page in memory and never stalls the runtime.
        let _slot = self
            .search_slots
            .acquire()
            .await
            .map_err(|_| CoreError::other("search is shutting down"))?;
        let needle: Arc<str> = needle.into();
        let (mut before, mut scanned) = (None, 0);
        while scanned < SEARCH_MESSAGES {
            let page = self
                .store
                .list_user_messages(owner, before, SEARCH_PAGE.min(SEARCH_MESSAGES - scanned))
                .await?;
            let Some(last) = page.last() else { break };
            before = Some((last.created_at, last.id));
            let full = page.len() as i64 == SEARCH_PAGE;
            scanned += page.len() as i64;
            let (crypto, needle, known) = (self.crypto.clone(), needle.clone(), hits.clone());
            let found = tokio::task::spawn_blocking(move || {
                scan_messages(&crypto, owner, &needle, &known, page)
            })
            .await
            .map_err(|e| CoreError::other(format!("search failed: {e}")))?;
            hits.extend(found);
            if !full {
                break;
            }
        }
        Ok(views.into_iter().filter(|c| hits.contains(&c.id)).collect())
    }

    /// A conversation with the branch being shown.
    pub async fn get(
        &self,
        principal: &Principal,
        id: ConversationId,
    ) -> Result<ConversationDetail> {
        let conv = self.owned_conversation(principal, id).await?;
        self.detail(&conv).await
    }

    async fn detail(&self, conv: &hearth_store::Conversation) -> Result<ConversationDetail> {
        let all = self.store.list_messages(conv.id).await?;
        let path = branch(&all, conv.active_leaf_id);
        let mut messages = Vec::with_capacity(path.len());
        for m in path {
            messages.push(self.message_view(conv.user_id, m, &all).await?);
        }
        Ok(ConversationDetail {
            conversation: self.conversation_view(conv)?,
            messages,
        })
    }

    async fn message_view(
        &self,
        owner: UserId,
        m: &hearth_store::Message,
        all: &[hearth_store::Message],
    ) -> Result<MessageView> {
        let content = self.open_content(owner, m.id, &m.content_enc)?;
        let status = MessageStatus::from_stored(&m.status);
        let run_id = if status == MessageStatus::Streaming {
            self.store.find_run_for_message(m.id).await?
        } else {
            None
        };
        Ok(MessageView {
            id: m.id,
            conversation_id: m.conversation_id,
            parent_id: m.parent_id,
            role: match m.role.as_str() {
                "system" => MessageRole::System,
                "assistant" => MessageRole::Assistant,
                _ => MessageRole::User,
            },
            content: content.plain_text(),
            parts: content.parts,
            sources: content.sources,
            model: m.model.clone(),
            status,
            error: m.error.clone(),
            created_at: m.created_at.to_datetime(),
            sibling_ids: all
                .iter()
                .filter(|o| o.parent_id == m.parent_id)
                .map(|o| o.id)
                .collect(),
            run_id,
        })
    }

    /// Renames, changes the model, or switches the branch shown.
    pub async fn update(
        &self,
        principal: &Principal,
        id: ConversationId,
        req: UpdateConversationRequest,
    ) -> Result<ConversationDetail> {
        let conv = self.owned_conversation(principal, id).await?;
        let title = req
            .title
            .as_deref()
            .map(|t| crate::input::text("title", t, TITLE_MAX))
            .transpose()?
            .map(|t| self.seal_title(conv.user_id, conv.id, &t))
            .transpose()?;
        let model = match req.model.as_deref() {
            Some(m) => Some(self.providers.resolve(principal, m).await?.model.name),
            None => None,
        };
        let leaf = match req.active_message_id {
            None => None,
            Some(mid) => {
                let all = self.store.list_messages(conv.id).await?;
                if !all.iter().any(|m| m.id == mid) {
                    return Err(CoreError::NotFound(
                        "message of this conversation (active_message_id)",
                    ));
                }
                Some(latest_leaf(&all, mid))
            }
        };
        if let (Some(ids), Some(knowledge)) = (&req.knowledge_base_ids, &self.knowledge) {
            knowledge.owned_ids(principal, ids).await?;
        }
        let mut conv = self
            .store
            .update_conversation(conv.id, title.as_deref(), model.as_deref(), leaf)
            .await?;
        if let Some(ids) = &req.knowledge_base_ids {
            conv = self.attach_knowledge(principal, conv.id, ids).await?;
        }
        self.detail(&conv).await
    }

    /// Deletes a conversation, stopping its runs.
    pub async fn delete(&self, principal: &Principal, id: ConversationId) -> Result<()> {
        let conv = self.owned_conversation(principal, id).await?;
        self.hub.cancel_conversation(conv.id);
        self.store.delete_conversation(conv.id).await?;
        Ok(())
    }

    /// The branch shown, as Markdown.
    pub async fn export_markdown(
        &self,
        principal: &Principal,
        id: ConversationId,
    ) -> Result<String> {
        let detail = self.get(principal, id).await?;
        let mut out = format!("# {}\n\n", detail.conversation.title);
        for m in &detail.messages {
            let who = match m.role {
                MessageRole::User => "User".to_owned(),
                MessageRole::System => "System".to_owned(),
                MessageRole::Assistant => match &m.model {
                    Some(model) => format!("Assistant ({model})"),
                    None => "Assistant".to_owned(),
                },
            };
            out.push_str(&format!("## {who}\n\n"));
            for part in &m.parts {
                match part {
                    content::Part::Text { text } => {
                        out.push_str(text);
                        out.push_str("\n\n");
                    }
                    content::Part::ToolCall {
                        name,
                        arguments,
                        output,
                        ..
                    } => {
                        out.push_str(&format!(
                            "> Tool `{name}` called with `{arguments}` → {}\n\n",
                            output.as_deref().unwrap_or("(no result)")
                        ));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Sends a user message and starts the answer. The run goes on whoever listens.
    pub async fn send(
        &self,
        principal: &Principal,
        id: ConversationId,
        req: SendMessageRequest,
    ) -> Result<(RunStarted, Arc<LiveRun>)> {
        if req.content.chars().count() > self.config.max_message_chars {
            return Err(CoreError::TooLarge {
                field: "content".into(),
                message: format!(
                    "is longer than {} characters",
                    self.config.max_message_chars
                ),
            });
        }
        if req.content.trim().is_empty() {
            return Err(CoreError::invalid("content", "must not be empty"));
        }
        let (conv, all) = self.conversation_and_messages(principal, id).await?;
        let parent = match req.parent_id {
            Some(p) if all.iter().any(|m| m.id == p) => Some(p),
            Some(_) => {
                return Err(CoreError::NotFound(
                    "message of this conversation (parent_id)",
                ))
            }
            None if req.edit_root => None,
            None => conv.active_leaf_id,
        };
        if let Some(p) = parent {
            if all.iter().any(|m| m.id == p && m.role == "user") {
                return Err(CoreError::invalid(
                    "parent_id",
                    "must be an assistant message (to edit a message, answer its parent)",
                ));
            }
        }
        let user_id = MessageId::new();
        let user_message = NewMessage {
            id: user_id,
            conversation_id: conv.id,
            parent_id: parent,
            role: "user".into(),
            content_enc: self.seal_content(
                conv.user_id,
                user_id,
                &Content::text(req.content.clone()),
            )?,
            model: None,
            status: MessageStatus::Complete.as_str().into(),
        };
        // The first message names an untitled conversation.
        let mut title_enc = None;
        if all.is_empty() && self.open_title(&conv)? == DEFAULT_TITLE {
            let title: String = req.content.split_whitespace().collect::<Vec<_>>().join(" ");
            let title: String = title.chars().take(60).collect();
            if !title.is_empty() {
                title_enc = Some(self.seal_title(conv.user_id, conv.id, &title)?);
            }
        }
        self.start(
            principal,
            AnswerPlan {
                conversation: conv,
                user_message: Some(user_message),
                parent: user_id,
                model: req.model,
                tools: req.tools,
                messages: all,
                title_enc,
            },
        )
        .await
    }

    /// Writes a new answer to the user message `message_id` (or, for an assistant message, to
    /// the user message it answered); the old answer stays as a sibling.
    pub async fn regenerate(
        &self,
        principal: &Principal,
        id: ConversationId,
        message_id: MessageId,
        req: RegenerateRequest,
    ) -> Result<(RunStarted, Arc<LiveRun>)> {
        let (conv, all) = self.conversation_and_messages(principal, id).await?;
        let target = all
            .iter()
            .find(|m| m.id == message_id)
            .ok_or(CoreError::NotFound("message"))?;
        let parent = if target.role == "user" {
            target.id
        } else {
            target
                .parent_id
                .ok_or_else(|| CoreError::invalid("message_id", "has no user message to answer"))?
        };
        self.start(
            principal,
            AnswerPlan {
                conversation: conv,
                user_message: None,
                parent,
                model: req.model,
                tools: req.tools,
                messages: all,
                title_enc: None,
            },
        )
        .await
    }

    async fn start(
        &self,
        principal: &Principal,
        plan: AnswerPlan,
    ) -> Result<(RunStarted, Arc<LiveRun>)> {
        let conv = &plan.conversation;
        let model_name = plan
            .model
            .clone()
            .or_else(|| conv.model.clone())
            .ok_or_else(|| {
                // The request is fine; the conversation's state is what lacks the model.
                CoreError::Conflict {
                    field: Some("model".into()),
                    message: "model is required (the conversation has none)".into(),
                }
            })?;
        let resolved = self.providers.resolve(principal, &model_name).await?;
        let tools = match &plan.tools {
            Some(names) => {
                let known = self.tool_names();
                for (i, n) in names.iter().enumerate() {
                    if !known.contains(n) {
                        return Err(CoreError::invalid(
                            format!("tools[{i}]"),
                            format!("`{n}` is not a known tool"),
                        ));
                    }
                }
                names.clone()
            }
            None => self.tool_names(),
        };
        // A key without knowledge's scope is not offered the tool that searches it.
        let reads_knowledge = principal.may(access::Area::Knowledge, true).is_ok();
        let tools: Vec<String> = tools
            .into_iter()
            .filter(|t| self.config.policy(t) != ToolPolicy::Deny)
            .filter(|t| reads_knowledge || t != retrieval::KB_SEARCH)
            .collect();

        // History: the branch from the top to the parent, plus the new user message.
        let all = &plan.messages;
        let parent_in_store = all.iter().any(|m| m.id == plan.parent);
        let mut history = Vec::new();
        if !self.config.system_prompt.trim().is_empty() {
            history.push(hearth_llm::Message::text(
                Role::System,
                self.config.system_prompt.clone(),
            ));
        }
        let mut chain = Vec::new();
        let mut cursor = if parent_in_store {
            Some(plan.parent)
        } else {
            plan.user_message.as_ref().and_then(|m| m.parent_id)
        };
        let by_id: HashMap<MessageId, &hearth_store::Message> =
            all.iter().map(|m| (m.id, m)).collect();
        while let Some(id) = cursor {
            let Some(m) = by_id.get(&id) else { break };
            chain.push(*m);
            cursor = m.parent_id;
        }
        chain.reverse();
        for m in chain {
            let role = match m.role.as_str() {
                "assistant" => Role::Assistant,
                "system" => Role::System,
                _ => Role::User,
            };
            history.extend(
                self.open_content(conv.user_id, m.id, &m.content_enc)?
                    .to_llm(role),
            );
        }
        if let Some(um) = &plan.user_message {
            history.extend(
                self.open_content(conv.user_id, um.id, &um.content_enc)?
                    .to_llm(Role::User),
            );
        }
        let knowledge_base_ids: Vec<hearth_store::ids::KnowledgeBaseId> =
            serde_json::from_str(&conv.knowledge_base_ids).unwrap_or_default();
        let (sources, remembered) = tokio::join!(
            self.retrieve_for(principal, &knowledge_base_ids, &history),
            self.remembered_for(conv.user_id, &history)
        );
        // Memories and passages are quoted data in the user's turn, never system text.
        let question = history
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.clone())
            .unwrap_or_default();
        let at = usize::from(!self.config.system_prompt.trim().is_empty());
        context::attach(&mut history, at, &remembered, &sources);
        // Untrusted: passages now, tool output replayed from earlier turns, or attached
        // knowledge (earlier answers may repeat what its passages said).
        let read_untrusted = !sources.is_empty()
            || !knowledge_base_ids.is_empty()
            || history.iter().any(|m| m.role == Role::Tool);
        if let Some(window) = resolved.model.context_length {
            fit_context(&mut history, window);
        }

        let run_id = RunId::new();
        let message_id = MessageId::new();
        let mut to_insert = Vec::new();
        if let Some(um) = plan.user_message.clone() {
            to_insert.push(um);
        }
        to_insert.push(NewMessage {
            id: message_id,
            conversation_id: conv.id,
            parent_id: Some(plan.parent),
            role: "assistant".into(),
            content_enc: self.seal_content(conv.user_id, message_id, &Content::default())?,
            model: Some(resolved.model.name.clone()),
            status: MessageStatus::Streaming.as_str().into(),
        });
        let started = RunStarted {
            run_id,
            conversation_id: conv.id,
            message_id,
            user_message_id: plan.user_message.as_ref().map(|m| m.id),
            model: resolved.model.name.clone(),
        };
        // The first call's spending is reserved against the daily quota for the whole run.
        let reservation = self
            .quota
            .reserve(conv.user_id, self.call_estimate(&history, None))
            .await?;
        let live = Arc::new(LiveRun::new(run_id, conv.user_id, conv.id));
        if !self
            .hub
            .insert_within(live.clone(), self.config.max_runs_per_user)
        {
            return Err(CoreError::QuotaExceeded {
                message: format!(
                    "you have {} answers in progress, the most one user may have at once \
                     (chat.max_runs_per_user); wait for one to finish or stop one",
                    self.config.max_runs_per_user
                ),
                retry_after_secs: 5,
            });
        }
        live.publish(api::RunEventKind::RunStarted {
            run_id,
            conversation_id: conv.id,
            message_id,
            user_message_id: started.user_message_id,
            model: started.model.clone(),
        });
        // Tools that act for the user are bound to this run's principal.
        let sources = Arc::new(std::sync::Mutex::new(sources));
        let mut bound: Vec<Arc<dyn hearth_tools::Tool>> = Vec::new();
        if let Some(knowledge) = &self.knowledge {
            bound.push(Arc::new(retrieval::KbSearch {
                knowledge: knowledge.clone(),
                principal: principal.clone(),
                kbs: knowledge_base_ids,
                sources: sources.clone(),
            }));
        }
        if let Some(memories) = &self.memories {
            bound.push(Arc::new(remember::MemorySave {
                memories: memories.clone(),
                principal: principal.clone(),
                conversation: conv.id,
            }));
        }
        // The model is asked now, while the messages and the run are written: the first token
        // need not wait for those writes. The run task writes nothing until they are done.
        let (stored_tx, stored_rx) = tokio::sync::watch::channel(None);
        let job = engine::Job {
            stored: stored_rx,
            chat: self.clone(),
            run: live.clone(),
            owner: conv.user_id,
            conversation_id: conv.id,
            parent_id: plan.parent,
            message_id,
            resolved,
            history,
            registry: Arc::new(self.tools.with(bound)),
            tools,
            principal: principal.clone(),
            sources,
            read_untrusted,
            question,
            _reservation: reservation,
        };
        let (chat, run, conversation_id) = (self.clone(), live.clone(), conv.id);
        tokio::spawn(async move {
            // Supervised: should the run task panic, its subscribers still get an end.
            if tokio::spawn(job.execute()).await.is_err() {
                chat.abandon(&run, conversation_id, message_id).await;
            }
        });
        // A task of its own, so a client that goes away mid-request leaves the rows whole and
        // the run going, as it would after the request.
        let writes = {
            let (store, instance, run) = (self.store.clone(), self.instance.clone(), live.clone());
            let (title, owner, conversation) = (plan.title_enc.clone(), conv.user_id, conv.id);
            tokio::spawn(async move {
                let written = async {
                    if let Some(title) = &title {
                        store
                            .update_conversation(conversation, Some(title), None, None)
                            .await?;
                    }
                    store.append_messages(&to_insert).await?;
                    store
                        .create_run(run_id, owner, conversation, message_id, &instance)
                        .await
                }
                .await;
                if written.is_err() {
                    // Nothing of this answer is kept: the run ends unseen and writes nothing.
                    run.cancel.cancel();
                }
                stored_tx.send_replace(Some(written.is_ok()));
                written
            })
        };
        match writes.await {
            Ok(Ok(())) => Ok((started, live)),
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(CoreError::Other(Box::new(e))),
        }
    }

    /// Memories relevant to the last user message of `history`; none when memory is off or
    /// fails (the answer goes on without them).
    async fn remembered_for(&self, user: UserId, history: &[hearth_llm::Message]) -> Vec<String> {
        let Some(memories) = &self.memories else {
            return Vec::new();
        };
        let Some(query) = history.iter().rev().find(|m| m.role == Role::User) else {
            return Vec::new();
        };
        match memories.relevant(user, &query.content).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "could not read memories; answering without them");
                Vec::new()
            }
        }
    }

    /// Passages of the attached knowledge bases for the last user message of `history`. A
    /// failed search leaves the answer without them rather than failing it.
    async fn retrieve_for(
        &self,
        principal: &Principal,
        kbs: &[hearth_store::ids::KnowledgeBaseId],
        history: &[hearth_llm::Message],
    ) -> Vec<content::Source> {
        let (Some(knowledge), false) = (&self.knowledge, kbs.is_empty()) else {
            return Vec::new();
        };
        if principal.may(access::Area::Knowledge, true).is_err() {
            return Vec::new();
        }
        let Some(query) = history.iter().rev().find(|m| m.role == Role::User) else {
            return Vec::new();
        };
        let top_k = knowledge.settings().chat_top_k;
        match retrieval::retrieve(knowledge, principal, kbs, &query.content, top_k).await {
            Ok(hits) => retrieval::sources(hits, 1),
            Err(e) => {
                tracing::warn!(error = %e, "retrieval for an answer failed; answering without it");
                Vec::new()
            }
        }
    }

    /// Ends a run whose task died: the message is marked failed, subscribers get `error` and
    /// `done`, and the run leaves the hub.
    async fn abandon(&self, run: &Arc<LiveRun>, conversation: ConversationId, message: MessageId) {
        tracing::error!(run = %run.id, "a run task panicked");
        let reason = "the answer failed unexpectedly";
        if let Err(e) = self
            .store
            .update_message(message, None, MessageStatus::Error.as_str(), Some(reason))
            .await
        {
            tracing::warn!(run = %run.id, error = %e, "could not mark the message failed");
        }
        run.publish(api::RunEventKind::Error {
            code: "internal".into(),
            message: reason.into(),
        });
        let all = self
            .store
            .list_messages(conversation)
            .await
            .unwrap_or_default();
        let view = match all.iter().find(|m| m.id == message) {
            Some(m) => self.message_view(run.owner, m, &all).await.ok(),
            None => None,
        };
        if let Some(view) = view {
            run.publish(api::RunEventKind::Done {
                status: RunStatus::Error,
                message: Box::new(view),
            });
        }
        self.close_run(run, RunStatus::Error).await;
    }

    /// Stores a run's event log and how it ended, then lets it leave the hub. Stored first:
    /// a subscriber that misses the hub finds the stored log.
    async fn close_run(&self, run: &Arc<LiveRun>, status: RunStatus) {
        let events = serde_json::to_string(&run.events()).unwrap_or_else(|_| "[]".into());
        let at = Binding::user(Sealed::RunEvents, run.id, run.owner);
        let saved = match self.crypto.encrypt(&at, &events) {
            Ok(enc) => self
                .store
                .finish_run(run.id, status.as_str(), &enc)
                .await
                .map_err(CoreError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = saved {
            tracing::warn!(run = %run.id, error = %e, "could not store the run's events");
        }
        self.hub.remove(run.id);
        run.finish();
    }

    /// What one model call may spend: its prompt (estimated from its characters) and its
    /// output, capped at `chat.max_output_tokens`.
    fn call_estimate(&self, history: &[hearth_llm::Message], max_tokens: Option<u32>) -> u64 {
        let chars = engine::request_history_chars(history);
        let output = max_tokens.map_or(self.config.max_output_tokens, |m| {
            m.min(self.config.max_output_tokens)
        });
        crate::usage::estimate(chars, 0).input_tokens + u64::from(output)
    }

    /// Events of a run after `after`: live ones as they come, or the stored log of a finished
    /// run. With `conversation`, the run must belong to it.
    pub async fn events(
        &self,
        principal: &Principal,
        conversation: Option<ConversationId>,
        run_id: RunId,
        after: u64,
    ) -> Result<std::pin::Pin<Box<dyn Stream<Item = Arc<Published>> + Send>>> {
        let in_conversation = |c: ConversationId| conversation.is_none_or(|want| want == c);
        if let Some(live) = self
            .hub
            .get(run_id)
            .filter(|r| in_conversation(r.conversation))
        {
            let live = access::owned(principal, Some(live))?;
            return Ok(Box::pin(live.subscribe(after)));
        }
        let run = access::owned(
            principal,
            self.store
                .find_run(run_id)
                .await?
                .filter(|r| in_conversation(r.conversation_id)),
        )?;
        let events: Vec<RunEvent> = match (&run.events_enc, RunStatus::from_stored(&run.status)) {
            (Some(enc), _) => serde_json::from_str(
                &self
                    .crypto
                    .decrypt(&Binding::user(Sealed::RunEvents, run.id, run.user_id), enc)?,
            )
            .map_err(|e| CoreError::other(format!("stored run events: {e}")))?,
            // The run ended between the two lookups; its log is being written.
            (None, RunStatus::Running) => match self.hub.get(run_id) {
                Some(live) => return Ok(Box::pin(live.subscribe(after))),
                None => Vec::new(),
            },
            (None, _) => Vec::new(),
        };
        let items: Vec<Arc<Published>> = events
            .into_iter()
            .filter(|e| e.seq > after)
            .map(|event| {
                let json = serde_json::to_string(&event).unwrap_or_else(|_| "{}".into());
                Arc::new(Published { event, json })
            })
            .collect();
        Ok(Box::pin(futures_util::stream::iter(items)))
    }

    /// Waits for the run to end and returns the finished message.
    pub async fn wait(&self, principal: &Principal, run_id: RunId) -> Result<MessageView> {
        let mut events = self.events(principal, None, run_id, 0).await?;
        while let Some(p) = events.next().await {
            if let api::RunEventKind::Done { message, .. } = &p.event.kind {
                return Ok((**message).clone());
            }
        }
        Err(CoreError::other("the run ended without a done event"))
    }

    /// Stops a run; stopping one that already ended is not an error.
    pub async fn stop(&self, principal: &Principal, run_id: RunId) -> Result<RunStatus> {
        if let Some(live) = self.hub.get(run_id) {
            let live = access::owned(principal, Some(live))?;
            live.cancel.cancel();
            return Ok(RunStatus::Stopped);
        }
        let run = access::owned(principal, self.store.find_run(run_id).await?)?;
        Ok(RunStatus::from_stored(&run.status))
    }

    /// Answers a pending tool approval of the caller's run.
    pub async fn approve(
        &self,
        principal: &Principal,
        run_id: RunId,
        call_id: &str,
        approved: bool,
    ) -> Result<()> {
        let live = access::owned(principal, self.hub.get(run_id))?;
        if live.answer(call_id, approved) {
            Ok(())
        } else {
            Err(CoreError::NotFound("pending approval"))
        }
    }
}

/// Tokens kept free for the answer when a history is cut to fit a context window.
const ANSWER_RESERVE_TOKENS: i64 = 1024;

/// Drops the oldest turns (never the system prompt nor the last message) until the estimated
/// size fits `window` tokens less room for the answer. A tool result is dropped with the
/// assistant turn that asked for it, so no orphaned result is left.
fn fit_context(history: &mut Vec<hearth_llm::Message>, window: i64) {
    let size = |m: &hearth_llm::Message| {
        (m.content.len()
            + m.tool_calls
                .iter()
                .map(|c| c.arguments.len())
                .sum::<usize>())
        .div_ceil(4) as i64
            + 4
    };
    let budget = (window - ANSWER_RESERVE_TOKENS).max(window / 2);
    let mut total: i64 = history.iter().map(size).sum();
    let first = usize::from(history.first().is_some_and(|m| m.role == Role::System));
    while total > budget && history.len() > first + 1 {
        let removed = history.remove(first);
        total -= size(&removed);
        while history.len() > first + 1 && history[first].role == Role::Tool {
            let orphan = history.remove(first);
            total -= size(&orphan);
        }
    }
}

/// Opens a message's sealed content (bound to the message and its owner).
fn open_content(crypto: &Crypto, user: UserId, id: MessageId, stored: &str) -> Result<Content> {
    let at = Binding::user(Sealed::MessageContent, id, user);
    let json = crypto.decrypt(&at, stored)?;
    serde_json::from_str(&json).map_err(|e| CoreError::other(format!("stored message: {e}")))
}

/// The conversations (not already in `known`) of which one of `page`'s messages contains
/// `needle` (lowercase). Blocking: decrypts every message.
fn scan_messages(
    crypto: &Crypto,
    owner: UserId,
    needle: &str,
    known: &HashSet<ConversationId>,
    page: Vec<hearth_store::Message>,
) -> HashSet<ConversationId> {
    let mut found = HashSet::new();
    for m in page {
        if known.contains(&m.conversation_id) || found.contains(&m.conversation_id) {
            continue;
        }
        // One unreadable message (an old key gone) must not fail the whole search.
        let text = match open_content(crypto, owner, m.id, &m.content_enc) {
            Ok(c) => c.plain_text(),
            Err(e) => {
                tracing::warn!(message = %m.id, error = %e, "skipping a message search cannot read");
                continue;
            }
        };
        if text.to_lowercase().contains(needle) {
            found.insert(m.conversation_id);
        }
    }
    found
}

/// The messages from the top to `leaf`, following parents.
fn branch(all: &[hearth_store::Message], leaf: Option<MessageId>) -> Vec<&hearth_store::Message> {
    let by_id: HashMap<MessageId, &hearth_store::Message> = all.iter().map(|m| (m.id, m)).collect();
    let mut path = Vec::new();
    let mut cursor = leaf;
    while let Some(id) = cursor {
        let Some(m) = by_id.get(&id) else { break };
        path.push(*m);
        cursor = m.parent_id;
        if path.len() > all.len() {
            break;
        }
    }
    path.reverse();
    path
}

/// The newest leaf under `from` (following the newest child at each step).
fn latest_leaf(all: &[hearth_store::Message], from: MessageId) -> MessageId {
    let mut current = from;
    for _ in 0..=all.len() {
        match all
            .iter()
            .filter(|m| m.parent_id == Some(current))
            .max_by_key(|m| (m.created_at, m.id))
        {
            Some(child) => current = child.id,
            None => break,
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_llm::Message;

    #[test]
    fn long_histories_are_cut_from_the_oldest_turn() {
        let long = "x".repeat(4000); // ~1000 tokens
        let mut history = vec![Message::text(Role::System, "be brief")];
        for i in 0..6 {
            history.push(Message::text(Role::User, format!("{i}{long}")));
            history.push(Message::text(Role::Assistant, format!("{i}{long}")));
        }
        history.push(Message::tool_result("c", "orphan once its call is gone"));
        history.push(Message::text(Role::User, "the question"));
        fit_context(&mut history, 4096);
        assert_eq!(history[0].role, Role::System, "the system prompt stays");
        assert_eq!(
            history.last().map(|m| m.content.as_str()),
            Some("the question")
        );
        let total: usize = history.iter().map(|m| m.content.len()).sum();
        assert!(total / 4 <= 4096, "fits: {total} chars");
        assert!(history.len() < 15);
        // A window smaller than the last message still keeps it.
        let mut one = vec![Message::text(Role::User, long.clone())];
        fit_context(&mut one, 100);
        assert_eq!(one.len(), 1);
    }
}
