//! A request's JSON body: its content type checked, its bytes taken from the server's
//! budget before they are read (all of the limit when the length is not announced)
//! and given back once the answer is made.

use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use serde_json::Value as Json;

use crate::Door;
use crate::handler::{Answer, MAX_BODY_BYTES, bad, invalid_top, text};

/// The request's JSON body, its bytes held against the server's budget until the
/// returned guard drops; or the answer refusing it.
pub(crate) async fn read_json(
    door: &Door,
    req: Request<Incoming>,
) -> Result<(Json, Taken<'_>), Answer> {
    let json_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(bad(&invalid_top(
            "Content-Type",
            "must be application/json",
        )));
    }
    // The body's bytes are taken from the server's budget before it is read (all of
    // the limit when its length is not announced) and given back with the answer.
    let announced = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(bad(&invalid_top(
            "body",
            format!("is more than {MAX_BODY_BYTES} bytes"),
        )));
    }
    let want = announced.unwrap_or(MAX_BODY_BYTES);
    if !door.budget.take(want) {
        let mut r = text(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "the server holds {} MiB of requests in flight, its limit: retry with backoff",
                door.budget.limit() >> 20
            ),
        );
        r.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
        return Err(r);
    }
    let held = Taken(&door.budget, want);
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Err(bad(&invalid_top(
                "body",
                format!("is more than {MAX_BODY_BYTES} bytes, or was cut off"),
            )));
        }
    };
    if body.is_empty() {
        return Err(bad(&invalid_top("body", "is empty: send a JSON object")));
    }
    let v: Json = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Err(bad(&invalid_top(
                "body",
                format!(
                    "is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )));
        }
    };
    Ok((v, held))
}

/// Bytes taken from the budget, given back when dropped.
pub(crate) struct Taken<'a>(&'a arbiter_service::budget::Budget, usize);

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.0.give(self.1);
    }
}
