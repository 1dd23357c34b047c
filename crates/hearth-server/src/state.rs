use std::ops::Deref;
use std::sync::Arc;

use hearth_core::accounts::Accounts;
use hearth_core::chat::Chat;
use hearth_core::providers::Providers;
use hearth_core::usage::Usage;
use hearth_store::Store;

use crate::metrics::Metrics;
use crate::settings::Settings;

/// Everything a handler may need, built once in [`crate::Application::build`]. Cloned for
/// every request by axum, so it is one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

/// The services behind [`AppState`].
pub struct Services {
    pub settings: Settings,
    pub store: Store,
    pub accounts: Accounts,
    pub providers: Providers,
    pub chat: Chat,
    pub embeddings: hearth_core::embeddings::Embeddings,
    pub knowledge: hearth_core::knowledge::Knowledge,
    pub memories: hearth_core::memory::Memories,
    pub usage: Usage,
    pub metrics: Arc<Metrics>,
    /// Open WebSockets: per user, and those still to authenticate.
    pub sockets: crate::ws::Sockets,
    /// Owns the background loops; `/ready` and `/metrics` read their status.
    pub runtime: hearth_jobs::Runtime,
    /// The durable job queue.
    pub queue: hearth_jobs::Queue,
    /// This process's worker pools' counts, by pool name, for `/metrics`.
    pub job_pools: Vec<(&'static str, Arc<hearth_jobs::Stats>)>,
}

impl AppState {
    /// Wraps the services.
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}
