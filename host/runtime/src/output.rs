//! Guest output: `log` calls, stdout and stderr all land in one capped buffer per
//! evaluation, which the host writes to its own log afterwards. Past the cap, output is
//! dropped and counted, never an error: a chatty plugin must not turn into a failing
//! one, and must not flood the host.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

#[derive(Debug, Default)]
struct Buffer {
    /// (level or stream: `error`..`trace`, `stdout`, `stderr`; text)
    lines: Vec<(&'static str, String)>,
    bytes: u32,
    dropped_bytes: u64,
}

/// The capped output of one evaluation.
#[derive(Debug, Clone)]
pub(crate) struct GuestLog {
    cap: u32,
    inner: Arc<Mutex<Buffer>>,
}

impl GuestLog {
    pub(crate) fn new(cap: u32) -> Self {
        Self {
            cap,
            inner: Arc::default(),
        }
    }

    /// Keeps what fits under the cap, counts the rest.
    pub(crate) fn push(&self, stream: &'static str, bytes: &[u8]) {
        let mut b = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let room = self.cap.saturating_sub(b.bytes) as usize;
        let kept = bytes.len().min(room);
        if kept > 0 {
            let text = String::from_utf8_lossy(&bytes[..kept]).into_owned();
            b.bytes += u32::try_from(kept).unwrap_or(u32::MAX);
            b.lines.push((stream, text));
        }
        b.dropped_bytes += (bytes.len() - kept) as u64;
    }

    /// Writes what was kept into the host log, tagged with the plugin, and says how
    /// much was dropped.
    pub(crate) fn flush_to_tracing(&self, plugin: &str) {
        let b = std::mem::take(&mut *self.inner.lock().unwrap_or_else(PoisonError::into_inner));
        // Consecutive writes to one stream form one text, so a line written in pieces
        // (`print!` then `println!`) is logged as one line.
        let mut merged: Vec<(&'static str, String)> = Vec::new();
        for (stream, text) in b.lines {
            match merged.last_mut() {
                Some((last, acc)) if *last == stream && matches!(stream, "stdout" | "stderr") => {
                    acc.push_str(&text);
                }
                _ => merged.push((stream, text)),
            }
        }
        for (stream, text) in &merged {
            for line in text.lines().filter(|l| !l.is_empty()) {
                match *stream {
                    "error" => tracing::error!(target: "arbiter::guest", plugin, "{line}"),
                    "warn" | "stderr" => {
                        tracing::warn!(target: "arbiter::guest", plugin, source = *stream, "{line}")
                    }
                    "debug" => tracing::debug!(target: "arbiter::guest", plugin, "{line}"),
                    "trace" => tracing::trace!(target: "arbiter::guest", plugin, "{line}"),
                    _ => {
                        tracing::info!(target: "arbiter::guest", plugin, source = *stream, "{line}")
                    }
                }
            }
        }
        if b.dropped_bytes > 0 {
            tracing::warn!(
                target: "arbiter::guest",
                plugin,
                dropped_bytes = b.dropped_bytes,
                "guest output over the per-evaluation cap was dropped"
            );
        }
    }
}

/// A WASI stdout/stderr that writes into a [`GuestLog`].
#[derive(Debug, Clone)]
pub(crate) struct CappedOutput {
    log: GuestLog,
    stream: &'static str,
}

impl CappedOutput {
    pub(crate) fn new(log: GuestLog, stream: &'static str) -> Self {
        Self { log, stream }
    }
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CappedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.log.push(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always accept: what is over the cap is dropped in `write`.
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CappedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.log.push(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
