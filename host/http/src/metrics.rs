//! The metrics endpoint: `GET /metrics` over HTTP/1.1 (hyper), plain or over TLS,
//! rendering the service's registry; and the probes a kubelet can reach without a
//! client certificate: `GET /healthz` (the process answers) and `GET /readyz` (the
//! state database answers too, and no other process holds this replica's id; `503`
//! while either is not so).

use std::net::SocketAddr;
use std::sync::Arc;

use arbiter_service::metrics::Metrics;

/// Serves `GET /metrics` on `addr` until the task is aborted; `refresh` runs before
/// every scrape (to update gauges that are read, not counted).
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<(Arc<arbiter_tls::Acceptor>, tokio::task::JoinHandle<()>)>,
    metrics: Arc<Metrics>,
    refresh: Arc<dyn Fn(&Metrics) + Send + Sync>,
) {
    // The reloader stops with this task.
    let (acceptor, reloader) = match tls {
        Some((a, r)) => (Some(a), Some(r)),
        None => (None, None),
    };
    let _reloader = crate::AbortOnDrop(reloader);
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Response, StatusCode};
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (metrics, refresh) = (metrics.clone(), refresh.clone());
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |req: hyper::Request<hyper::body::Incoming>| {
                    let (metrics, refresh) = (metrics.clone(), refresh.clone());
                    async move {
                        let text = |status: StatusCode, body: &'static [u8]| {
                            Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from_static(body)))
                        };
                        let response = match req.uri().path() {
                            "/metrics" => {
                                refresh(&metrics);
                                Response::builder()
                                    .header(
                                        "content-type",
                                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                                    )
                                    .body(Full::new(Bytes::from(metrics.encode())))
                            }
                            "/healthz" => text(StatusCode::OK, b"ok\n"),
                            "/readyz" if metrics.replica_lease_lost() => text(
                                StatusCode::SERVICE_UNAVAILABLE,
                                b"not ready: another process holds this replica's id\n",
                            ),
                            "/readyz" if metrics.state_up() => text(StatusCode::OK, b"ready\n"),
                            "/readyz" => text(
                                StatusCode::SERVICE_UNAVAILABLE,
                                b"not ready: the state database does not answer\n",
                            ),
                            _ => text(
                                StatusCode::NOT_FOUND,
                                b"metrics are at /metrics; probes at /healthz and /readyz\n",
                            ),
                        };
                        response.map_err(|e| e.to_string())
                    }
                },
            );
            let http = hyper::server::conn::http1::Builder::new();
            match acceptor {
                Some(acceptor) => {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let io = hyper_util::rt::TokioIo::new(tls);
                        let _ = http.serve_connection(io, service).await;
                    }
                }
                None => {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = http.serve_connection(io, service).await;
                }
            }
        });
    }
}

/// Parses `--metrics-listen` (`off` disables the endpoint).
pub fn parse_listen(text: &str) -> anyhow::Result<Option<SocketAddr>> {
    if text == "off" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|e| {
        anyhow::anyhow!(
            "metrics address `{text}` is not `IP:port` or `off` ({e}); e.g. 127.0.0.1:9464"
        )
    })
}
