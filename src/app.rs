//! Starting and stopping the server: opens (and migrates) the database, starts the actors and
//! the HTTP server, and on SIGTERM, Ctrl-C or a `Shutdown` request stops cleanly: no new
//! connections, every accepted write committed, every session closed with 1001.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Supervisor};
use actix_web::dev::{Server, ServerHandle};
use actix_web::rt::net::TcpStream;
use actix_web::{App, HttpServer, web};
use chrono::Utc;
use migration::{Migrator, MigratorTrait};
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::Notify;

use crate::actors::broadcast::{Broadcast, CloseAll};
use crate::actors::election::Election;
use crate::actors::election::SiteLink;
use crate::actors::persistence::{self, Flush, LogFloor, Persistence, Retention, WriteStore};
use crate::actors::registry::Registry;
use crate::actors::session::{ConnectionSlots, SessionContext};
use crate::cluster;
use crate::cluster::bus::Poster;
use crate::cluster::reader::Readers;
use crate::http;
use crate::http::auth::Tokens;
use crate::http::state::{AppState, ClusterState, Shared};
use crate::metrics::Metrics;
use crate::protocol::close;
use crate::settings::{DatabaseSettings, Settings};
use crate::store;
use crate::store::log::{LogWriter, SharedWriter, SoleWriter};

/// How long the final stop waits for connections to finish their last frames.
const DRAIN_TIMEOUT_S: u64 = 5;
/// How long a stopping node waits to have told the other nodes.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pooled connections for reads (REST, catch-up, sync).
const READ_CONNECTIONS: u32 = 8;
/// `sync_request` answers read at once, server-wide: half the read pool at most.
const SYNC_READS: usize = READ_CONNECTIONS as usize / 2;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("TLS: {0}")]
    Tls(#[from] http::tls::TlsError),
    #[error(
        "this database was written by a newer device-sync: it has migration {unknown}, which this \
         version does not know. Nothing was changed. Run the newer version, or restore a backup \
         made by this one (device-sync restore FILE)"
    )]
    Newer { unknown: String },
    #[error(
        "refusing to listen on {host} with no device authentication: anyone on the network could act as any device. \
         Set auth.device_token (the fleet token) or auth.require_device_token = true and issue devices their own \
         tokens (device-sync token issue DEVICE); or listen on 127.0.0.1; or, knowingly, set auth.allow_open_network = true"
    )]
    Open { host: String },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
    let context = context.into();
    move |source| StartError::Io { context, source }
}

/// A built server, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    workers: WorkerThreads,
    shutdown: Arc<Notify>,
    /// Watched from before the `listening on` line, so a signal sent right after it still stops
    /// the server cleanly.
    signals: StopSignals,
    /// With TLS on: the certificate, to read again on SIGHUP.
    certificates: Option<Arc<http::tls::Certificates>>,
}

/// Asks a running server to shut down as it would on SIGTERM.
#[derive(Clone)]
pub struct ShutdownHandle(Arc<Notify>);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.0.notify_one();
    }
}

impl Application {
    /// Opens the database (creating and migrating it), starts the actors and binds the port.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        std::fs::create_dir_all(&settings.server.data_dir)
            .map_err(io(format!("creating {}", settings.server.data_dir.display())))?;
        // The Persistence actor's own connection (the only writer), and a pool for reads.
        let writer = open_database(&settings.database, 1).await?;
        // On Postgres every node is one of possibly several (section 11); nodes started at once
        // on a fresh database migrate it one after another.
        let node = (!settings.database.is_sqlite()).then(|| cluster::Node::from_settings(&settings.cluster));
        refuse_a_newer_schema(&writer).await?;
        match node {
            None => Migrator::up(&writer, None).await?,
            Some(_) => store::cluster::one_at_a_time(&writer, Migrator::up(&writer, None)).await?,
        }
        // A node joining others that are running keeps the devices as they are: they are on
        // the other nodes. The first node up (or the only one) starts the fleet afresh.
        let alone = match node {
            None => true,
            Some(_) => {
                store::cluster::alive_nodes(&writer).await?.is_empty()
                    && store::cluster::lease_holder(&writer).await?.is_none()
            }
        };
        let boot = persistence::bootstrap(&writer, alone).await?;
        let db = open_database(&settings.database, READ_CONNECTIONS).await?;
        let stopping = tokio::sync::watch::Sender::new(false);
        let site = match &node {
            None => None,
            Some(node) => {
                // The lease's renewals have a connection of their own: a burst of reads after a
                // failover must not hold them back past the lease.
                let renewing = open_database(&settings.database, 1).await?;
                Some(SiteLink {
                    node: node.clone(),
                    db: db.clone(),
                    lease: cluster::lease::spawn(renewing, node.clone(), stopping.subscribe()),
                    poster: Poster::spawn(db.clone()),
                })
            }
        };
        let left = site.as_ref().map(|site| site.lease.left.clone());
        let bus_from = match node {
            None => 0,
            Some(_) => store::cluster::bus_head(&db).await?,
        };

        let (tokens, token_file) = Tokens::from_settings(&settings.auth, &settings.server.data_dir)
            .map_err(io("writing the admin token"))?;
        if let Some(path) = token_file {
            tracing::info!(path = %path.display(), "admin token generated; read it from this file");
        }
        if !tokens.device_required() {
            if settings.opens_the_network() {
                return Err(StartError::Open { host: settings.server.host.clone() });
            }
            tracing::warn!(
                "no device token is required: /ws and the device endpoints are open to anyone who can reach the port"
            );
        }

        let floor = LogFloor::new(boot.floor.seq);
        let metrics = Metrics::new();
        let read_now = Arc::new(Notify::new());
        #[cfg(feature = "fault-injection")]
        let faults = Arc::new(crate::faults::Faults::default());
        let broadcast = match node {
            None => Broadcast::new(boot.head, Arc::clone(&metrics)),
            Some(_) => Broadcast::new(boot.head, Arc::clone(&metrics)).fed_from_log(Arc::clone(&read_now)),
        };
        #[cfg(feature = "fault-injection")]
        let broadcast = broadcast.with_faults(Arc::clone(&faults));
        let published = broadcast.published();
        let broadcast = broadcast.start();
        let persistence = {
            let broadcast = broadcast.clone();
            let log: Arc<dyn LogWriter> = match &node {
                None => Arc::new(SoleWriter),
                Some(node) => Arc::new(SharedWriter { run: node.run.clone() }),
            };
            let notices = site.as_ref().map(|site| site.poster.clone());
            let store = WriteStore { db: writer, database: settings.database.clone(), log, notices };
            let policy = settings.sync.conflict_policy;
            let retention = Retention::from_settings(&settings.sync);
            let floor = floor.clone();
            let metrics = Arc::clone(&metrics);
            Supervisor::start(move |ctx: &mut actix::Context<Persistence>| {
                // Writes move from the mailbox into the actor's own bounded queue at once, in
                // arrival order; a roomy mailbox keeps senders from parking (and reordering).
                ctx.set_mailbox_capacity(persistence::MAILBOX_CAPACITY);
                Persistence::new(store, broadcast, boot.head, policy, retention, floor, metrics)
            })
        };
        let election = Election::new(
            settings.election.clone(),
            settings.heartbeat.clone(),
            persistence.clone(),
            broadcast.clone(),
            boot.terms,
            boot.devices,
            Arc::clone(&metrics),
        )
        .on_site(site)
        .start();
        let registry = Registry::new(broadcast.clone(), election.clone()).start();

        let reads = db.clone();
        let sessions = Arc::new(SessionContext {
            limits: settings.limits.clone(),
            heartbeat: settings.heartbeat.clone(),
            sync: settings.sync.clone(),
            db,
            epoch: boot.epoch,
            registry,
            broadcast,
            persistence,
            election,
            published,
            floor,
            metrics,
            sync_reads: Arc::new(tokio::sync::Semaphore::new(SYNC_READS)),
            queue_budget: crate::actors::outbox::QueueBudget::new(settings.limits.total_queue_bytes),
            authenticate: {
                let (tokens, db) = (tokens.clone(), reads.clone());
                Arc::new(move |token: Option<String>| {
                    let (tokens, db) = (tokens.clone(), db.clone());
                    Box::pin(async move { tokens.caller_of(&db, token.as_deref()).await.ok() })
                })
            },
            token_refresh: settings.auth.jwt_refresh(),
            #[cfg(feature = "fault-injection")]
            faults,
        });
        let cluster = node.zip(left).map(|(node, left)| {
            let readers = Readers {
                run: node.run.clone(),
                broadcast: sessions.broadcast.clone(),
                published: sessions.published.clone(),
                read_now,
                election: sessions.election.clone(),
                bus_from,
            };
            let url = settings.database.url.clone();
            cluster::reader::spawn(url, sessions.db.clone(), readers, stopping.subscribe());
            tracing::info!(node = %node.id, "sharing the Postgres database with any other nodes");
            ClusterState { node, left }
        });
        let state = AppState::new(Shared {
            slots: ConnectionSlots::new(settings.limits.max_connections),
            anonymous: ConnectionSlots::per_address(
                settings.limits.max_anonymous,
                settings.limits.max_anonymous_per_address,
                !settings.limits.rate_limit_loopback,
            ),
            sessions,
            tokens,
            polling: Arc::default(),
            started_at: Utc::now(),
            stopping,
            cluster,
            settings,
        });

        store::checkpoint::spawn(state.db.clone(), state.stopping.subscribe());
        watch_revocations(
            state.db.clone(),
            state.registry.clone(),
            state.settings.heartbeat.interval() / 2,
            state.stopping.subscribe(),
        );

        let address = state.settings.server.bind_address();
        let listener = TcpListener::bind(&address).map_err(io(format!("binding {address}")))?;
        let local = listener.local_addr().map_err(io("reading the bound address"))?;
        let user_timeout = state.settings.heartbeat.timeout();
        let app_state = state.clone();
        let workers = WorkerThreads::default();
        let starting = workers.clone();
        let origins = {
            // The older setting meant CORS for long-polling only: its "*" does not turn the
            // cross-site check off for everything.
            let legacy = &state.settings.socketio.cors_origins;
            if legacy.iter().any(|o| o == "*") {
                tracing::warn!(
                    "socketio.cors_origins = [\"*\"] is no longer honoured; list the origins in server.allowed_origins"
                );
            }
            let listed = state.settings.server.allowed_origins.iter();
            http::origin::Origins::new(listed.chain(legacy.iter().filter(|o| *o != "*")))
        };
        let rate_limit = http::rate::rate_limit(&state.settings.limits);
        http::rate::spawn_pruning(&rate_limit, state.stopping.subscribe());
        let server = HttpServer::new(move || {
            // Called once on each worker's thread, as it starts.
            starting.note_current();
            App::new()
                .app_data(web::Data::new(app_state.clone()))
                .app_data(web::Data::new(origins.clone()))
                .configure(|cfg| http::routes(cfg, &app_state.settings))
                .wrap(origins.cors())
                .wrap(actix_web::middleware::from_fn(http::origin::guard))
                .wrap(actix_governor::Governor::new(&rate_limit))
        })
        .on_connect(move |conn, data| tune_socket(conn, data, user_timeout))
        .disable_signals()
        .shutdown_timeout(DRAIN_TIMEOUT_S)
        .client_disconnect_timeout(state.settings.server.linger());
        let certificates = match state.settings.server.tls() {
            None => None,
            Some((cert, key)) => Some(http::tls::Certificates::load(cert, key)?),
        };
        let server = match &certificates {
            None => server.listen(listener),
            Some(certificates) => server.listen_rustls_0_23(listener, certificates.server_config()?),
        }
        .map_err(io("listening"))?
        .run();

        let signals = StopSignals::watch();
        let scheme = if certificates.is_some() { "https" } else { "http" };
        tracing::info!("listening on {scheme}://{}:{}", state.settings.server.host, local.port());
        Ok(Self {
            port: local.port(),
            server,
            state,
            workers,
            shutdown: Arc::new(Notify::new()),
            signals,
            certificates,
        })
    }

    /// With TLS on, the certificate in use (`reload` reads its files again).
    pub fn certificates(&self) -> Option<Arc<http::tls::Certificates>> {
        self.certificates.clone()
    }

    /// The port the server listens on (the real one when the settings said 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The state its handlers share (the actors' addresses), for tests that drive the actors.
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// The threads its HTTP workers run on (every session lives on one of them).
    pub fn worker_threads(&self) -> WorkerThreads {
        self.workers.clone()
    }

    /// A handle that shuts the server down like SIGTERM does.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(Arc::clone(&self.shutdown))
    }

    /// Serves until SIGTERM, Ctrl-C or the shutdown handle, then stops cleanly.
    pub async fn run_until_stopped(mut self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let server = actix_web::rt::spawn(self.server);
        tokio::select! {
            _ = self.signals.received() => tracing::info!("shutdown signal received"),
            _ = self.shutdown.notified() => tracing::info!("shutdown requested"),
        }
        stop(&self.state, &handle).await;
        match server.await {
            Ok(result) => result,
            Err(err) => Err(std::io::Error::other(err)),
        }
    }
}

/// The shutdown sequence: stop accepting, commit what was accepted, close every session
/// (1001) after the frames already queued for it, then stop the HTTP server.
async fn stop(state: &AppState, handle: &ServerHandle) {
    handle.pause().await;
    if let Err(err) = state.persistence.send(Flush).await {
        tracing::error!(%err, "persistence did not confirm its last writes");
    }
    if let Err(err) =
        state.broadcast.send(CloseAll { code: close::GOING_AWAY, reason: "server shutting down" }).await
    {
        tracing::error!(%err, "sessions could not be told to close");
    }
    state.stopping.send_replace(true);
    if let Some(cluster) = &state.cluster {
        // The lease task leaves the site (no longer alive, the election lease given up).
        let mut left = cluster.left.clone();
        if tokio::time::timeout(LEAVE_TIMEOUT, left.wait_for(|left| *left)).await.is_err() {
            tracing::warn!("the other nodes were not told that this one stops");
        }
    }
    handle.stop(true).await;
    if let Err(err) = state.db.close_by_ref().await {
        tracing::warn!(%err, "closing the database");
    }
    tracing::info!("stopped");
}

/// The operating system's ids of the threads the HTTP workers run on, as each worker starts: a
/// look at their CPU time (`/proc/self/task/ID/stat`) tells whether a worker is busy with
/// nothing to do (the test harness checks it after every test). Empty where Linux's `/proc`
/// is not.
#[derive(Clone, Default)]
pub struct WorkerThreads(Arc<std::sync::Mutex<Vec<u32>>>);

impl WorkerThreads {
    fn note_current(&self) {
        // `/proc/thread-self` links to `PID/task/TID`.
        let Ok(link) = std::fs::read_link("/proc/thread-self") else { return };
        if let Some(id) = link.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse().ok()) {
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(id);
        }
    }

    /// The ids noted so far.
    pub fn ids(&self) -> Vec<u32> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// SIGTERM and Ctrl-C (SIGINT), watched from the moment this is made.
struct StopSignals {
    #[cfg(unix)]
    watched: Option<(Signal, Signal)>,
}

#[cfg(unix)]
use actix_web::rt::signal::unix::{Signal, SignalKind, signal};

impl StopSignals {
    fn watch() -> Self {
        #[cfg(unix)]
        {
            match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
                (Ok(term), Ok(int)) => Self { watched: Some((term, int)) },
                (Err(err), _) | (_, Err(err)) => {
                    tracing::warn!(%err, "signals cannot be watched; falling back to Ctrl-C only");
                    Self { watched: None }
                }
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    async fn received(&mut self) {
        #[cfg(unix)]
        if let Some((term, int)) = &mut self.watched {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
        let _ = actix_web::rt::signal::ctrl_c().await;
    }
}

/// Per connection: no Nagle delay (small frames go out at once), and a peer that stops
/// acknowledging data for the heartbeat timeout is dropped by the kernel (Linux). The socket is
/// noted in the connection's data, so a WebSocket session can end its reading side
/// (`Outbox::end_reading`).
fn tune_socket(conn: &dyn std::any::Any, data: &mut actix_web::dev::Extensions, user_timeout: Duration) {
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<TcpStream>;
    let tcp = match (conn.downcast_ref::<TcpStream>(), conn.downcast_ref::<Tls>()) {
        (Some(tcp), _) => tcp,
        (None, Some(tls)) => tls.get_ref().0,
        (None, None) => return,
    };
    if let Err(err) = tcp.set_nodelay(true) {
        tracing::debug!(%err, "TCP_NODELAY");
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(err) = socket2::SockRef::from(tcp).set_tcp_user_timeout(Some(user_timeout)) {
        tracing::debug!(%err, "TCP_USER_TIMEOUT");
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = user_timeout;
    #[cfg(unix)]
    data.insert(crate::actors::outbox::Connection(std::os::fd::AsRawFd::as_raw_fd(tcp)));
    #[cfg(not(unix))]
    let _ = data;
}

/// Refuses a database a newer build has migrated (a migration this build does not know), before
/// anything is written to it.
pub async fn refuse_a_newer_schema(db: &DatabaseConnection) -> Result<(), StartError> {
    use sea_orm::ConnectionTrait;
    let read =
        sea_orm::Statement::from_string(db.get_database_backend(), "SELECT version FROM seaql_migrations");
    // No table: a new database.
    let Ok(rows) = db.query_all_raw(read).await else { return Ok(()) };
    let known: Vec<String> = Migrator::migrations().iter().map(|m| m.name().to_owned()).collect();
    for row in rows {
        let version: String = row.try_get("", "version")?;
        if !known.contains(&version) {
            return Err(StartError::Newer { unknown: version });
        }
    }
    Ok(())
}

/// Opens the database with `max_connections` connections, creating an SQLite file's directory.
pub async fn open_database(
    settings: &DatabaseSettings,
    max_connections: u32,
) -> Result<DatabaseConnection, StartError> {
    if let Some(path) = settings.sqlite_path()
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    }
    Ok(store::connect(settings, max_connections).await?)
}

/// Closes, within `period`, the sessions on this node opened with a device's token that any node
/// (or `device-sync token revoke`) revoked: the database is read for tokens revoked in the last
/// ten minutes (clocks of nodes may differ that much), and every session is told them all on
/// every pass, so a session that joined or registered after an earlier pass is closed too.
fn watch_revocations(
    db: DatabaseConnection,
    registry: actix::Addr<Registry>,
    period: Duration,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    actix_web::rt::spawn(async move {
        let mut told = 0;
        loop {
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                _ = stopping.changed() => return,
            }
            let since = Utc::now() - chrono::Duration::minutes(10);
            match store::tokens::revoked_since(&db, since).await {
                Ok(revoked) => {
                    if revoked.len() != told {
                        tracing::info!(
                            tokens = revoked.len(),
                            "closing the sessions of revoked device tokens"
                        );
                    }
                    told = revoked.len();
                    if !revoked.is_empty() {
                        registry.do_send(crate::actors::registry::RevokeTokens(revoked));
                    }
                }
                Err(err) => tracing::warn!(%err, "the revoked device tokens could not be read"),
            }
        }
    });
}
