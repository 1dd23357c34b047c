//! Logging set-up. Called once by the binary; tests never install a global subscriber.

use tracing_subscriber::EnvFilter;

use crate::settings::{LogFormat, LogSettings};

/// Installs the global subscriber: JSON lines or human-readable, filtered by `log.level`
/// (or `RUST_LOG` when set).
pub fn init(log: &LogSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match log.format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
    // Already installed (embedding callers): keep theirs.
    let _ = result;
}
