//! What every HTTP handler shares: the settings, the database handle for reads, the actors'
//! addresses, the log's facts, and the context every session is given. Cheap to clone (one
//! `Arc`).

use std::ops::Deref;
use std::sync::Arc;

use actix::Addr;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use crate::actors::broadcast::{Broadcast, PublishedSeq};
use crate::actors::election::Election;
use crate::actors::persistence::{LogFloor, Persistence};
use crate::actors::registry::Registry;
use crate::actors::session::{ConnectionSlots, SessionContext};
use crate::http::auth::Tokens;
use crate::settings::Settings;

/// The shared application state.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The fields of `AppState`.
pub struct Shared {
    pub settings: Settings,
    /// For reads (REST, catch-up); every write goes through `persistence`.
    pub db: DatabaseConnection,
    /// The change log's epoch.
    pub epoch: String,
    pub registry: Addr<Registry>,
    pub broadcast: Addr<Broadcast>,
    pub persistence: Addr<Persistence>,
    pub election: Addr<Election>,
    /// The newest `seq` handed to the sessions.
    pub published: PublishedSeq,
    /// What retention has pruned: the oldest change kept is `floor + 1`.
    pub floor: LogFloor,
    /// The admission gate for WebSocket sessions (`limits.max_connections`).
    pub slots: Arc<ConnectionSlots>,
    pub tokens: Tokens,
    /// What each session is given (built once, shared).
    pub sessions: Arc<SessionContext>,
    pub started_at: DateTime<Utc>,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
