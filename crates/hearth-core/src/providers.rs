//! Model providers and their models (admin), the models users may pick, and resolving a model
//! name to a ready client. Provider API keys are encrypted (system scope) before they are stored.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use hearth_llm::{AnthropicProvider, Endpoint, OpenAiProvider, Provider, Timeouts};
use hearth_store::ids::{ModelId, ProviderId};
use hearth_store::{ModelPatch, NewProvider, ProviderPatch, Sealed, Store, SyncedModel};

use crate::access::{Admin, Principal};
use crate::crypto::{Binding, Crypto, Scope};
use crate::error::{CoreError, Result};
use crate::input;

pub use hearth_api::providers::{
    Capabilities, CreateProviderRequest, ModelView, ProviderKind, ProviderView, UpdateModelRequest,
    UpdateProviderRequest, UserModel,
};
use hearth_api::providers::{ALIASES_MAX, NAME_MAX};

const URL_MAX: usize = 2000;
const KEY_MAX: usize = 4000;
const ANTHROPIC_DEFAULT_URL: &str = "https://api.anthropic.com/v1";

/// A model ready to call.
#[derive(Clone, Debug)]
pub struct ResolvedModel {
    pub model: hearth_store::Model,
    pub provider: Arc<dyn Provider>,
}

impl ResolvedModel {
    /// Cost in US dollars of a call, when the model has prices.
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> Option<f64> {
        let i = self.model.input_price_per_mtok;
        let o = self.model.output_price_per_mtok;
        if i.is_none() && o.is_none() {
            return None;
        }
        Some(
            (input_tokens as f64 * i.unwrap_or(0.0) + output_tokens as f64 * o.unwrap_or(0.0))
                / 1_000_000.0,
        )
    }
}

/// How long a read of the models and providers serves requests before it is read again. Changes
/// made through this instance apply at once; other instances' changes within this time.
const CATALOG_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// Models and providers as read from the store at `at`.
struct Catalog {
    at: std::time::Instant,
    models: Vec<hearth_store::Model>,
    providers: HashMap<ProviderId, hearth_store::Provider>,
}

/// A client and the `updated_at` of the provider row it was built from.
type CachedClient = (hearth_store::Timestamp, Arc<dyn Provider>);

/// The providers service.
#[derive(Clone)]
pub struct Providers {
    store: Store,
    crypto: Crypto,
    timeouts: Timeouts,
    /// Clients by provider with the `updated_at` of the row they were built from, so a changed
    /// key or URL (on any instance) builds a new client.
    clients: Arc<RwLock<HashMap<ProviderId, CachedClient>>>,
    /// Every request resolves a model; reading the tables each time would make the store the
    /// bottleneck of streaming.
    catalog: Arc<RwLock<Option<Arc<Catalog>>>>,
    /// The built-in models (provider kind `local`), when this process loaded any.
    local: Option<Arc<dyn Provider>>,
    /// Names of the built-in models loaded; the rows of others (a file since removed) stay
    /// stored but are not offered.
    local_loaded: Arc<HashSet<String>>,
}

/// Name of the provider row of the built-in models.
pub const LOCAL_PROVIDER_NAME: &str = "Built-in";

impl Providers {
    /// The service; `timeouts` apply to every upstream call.
    pub fn new(store: Store, crypto: Crypto, timeouts: Timeouts) -> Self {
        Self {
            store,
            crypto,
            timeouts,
            clients: Arc::default(),
            catalog: Arc::default(),
            local: None,
            local_loaded: Arc::default(),
        }
    }

    /// Serves provider kind `local` with `provider` (the built-in models of this process).
    pub fn with_local(mut self, provider: Arc<dyn Provider>) -> Self {
        self.local = Some(provider);
        self
    }

    /// Makes the built-in models available: creates the `local` provider row when models are
    /// loaded and none exists, and adds its new models. Called at start.
    pub async fn register_local(&mut self) -> Result<Vec<String>> {
        let Some(local) = self.local.clone() else {
            return Ok(Vec::new());
        };
        let listed = local
            .list_models()
            .await
            .map_err(|e| CoreError::Upstream(format!("built-in models: {e}")))?;
        self.local_loaded = Arc::new(listed.iter().map(|m| m.id.clone()).collect());
        let existing = self
            .store
            .list_providers()
            .await?
            .into_iter()
            .find(|p| p.kind == ProviderKind::Local.as_str());
        let row = match existing {
            Some(row) => row,
            None if listed.is_empty() => return Ok(Vec::new()),
            None => {
                self.store
                    .create_provider(NewProvider {
                        id: ProviderId::new(),
                        kind: ProviderKind::Local.as_str().into(),
                        name: LOCAL_PROVIDER_NAME.into(),
                        base_url: None,
                        api_key_enc: None,
                    })
                    .await?
            }
        };
        let models = self.sync_row(&row, listed).await?;
        Ok(models.into_iter().map(|m| m.name).collect())
    }

    async fn catalog(&self) -> Result<Arc<Catalog>> {
        if let Some(c) = self
            .catalog
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|c| c.at.elapsed() < CATALOG_TTL)
        {
            return Ok(c.clone());
        }
        let providers: HashMap<ProviderId, hearth_store::Provider> = self
            .store
            .list_providers()
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        let mut models = self.store.list_models(None).await?;
        // Built-in models whose file is gone (or that another instance loaded) are not offered.
        models.retain(|m| {
            providers
                .get(&m.provider_id)
                .is_none_or(|p| p.kind != ProviderKind::Local.as_str())
                || self.local_loaded.contains(&m.upstream_id)
        });
        let catalog = Arc::new(Catalog {
            at: std::time::Instant::now(),
            models,
            providers,
        });
        *self.catalog.write().unwrap_or_else(|p| p.into_inner()) = Some(catalog.clone());
        Ok(catalog)
    }

    fn invalidate(&self) {
        *self.catalog.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Adds a provider.
    pub async fn create(&self, _admin: &Admin, req: CreateProviderRequest) -> Result<ProviderView> {
        let name = input::text("name", &req.name, NAME_MAX)?;
        let base_url = match (req.kind, req.base_url.as_deref()) {
            (ProviderKind::Local, _) => {
                return Err(CoreError::invalid(
                    "kind",
                    "`local` is Hearth's built-in models provider, created at start from the models folder (`hearth models add`); use `openai` or `anthropic`",
                ))
            }
            (_, Some(url)) => Some(parse_url(url)?),
            (ProviderKind::Anthropic, None) => Some(ANTHROPIC_DEFAULT_URL.to_owned()),
            (ProviderKind::Openai, None) => {
                return Err(CoreError::invalid("base_url", "is required for `openai` providers"))
            }
        };
        let id = ProviderId::new();
        let api_key_enc = self.encrypt_key(id, req.api_key.as_deref())?;
        let row = self
            .store
            .create_provider(NewProvider {
                id,
                kind: req.kind.as_str().into(),
                name,
                base_url,
                api_key_enc,
            })
            .await
            .map_err(|e| name_conflict(e, "a provider with this name already exists"))?;
        self.invalidate();
        Ok(provider_view(row))
    }

    /// All providers.
    pub async fn list(&self, _admin: &Admin) -> Result<Vec<ProviderView>> {
        Ok(self
            .store
            .list_providers()
            .await?
            .into_iter()
            .map(provider_view)
            .collect())
    }

    /// One provider.
    pub async fn get(&self, _admin: &Admin, id: ProviderId) -> Result<ProviderView> {
        self.store
            .find_provider(id)
            .await?
            .map(provider_view)
            .ok_or(CoreError::NotFound("provider"))
    }

    /// Changes a provider.
    pub async fn update(
        &self,
        _admin: &Admin,
        id: ProviderId,
        req: UpdateProviderRequest,
    ) -> Result<ProviderView> {
        let patch = ProviderPatch {
            name: req
                .name
                .as_deref()
                .map(|n| input::text("name", n, NAME_MAX))
                .transpose()?,
            base_url: req
                .base_url
                .as_deref()
                .map(|u| parse_url(u).map(Some))
                .transpose()?,
            api_key_enc: match req.api_key.as_deref() {
                None => None,
                Some("") => Some(None),
                Some(key) => Some(self.encrypt_key(id, Some(key))?),
            },
            enabled: req.enabled,
        };
        // A stored key goes only where it was given for: moving the provider to another
        // address needs the key again (or an explicit "" to drop it), so nobody can redirect
        // it to a host of their choosing and read it there.
        if let Some(Some(new_url)) = &patch.base_url {
            let current = self
                .store
                .find_provider(id)
                .await?
                .ok_or(CoreError::NotFound("provider"))?;
            let moved = current.base_url.as_deref() != Some(new_url.as_str());
            if moved && current.api_key_enc.is_some() && req.api_key.is_none() {
                return Err(CoreError::invalid(
                    "api_key",
                    "is required when base_url changes (the stored key is not sent to a new \
                     address); give the key again, or \"\" to remove it",
                ));
            }
        }
        let row = self
            .store
            .update_provider(id, patch)
            .await
            .map_err(|e| match e {
                hearth_store::StoreError::NotFound => CoreError::NotFound("provider"),
                e => name_conflict(e, "a provider with this name already exists"),
            })?;
        self.forget(id);
        self.invalidate();
        Ok(provider_view(row))
    }

    /// Removes a provider and its models.
    pub async fn delete(&self, _admin: &Admin, id: ProviderId) -> Result<()> {
        if !self.store.delete_provider(id).await? {
            return Err(CoreError::NotFound("provider"));
        }
        self.forget(id);
        self.invalidate();
        Ok(())
    }

    /// Reads the provider's model list and adds what is new. Known models keep their settings.
    pub async fn sync(&self, _admin: &Admin, id: ProviderId) -> Result<Vec<ModelView>> {
        let row = self
            .store
            .find_provider(id)
            .await?
            .ok_or(CoreError::NotFound("provider"))?;
        let client = self.client(&row)?;
        let listed = client
            .list_models()
            .await
            .map_err(|e| CoreError::Upstream(format!("syncing {}: {e}", row.name)))?;
        let models = self.sync_row(&row, listed).await?;
        Ok(models.into_iter().map(model_view).collect())
    }

    async fn sync_row(
        &self,
        row: &hearth_store::Provider,
        listed: Vec<hearth_llm::ModelInfo>,
    ) -> Result<Vec<hearth_store::Model>> {
        let id = row.id;
        let existing = self.store.list_models(Some(id)).await?;
        let mut found = Vec::with_capacity(listed.len());
        for m in listed {
            let name = match existing.iter().find(|e| e.upstream_id == m.id) {
                Some(e) => e.name.clone(),
                None if self.store.model_name_taken(&m.id).await? => {
                    format!("{}/{}", row.name, m.id)
                }
                None => m.id.clone(),
            };
            found.push(SyncedModel {
                display_name: m.display_name.unwrap_or_else(|| m.id.clone()),
                context_length: m.context_length.and_then(|c| i64::try_from(c).ok()),
                supports_embeddings: looks_like_embedder(&m.id),
                upstream_id: m.id,
                name,
            });
        }
        let models = self.store.sync_models(id, &found).await?;
        self.invalidate();
        Ok(models)
    }

    /// Every model, enabled or not.
    pub async fn list_all_models(&self, _admin: &Admin) -> Result<Vec<ModelView>> {
        Ok(self
            .store
            .list_models(None)
            .await?
            .into_iter()
            .map(model_view)
            .collect())
    }

    /// Changes a model's settings.
    pub async fn update_model(
        &self,
        _admin: &Admin,
        id: ModelId,
        req: UpdateModelRequest,
    ) -> Result<ModelView> {
        let aliases = match &req.aliases {
            None => None,
            Some(list) => {
                if list.len() > ALIASES_MAX {
                    return Err(CoreError::invalid(
                        "aliases",
                        format!("must have at most {ALIASES_MAX} entries"),
                    ));
                }
                let mut clean = Vec::with_capacity(list.len());
                for (i, a) in list.iter().enumerate() {
                    let a = input::text(&format!("aliases[{i}]"), a, NAME_MAX)?;
                    let others = self.store.list_models(None).await?;
                    if others.iter().any(|m| {
                        m.id != id && (m.name == a || parse_aliases(&m.aliases).contains(&a))
                    }) {
                        return Err(CoreError::Conflict {
                            field: Some(format!("aliases[{i}]")),
                            message: format!("`{a}` already names another model"),
                        });
                    }
                    clean.push(a);
                }
                Some(serde_json::to_string(&clean).map_err(|e| CoreError::other(e.to_string()))?)
            }
        };
        for (field, price) in [
            ("input_price_per_mtok", req.input_price_per_mtok.flatten()),
            ("output_price_per_mtok", req.output_price_per_mtok.flatten()),
        ] {
            if price.is_some_and(|p| !p.is_finite() || p < 0.0) {
                return Err(CoreError::invalid(field, "must be a non-negative number"));
            }
        }
        if req.context_length.flatten().is_some_and(|c| c <= 0) {
            return Err(CoreError::invalid("context_length", "must be positive"));
        }
        let patch = ModelPatch {
            display_name: req
                .display_name
                .as_deref()
                .map(|n| input::text("display_name", n, NAME_MAX))
                .transpose()?,
            aliases,
            supports_streaming: req.supports_streaming,
            supports_tools: req.supports_tools,
            supports_vision: req.supports_vision,
            supports_embeddings: req.supports_embeddings,
            context_length: req.context_length,
            input_price_per_mtok: req.input_price_per_mtok,
            output_price_per_mtok: req.output_price_per_mtok,
            enabled: req.enabled,
        };
        let row = self
            .store
            .update_model(id, patch)
            .await
            .map_err(|e| match e {
                hearth_store::StoreError::NotFound => CoreError::NotFound("model"),
                e => e.into(),
            })?;
        self.invalidate();
        Ok(model_view(row))
    }

    /// The models a user may pick: enabled models of enabled providers.
    pub async fn list_for_user(&self, _principal: &Principal) -> Result<Vec<UserModel>> {
        let catalog = self.catalog().await?;
        Ok(catalog
            .models
            .iter()
            .filter(|m| m.enabled)
            .filter_map(|m| {
                let provider = catalog
                    .providers
                    .get(&m.provider_id)
                    .filter(|p| p.enabled)?;
                let view = model_view(m.clone());
                Some(UserModel {
                    name: view.name,
                    display_name: view.display_name,
                    aliases: view.aliases,
                    capabilities: view.capabilities,
                    provider: provider.name.clone(),
                })
            })
            .collect())
    }

    /// The enabled chat model called `name` (or aliased so), with a client for its provider.
    /// Unknown and disabled models are the same 404; an embedding model is refused.
    pub async fn resolve(&self, _principal: &Principal, name: &str) -> Result<ResolvedModel> {
        let resolved = self.find(name).await?;
        if resolved.model.supports_embeddings {
            return Err(CoreError::invalid(
                "model",
                format!("`{name}` makes embeddings, not chat answers"),
            ));
        }
        Ok(resolved)
    }

    /// The enabled embedding model called `name` (or aliased so), with a client for its
    /// provider. Unknown and disabled models are the same 404; a chat model is refused.
    pub async fn resolve_embedder(&self, name: &str) -> Result<ResolvedModel> {
        let resolved = self.find(name).await?;
        if !resolved.model.supports_embeddings {
            return Err(CoreError::invalid(
                "model",
                format!(
                    "`{name}` is not an embedding model (an admin marks provider models that make embeddings)"
                ),
            ));
        }
        Ok(resolved)
    }

    /// Records the vector length an embedding model answered with.
    pub async fn learn_dimensions(
        &self,
        model: &hearth_store::Model,
        dimensions: usize,
    ) -> Result<()> {
        let dims = i64::try_from(dimensions).unwrap_or(i64::MAX);
        if model.embedding_dimensions != Some(dims) {
            self.store.set_embedding_dimensions(model.id, dims).await?;
            self.invalidate();
        }
        Ok(())
    }

    async fn find(&self, name: &str) -> Result<ResolvedModel> {
        let catalog = self.catalog().await?;
        let not_found = || CoreError::ModelNotFound(name.to_owned());
        let model = catalog
            .models
            .iter()
            .find(|m| m.name == name)
            .or_else(|| {
                catalog
                    .models
                    .iter()
                    .find(|m| parse_aliases(&m.aliases).iter().any(|a| a == name))
            })
            .filter(|m| m.enabled)
            .cloned()
            .ok_or_else(not_found)?;
        let provider = catalog
            .providers
            .get(&model.provider_id)
            .filter(|p| p.enabled)
            .ok_or_else(not_found)?;
        Ok(ResolvedModel {
            provider: self.client(provider)?,
            model,
        })
    }

    fn client(&self, row: &hearth_store::Provider) -> Result<Arc<dyn Provider>> {
        if let Some((_, c)) = self
            .clients
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&row.id)
            .filter(|(at, _)| *at == row.updated_at)
        {
            return Ok(c.clone());
        }
        let api_key = row
            .api_key_enc
            .as_deref()
            .map(|c| self.crypto.decrypt(&key_binding(row.id), c))
            .transpose()?;
        let endpoint = Endpoint {
            base_url: row.base_url.clone().unwrap_or_default(),
            api_key,
            timeouts: self.timeouts,
        };
        let client: Arc<dyn Provider> = match ProviderKind::from_stored(&row.kind) {
            ProviderKind::Openai => Arc::new(OpenAiProvider::new(endpoint)),
            ProviderKind::Anthropic => Arc::new(AnthropicProvider::new(endpoint)),
            ProviderKind::Local => match &self.local {
                Some(local) => local.clone(),
                None => {
                    return Err(CoreError::Upstream(
                        "this instance has no built-in models loaded".into(),
                    ))
                }
            },
        };
        self.clients
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(row.id, (row.updated_at, client.clone()));
        Ok(client)
    }

    fn forget(&self, id: ProviderId) {
        self.clients
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    fn encrypt_key(&self, id: ProviderId, key: Option<&str>) -> Result<Option<String>> {
        match key.map(str::trim) {
            None | Some("") => Ok(None),
            Some(k) if k.len() > KEY_MAX => Err(CoreError::invalid(
                "api_key",
                format!("must be at most {KEY_MAX} characters"),
            )),
            Some(k) => Ok(Some(self.crypto.encrypt(&key_binding(id), k)?)),
        }
    }
}

/// Where a provider's API key is sealed: its row, system scope.
fn key_binding(id: ProviderId) -> Binding {
    Binding::new(Sealed::ProviderKey, id, Scope::System)
}

fn parse_url(raw: &str) -> Result<String> {
    let url = input::text("base_url", raw, URL_MAX)?;
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| CoreError::invalid("base_url", "must start with http:// or https://"))?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
        return Err(CoreError::invalid("base_url", "must name a host"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Whether a synced model id names an embedding model (`text-embedding-3-small`,
/// `nomic-embed-text`, `bge-m3`…): model lists do not say, and peers guess the same way. An
/// admin can change it either way.
fn looks_like_embedder(id: &str) -> bool {
    let id = id.to_ascii_lowercase();
    id.contains("embed") || id.contains("bge-") || id.starts_with("e5-") || id.contains("/e5-")
}

fn parse_aliases(stored: &str) -> Vec<String> {
    serde_json::from_str(stored).unwrap_or_default()
}

fn name_conflict(e: hearth_store::StoreError, message: &str) -> CoreError {
    match e {
        hearth_store::StoreError::Conflict(_) => CoreError::Conflict {
            field: Some("name".into()),
            message: message.into(),
        },
        e => e.into(),
    }
}

fn provider_view(p: hearth_store::Provider) -> ProviderView {
    ProviderView {
        id: p.id,
        kind: ProviderKind::from_stored(&p.kind),
        name: p.name,
        base_url: p.base_url,
        has_api_key: p.api_key_enc.is_some(),
        enabled: p.enabled,
        created_at: p.created_at.to_datetime(),
    }
}

fn model_view(m: hearth_store::Model) -> ModelView {
    ModelView {
        aliases: parse_aliases(&m.aliases),
        capabilities: Capabilities {
            streaming: m.supports_streaming,
            tools: m.supports_tools,
            vision: m.supports_vision,
            context_length: m.context_length,
            embeddings: m.supports_embeddings,
            embedding_dimensions: m.embedding_dimensions,
        },
        id: m.id,
        provider_id: m.provider_id,
        name: m.name,
        upstream_id: m.upstream_id,
        display_name: m.display_name,
        input_price_per_mtok: m.input_price_per_mtok,
        output_price_per_mtok: m.output_price_per_mtok,
        enabled: m.enabled,
    }
}
