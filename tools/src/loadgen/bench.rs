//! `device-sync bench`: every load-generator mode against this server and, in the same run, the
//! fan-out and idle modes against the Node.js peer when it is installed; writes a Markdown
//! report with a table of figures, their ratio to the peer and the targets, and an SVG chart of
//! p99 latency and server CPU as clients grow.
//!
//! Servers run on this machine next to the load generator, each on a fresh database with
//! durability `full`. This server's per-session rate limit is raised for the throughput runs
//! (`limits.messages_per_second`), and its connection limit for the idle run; nothing that
//! touches durability is changed.
//!
//! Each headline figure is the median of `ROUNDS` runs, the two servers taking turns, and the
//! report gives all of them. The runs are pinned (`cpus`): the server under test on one core,
//! the load generator on the other, the same for both servers; one round of the latency runs is
//! repeated unpinned.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::cpus::Placement;
use super::report::Report;
use super::servers::{self, Running};
use super::{catchup, chart, failover, fanout, idle};

/// What to run.
pub struct Options {
    /// Where the Markdown report goes; the chart is written next to it.
    pub out: PathBuf,
    /// The Node.js peer's folder.
    pub peer_dir: Option<PathBuf>,
    /// Short runs, to try the bench itself (the figures are not the report's).
    pub quick: bool,
}

const ADMIN_TOKEN: &str = "bench-admin-token";
/// Settings for this server in the bench: the throughput runs send far more than a device
/// would (the default rate limit is 100 messages a second per session), and the idle run holds
/// more sessions than the default connection limit.
const SERVER_SETTINGS: &str = "[limits]\nmessages_per_second = 1000000\nmax_connections = 20000\n";

/// The figures of one run, as the report's JSON.
type Figures = Value;

/// Runs a mode against a server, printing a line as it goes; the figures name the server.
async fn measure(
    label: &str,
    s: Side,
    run: impl Future<Output = Result<Report, String>>,
) -> Result<Figures, String> {
    let label = format!("{label} ({})", name(s));
    eprintln!("bench: {label} ...");
    let progress = super::progress::Progress::start(&label);
    let report = run.await.map_err(|e| format!("{label}: {e}"));
    drop(progress);
    let report = report?;
    let mut figures = report.to_json();
    let per_write = match (f(&figures, "server_cpu_seconds"), f(&figures, "sent")) {
        (Some(cpu), Some(sent)) if sent > 0.0 => Some(cpu * 1e6 / sent),
        _ => None,
    };
    if let Some(map) = figures.as_object_mut() {
        map.insert("server".into(), Value::String(name(s).into()));
        if let Some(per_write) = per_write {
            map.insert("server_cpu_us_per_write".into(), per_write.into());
        }
    }
    eprintln!("bench: {label}: {figures}");
    Ok(figures)
}

fn fanout_options(
    server: &Running,
    peer: bool,
    clients: usize,
    senders: usize,
    rate: f64,
    seconds: f64,
) -> fanout::Options {
    fanout::Options {
        server: server.url(),
        clients,
        senders,
        rate,
        payload: 256,
        seconds,
        stuck: 0,
        admin_token: (!peer).then(|| ADMIN_TOKEN.to_owned()),
        peer,
        server_pid: Some(server.pid()),
        transport: super::wire::Transport::Ws,
        also: Vec::new(),
    }
}

/// Updates a second per sender of the `/ws`-against-Socket.IO comparison (10 senders, 100
/// clients: 19,800 deliveries a second, above what the Flask-SocketIO backend managed).
const TRANSPORT_RATE: f64 = 20.0;

/// Runs of each headline figure; the report gives the median and every run.
const ROUNDS: usize = 3;

/// The median of a figure over runs, and every run's value.
fn median_of(runs: &[Figures], name: &str) -> (Option<f64>, Vec<f64>) {
    let mut values: Vec<f64> = runs.iter().filter_map(|run| f(run, name)).collect();
    let each = values.clone();
    values.sort_by(f64::total_cmp);
    (values.get(values.len() / 2).copied().filter(|_| values.len() == runs.len()), each)
}

fn f(figures: &Figures, name: &str) -> Option<f64> {
    figures.get(name).and_then(Value::as_f64)
}

/// A run passes the throughput bar: p99 under 100 ms, nothing lost, duplicated, refused or
/// out of order.
fn sustained(figures: &Figures) -> bool {
    f(figures, "p99_ms").is_some_and(|p| p < 100.0)
        && ["lost", "duplicated", "out_of_order", "refused"].iter().all(|k| f(figures, k) == Some(0.0))
        && f(figures, "deliveries").is_some_and(|d| d > 0.0)
}

/// Which of the two servers a run was against.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Ours,
    Peer,
}

fn side(s: Side) -> usize {
    match s {
        Side::Ours => 0,
        Side::Peer => 1,
    }
}

/// The runs of one figure: per side, each round's figures.
type Runs = [Vec<Figures>; 2];

/// Clients in the one-sender latency runs.
const LATENCY_CLIENTS: [usize; 2] = [10, 100];
/// The one sender's rate in the latency runs.
const LATENCY_RATE: f64 = 100.0;
/// Senders and the rate of each in the concurrent-writers run (100 clients).
const WRITERS: (usize, f64) = (10, 50.0);

/// Everything measured.
#[derive(Default)]
struct Results {
    /// Whether the runs were pinned (the machine has two cores).
    pinned: bool,
    startup_ms: Vec<f64>,
    idle: Runs,
    /// One sender × `LATENCY_RATE`, per entry of `LATENCY_CLIENTS`.
    latency: [Runs; 2],
    /// `WRITERS` senders, 100 clients.
    writers: Runs,
    /// The same latency and writers runs once, unpinned: [1 sender at 100 clients, writers].
    unpinned: [Runs; 2],
    /// Throughput ladder: (rate per sender, figures), per side.
    ladder: [Vec<(f64, Figures)>; 2],
    /// The top of each side's ladder, run `ROUNDS` times in all (the ladder's step first).
    top: Runs,
    /// Clients sweep: (clients, figures), per side.
    sweep: [Vec<(usize, Figures)>; 2],
    /// The same fan-out on `/ws` and on Socket.IO sessions of this server, one run of each
    /// per round.
    transports: [Vec<Figures>; 2],
    failover_shutdown: Vec<Figures>,
    failover_drop: Option<Figures>,
    catchup: Vec<Figures>,
    peer_present: bool,
}

/// The plan's sizes: the issue's, or short ones with `--quick`.
struct Plan {
    rounds: usize,
    startups: usize,
    idle_sessions: usize,
    /// Each latency and writers run.
    latency_seconds: f64,
    ladder_rates: Vec<f64>,
    ladder_seconds: f64,
    /// Each run of the `/ws`-against-Socket.IO comparison.
    transport_seconds: f64,
    sweep_clients: Vec<usize>,
    sweep_rate: f64,
    sweep_seconds: f64,
    failover_repeats: usize,
    drop_repeats: usize,
    catchup_changes: u64,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            return Self {
                rounds: 1,
                startups: 2,
                idle_sessions: 500,
                latency_seconds: 2.0,
                ladder_rates: vec![20.0, 40.0],
                ladder_seconds: 2.0,
                transport_seconds: 2.0,
                sweep_clients: vec![10, 100],
                sweep_rate: 10.0,
                sweep_seconds: 2.0,
                failover_repeats: 3,
                drop_repeats: 1,
                catchup_changes: 5_000,
            };
        }
        Self {
            rounds: ROUNDS,
            startups: 5,
            idle_sessions: 10_000,
            latency_seconds: 10.0,
            ladder_rates: vec![25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 400.0],
            ladder_seconds: 5.0,
            transport_seconds: 10.0,
            sweep_clients: vec![10, 100, 1_000, 5_000],
            sweep_rate: 10.0,
            sweep_seconds: 5.0,
            failover_repeats: 20,
            drop_repeats: 3,
            catchup_changes: 100_000,
        }
    }
}

/// The bench's servers: which ones, and on which cores.
struct Servers<'a> {
    peer_dir: Option<&'a Path>,
    placement: Placement,
}

impl Servers<'_> {
    fn sides(&self) -> Vec<Side> {
        if self.peer_dir.is_some() { vec![Side::Ours, Side::Peer] } else { vec![Side::Ours] }
    }

    fn start(&self, s: Side) -> Result<Running, String> {
        match (s, self.peer_dir) {
            (Side::Peer, Some(dir)) => servers::node_peer(dir, self.placement),
            _ => servers::device_sync(ADMIN_TOKEN, SERVER_SETTINGS, self.placement),
        }
    }

    /// Moves the load generator to its cores and starts the servers on theirs from now on.
    fn place(&mut self, placement: Placement) -> Result<(), String> {
        placement.apply_to_self()?;
        self.placement = placement;
        Ok(())
    }
}

pub async fn run(o: Options) -> Result<(), String> {
    let plan = Plan::new(o.quick);
    let peer_dir = o.peer_dir.as_deref().filter(|d| servers::peer_installed(d));
    match (&o.peer_dir, peer_dir) {
        (Some(dir), None) => {
            eprintln!("bench: the Node peer in {} is not installed; running without it", dir.display())
        }
        (None, _) => eprintln!("bench: no peer folder given; running without the Node peer"),
        _ => {}
    }
    let pinned = Placement::available();
    if !pinned {
        eprintln!("bench: this machine has one core; every run is unpinned");
    }
    let mut at = Servers { peer_dir, placement: Placement::Free };
    at.place(if pinned { Placement::Pinned } else { Placement::Free })?;
    let mut r = Results { peer_present: peer_dir.is_some(), pinned, ..Results::default() };
    let sides = at.sides();

    // Start-up on a fresh database, each time a new one.
    for _ in 0..plan.startups {
        let server = at.start(Side::Ours)?;
        r.startup_ms.push(server.started_in.as_secs_f64() * 1000.0);
        server.stop();
    }
    eprintln!("bench: start-up to `listening on`: {:?} ms", r.startup_ms);

    // Idle sessions first, each on a fresh server, so that nothing earlier has left memory
    // for the sessions to reuse.
    for round in 1..=plan.rounds {
        for &s in &sides {
            let server = at.start(s)?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let options = idle::Options {
                server: server.url(),
                sessions: plan.idle_sessions,
                concurrency: 100,
                hold: Duration::from_secs(3),
                token: None,
                server_pid: Some(server.pid()),
            };
            let label = format!("idle {} (round {round})", plan.idle_sessions);
            r.idle[side(s)].push(measure(&label, s, idle::run(options)).await?);
            server.stop();
        }
    }

    // Latency with one sender, and with concurrent writers: a fresh server per side and round.
    for round in 1..=plan.rounds {
        for &s in &sides {
            let server = at.start(s)?;
            let peer = s == Side::Peer;
            for (i, clients) in LATENCY_CLIENTS.into_iter().enumerate() {
                let options = fanout_options(&server, peer, clients, 1, LATENCY_RATE, plan.latency_seconds);
                let label = format!("fanout {clients} clients, 1 x {LATENCY_RATE}/s (round {round})");
                r.latency[i][side(s)].push(measure(&label, s, fanout::run(options)).await?);
            }
            let (senders, rate) = WRITERS;
            let options = fanout_options(&server, peer, 100, senders, rate, plan.latency_seconds);
            let label = format!("fanout 100 clients, {senders} x {rate}/s (round {round})");
            r.writers[side(s)].push(measure(&label, s, fanout::run(options)).await?);
            server.stop();
        }
    }

    // The throughput ladder, then its top step again until it has `rounds` runs; and the
    // clients sweep; on one server per side.
    for &s in &sides {
        let server = at.start(s)?;
        let peer = s == Side::Peer;
        for &rate in &plan.ladder_rates {
            let options = fanout_options(&server, peer, 100, 10, rate, plan.ladder_seconds);
            let figures = measure(&format!("fanout 10 x {rate}/s"), s, fanout::run(options)).await?;
            let passed = sustained(&figures);
            r.ladder[side(s)].push((rate, figures));
            if !passed {
                break;
            }
        }
        let top = r.ladder[side(s)].iter().rev().find(|(_, fig)| sustained(fig)).cloned();
        if let Some((rate, step)) = top {
            r.top[side(s)].push(step);
            for again in 2..=plan.rounds {
                let options = fanout_options(&server, peer, 100, 10, rate, plan.ladder_seconds);
                let label = format!("fanout 10 x {rate}/s, top of the ladder (run {again})");
                r.top[side(s)].push(measure(&label, s, fanout::run(options)).await?);
            }
        }
        for &clients in &plan.sweep_clients {
            let options = fanout_options(&server, peer, clients, 1, plan.sweep_rate, plan.sweep_seconds);
            let figures = measure(&format!("fanout {clients} clients"), s, fanout::run(options)).await?;
            r.sweep[side(s)].push((clients, figures));
        }
        server.stop();
    }

    // One round of the latency runs with nothing pinned.
    if pinned {
        at.place(Placement::Free)?;
        for &s in &sides {
            let server = at.start(s)?;
            let peer = s == Side::Peer;
            let options = fanout_options(&server, peer, 100, 1, LATENCY_RATE, plan.latency_seconds);
            r.unpinned[0][side(s)]
                .push(measure("fanout 100 clients, unpinned", s, fanout::run(options)).await?);
            let (senders, rate) = WRITERS;
            let options = fanout_options(&server, peer, 100, senders, rate, plan.latency_seconds);
            let label = format!("fanout {senders} x {rate}/s, unpinned");
            r.unpinned[1][side(s)].push(measure(&label, s, fanout::run(options)).await?);
            server.stop();
        }
        at.place(Placement::Pinned)?;
    }

    // `/ws` against Socket.IO: a fresh server of its own, the two transports taking turns, so
    // neither sees a database or a machine the other left busier.
    let server = at.start(Side::Ours)?;
    for round in 1..=plan.rounds {
        for (i, transport) in
            [super::wire::Transport::Ws, super::wire::Transport::Socketio].into_iter().enumerate()
        {
            let mut options = fanout_options(&server, false, 100, 10, TRANSPORT_RATE, plan.transport_seconds);
            options.transport = transport;
            let name = format!("fanout 10 x {TRANSPORT_RATE}/s over {} (round {round})", transport.name());
            r.transports[i].push(measure(&name, Side::Ours, fanout::run(options)).await?);
        }
    }
    server.stop();

    // This server only: failover and catch-up, each round on a fresh server.
    for round in 1..=plan.rounds {
        let server = at.start(Side::Ours)?;
        let shutdown = failover::Options {
            server: server.url(),
            devices: 100,
            repeats: plan.failover_repeats,
            how: failover::Departure::Shutdown,
            token: None,
        };
        let label = format!("failover shutdown (round {round})");
        r.failover_shutdown.push(measure(&label, Side::Ours, failover::run(shutdown)).await?);
        server.stop();
    }
    let server = at.start(Side::Ours)?;
    let dropped = failover::Options {
        server: server.url(),
        devices: 100,
        repeats: plan.drop_repeats,
        how: failover::Departure::Drop,
        token: None,
    };
    r.failover_drop = Some(measure("failover drop", Side::Ours, failover::run(dropped)).await?);
    server.stop();
    for round in 1..=plan.rounds {
        let server = at.start(Side::Ours)?;
        let pull = catchup::Options {
            server: server.url(),
            changes: plan.catchup_changes,
            page: 10_000,
            token: None,
        };
        r.catchup.push(measure(&format!("catch-up (round {round})"), Side::Ours, catchup::run(pull)).await?);
        server.stop();
    }

    if let Some(dir) = o.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let chart_path = o.out.with_file_name("bench-clients.svg");
    let chart_name = chart_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    std::fs::write(&chart_path, sweep_chart(&r, plan.sweep_rate))
        .map_err(|e| format!("{}: {e}", chart_path.display()))?;
    let markdown = render(&r, &plan, &chart_name, o.quick);
    std::fs::write(&o.out, markdown).map_err(|e| format!("{}: {e}", o.out.display()))?;
    eprintln!("bench: wrote {} and {}", o.out.display(), chart_path.display());
    Ok(())
}

fn name(s: Side) -> &'static str {
    match s {
        Side::Ours => "device-sync",
        Side::Peer => "node peer",
    }
}

fn sweep_chart(r: &Results, rate: f64) -> String {
    let series = |i: usize, key: &str| -> Vec<(usize, f64)> {
        r.sweep[i].iter().filter_map(|(c, fig)| f(fig, key).map(|v| (*c, v))).collect()
    };
    let mut lines = vec![chart::Series {
        name: "device-sync",
        color: "#1f77b4",
        p99: series(0, "p99_ms"),
        cpu: series(0, "server_cpu_cores"),
    }];
    if r.peer_present {
        lines.push(chart::Series {
            name: "Node peer",
            color: "#d62728",
            p99: series(1, "p99_ms"),
            cpu: series(1, "server_cpu_cores"),
        });
    }
    chart::render(
        &format!("1 sender × {rate:.0} msg/s, 256-byte payload, every other client receives"),
        &lines,
    )
}

// ---- the report ---------------------------------------------------------------------------

fn fmt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.decimals$}"))
}

fn thousands(v: Option<f64>) -> String {
    let Some(v) = v else { return "—".to_owned() };
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "—",
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = super::cpus::online();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_owned())))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, {memory} memory, Linux {}", kernel.trim())
}

/// A figure over its runs: the median and every run, as a cell ("1.23 (1.20, 1.23, 1.40)").
fn runs_cell(runs: &[Figures], key: &str, digits: usize) -> String {
    let (median, each) = median_of(runs, key);
    if each.len() <= 1 {
        return fmt(median, digits);
    }
    let each = each.iter().map(|v| format!("{v:.digits$}")).collect::<Vec<_>>().join(", ");
    format!("{} ({each})", fmt(median, digits))
}

/// A row of the figures table: a figure of both sides' runs, their ratio and the target.
struct Row<'a> {
    figure: String,
    runs: &'a Runs,
    key: &'a str,
    unit: &'a str,
    digits: usize,
    target: &'a str,
    /// Whether the target is met, from this server's median and the peer's (when measured).
    met: Option<bool>,
}

fn write_row(md: &mut String, row: &Row<'_>) {
    let (ours, theirs) = (median_of(&row.runs[0], row.key).0, median_of(&row.runs[1], row.key).0);
    let cell = |runs: &[Figures]| {
        if runs.is_empty() {
            "—".to_owned()
        } else {
            format!("{} {}", runs_cell(runs, row.key, row.digits), row.unit)
        }
    };
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {} | {} |",
        row.figure,
        cell(&row.runs[0]),
        cell(&row.runs[1]),
        ratio(ours, theirs),
        row.target,
        verdict(row.met),
    );
}

fn ratio(ours: Option<f64>, theirs: Option<f64>) -> String {
    match (ours, theirs) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "—".to_owned(),
    }
}

/// Whether this server's median is at most `factor` × the peer's (unknown without the peer).
fn at_most(runs: &Runs, key: &str, factor: f64) -> Option<bool> {
    median_of(&runs[0], key).0.zip(median_of(&runs[1], key).0).map(|(a, b)| a <= factor * b)
}

/// Whether this server's median is at most `limit`.
fn within(runs: &[Figures], key: &str, limit: f64) -> Option<bool> {
    median_of(runs, key).0.map(|v| v <= limit)
}

fn render(r: &Results, plan: &Plan, chart_name: &str, quick: bool) -> String {
    let mut md = String::new();
    let peer = r.peer_present;
    let _ = writeln!(md, "# Performance\n");
    let _ = writeln!(
        md,
        "Written by `make bench` (`device-sync bench`); do not edit by hand — run it again. What was \
         profiled and changed, and what limits the figures, is in [PROFILING.md](PROFILING.md).\n"
    );
    if quick {
        let _ = writeln!(
            md,
            "> **Quick run** (`--quick`): short runs to try the bench; not the figures to quote.\n"
        );
    }
    let _ = writeln!(md, "- Machine: {}", machine());
    let _ = writeln!(
        md,
        "- Servers and load generator on this one machine. device-sync: release build, SQLite in WAL mode, \
         durability `full` (`synchronous=FULL`), rate limit raised to 1,000,000 messages/s per session and \
         `max_connections` to 20,000 for the runs. Node peer: `../shared/peers/node-ws` (`ws`, \
         `better-sqlite3` in WAL mode, `synchronous=FULL`){}.",
        if peer { "" } else { " — **not installed on this machine, so not measured**" }
    );
    let _ = writeln!(
        md,
        "- {}",
        if r.pinned {
            "Pinned: each server runs on core 0 and the load generator on core 1 (`sched_setaffinity`, as \
             `taskset -c` does), the same for both servers; one round of the latency runs is repeated \
             unpinned below."
        } else {
            "Not pinned: this machine has one core."
        }
    );
    let _ = writeln!(
        md,
        "- Each figure is the median of {} runs with every run in brackets, the two servers taking turns \
         on fresh databases. Fan-out: `device_update`s of 256 bytes of padding; every client but the \
         sender receives each one and measures its latency from the send time it carries. \"Lost\" \
         counts updates a receiver never got.\n",
        plan.rounds
    );

    let _ = writeln!(md, "## Figures against the targets\n");
    let _ = writeln!(md, "| figure | device-sync | Node peer | device-sync ÷ peer | target | |");
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    let secs = plan.latency_seconds;
    for (i, clients) in LATENCY_CLIENTS.into_iter().enumerate() {
        let runs = &r.latency[i];
        write_row(
            &mut md,
            &Row {
                figure: format!("p50, {clients} clients, 1 sender × {LATENCY_RATE:.0}/s ({secs:.0} s)"),
                runs,
                key: "p50_ms",
                unit: "ms",
                digits: 2,
                target: "≤ 0.75 × the peer",
                met: at_most(runs, "p50_ms", 0.75),
            },
        );
        write_row(
            &mut md,
            &Row {
                figure: format!("p99, same runs ({clients} clients)"),
                runs,
                key: "p99_ms",
                unit: "ms",
                digits: 2,
                target: "≤ the peer",
                met: at_most(runs, "p99_ms", 1.0),
            },
        );
    }
    let (senders, rate) = WRITERS;
    write_row(
        &mut md,
        &Row {
            figure: format!("p99, 100 clients, {senders} senders × {rate:.0}/s ({secs:.0} s)"),
            runs: &r.writers,
            key: "p99_ms",
            unit: "ms",
            digits: 2,
            target: "≤ 0.25 × the peer",
            met: at_most(&r.writers, "p99_ms", 0.25),
        },
    );
    write_row(
        &mut md,
        &Row {
            figure: "server CPU per delivery at the top of the ladder (100 clients × 10 senders)".into(),
            runs: &r.top,
            key: "server_cpu_us_per_delivery",
            unit: "µs",
            digits: 2,
            target: "≤ 0.5 × the peer",
            met: at_most(&r.top, "server_cpu_us_per_delivery", 0.5),
        },
    );
    write_row(
        &mut md,
        &Row {
            figure: "deliveries/s at the top of the ladder (p99 < 100 ms, nothing lost)".into(),
            runs: &r.top,
            key: "deliveries_per_s",
            unit: "/s",
            digits: 0,
            target: "reported",
            met: None,
        },
    );
    write_row(
        &mut md,
        &Row {
            figure: "server CPU per write, same runs".into(),
            runs: &r.top,
            key: "server_cpu_us_per_write",
            unit: "µs",
            digits: 1,
            target: "reported",
            met: None,
        },
    );
    write_row(
        &mut md,
        &Row {
            figure: format!(
                "idle sessions: server RSS per session, {} sessions",
                thousands(Some(plan.idle_sessions as f64))
            ),
            runs: &r.idle,
            key: "server_kib_per_session",
            unit: "KiB",
            digits: 1,
            target: "≤ the peer",
            met: at_most(&r.idle, "server_kib_per_session", 1.0),
        },
    );
    write_row(
        &mut md,
        &Row {
            figure: "idle sessions: connect p99 (100 opening at once)".into(),
            runs: &r.idle,
            key: "connect_p99_ms",
            unit: "ms",
            digits: 1,
            target: "reported",
            met: None,
        },
    );
    let ours_only = |runs: &Vec<Figures>| -> Runs { [runs.clone(), Vec::new()] };
    let catchup = ours_only(&r.catchup);
    write_row(
        &mut md,
        &Row {
            figure: format!(
                "catch-up of {} changes (`sync_request` pages of 10,000)",
                thousands(Some(plan.catchup_changes as f64))
            ),
            runs: &catchup,
            key: "catch_up_ms",
            unit: "ms",
            digits: 0,
            target: "≤ 300 ms",
            met: within(&r.catchup, "catch_up_ms", 300.0),
        },
    );
    let failover = ours_only(&r.failover_shutdown);
    write_row(
        &mut md,
        &Row {
            figure: format!(
                "failover on `device_shutdown`, 100 devices, p99 to the last device ({} repeats a run)",
                plan.failover_repeats
            ),
            runs: &failover,
            key: "to_last_device_p99_ms",
            unit: "ms",
            digits: 1,
            target: "≤ 10 ms",
            met: within(&r.failover_shutdown, "to_last_device_p99_ms", 10.0),
        },
    );
    for (what, key, unit) in
        [("p99", "p99_ms", "ms"), ("server CPU per delivery", "server_cpu_us_per_delivery", "µs")]
    {
        let ((ws, _), (sio, _)) = (median_of(&r.transports[0], key), median_of(&r.transports[1], key));
        let _ = writeln!(
            md,
            "| Socket.IO against `/ws`, 100 clients × 10 senders × {TRANSPORT_RATE:.0}/s, {what} | {} {unit} on Socket.IO, {} {unit} on `/ws` | | {} (Socket.IO ÷ `/ws`) | ≤ 1.25 × `/ws` | {} |",
            runs_cell(&r.transports[1], key, 2),
            runs_cell(&r.transports[0], key, 2),
            ratio(sio, ws),
            verdict(sio.zip(ws).map(|(a, b)| a <= 1.25 * b)),
        );
    }
    let _ = writeln!(
        md,
        "| failover when the master's socket just drops, 100 devices ({} repeats; includes `reconnect_grace_s` = 5 s) | {} ms (max) | | | reported | |",
        plan.drop_repeats,
        fmt(r.failover_drop.as_ref().and_then(|x| f(x, "to_last_device_max_ms")), 1),
    );
    let mut startup = r.startup_ms.clone();
    startup.sort_by(f64::total_cmp);
    let startup_max = startup.last().copied();
    let _ = writeln!(
        md,
        "| start to `listening on`, fresh database (median / max of {}) | {} / {} ms | | | ≤ 150 ms | {} |\n",
        r.startup_ms.len(),
        fmt(startup.get(startup.len() / 2).copied(), 0),
        fmt(startup_max, 0),
        verdict(startup_max.map(|v| v <= 150.0)),
    );

    if r.pinned {
        let _ = writeln!(md, "## The same runs unpinned (one run each)\n");
        let _ = writeln!(
            md,
            "Both servers and the load generator free to use both cores: the server's threads and the load \
             generator compete.\n"
        );
        let _ = writeln!(md, "| figure | device-sync | Node peer | device-sync ÷ peer |");
        let _ = writeln!(md, "|---|---|---|---|");
        let rows = [
            (0, format!("p50, 100 clients, 1 sender × {LATENCY_RATE:.0}/s"), "p50_ms"),
            (0, "p99, same run".to_owned(), "p99_ms"),
            (0, "server CPU per delivery, same run".to_owned(), "server_cpu_us_per_delivery"),
            (1, format!("p99, 100 clients, {senders} senders × {rate:.0}/s"), "p99_ms"),
            (1, "server CPU per delivery, same run".to_owned(), "server_cpu_us_per_delivery"),
        ];
        for (i, figure, key) in rows {
            let runs = &r.unpinned[i];
            let (ours, theirs) = (median_of(&runs[0], key).0, median_of(&runs[1], key).0);
            let _ = writeln!(
                md,
                "| {figure} | {} | {} | {} |",
                fmt(ours, 2),
                fmt(theirs, 2),
                ratio(ours, theirs)
            );
        }
        let _ = writeln!(md);
    }

    let _ = writeln!(md, "## Latency and CPU as clients grow\n");
    let _ = writeln!(md, "![p99 latency and server CPU against clients]({chart_name})\n");
    let _ = writeln!(md, "1 sender × {:.0} msg/s, {:.0} s per point.\n", plan.sweep_rate, plan.sweep_seconds);
    let _ = writeln!(
        md,
        "| clients | server | deliveries/s | p50 ms | p99 ms | max ms | lost | server CPU (cores) | RSS peak |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    for (i, s) in [Side::Ours, Side::Peer].into_iter().enumerate() {
        for (clients, fig) in &r.sweep[i] {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} MiB |",
                thousands(Some(*clients as f64)),
                name(s),
                thousands(f(fig, "deliveries_per_s")),
                fmt(f(fig, "p50_ms"), 2),
                fmt(f(fig, "p99_ms"), 2),
                fmt(f(fig, "max_ms"), 2),
                fmt(f(fig, "lost"), 0),
                fmt(f(fig, "server_cpu_cores"), 3),
                fmt(f(fig, "server_rss_peak_kib").map(|k| k / 1024.0), 1),
            );
        }
    }

    let _ = writeln!(md, "\n## Throughput ladder (100 clients × 10 senders)\n");
    let _ = writeln!(
        md,
        "Each sender's rate grows until a run fails the bar (p99 ≥ 100 ms, or anything lost, duplicated, \
         out of order or refused); {:.0} s per step. The top step that passed is run again for the \
         figures above.\n",
        plan.ladder_seconds
    );
    let _ = writeln!(
        md,
        "| server | rate per sender | deliveries/s | p50 ms | p99 ms | lost | server CPU (cores) | µs CPU per delivery | µs CPU per write | passes |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
    for (i, s) in [Side::Ours, Side::Peer].into_iter().enumerate() {
        for (rate, fig) in &r.ladder[i] {
            let _ = writeln!(
                md,
                "| {} | {rate:.0}/s | {} | {} | {} | {} | {} | {} | {} | {} |",
                name(s),
                thousands(f(fig, "deliveries_per_s")),
                fmt(f(fig, "p50_ms"), 2),
                fmt(f(fig, "p99_ms"), 2),
                fmt(f(fig, "lost"), 0),
                fmt(f(fig, "server_cpu_cores"), 2),
                fmt(f(fig, "server_cpu_us_per_delivery"), 2),
                fmt(f(fig, "server_cpu_us_per_write"), 1),
                if sustained(fig) { "yes" } else { "no" },
            );
        }
    }
    let _ = writeln!(
        md,
        "\nCPU per delivery and per write are the server's own (user + system time from `/proc`, over \
         the run and its 2 s tail), divided by the deliveries and by the updates sent. {}",
        if r.pinned {
            "Pinned, the server has one core and the load generator the other, so the ladder's top is \
             where one of the two runs out of its core."
        } else {
            "The load generator shares the machine with the server."
        }
    );

    let _ = writeln!(md, "\n## Every run's report\n");
    let _ = writeln!(md, "```json");
    let mut all: Vec<&Figures> = Vec::new();
    all.extend(r.idle.iter().flatten());
    for runs in r.latency.iter().chain([&r.writers]).chain(r.unpinned.iter()) {
        all.extend(runs.iter().flatten());
    }
    for i in 0..2 {
        all.extend(r.ladder[i].iter().map(|(_, fig)| fig));
        // The top's first run is the ladder's step, listed already.
        all.extend(r.top[i].iter().skip(1));
        all.extend(r.sweep[i].iter().map(|(_, fig)| fig));
    }
    all.extend(r.transports.iter().flatten());
    all.extend(r.failover_shutdown.iter());
    all.extend(r.failover_drop.iter());
    all.extend(r.catchup.iter());
    for fig in all {
        let _ = writeln!(md, "{fig}");
    }
    let _ = writeln!(md, "{{\"mode\":\"startup\",\"listening_on_ms\":{:?}}}", r.startup_ms);
    let _ = writeln!(md, "```");
    md
}
