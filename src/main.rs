//! The `device-sync` binary: parse the command line, load settings, start logging, run.
//!
//! `device-sync client`, `loadgen`, `bench` and `simulate` are the tools of `device-sync-tools`, a binary of
//! its own next to this one (the server depends on none of their code); this binary hands them
//! their arguments.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use device_sync::app::Application;
use device_sync::settings::{LogFormat, LogSettings, Settings};
use device_sync::telemetry;

/// Keeps a shop's fleet of devices in step over WebSocket.
#[derive(Parser)]
#[command(name = "device-sync", version)]
struct Cli {
    /// Settings file to read instead of ./settings.toml.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Commands>,
}

#[derive(Subcommand)]
enum Commands {
    /// Run the server (the default).
    Serve,
    /// Check the settings (defaults, the file, `DEVICE_SYNC__…` variables): print them as the
    /// server would run with them, tokens redacted, or say what is wrong and exit with 2.
    CheckConfig,
    /// Serve the Socket.IO protocol test suite's handlers on port 3000 (`make conformance`).
    Conformance,
    /// Copy a running server's SQLite database to FILE (a new file), without stopping it.
    Backup { file: PathBuf },
    /// Put the copy FILE in place of a stopped server's SQLite database, with a new epoch (every
    /// device resyncs).
    Restore { file: PathBuf },
    /// A device's own tokens, on the server's database (running or not): `issue` prints a new
    /// one once, `list` shows them without secrets, `revoke` shuts them all out.
    Token {
        #[arg(value_enum)]
        action: TokenVerb,
        /// The device's id.
        device: String,
    },
    /// Talk to a server by hand (`device-sync-tools client`; `--help` there).
    #[command(disable_help_flag = true)]
    Client {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Put load on a running server (`device-sync-tools loadgen`; `--help` there).
    #[command(disable_help_flag = true)]
    Loadgen {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Run the benchmark and write the report (`device-sync-tools bench`; `--help` there).
    #[command(disable_help_flag = true)]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Simulate a shop's fleet through a scenario and judge it (`device-sync-tools simulate`;
    /// `--help` there).
    #[command(disable_help_flag = true)]
    Simulate {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum TokenVerb {
    Issue,
    List,
    Revoke,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Commands::Serve) {
        Commands::Serve => serve(cli.config, |_| {}),
        Commands::CheckConfig => check_config(cli.config.as_deref()),
        Commands::Token { action, device } => token(cli.config.as_deref(), action, &device),
        Commands::Backup { file } => offline(cli.config.as_deref(), "backup", |s| {
            Box::pin(async move { device_sync::backup::backup(&s, &file).await })
        }),
        Commands::Restore { file } => offline(cli.config.as_deref(), "restore", |s| {
            Box::pin(async move { device_sync::backup::restore(&s, &file).await })
        }),
        Commands::Conformance => serve(cli.config, |s| {
            // What `socketio/socket.io-protocol`'s test-suite expects of the server it checks.
            s.server.port = 3000;
            s.socketio.conformance = true;
            s.socketio.ping_interval_s = 0.3;
            s.socketio.ping_timeout_s = 0.2;
            s.limits.max_message_bytes = 1_000_000;
            s.limits.messages_per_second = 1_000_000;
        }),
        Commands::Client { args } => tool("client", args),
        Commands::Loadgen { args } => tool("loadgen", args),
        Commands::Bench { args } => tool("bench", args),
        Commands::Simulate { args } => tool("simulate", args),
    }
}

/// Runs `device-sync-tools <name> <args>`, the binary next to this one, in this process's place.
fn tool(name: &str, args: Vec<OsString>) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let beside =
        std::env::current_exe().ok().and_then(|exe| exe.parent().map(|dir| dir.join("device-sync-tools")));
    let Some(path) = beside.filter(|path| path.exists()) else {
        eprintln!(
            "device-sync {name}: device-sync-tools is not next to device-sync; build it with \
             `cargo build --release -p device-sync-tools` (or `make build`)"
        );
        return ExitCode::FAILURE;
    };
    let err = std::process::Command::new(&path).arg(name).args(args).exec();
    eprintln!("device-sync {name}: cannot run {}: {err}", path.display());
    ExitCode::FAILURE
}

fn check_config(config: Option<&Path>) -> ExitCode {
    match Settings::load(config) {
        Ok(settings) => {
            print!("{}", settings.to_toml());
            eprintln!("device-sync check-config: the settings are valid");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("device-sync check-config: {err}");
            ExitCode::from(2)
        }
    }
}

fn token(config: Option<&Path>, verb: TokenVerb, device: &str) -> ExitCode {
    use device_sync::tokens::TokenAction;
    let action = match verb {
        TokenVerb::Issue => TokenAction::Issue,
        TokenVerb::List => TokenAction::List,
        TokenVerb::Revoke => TokenAction::Revoke,
    };
    let device = device.to_owned();
    offline(config, "token", |s| Box::pin(async move { device_sync::tokens::run(&s, action, &device).await }))
}

/// Runs a command on the settings' database and prints what it says.
fn offline(
    config: Option<&Path>,
    name: &str,
    run: impl FnOnce(Settings) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>>>>,
) -> ExitCode {
    let settings = match Settings::load(config) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("device-sync {name}: {err}");
            return ExitCode::from(2);
        }
    };
    match actix_web::rt::System::new().block_on(run(settings)) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("device-sync {name}: {err}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Option<PathBuf>, adjust: impl FnOnce(&mut Settings)) -> ExitCode {
    let settings = match Settings::load(config.as_deref()) {
        Ok(mut settings) => {
            adjust(&mut settings);
            settings
        }
        Err(err) => {
            telemetry::init(&LogSettings { level: "info".into(), format: LogFormat::Text });
            tracing::error!(%err, "cannot start");
            return ExitCode::from(2);
        }
    };
    let log_level = telemetry::init(&settings.log);
    // Held while the process runs: `device-sync restore` will not replace the database under it.
    let _lock = match device_sync::backup::lock(&settings.database) {
        Ok(lock) => lock,
        Err(err) => {
            tracing::error!(%err, "cannot start");
            return ExitCode::from(2);
        }
    };
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await.map_err(|err| err.to_string())?;
        reload_on_hangup(config, log_level, app.certificates())
            .map_err(|err| format!("watching SIGHUP: {err}"))?;
        // Migrated and bound: tell systemd (`Type=notify`), when it started us.
        notify_systemd(sd_notify::NotifyState::Ready);
        let stopped = app.run_until_stopped().await.map_err(|err| err.to_string());
        notify_systemd(sd_notify::NotifyState::Stopping);
        stopped
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(%err, "stopped with an error");
            ExitCode::FAILURE
        }
    }
}

/// Tells the service manager how the server stands; nothing when it was not started by one.
fn notify_systemd(state: sd_notify::NotifyState<'_>) {
    if let Err(err) = sd_notify::notify(false, &[state]) {
        tracing::warn!(%err, "could not notify systemd");
    }
}

/// On SIGHUP, reads the settings again and applies their log level (the other settings take
/// a restart). A bad file changes nothing and says why.
fn reload_on_hangup(
    config: Option<PathBuf>,
    log_level: telemetry::LogLevel,
    certificates: Option<std::sync::Arc<device_sync::http::tls::Certificates>>,
) -> std::io::Result<()> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    actix_web::rt::spawn(async move {
        while hangups.recv().await.is_some() {
            // New connections get the new certificate; open ones keep theirs.
            match certificates.as_ref().map(|c| c.reload()) {
                Some(Ok(())) => tracing::warn!("SIGHUP: TLS certificate reloaded"),
                Some(Err(err)) => {
                    tracing::error!(%err, "SIGHUP: TLS certificate not reloaded; the old one stays")
                }
                None => {}
            }
            match Settings::load(config.as_deref()) {
                Ok(settings) => match log_level.set(&settings.log.level) {
                    Ok(()) => tracing::warn!(level = %settings.log.level, "SIGHUP: log level reloaded"),
                    Err(err) => tracing::error!(%err, "SIGHUP: log level not changed"),
                },
                Err(err) => tracing::error!(%err, "SIGHUP: settings not reloaded; nothing changed"),
            }
        }
    });
    Ok(())
}
