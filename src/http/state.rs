//! What every HTTP handler shares: the settings, the database handle for reads, the actors'
//! addresses, the log's facts, and the context every session is given. Cheap to clone (one
//! `Arc`).

use std::ops::Deref;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::actors::session::{ConnectionSlots, SessionContext};
use crate::http::auth::Tokens;
use crate::http::socketio::PollingSessions;
use crate::settings::Settings;

/// The shared application state.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The fields of `AppState`: what handlers have beyond what every session is given (which
/// they reach through `Deref`: `app.db`, `app.persistence`, …).
pub struct Shared {
    pub settings: Settings,
    /// What each session is given (built once, shared): the read handle, the actors'
    /// addresses, the log's epoch, published `seq` and floor.
    pub sessions: Arc<SessionContext>,
    /// The admission gate for WebSocket sessions (`limits.max_connections`).
    pub slots: Arc<ConnectionSlots>,
    /// The admission gate for Socket.IO sessions until they join (`limits.max_anonymous`).
    pub anonymous: Arc<ConnectionSlots>,
    pub tokens: Tokens,
    /// The Socket.IO sessions on long-polling, by Engine.IO session id.
    pub polling: Arc<PollingSessions>,
    pub started_at: DateTime<Utc>,
    /// Set once the server is stopping: long-lived answers (the admin page's feed) end.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// On Postgres: this node among those sharing the database.
    pub cluster: Option<ClusterState>,
}

/// This node among the nodes sharing a Postgres database.
pub struct ClusterState {
    pub node: crate::cluster::Node,
    /// Turns true once this node, stopping, has left the site.
    pub left: tokio::sync::watch::Receiver<bool>,
}

impl Deref for Shared {
    type Target = SessionContext;

    fn deref(&self) -> &SessionContext {
        &self.sessions
    }
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
