//! Accepting connections for the gRPC listener: TCP_NODELAY, the TLS handshake (each
//! in its own task, so a slow client holds up nobody), and a cap on the connections
//! one peer address may hold open (loopback exempt by default), so that one client
//! cannot take every connection slot and stream the server can serve. Also the TLS
//! acceptor of every listener, reloaded from disk as certificates rotate, with
//! reloads and refused handshakes in the server's metrics.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use arbiter_service::metrics::Metrics;
use arbiter_tls::Acceptor;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

/// How many connections each peer address may hold open.
#[derive(Debug)]
pub struct PeerLimit {
    max: usize,
    exempt_loopback: bool,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PeerLimit {
    /// At most `max` connections per peer address; loopback peers unlimited when
    /// `exempt_loopback`.
    pub fn new(max: usize, exempt_loopback: bool) -> Arc<Self> {
        Arc::new(Self {
            max,
            exempt_loopback,
            open: Mutex::new(HashMap::new()),
        })
    }

    fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<Option<Slot>> {
        let ip = ip.to_canonical();
        if self.exempt_loopback && ip.is_loopback() {
            return Some(None);
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Some(Slot {
            limit: Arc::clone(self),
            ip,
        }))
    }
}

/// One peer's connection slot, given back when the connection closes.
#[derive(Debug)]
pub struct Slot {
    limit: Arc<PeerLimit>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limit.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A connection holding its peer's slot.
#[derive(Debug)]
pub struct Limited<S> {
    inner: S,
    _slot: Option<Slot>,
}

impl<S: Connected> Connected for Limited<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Limited<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Limited<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Accepts on `listener` until the returned stream is dropped, refusing peers over
/// their limit and (with an acceptor) completing the TLS handshake.
fn accept_loop<S, F, Fut>(
    listener: TcpListener,
    limit: Arc<PeerLimit>,
    metrics: Arc<Metrics>,
    handshake: F,
) -> ReceiverStream<io::Result<Limited<S>>>
where
    S: Send + 'static,
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<S>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = tx.closed() => return,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(slot) = limit.enter(peer.ip()) else {
                metrics.caller_refused("grpc", "too-many-connections");
                tracing::warn!(peer = %peer, max = limit.max, "connection refused: the peer holds the most connections one address may");
                continue;
            };
            // Without TCP_NODELAY, small responses wait for delayed ACKs: 40 ms tails.
            let _ = tcp.set_nodelay(true);
            let (tx, shake) = (tx.clone(), handshake(tcp));
            tokio::spawn(async move {
                if let Ok(inner) = shake.await {
                    let _ = tx.send(Ok(Limited { inner, _slot: slot })).await;
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Plaintext connections.
pub fn plain(
    listener: TcpListener,
    limit: Arc<PeerLimit>,
    metrics: Arc<Metrics>,
) -> ReceiverStream<io::Result<Limited<TcpStream>>> {
    accept_loop(listener, limit, metrics, |tcp| async move { Ok(tcp) })
}

/// TLS connections (handshake refusals are logged and counted by the acceptor).
pub fn tls(
    listener: TcpListener,
    acceptor: Arc<Acceptor>,
    limit: Arc<PeerLimit>,
    metrics: Arc<Metrics>,
) -> ReceiverStream<io::Result<Limited<TlsStream<TcpStream>>>> {
    accept_loop(listener, limit, metrics, move |tcp| {
        let acceptor = acceptor.clone();
        async move { acceptor.accept(tcp).await }
    })
}

use arbiter_tls::{Observer, Refusal, ServerFiles};

/// Feeds TLS events into the server's metrics.
#[derive(Debug)]
struct TlsMetrics(Arc<Metrics>);

impl Observer for TlsMetrics {
    fn reloaded(&self, listener: &'static str, ok: bool) {
        self.0.tls_reloaded(listener, ok);
    }

    fn refused(&self, listener: &'static str, why: Refusal) {
        self.0.caller_refused(listener, why.as_str());
    }
}

/// ALPN for gRPC (HTTP/2 only).
pub const GRPC_ALPN: &[&[u8]] = &[b"h2"];
/// ALPN for the HTTP/1.1 listeners.
pub const HTTP1_ALPN: &[&[u8]] = &[b"http/1.1"];

/// The acceptor of `listener`, reloading every [`arbiter_tls::RELOAD_EVERY`] until
/// the returned task is aborted.
pub fn acceptor(
    listener: &'static str,
    files: ServerFiles,
    alpn: &[&[u8]],
    metrics: Arc<Metrics>,
) -> Result<(Arc<Acceptor>, tokio::task::JoinHandle<()>), arbiter_tls::TlsError> {
    let acceptor = Arc::new(Acceptor::new(
        listener,
        files,
        alpn,
        Arc::new(TlsMetrics(metrics)),
    )?);
    let reloader = acceptor.spawn_reloader(arbiter_tls::RELOAD_EVERY);
    Ok((acceptor, reloader))
}
