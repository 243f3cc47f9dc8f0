//! `device-sync bench`: every load-generator mode against this server and, in the same run, the
//! fan-out and idle modes against the Node.js peer when it is installed; writes a Markdown
//! report with a table of figures, their ratio to the peer and the issue's targets, and an SVG
//! chart of p99 latency and server CPU as clients grow.
//!
//! Servers run on this machine next to the load generator, each on a fresh database with
//! durability `full`. This server's per-session rate limit is raised for the throughput runs
//! (`limits.messages_per_second`), and its connection limit for the idle run; nothing that
//! touches durability is changed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

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
    if let Some(map) = figures.as_object_mut() {
        map.insert("server".into(), Value::String(name(s).into()));
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
    }
}

/// Updates a second per sender of the `/ws`-against-Socket.IO comparison (10 senders, 100
/// clients: 19,800 deliveries a second, above what the Flask-SocketIO backend managed).
const TRANSPORT_RATE: f64 = 20.0;

/// Rounds of the `/ws`-against-Socket.IO comparison; the report gives the median and all three.
const TRANSPORT_ROUNDS: usize = 3;

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

/// Everything measured.
#[derive(Default)]
struct Results {
    startup_ms: Vec<f64>,
    idle: [Option<Figures>; 2],
    baseline: [Option<Figures>; 2],
    /// Throughput ladder: (rate per sender, figures), per side.
    ladder: [Vec<(f64, Figures)>; 2],
    /// Clients sweep: (clients, figures), per side.
    sweep: [Vec<(usize, Figures)>; 2],
    /// The same fan-out on `/ws` and on Socket.IO sessions of this server, one run of each
    /// per round.
    transports: [Vec<Figures>; 2],
    failover_shutdown: Option<Figures>,
    failover_drop: Option<Figures>,
    catchup: Option<Figures>,
    peer_present: bool,
}

fn side(s: Side) -> usize {
    match s {
        Side::Ours => 0,
        Side::Peer => 1,
    }
}

/// The plan's sizes: the issue's, or short ones with `--quick`.
struct Plan {
    startups: usize,
    idle_sessions: usize,
    baseline_seconds: f64,
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
                startups: 2,
                idle_sessions: 500,
                baseline_seconds: 2.0,
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
            startups: 5,
            idle_sessions: 10_000,
            baseline_seconds: 10.0,
            ladder_rates: vec![25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0],
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
    let mut r = Results { peer_present: peer_dir.is_some(), ..Results::default() };

    // Start-up on a fresh database, each time a new one.
    for _ in 0..plan.startups {
        let server = servers::device_sync(ADMIN_TOKEN, "")?;
        r.startup_ms.push(server.started_in.as_secs_f64() * 1000.0);
        server.stop();
    }
    eprintln!("bench: start-up to `listening on`: {:?} ms", r.startup_ms);

    // Idle sessions first, each on a fresh server, so that nothing earlier has left memory
    // for the sessions to reuse.
    let sides: Vec<Side> = if peer_dir.is_some() { vec![Side::Ours, Side::Peer] } else { vec![Side::Ours] };
    for &s in &sides {
        let server = start(s, peer_dir)?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let options = idle::Options {
            server: server.url(),
            sessions: plan.idle_sessions,
            concurrency: 100,
            hold: Duration::from_secs(3),
            token: None,
            server_pid: Some(server.pid()),
        };
        r.idle[side(s)] =
            Some(measure(&format!("idle {}", plan.idle_sessions), s, idle::run(options)).await?);
        server.stop();
    }

    // Fan-out: the latency baseline, the throughput ladder and the clients sweep, on one
    // server per side.
    for &s in &sides {
        let server = start(s, peer_dir)?;
        let peer = s == Side::Peer;
        let baseline = fanout_options(&server, peer, 100, 1, 100.0, plan.baseline_seconds);
        r.baseline[side(s)] = Some(measure("fanout baseline", s, fanout::run(baseline)).await?);
        for &rate in &plan.ladder_rates {
            let options = fanout_options(&server, peer, 100, 10, rate, plan.ladder_seconds);
            let figures = measure(&format!("fanout 10 x {rate}/s"), s, fanout::run(options)).await?;
            let passed = sustained(&figures);
            r.ladder[side(s)].push((rate, figures));
            if !passed {
                break;
            }
        }
        for &clients in &plan.sweep_clients {
            let options = fanout_options(&server, peer, clients, 1, plan.sweep_rate, plan.sweep_seconds);
            let figures = measure(&format!("fanout {clients} clients"), s, fanout::run(options)).await?;
            r.sweep[side(s)].push((clients, figures));
        }
        server.stop();
    }

    // `/ws` against Socket.IO: a fresh server of its own, the two transports taking turns, so
    // neither sees a database or a machine the other left busier.
    let server = start(Side::Ours, None)?;
    for round in 1..=TRANSPORT_ROUNDS {
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

    // This server only: failover and catch-up.
    let server = start(Side::Ours, None)?;
    let shutdown = failover::Options {
        server: server.url(),
        devices: 100,
        repeats: plan.failover_repeats,
        how: failover::Departure::Shutdown,
        token: None,
    };
    r.failover_shutdown = Some(measure("failover shutdown", Side::Ours, failover::run(shutdown)).await?);
    let dropped = failover::Options {
        server: server.url(),
        devices: 100,
        repeats: plan.drop_repeats,
        how: failover::Departure::Drop,
        token: None,
    };
    r.failover_drop = Some(measure("failover drop", Side::Ours, failover::run(dropped)).await?);
    let pull =
        catchup::Options { server: server.url(), changes: plan.catchup_changes, page: 10_000, token: None };
    r.catchup = Some(measure("catch-up", Side::Ours, catchup::run(pull)).await?);
    server.stop();

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

fn start(s: Side, peer_dir: Option<&Path>) -> Result<Running, String> {
    match (s, peer_dir) {
        (Side::Peer, Some(dir)) => servers::node_peer(dir),
        _ => servers::device_sync(ADMIN_TOKEN, SERVER_SETTINGS),
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

/// The best sustained run of a ladder.
fn best(ladder: &[(f64, Figures)]) -> Option<&Figures> {
    ladder.iter().map(|(_, fig)| fig).filter(|fig| sustained(fig)).max_by(|a, b| {
        f(a, "deliveries_per_s").unwrap_or(0.0).total_cmp(&f(b, "deliveries_per_s").unwrap_or(0.0))
    })
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
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_owned())))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, {memory} memory, Linux {}", kernel.trim())
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
        "- Fan-out: `device_update`s of 256 bytes of padding; every client but the sender receives each \
         one and measures its latency from the send time it carries. \"Lost\" counts updates a receiver \
         never got.\n"
    );

    let ours_base = r.baseline[0].as_ref();
    let peer_base = r.baseline[1].as_ref();
    let (our_p99, peer_p99) =
        (ours_base.and_then(|b| f(b, "p99_ms")), peer_base.and_then(|b| f(b, "p99_ms")));
    let (our_best, peer_best) = (best(&r.ladder[0]), best(&r.ladder[1]));
    let (our_rate, peer_rate) =
        (our_best.and_then(|b| f(b, "deliveries_per_s")), peer_best.and_then(|b| f(b, "deliveries_per_s")));
    let (our_idle, peer_idle) = (
        r.idle[0].as_ref().and_then(|i| f(i, "server_kib_per_session")),
        r.idle[1].as_ref().and_then(|i| f(i, "server_kib_per_session")),
    );
    let fo = r.failover_shutdown.as_ref().and_then(|x| f(x, "to_last_device_p99_ms"));
    let catch = r.catchup.as_ref().and_then(|x| f(x, "catch_up_ms"));
    let mut startup = r.startup_ms.clone();
    startup.sort_by(f64::total_cmp);
    let startup_median = startup.get(startup.len() / 2).copied();
    let startup_max = startup.last().copied();
    let ratio = |ours: Option<f64>, theirs: Option<f64>| match (ours, theirs) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "—".to_owned(),
    };

    let _ = writeln!(md, "## Figures against the targets\n");
    let _ = writeln!(md, "| figure | device-sync | Node peer | device-sync ÷ peer | target | |");
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    let _ = writeln!(
        md,
        "| broadcast p99, 100 clients, 1 sender × 100 msg/s, 256 B ({:.0} s) | {} ms | {} ms | {} | ≤ 1.5 ms and below the peer | {} |",
        plan.baseline_seconds,
        fmt(our_p99, 2),
        fmt(peer_p99, 2),
        ratio(our_p99, peer_p99),
        // Measured against the peer only when the peer was measured.
        verdict(our_p99.and_then(|p| if p > 1.5 { Some(false) } else { peer_p99.map(|q| p < q) })),
    );
    let _ = writeln!(
        md,
        "| broadcast p50, same run | {} ms | {} ms | {} | | |",
        fmt(ours_base.and_then(|b| f(b, "p50_ms")), 2),
        fmt(peer_base.and_then(|b| f(b, "p50_ms")), 2),
        ratio(ours_base.and_then(|b| f(b, "p50_ms")), peer_base.and_then(|b| f(b, "p50_ms"))),
    );
    let _ = writeln!(
        md,
        "| highest sustained deliveries/s (p99 < 100 ms, no loss), 100 clients × 10 senders | {} /s | {} /s | {} | ≥ 2 × the peer | {} |",
        thousands(our_rate),
        thousands(peer_rate),
        ratio(our_rate, peer_rate),
        verdict(our_rate.zip(peer_rate).map(|(a, b)| a >= 2.0 * b)),
    );
    let _ = writeln!(
        md,
        "| server CPU per delivery at that rate | {} µs | {} µs | {} | reported | |",
        fmt(our_best.and_then(|b| f(b, "server_cpu_us_per_delivery")), 2),
        fmt(peer_best.and_then(|b| f(b, "server_cpu_us_per_delivery")), 2),
        ratio(
            our_best.and_then(|b| f(b, "server_cpu_us_per_delivery")),
            peer_best.and_then(|b| f(b, "server_cpu_us_per_delivery"))
        ),
    );
    for (what, key, digits) in
        [("p99", "p99_ms", 2), ("server CPU per delivery", "server_cpu_us_per_delivery", 2)]
    {
        let ((ws, ws_each), (sio, sio_each)) =
            (median_of(&r.transports[0], key), median_of(&r.transports[1], key));
        let each =
            |values: &[f64]| values.iter().map(|v| format!("{v:.digits$}")).collect::<Vec<_>>().join(", ");
        let unit = if key == "p99_ms" { "ms" } else { "µs" };
        let _ = writeln!(
            md,
            "| Socket.IO against `/ws`, 100 clients × 10 senders × {TRANSPORT_RATE:.0}/s, median of {TRANSPORT_ROUNDS} alternating runs: {what} | {} {unit} on Socket.IO ({}), {} {unit} on `/ws` ({}) | | {} | ≤ 1.25 × `/ws` | {} |",
            fmt(sio, digits),
            each(&sio_each),
            fmt(ws, digits),
            each(&ws_each),
            ratio(sio, ws),
            verdict(sio.zip(ws).map(|(a, b)| a <= 1.25 * b)),
        );
    }
    let _ = writeln!(
        md,
        "| idle sessions: server RSS per session, {} sessions | {} KiB | {} KiB | {} | ≤ the peer | {} |",
        thousands(Some(plan.idle_sessions as f64)),
        fmt(our_idle, 1),
        fmt(peer_idle, 1),
        ratio(our_idle, peer_idle),
        verdict(our_idle.zip(peer_idle).map(|(a, b)| a <= b)),
    );
    let _ = writeln!(
        md,
        "| idle sessions: connect p99 (100 opening at once), failures | {} ms, {} | {} ms, {} | | | |",
        fmt(r.idle[0].as_ref().and_then(|i| f(i, "connect_p99_ms")), 1),
        fmt(r.idle[0].as_ref().and_then(|i| f(i, "failures")), 0),
        fmt(r.idle[1].as_ref().and_then(|i| f(i, "connect_p99_ms")), 1),
        fmt(r.idle[1].as_ref().and_then(|i| f(i, "failures")), 0),
    );
    let _ = writeln!(
        md,
        "| failover on `device_shutdown`, 100 devices, p99 to the last device ({} repeats) | {} ms (p50 {}) | — | | ≤ 20 ms | {} |",
        plan.failover_repeats,
        fmt(fo, 1),
        fmt(r.failover_shutdown.as_ref().and_then(|x| f(x, "to_last_device_p50_ms")), 1),
        verdict(fo.map(|v| v <= 20.0)),
    );
    let _ = writeln!(
        md,
        "| failover when the master's socket just drops, 100 devices ({} repeats; includes `reconnect_grace_s` = 5 s) | {} ms (max) | — | | | |",
        plan.drop_repeats,
        fmt(r.failover_drop.as_ref().and_then(|x| f(x, "to_last_device_max_ms")), 1),
    );
    let _ = writeln!(
        md,
        "| catch-up of {} changes (`sync_request` pages of 10,000) | {} ms | — | | ≤ 1,000 ms | {} |",
        thousands(Some(plan.catchup_changes as f64)),
        fmt(catch, 0),
        verdict(catch.map(|v| v <= 1000.0)),
    );
    let _ = writeln!(
        md,
        "| start to `listening on`, fresh database (median / max of {}) | {} / {} ms | — | | ≤ 150 ms | {} |\n",
        r.startup_ms.len(),
        fmt(startup_median, 0),
        fmt(startup_max, 0),
        verdict(startup_max.map(|v| v <= 150.0)),
    );

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
         out of order or refused); {:.0} s per step.\n",
        plan.ladder_seconds
    );
    let _ = writeln!(
        md,
        "| server | rate per sender | deliveries/s | p50 ms | p99 ms | lost | server CPU (cores) | µs CPU per delivery | passes |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    for (i, s) in [Side::Ours, Side::Peer].into_iter().enumerate() {
        for (rate, fig) in &r.ladder[i] {
            let _ = writeln!(
                md,
                "| {} | {rate:.0}/s | {} | {} | {} | {} | {} | {} | {} |",
                name(s),
                thousands(f(fig, "deliveries_per_s")),
                fmt(f(fig, "p50_ms"), 2),
                fmt(f(fig, "p99_ms"), 2),
                fmt(f(fig, "lost"), 0),
                fmt(f(fig, "server_cpu_cores"), 2),
                fmt(f(fig, "server_cpu_us_per_delivery"), 2),
                if sustained(fig) { "yes" } else { "no" },
            );
        }
    }
    let _ = writeln!(
        md,
        "\nThe load generator shares the machine: on 2 cores, at the top of the ladder it and the server \
         compete for the same CPU, so the ceiling is the machine's as much as the server's. CPU per \
         delivery is the server's own (user + system time from `/proc`, over the run and its 2 s tail)."
    );

    let _ = writeln!(md, "\n## Every run's report\n");
    let _ = writeln!(md, "```json");
    let mut all: Vec<&Figures> = Vec::new();
    all.extend(r.idle.iter().flatten());
    all.extend(r.baseline.iter().flatten());
    for i in 0..2 {
        all.extend(r.ladder[i].iter().map(|(_, fig)| fig));
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
