//! The metrics endpoint, beside the gRPC listener.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::config::Config;
use crate::metrics::Metrics;

/// Serves Prometheus metrics, refreshing the gauges that are read at scrape time.
pub(crate) async fn start_metrics(
    addr: SocketAddr,
    app: Arc<App>,
    config: &Config,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let tls = match config.tls.as_ref().and_then(|t| t.metrics()) {
        Some(files) => Some(
            arbiter_grpc::listen::acceptor(
                "metrics",
                files,
                arbiter_grpc::listen::HTTP1_ALPN,
                app.metrics().clone(),
            )
            .context("cannot set up TLS for the metrics listener")?,
        ),
        None => None,
    };
    let listener = TcpListener::bind(addr).await.with_context(|| {
        format!("cannot serve metrics on {addr} (set --metrics-listen, or `off`)")
    })?;
    let local = listener.local_addr()?;
    let refresh_app = app.clone();
    let refresh = Arc::new(move |m: &Metrics| {
        if let Some(log) = refresh_app.audit() {
            m.audit_queue(log.queue_depth());
        }
        for set in refresh_app.sets().all() {
            for status in set.plugin_status() {
                m.plugin_health(&set.identity().name, &status);
            }
        }
    });
    let metrics = app.metrics().clone();
    Ok((
        local,
        tokio::spawn(crate::metrics_http::serve(listener, tls, metrics, refresh)),
    ))
}
