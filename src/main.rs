//! The `device-sync` binary: parse the command line, load settings, start logging, run.

use std::path::PathBuf;
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Commands::Serve) {
        Commands::Serve => serve(cli.config),
    }
}

fn serve(config: Option<PathBuf>) -> ExitCode {
    let settings = match Settings::load(config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            telemetry::init(&LogSettings {
                level: "info".into(),
                format: LogFormat::Text,
            });
            tracing::error!(%err, "cannot start");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log);
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings)
            .await
            .map_err(|err| err.to_string())?;
        app.run_until_stopped().await.map_err(|err| err.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(%err, "stopped with an error");
            ExitCode::FAILURE
        }
    }
}
