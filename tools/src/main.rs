//! `device-sync-tools`: what talks to a device-sync server from outside it, kept out of the
//! server so that the server depends on none of it. `device-sync client`, `device-sync loadgen`
//! and `device-sync bench` run this binary (it sits next to `device-sync`).
//!
//! - `client`: a terminal WebSocket client for trying the server by hand.
//! - `loadgen`: load against a running server, with reports (fan-out, idle, failover, catch-up).
//! - `bench`: fresh servers (this one and the Node peer), every load mode, the performance report.
//! - `simulate`: a shop's fleet through a scenario (lunch rush, a crashing master, flaky
//!   Wi-Fi, a restart), shown live, with a verdict from what every simulated client recorded.

mod client;
mod loadgen;
mod simulate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tools for a device-sync server: a terminal client, a load generator and the benchmark.
#[derive(Parser)]
#[command(name = "device-sync", version)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Talk to a server by hand: each line typed is sent, each frame received is printed.
    Client {
        /// The server's WebSocket endpoint [default: ws://127.0.0.1:8080/ws, or
        /// ws://127.0.0.1:8080/socket.io/?EIO=4&transport=websocket with `--transport socketio`].
        #[arg(long)]
        url: Option<String>,
        /// The protocol to speak: `/ws`, or Socket.IO (each line typed is sent as the event of
        /// its `type`; each event or acknowledgement received is printed as its object).
        #[arg(long, value_enum, default_value = "ws")]
        transport: loadgen::wire::Transport,
        /// Socket.IO: the namespace CONNECT's auth payload, e.g. '{"clientId":"till-1"}' or
        /// '{"clientId":"till-2","last_seq":4,"epoch":"…"}' (the token is added to it).
        #[arg(long, value_name = "JSON")]
        auth: Option<String>,
        /// The device token, when the server requires one.
        #[arg(long)]
        token: Option<String>,
        /// Register as this device (`device_online`) and confirm role changes, as a device does.
        #[arg(long, value_name = "ID")]
        device: Option<String>,
        /// The device's election priority (0..=100), with `--device`.
        #[arg(long, requires = "device", value_parser = clap::value_parser!(u8).range(0..=100))]
        priority: Option<u8>,
    },
    /// Start fresh servers (this one and the Node peer if installed), run every load mode
    /// against them, and write the performance report.
    Bench {
        /// The report to write; the chart goes next to it.
        #[arg(long, default_value = "docs/PERFORMANCE.md")]
        out: PathBuf,
        /// The Node.js peer's folder (measured only when its node_modules are installed).
        #[arg(long, value_name = "DIR")]
        peer: Option<PathBuf>,
        /// Short runs, to try the bench itself.
        #[arg(long)]
        quick: bool,
    },
    /// Simulate a shop's fleet (tills and cashiers) through a scenario, live, and judge what
    /// every simulated client recorded: nothing lost or duplicated, one master per term. Exits
    /// with 1 when the verdict fails.
    Simulate(simulate::Options),
    /// Put load on a running server and report what it measured.
    Loadgen {
        /// The server's HTTP address.
        #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
        server: String,
        /// The device token, when the server requires one.
        #[arg(long, global = true)]
        token: Option<String>,
        /// Print the report as JSON.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        mode: LoadMode,
    },
}

#[derive(Subcommand)]
enum LoadMode {
    /// Clients receiving device_updates from senders: latency, throughput, loss, CPU, memory.
    Fanout {
        /// Clients in all, senders included.
        #[arg(long, default_value_t = 100)]
        clients: usize,
        #[arg(long, default_value_t = 1)]
        senders: usize,
        /// Updates a second, per sender.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Bytes of padding per update.
        #[arg(long, default_value_t = 256)]
        payload: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// More clients that connect and never read.
        #[arg(long, default_value_t = 0)]
        stuck: usize,
        /// The admin token (to create the senders' stations); default: ./data/admin-token.
        #[arg(long)]
        admin_token: Option<String>,
        /// The server is a peer of document 002's protocol (no stations, no health).
        #[arg(long)]
        peer: bool,
        /// The server's process id, for CPU and memory figures.
        #[arg(long)]
        server_pid: Option<u32>,
        /// The protocol the clients speak.
        #[arg(long, value_enum, default_value = "ws")]
        transport: loadgen::wire::Transport,
        /// Other nodes of the same site (`http://host:port`, repeated): clients and senders are
        /// spread over the server and these, in turn.
        #[arg(long = "also")]
        also: Vec<String>,
    },
    /// N sessions held open: connect times, failures, server memory per session.
    Idle {
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        /// Connections opened at once.
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
        /// Seconds to hold them all open before measuring.
        #[arg(long, default_value_t = 2.0)]
        hold: f64,
        /// The server's process id, for the memory figures.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// M devices online; the master leaves; time until every device has heard of its successor.
    Failover {
        #[arg(long, default_value_t = 100)]
        devices: usize,
        #[arg(long, default_value_t = 20)]
        repeats: usize,
        /// How the master leaves.
        #[arg(long, value_enum, default_value = "shutdown")]
        how: loadgen::failover::Departure,
    },
    /// A device pulls N missed changes through sync_request paging.
    Catchup {
        #[arg(long, default_value_t = 100_000)]
        changes: u64,
        #[arg(long, default_value_t = 10_000)]
        page: u64,
    },
}

impl LoadMode {
    /// What the progress line says while the mode runs.
    fn label(&self) -> &'static str {
        match self {
            Self::Fanout { .. } => "fan-out",
            Self::Idle { .. } => "idle sessions",
            Self::Failover { .. } => "failover",
            Self::Catchup { .. } => "catch-up",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Commands::Client { url, transport, auth, token, device, priority } => {
            let url = url.unwrap_or_else(|| client::default_url(transport).to_owned());
            let auth = match auth.map(|a| serde_json::from_str::<serde_json::Value>(&a)).transpose() {
                Ok(auth) => auth,
                Err(e) => {
                    eprintln!("--auth is not JSON: {e}");
                    return ExitCode::from(2);
                }
            };
            let identity = client::Identity { device, priority };
            client(&url, client::Speaking { transport, auth }, token.as_deref(), identity)
        }
        Commands::Loadgen { server, token, json, mode } => loadgen(server, token, json, mode),
        Commands::Bench { out, peer, quick } => bench(out, peer, quick),
        Commands::Simulate(options) => simulate(options),
    }
}

fn simulate(options: simulate::Options) -> ExitCode {
    let display = options.display();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("device-sync simulate: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(simulate::run(options)) {
        Ok(verdict) => {
            if display == simulate::Display::Lines {
                println!("{}", serde_json::json!({ "verdict": verdict }));
            } else {
                print!("{}", simulate::verdict_text(&verdict));
            }
            if verdict.passed { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(err) => {
            eprintln!("device-sync simulate: {err}");
            ExitCode::from(2)
        }
    }
}

fn client(
    url: &str,
    speaking: client::Speaking,
    token: Option<&str>,
    identity: client::Identity,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("device-sync client: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(client::run(url, speaking, token, identity)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("device-sync client: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The load generator's runtime: one worker thread, leaving the other cores to the server.
fn load_runtime(command: &str) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().map_err(|err| {
        eprintln!("device-sync {command}: {err}");
        ExitCode::FAILURE
    })
}

fn bench(out: PathBuf, peer_dir: Option<PathBuf>, quick: bool) -> ExitCode {
    let runtime = match load_runtime("bench") {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let options = loadgen::bench::Options { out, peer_dir, quick };
    match runtime.block_on(loadgen::bench::run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("device-sync bench: {err}");
            ExitCode::FAILURE
        }
    }
}

fn loadgen(server: String, token: Option<String>, json: bool, mode: LoadMode) -> ExitCode {
    let runtime = match load_runtime("loadgen") {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let progress = loadgen::progress::Progress::start(mode.label());
    let result = runtime.block_on(async move {
        match mode {
            LoadMode::Fanout {
                clients,
                senders,
                rate,
                payload,
                seconds,
                stuck,
                admin_token,
                peer,
                server_pid,
                transport,
                also,
            } => {
                let admin_token = admin_token.or_else(|| {
                    std::fs::read_to_string("data/admin-token").ok().map(|t| t.trim().to_owned())
                });
                let options = loadgen::fanout::Options {
                    server,
                    clients,
                    senders,
                    rate,
                    payload,
                    seconds,
                    stuck,
                    admin_token,
                    peer,
                    server_pid,
                    transport,
                    also,
                };
                loadgen::fanout::run(options).await
            }
            LoadMode::Idle { sessions, concurrency, hold, server_pid } => {
                let hold = std::time::Duration::from_secs_f64(hold.max(0.0));
                let options =
                    loadgen::idle::Options { server, sessions, concurrency, hold, token, server_pid };
                loadgen::idle::run(options).await
            }
            LoadMode::Failover { devices, repeats, how } => {
                loadgen::failover::run(loadgen::failover::Options { server, devices, repeats, how, token })
                    .await
            }
            LoadMode::Catchup { changes, page } => {
                loadgen::catchup::run(loadgen::catchup::Options { server, changes, page, token }).await
            }
        }
    });
    drop(progress);
    let text = match result {
        Ok(report) if json => format!("{}\n", report.to_json()),
        Ok(report) => report.to_text(),
        Err(err) => {
            eprintln!("device-sync loadgen: {err}");
            return ExitCode::FAILURE;
        }
    };
    // The report is the command's output.
    match std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
