//! `arbiter serve`.

use crate::config::{Config, LogFormat, ServeArgs};
use crate::server;

/// Runs the server until SIGINT or SIGTERM, then drains requests in flight.
pub async fn run(mut args: ServeArgs) -> anyhow::Result<()> {
    // `arbiter serve` alone is the tour: AuthZEN over HTTP too. With any argument,
    // only when asked, so that servers started side by side never collide.
    if std::env::args_os().len() == 2 && args.config.is_none() && args.http_listen.is_none() {
        args.http_listen = Some(arbiter_http::settings::TOUR_LISTEN.into());
    }
    let config = Config::load(&args)?;
    init_logging(config.log_format, "info");
    let running = server::start(&config).await?;
    arbiter_service::upkeep::shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    running.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Structured logs on stderr; the level comes from `ARBITER_LOG`, else `default`.
pub fn init_logging(format: LogFormat, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ARBITER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
