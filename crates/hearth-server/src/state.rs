use std::sync::Arc;

use hearth_core::accounts::Accounts;
use hearth_store::Store;

use crate::metrics::Metrics;
use crate::settings::Settings;

/// Everything a handler may need, built once in [`crate::Application::build`].
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub accounts: Accounts,
    pub metrics: Arc<Metrics>,
}
