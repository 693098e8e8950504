//! The upstream MCP server's Streamable HTTP endpoint, as the gateway calls it: the
//! upstream's own session id, the protocol version header, the call's credential (never
//! the agent's token), and answers read as JSON or as an SSE stream.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value as Json, json};
use tokio::sync::mpsc;

use super::{Body, Live, full};
use crate::gate::Gateway;
use crate::jsonrpc;

/// The largest answer the gateway buffers from the upstream (to read `tools/list`).
const MAX_ANSWER_BYTES: usize = 16 << 20;

const PROTOCOL: &str = "mcp-protocol-version";

/// The upstream endpoint.
#[derive(Debug)]
pub(super) struct Upstream {
    client: Client<HttpConnector, Full<Bytes>>,
    url: Uri,
    next: AtomicU64,
}

/// One SSE `message` event carrying `msg`.
pub(crate) fn event(msg: &Json) -> Bytes {
    Bytes::from(format!("event: message\ndata: {msg}\n\n"))
}

/// A streamed SSE response fed by `rx`.
pub(crate) fn sse_response(rx: mpsc::UnboundedReceiver<Bytes>) -> Response<Body> {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(Frame::data(b)), rx))
    });
    let mut r = Response::new(http_body_util::BodyExt::boxed(StreamBody::new(stream)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    r
}

/// The JSON-RPC messages of an SSE body.
fn sse_messages(body: &[u8]) -> Vec<Json> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    for block in text.replace("\r\n", "\n").split("\n\n") {
        let data: Vec<&str> = block
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if let Ok(m) = serde_json::from_str(&data.join("\n")) {
            out.push(m);
        }
    }
    out
}

fn unavailable(id: &Json, why: &str) -> Json {
    jsonrpc::error(
        id,
        jsonrpc::INTERNAL,
        format!("the MCP server is unavailable: {why}"),
        None,
    )
}

impl Upstream {
    /// The endpoint at `url` (`http://`; put a TLS-terminating proxy in front of an
    /// `https://` server).
    pub(super) fn new(url: &str) -> anyhow::Result<Self> {
        let uri: Uri = url.parse().map_err(|_| {
            anyhow::anyhow!("--upstream `{url}` is not a URL (e.g. http://127.0.0.1:3001/mcp)")
        })?;
        if uri.scheme_str() != Some("http") {
            anyhow::bail!("--upstream `{url}`: only `http://` upstreams are supported");
        }
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            url: uri,
            next: AtomicU64::new(1),
        })
    }

    /// POSTs `msg` in the upstream session `session` (recording the id the upstream
    /// gives on initialize).
    async fn post(
        &self,
        session: &Mutex<Option<String>>,
        msg: &Json,
        credential: Option<&str>,
        from: &HeaderMap,
    ) -> Result<Response<Incoming>, String> {
        let mut req = Request::post(self.url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream");
        if let Some(v) = from.get(PROTOCOL) {
            req = req.header(PROTOCOL, v);
        }
        if let Some(id) = session.lock().unwrap_or_else(|e| e.into_inner()).as_deref() {
            req = req.header(super::SESSION, id);
        }
        if let Some(c) = credential {
            req = req.header(header::AUTHORIZATION, format!("Bearer {c}"));
        }
        let req = req
            .body(Full::new(Bytes::from(msg.to_string())))
            .map_err(|e| e.to_string())?;
        let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
        if let Some(id) = resp
            .headers()
            .get(super::SESSION)
            .and_then(|v| v.to_str().ok())
        {
            *session.lock().unwrap_or_else(|e| e.into_inner()) = Some(id.to_string());
        }
        Ok(resp)
    }

    /// The messages of an answer, buffered.
    async fn messages(resp: Response<Incoming>) -> Result<Vec<Json>, String> {
        let sse = is_sse(resp.headers());
        let body = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if sse {
            return Ok(sse_messages(&body));
        }
        serde_json::from_slice::<Json>(&body)
            .map(|m| vec![m])
            .map_err(|e| format!("an answer that is not JSON: {e}"))
    }

    /// Forwards and answers in one JSON body (or `202` for a notification).
    pub(crate) async fn relay_buffered(
        &self,
        live: &Live,
        gw: &Gateway,
        msg: &Json,
        credential: Option<&str>,
        from: &HeaderMap,
        is_list: bool,
    ) -> Response<Body> {
        let id = jsonrpc::id_of(msg);
        let resp = match self.post(&live.upstream_id, msg, credential, from).await {
            Ok(r) => r,
            Err(e) => {
                return full(
                    StatusCode::OK,
                    "application/json",
                    unavailable(&id, &e).to_string(),
                );
            }
        };
        let status = resp.status();
        if status == StatusCode::ACCEPTED || id.is_null() {
            return full(status, "text/plain", "");
        }
        match Self::messages(resp).await {
            Ok(mut ms) => {
                let Some(mut answer) = ms
                    .iter()
                    .position(|m| jsonrpc::id_of(m) == id)
                    .map(|i| ms.swap_remove(i))
                else {
                    return full(
                        StatusCode::OK,
                        "application/json",
                        unavailable(&id, "no answer to the request").to_string(),
                    );
                };
                if is_list && let Some(result) = answer.get_mut("result") {
                    gw.filter_tools(&live.session, result).await;
                }
                full(StatusCode::OK, "application/json", answer.to_string())
            }
            Err(e) => full(
                StatusCode::OK,
                "application/json",
                unavailable(&id, &e).to_string(),
            ),
        }
    }

    /// Forwards and streams the answer into `tx` as SSE events.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; a struct would only rename them"
    )]
    pub(crate) async fn relay_streamed(
        &self,
        live: &Live,
        gw: &Gateway,
        msg: &Json,
        credential: Option<&str>,
        from: &HeaderMap,
        is_list: bool,
        tx: &mpsc::UnboundedSender<Bytes>,
    ) {
        let id = jsonrpc::id_of(msg);
        let resp = match self.post(&live.upstream_id, msg, credential, from).await {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(event(&unavailable(&id, &e)));
                return;
            }
        };
        if is_sse(resp.headers()) && !is_list {
            let mut body = resp.into_body();
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data()
                    && tx.send(data).is_err()
                {
                    return;
                }
            }
            return;
        }
        match Self::messages(resp).await {
            Ok(mut ms) => {
                for m in &mut ms {
                    if is_list
                        && jsonrpc::id_of(m) == id
                        && let Some(result) = m.get_mut("result")
                    {
                        gw.filter_tools(&live.session, result).await;
                    }
                    let _ = tx.send(event(m));
                }
            }
            Err(e) => {
                let _ = tx.send(event(&unavailable(&id, &e)));
            }
        }
    }

    /// The upstream's server-to-client stream of a session (`GET`), relayed.
    pub(crate) async fn listen(&self, session: Option<&str>, from: &HeaderMap) -> Response<Body> {
        let mut req = Request::get(self.url.clone()).header(header::ACCEPT, "text/event-stream");
        if let Some(v) = from.get(PROTOCOL) {
            req = req.header(PROTOCOL, v);
        }
        if let Some(id) = session {
            req = req.header(super::SESSION, id);
        }
        let Ok(req) = req.body(Full::new(Bytes::new())) else {
            return full(StatusCode::BAD_GATEWAY, "text/plain", "");
        };
        match self.client.request(req).await {
            Ok(resp) => {
                let (parts, body) = resp.into_parts();
                let mut r = Response::new(body.map_err(std::io::Error::other).boxed());
                *r.status_mut() = parts.status;
                if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
                    r.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
                }
                r
            }
            Err(_) => full(
                StatusCode::BAD_GATEWAY,
                "text/plain",
                "the MCP server is unavailable\n",
            ),
        }
    }

    /// Ends the upstream session.
    pub(crate) async fn delete(&self, session: Option<&str>) {
        let Some(id) = session else { return };
        let Ok(req) = Request::delete(self.url.clone())
            .header(super::SESSION, id)
            .body(Full::new(Bytes::new()))
        else {
            return;
        };
        let _ = self.client.request(req).await;
    }

    /// The upstream as the gateway itself asks it within one session.
    pub(crate) fn for_session<'a>(
        &'a self,
        session: &'a Mutex<Option<String>>,
        from: &'a HeaderMap,
    ) -> SessionUpstream<'a> {
        SessionUpstream {
            up: self,
            session,
            from,
        }
    }
}

fn is_sse(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// One session's upstream, for the gateway's own `tools/list`.
pub(crate) struct SessionUpstream<'a> {
    up: &'a Upstream,
    session: &'a Mutex<Option<String>>,
    from: &'a HeaderMap,
}

impl crate::gate::Upstream for SessionUpstream<'_> {
    fn list_tools(&self, cursor: Option<String>) -> BoxFuture<'_, Result<Json, String>> {
        Box::pin(async move {
            let id = format!(
                "{}{}",
                crate::jsonrpc::OWN_ID_PREFIX,
                self.up.next.fetch_add(1, Ordering::Relaxed)
            );
            let params = cursor.map_or_else(|| json!({}), |c| json!({ "cursor": c }));
            let msg =
                json!({ "jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params });
            let resp = self.up.post(self.session, &msg, None, self.from).await?;
            let ms = Upstream::messages(resp).await?;
            ms.into_iter()
                .find(|m| m.get("id") == Some(&json!(id)))
                .and_then(|m| m.get("result").cloned())
                .ok_or_else(|| "no tools/list result".to_string())
        })
    }
}
