//! Logging: one `tracing` subscriber for the process, in text or JSON, at the level the
//! settings name (`RUST_LOG`, when set, takes precedence for finer filtering). The level can be
//! changed while the server runs (SIGHUP re-reads it from the settings, see `main`).

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use crate::settings::{LogFormat, LogSettings};

/// The installed subscriber's filter, to change the level without a restart.
pub struct LogLevel(Option<reload::Handle<EnvFilter, Registry>>);

/// Installs the global subscriber. Called once by `main`; a second call is ignored (its
/// `LogLevel` changes nothing), so tests that start several servers in one process share the
/// first subscriber.
pub fn init(settings: &LogSettings) -> LogLevel {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let output = match settings.format {
        LogFormat::Text => {
            let colour = std::io::stdout().is_terminal();
            tracing_subscriber::fmt::layer().with_target(true).with_ansi(colour).boxed()
        }
        LogFormat::Json => tracing_subscriber::fmt::layer().json().flatten_event(true).boxed(),
    };
    let installed = tracing_subscriber::registry().with(filter).with(output).try_init().is_ok();
    LogLevel(installed.then_some(handle))
}

impl LogLevel {
    /// Logs at `level` (a level or an `EnvFilter` directive) from now on. `RUST_LOG`, when set,
    /// keeps precedence, as at start.
    pub fn set(&self, level: &str) -> Result<(), String> {
        let Some(handle) = &self.0 else { return Ok(()) };
        if std::env::var_os("RUST_LOG").is_some() {
            return Err("RUST_LOG is set and takes precedence over log.level".into());
        }
        let filter = EnvFilter::try_new(level).map_err(|err| format!("{level:?}: {err}"))?;
        handle.reload(filter).map_err(|err| err.to_string())
    }
}
