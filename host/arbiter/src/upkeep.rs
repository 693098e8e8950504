//! The HTTP listeners beside the gRPC one: AuthZEN and the metrics endpoint.

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
        tokio::spawn(arbiter_http::metrics::serve(
            listener, tls, metrics, refresh,
        )),
    ))
}

/// Serves AuthZEN over HTTP (TLS with the server's certificate when configured).
pub(crate) async fn start_http(
    h: &arbiter_http::settings::HttpSettings,
    config: &Config,
    decider: arbiter_service::pipeline::Decider,
    budget: Arc<arbiter_service::budget::Budget>,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let metrics = decider.app().metrics().clone();
    let tls = match &config.tls {
        Some(t) => {
            let files = arbiter_tls::ServerFiles {
                client_auth: h.client_auth,
                ..t.grpc.clone()
            };
            Some(
                arbiter_grpc::listen::acceptor(
                    "http",
                    files,
                    arbiter_grpc::listen::HTTP1_ALPN,
                    metrics,
                )
                .context("cannot set up TLS for the HTTP listener")?,
            )
        }
        None => None,
    };
    let listener = TcpListener::bind(h.listen).await.with_context(|| {
        format!(
            "cannot serve HTTP on {} (set --http-listen, or `off`)",
            h.listen
        )
    })?;
    let local = listener.local_addr()?;
    let door = Arc::new(arbiter_http::Door::new(
        decider,
        h.default_privilege,
        tls.is_some(),
        budget,
    ));
    let (acceptor, reloader) = match tls {
        Some((a, r)) => (Some(a), Some(r)),
        None => (None, None),
    };
    let task = tokio::spawn(async move {
        // The reloader stops with this task.
        let _reloader = arbiter_http::AbortOnDrop(reloader);
        arbiter_http::serve(listener, acceptor, door).await;
    });
    tracing::info!(authzen = %format!("{}://{local}/access/v1/evaluation", if config.tls.is_some() { "https" } else { "http" }), "serving AuthZEN");
    Ok((local, task))
}
