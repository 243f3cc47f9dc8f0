//! `device-sync simulate`: a shop's fleet against a server, over real connections, through the
//! situations a shop asks about, with a verdict computed from what every simulated client
//! recorded.
//!
//! - `client`: how a simulated till or cashier behaves (registering, heartbeats, writes at a
//!   rate, role changes confirmed, dropping off and coming back with `last_seq`, the offline
//!   queue pushed).
//! - `session`: one connection, on `/ws` or Socket.IO.
//! - `ledger`: what each client recorded, and the verdict's checks.
//! - `view`: the live terminal view (`ratatui`), or JSON lines with `--no-tui`.
//!
//! Scenarios (seeded, so a run's schedule repeats with its seed): `lunch-rush` (every till
//! writes fast), `master-crash` (the master drops off mid-rush and comes back later),
//! `flaky-wifi` (devices drop and return at random), `restart` (the server is restarted under
//! load; only a server the simulator started).

mod client;
mod ledger;
mod session;
mod view;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use self::client::Order;
use self::ledger::{ClientLog, Masters, Verdict, Writes};
use crate::loadgen::cpus::Placement;
use crate::loadgen::servers::{self, Running};
use crate::loadgen::stats::Latencies;
use crate::loadgen::wire::Transport;

pub use self::view::Display;

/// The situations to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Every till writes fast, all the time.
    LunchRush,
    /// The master drops off a third of the way in, and comes back as a client later.
    MasterCrash,
    /// Devices drop off and come back at random.
    FlakyWifi,
    /// The server is stopped and started again half way (only one the simulator started).
    Restart,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::LunchRush => "lunch-rush",
            Self::MasterCrash => "master-crash",
            Self::FlakyWifi => "flaky-wifi",
            Self::Restart => "restart",
        }
    }
}

/// Which protocol the simulated clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportChoice {
    Ws,
    Socketio,
    /// Every other client on Socket.IO.
    Mixed,
}

/// What to run (the command's arguments).
#[derive(Debug, clap::Args)]
pub struct Options {
    #[arg(long, value_enum, default_value = "lunch-rush")]
    pub scenario: Scenario,
    /// The server's HTTP address (`make run`'s by default).
    #[arg(long, default_value = "http://127.0.0.1:8080", conflicts_with = "spawn")]
    pub server: String,
    /// Start a fresh server instead (the `device-sync` binary next to this one, on a database
    /// of its own; stopped at the end). The restart scenario needs it.
    #[arg(long)]
    pub spawn: bool,
    /// The device token, when the server requires one.
    #[arg(long)]
    pub token: Option<String>,
    /// The admin token, to create the cashiers' stations; default: ./data/admin-token.
    #[arg(long)]
    pub admin_token: Option<String>,
    /// Simulated tills (devices).
    #[arg(long, default_value_t = 6)]
    pub tills: usize,
    /// Simulated cashier sessions, each changing a station of its own.
    #[arg(long, default_value_t = 2)]
    pub cashiers: usize,
    #[arg(long, default_value_t = 30.0)]
    pub seconds: f64,
    /// Writes a second per client [default: 10 for lunch-rush, else 4].
    #[arg(long)]
    pub rate: Option<f64>,
    /// The seed of the scenario's schedule [default: from the clock; printed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// The protocol the clients speak (`mixed`: every other one on Socket.IO).
    #[arg(long, value_enum, default_value = "mixed")]
    pub transport: TransportChoice,
    /// JSON lines (events, figures every second, the verdict) instead of the live view (also
    /// when the output is not a terminal).
    #[arg(long)]
    pub no_tui: bool,
}

impl Options {
    /// How the run is shown.
    pub fn display(&self) -> Display {
        use std::io::IsTerminal;
        if self.no_tui || !std::io::stdout().is_terminal() { Display::Lines } else { Display::Terminal }
    }
}

/// A simulated client's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A device: registers, may be master, writes sales.
    Till,
    /// A session that is no device: changes its station.
    Cashier,
}

/// How a client is doing, for the view and the verdict.
#[derive(Debug, Default, Clone)]
pub struct Status {
    pub online: bool,
    pub role: Option<String>,
    pub acknowledged: u64,
    pub in_doubt: u64,
    pub refused: u64,
    pub queued: u64,
}

/// One simulated client.
pub struct ClientState {
    pub id: String,
    pub name: String,
    pub kind: Kind,
    pub transport: Transport,
    pub priority: u32,
    /// A cashier's station.
    pub station: Option<String>,
    pub log: Mutex<ClientLog>,
    pub status: Mutex<Status>,
}

/// What the clients, the scenario and the view share.
pub struct Shared {
    pub server: String,
    pub token: Option<String>,
    pub http: reqwest::Client,
    pub rate: f64,
    pub clients: Vec<ClientState>,
    pub epoch: Mutex<Option<String>>,
    /// The highest `seq` any client knows of.
    pub head: AtomicU64,
    /// Messages received by every client.
    pub frames: AtomicU64,
    pub masters: Mutex<Masters>,
    /// The newest term a client was told of, and its master.
    pub master: Mutex<Option<(u64, String)>>,
    pub writes: Mutex<Writes>,
    /// When each write (by tag) was made, for its latencies.
    pub sent_at: Mutex<HashMap<String, Instant>>,
    pub ack_latency: Mutex<Latencies>,
    pub delivery_latency: Mutex<Latencies>,
    /// The latest events, newest last, with their time since the start.
    pub events: Mutex<VecDeque<(f64, String)>>,
    pub started: Instant,
    /// The run was asked to end early (the view's `q`).
    pub quit: AtomicBool,
    pub scenario: Scenario,
    pub seed: u64,
    pub seconds: f64,
    display: Display,
}

const KEPT_EVENTS: usize = 200;

impl Shared {
    /// Notes an event (and prints it at once as a JSON line without the terminal view).
    pub fn event(&self, what: String) {
        let at = self.started.elapsed().as_secs_f64();
        if self.display == Display::Lines {
            println!("{}", json!({"t": (at * 10.0).round() / 10.0, "event": what}));
        }
        if let Ok(mut events) = self.events.lock() {
            events.push_back((at, what));
            while events.len() > KEPT_EVENTS {
                events.pop_front();
            }
        }
    }

    /// A client was told `master` holds `term`.
    pub fn told_master(&self, term: u64, master: &str) {
        self.masters.lock().map(|mut m| m.told(term, master)).ok();
        let Ok(mut current) = self.master.lock() else { return };
        if current.as_ref().is_none_or(|(known, _)| term > *known) {
            *current = Some((term, master.to_owned()));
            drop(current);
            self.event(format!("{master} is master (term {term})"));
        }
    }

    /// Whether the newest master is online and knows it is master.
    fn has_master(&self) -> bool {
        let Some((_, master)) = self.master.lock().ok().and_then(|m| m.clone()) else { return false };
        self.clients.iter().any(|c| {
            c.id == master && c.status.lock().is_ok_and(|s| s.online && s.role.as_deref() == Some("master"))
        })
    }

    /// The largest lag among the clients online: changes the fleet knows of that they have not.
    fn largest_lag(&self) -> u64 {
        let head = self.head.load(Ordering::Relaxed);
        self.clients
            .iter()
            .filter(|c| c.status.lock().is_ok_and(|s| s.online))
            .filter_map(|c| c.log.lock().ok().map(|log| head.saturating_sub(log.last)))
            .max()
            .unwrap_or(0)
    }
}

impl Shared {
    fn new(server: String, options: &Options, seed: u64, rate: f64, clients: Vec<ClientState>) -> Self {
        Shared {
            server,
            token: options.token.clone(),
            http: reqwest::Client::new(),
            rate,
            clients,
            epoch: Mutex::new(None),
            head: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            masters: Mutex::new(Masters::default()),
            master: Mutex::new(None),
            writes: Mutex::new(Writes::default()),
            sent_at: Mutex::new(HashMap::new()),
            ack_latency: Mutex::new(Latencies::default()),
            delivery_latency: Mutex::new(Latencies::default()),
            events: Mutex::new(VecDeque::new()),
            started: Instant::now(),
            quit: AtomicBool::new(false),
            scenario: options.scenario,
            seed,
            seconds: options.seconds,
            display: options.display(),
        }
    }
}

/// Runs the simulation to its verdict.
pub async fn run(options: Options) -> Result<Verdict, String> {
    let seed = options.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    let mut rng = StdRng::seed_from_u64(seed);
    if options.scenario == Scenario::Restart && !options.spawn {
        return Err(
            "the restart scenario restarts the server, so it needs one it starts itself (--spawn)".into()
        );
    }
    let external = (!options.spawn).then_some(&options.server);
    let (mut running, server, admin_token) = match external {
        Some(server) => {
            let admin = options
                .admin_token
                .clone()
                .or_else(|| std::fs::read_to_string("data/admin-token").ok().map(|t| t.trim().to_owned()));
            (None, server.trim_end_matches('/').to_owned(), admin)
        }
        None => {
            let admin = format!("simulate-{seed}");
            let server = tokio::task::spawn_blocking({
                let admin = admin.clone();
                move || servers::device_sync(&admin, "", Placement::Free)
            })
            .await
            .map_err(|e| e.to_string())??;
            let url = server.url();
            (Some(server), url, Some(admin))
        }
    };
    let http =
        reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|e| e.to_string())?;
    let cashiers = match &admin_token {
        Some(token) => {
            create_stations(&http, &server, token, options.cashiers).await?;
            options.cashiers
        }
        None => 0,
    };
    let rate = options.rate.unwrap_or(match options.scenario {
        Scenario::LunchRush => 10.0,
        _ => 4.0,
    });
    let clients = fleet(options.tills, cashiers, options.transport, &mut rng);
    let mut shared = Shared::new(server, &options, seed, rate, clients);
    shared.http = http;
    let shared = Arc::new(shared);
    shared.event(format!(
        "{} against {} with {} tills and {cashiers} cashiers, seed {seed}",
        options.scenario.name(),
        shared.server,
        options.tills
    ));
    if admin_token.is_none() && options.cashiers > 0 {
        shared.event("no admin token (--admin-token or data/admin-token): no cashiers".into());
    }
    let view = view::start(Arc::clone(&shared));

    let mut orders = Vec::new();
    let mut tasks = Vec::new();
    for index in 0..shared.clients.len() {
        let (tx, rx) = mpsc::unbounded_channel();
        orders.push(tx);
        tasks.push(tokio::spawn(client::run(Arc::clone(&shared), index, rx)));
    }

    let outcome = drive(&shared, &orders, &mut running, &mut rng).await;
    for order in &orders {
        let _ = order.send(Order::End);
    }
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    view.finish();
    if let Some(server) = running {
        let _ = tokio::task::spawn_blocking(move || server.stop()).await;
    }
    outcome
}

/// The stations the cashiers change (created over REST; one that exists is reused).
async fn create_stations(
    http: &reqwest::Client,
    server: &str,
    admin: &str,
    count: usize,
) -> Result<(), String> {
    for k in 1..=count {
        let response = http
            .post(format!("{server}/cashier/devices"))
            .bearer_auth(admin)
            .json(&json!({"deviceId": format!("sim-station-{k}"), "name": format!("Table {k}")}))
            .send()
            .await
            .map_err(|e| format!("creating a station: {e}"))?;
        let status = response.status().as_u16();
        if status != 201 && status != 409 {
            return Err(format!("creating station sim-station-{k}: {status} (is the admin token right?)"));
        }
    }
    Ok(())
}

/// The simulated clients: tills with seeded priorities, then cashiers.
fn fleet(tills: usize, cashiers: usize, transport: TransportChoice, rng: &mut StdRng) -> Vec<ClientState> {
    let tills = (1..=tills).map(|k| (Kind::Till, k, rng.random_range(20..=90)));
    let cashiers = (1..=cashiers).map(|k| (Kind::Cashier, k, 0));
    tills
        .collect::<Vec<_>>()
        .into_iter()
        .chain(cashiers)
        .enumerate()
        .map(|(index, (kind, k, priority))| {
            let (id, name, station) = match kind {
                Kind::Till => (format!("till-{k}"), format!("Till {k}"), None),
                Kind::Cashier => {
                    (format!("cashier-{k}"), format!("Cashier {k}"), Some(format!("sim-station-{k}")))
                }
            };
            ClientState {
                id,
                name,
                kind,
                transport: client::transport_of(transport, index),
                priority,
                station,
                log: Mutex::default(),
                status: Mutex::default(),
            }
        })
        .collect()
}

/// What the run measured while it went.
#[derive(Default)]
struct Watch {
    without_master: Duration,
    had_master: bool,
    largest_lag: u64,
    restarts: u32,
}

const STEP: Duration = Duration::from_millis(100);

/// Plays the scenario, then lets the fleet settle and judges it.
async fn drive(
    shared: &Arc<Shared>,
    orders: &[mpsc::UnboundedSender<Order>],
    running: &mut Option<Running>,
    rng: &mut StdRng,
) -> Result<Verdict, String> {
    let total = Duration::from_secs_f64(shared.seconds.max(1.0));
    let mut watch = Watch::default();
    let mut crashed = false;
    let mut restarted = false;
    let mut last = Instant::now();
    while shared.started.elapsed() < total && !shared.quit.load(Ordering::Relaxed) {
        tokio::time::sleep(STEP).await;
        let now = Instant::now();
        let step = now - last;
        last = now;
        let elapsed = shared.started.elapsed();
        if shared.has_master() {
            watch.had_master = true;
        } else if watch.had_master {
            watch.without_master += step;
        }
        watch.largest_lag = watch.largest_lag.max(shared.largest_lag());
        match shared.scenario {
            Scenario::MasterCrash if !crashed && elapsed >= total / 3 => {
                if let Some(index) = master_index(shared) {
                    crashed = true;
                    shared.event(format!("{} (the master) crashes", shared.clients[index].id));
                    let _ = orders[index].send(Order::Drop(total / 3));
                }
            }
            Scenario::FlakyWifi if elapsed < total * 3 / 4 => {
                for (index, client) in shared.clients.iter().enumerate() {
                    let online = client.status.lock().is_ok_and(|s| s.online);
                    // About one drop in five seconds per till.
                    if client.kind == Kind::Till && online && rng.random_bool(0.02) {
                        let away = Duration::from_millis(rng.random_range(300..2000));
                        let _ = orders[index].send(Order::Drop(away));
                    }
                }
            }
            Scenario::Restart if !restarted && elapsed >= total / 2 => {
                restarted = true;
                if let Some(server) = running.take() {
                    shared.event("the server is restarted".into());
                    let (server, took) = tokio::task::spawn_blocking(move || {
                        let mut server = server;
                        let took = server.restart();
                        (server, took)
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                    *running = Some(server);
                    let took = took?;
                    watch.restarts += 1;
                    shared.event(format!("the server is back after {:.2} s", took.as_secs_f64()));
                }
            }
            _ => {}
        }
    }
    settle(shared, orders, &mut watch).await
}

fn master_index(shared: &Shared) -> Option<usize> {
    let (_, master) = shared.master.lock().ok()?.clone()?;
    shared.clients.iter().position(|c| c.id == master)
}

/// Stops the writes, waits until every client is back and has every change the log holds, and
/// judges what they recorded.
async fn settle(
    shared: &Arc<Shared>,
    orders: &[mpsc::UnboundedSender<Order>],
    watch: &mut Watch,
) -> Result<Verdict, String> {
    for order in orders {
        let _ = order.send(Order::StopWriting);
    }
    shared.event("writes stop; waiting for every client to catch up".into());
    // The answers to the last writes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let head = loop {
        let head = head_seq(shared).await?;
        let caught_up = shared.clients.iter().all(|c| {
            c.status.lock().is_ok_and(|s| s.online) && c.log.lock().is_ok_and(|log| log.last >= head)
        });
        if caught_up || Instant::now() >= deadline {
            if !caught_up {
                shared.event("not every client caught up in 20 s".into());
            }
            break head;
        }
        tokio::time::sleep(STEP).await;
    };
    let logs: Vec<(String, ClientLog)> = shared
        .clients
        .iter()
        .filter_map(|c| c.log.lock().ok().map(|log| (c.id.clone(), log.clone())))
        .collect();
    let masters = shared.masters.lock().map_err(|_| "poisoned")?.clone();
    let writes = shared.writes.lock().map_err(|_| "poisoned")?.clone();
    let judged = ledger::judge(&logs, &masters, &writes, head);
    let (acknowledged, in_doubt) = shared.clients.iter().fold((0, 0), |(a, d), c| {
        let status = c.status.lock().map(|s| s.clone()).unwrap_or_default();
        (a + status.acknowledged, d + status.in_doubt)
    });
    let p99 =
        |latencies: &Mutex<Latencies>| latencies.lock().map(|mut l| l.percentile_ms(99.0)).unwrap_or(0.0);
    let passed = judged.lost == 0 && judged.duplicated == 0 && judged.shared_terms.is_empty();
    Ok(Verdict {
        scenario: shared.scenario.name().to_owned(),
        seed: shared.seed,
        seconds: (shared.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        head_seq: head,
        writes_acknowledged: acknowledged,
        writes_in_doubt: in_doubt,
        lost: judged.lost,
        duplicated: judged.duplicated,
        out_of_order: judged.out_of_order,
        shared_terms: judged.shared_terms,
        elections: masters.terms(),
        seconds_without_master: (watch.without_master.as_secs_f64() * 10.0).round() / 10.0,
        largest_lag: watch.largest_lag,
        reconnects: judged.reconnects,
        resyncs: judged.resyncs,
        server_restarts: watch.restarts,
        p99_ack_ms: p99(&shared.ack_latency),
        p99_delivery_ms: p99(&shared.delivery_latency),
        lost_examples: judged.lost_examples,
        passed,
    })
}

/// The log's head, from `/sync/status`.
async fn head_seq(shared: &Shared) -> Result<u64, String> {
    let mut request = shared.http.get(format!("{}/sync/status", shared.server));
    if let Some(token) = &shared.token {
        request = request.bearer_auth(token);
    }
    let status: Value = request
        .send()
        .await
        .map_err(|e| format!("/sync/status: {e}"))?
        .json()
        .await
        .map_err(|e| format!("/sync/status: {e}"))?;
    status["head_seq"].as_u64().ok_or_else(|| format!("/sync/status has no head_seq: {status}"))
}

/// The verdict as the terminal view's last words.
pub fn verdict_text(v: &Verdict) -> String {
    let mut text = format!(
        "{} (seed {}), {:.1} s: {}\n",
        v.scenario,
        v.seed,
        v.seconds,
        if v.passed { "PASSED" } else { "FAILED" }
    );
    let lines = [
        format!("changes in the log      {}", v.head_seq),
        format!(
            "writes acknowledged     {} ({} in doubt: their connection dropped first)",
            v.writes_acknowledged, v.writes_in_doubt
        ),
        format!("lost                    {}", v.lost),
        format!("duplicated              {}", v.duplicated),
        format!("out of order            {}", v.out_of_order),
        format!("terms with two masters  {}", v.shared_terms.len()),
        format!("elections               {}", v.elections),
        format!("seconds without master  {:.1}", v.seconds_without_master),
        format!("largest lag             {} changes", v.largest_lag),
        format!("reconnects              {}", v.reconnects),
        format!("server restarts         {}", v.server_restarts),
        format!("p99 write to ack        {:.1} ms", v.p99_ack_ms),
        format!("p99 write to delivery   {:.1} ms", v.p99_delivery_ms),
    ];
    for line in lines {
        text.push_str("  ");
        text.push_str(&line);
        text.push('\n');
    }
    for example in &v.lost_examples {
        text.push_str(&format!("  lost at {example}\n"));
    }
    text
}
