//! `arbiter check`: JSON requests in, one JSON decision per line out, through a
//! running server. Batches under the hood.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use arbiter_core::Request;
use futures::StreamExt as _;
use serde_json::{Value as Json, json};

use super::client::ClientArgs;
use crate::grpc::encode;
use crate::proto as pb;
use crate::proto::authorizer_client::AuthorizerClient;

/// Flags of `arbiter check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// JSON-lines file of requests (a bare request, or an object with a `request`
    /// field as in the test vectors); `-` for stdin.
    #[arg(default_value = "-")]
    pub input: PathBuf,
    /// The server and the caller's token.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Ask this policy set instead of the server's default.
    #[arg(long)]
    pub policy_set: Option<String>,
    /// Include every plugin's verdict in the output.
    #[arg(long)]
    pub explain: bool,
    /// Requests per AuthorizeBatch call (1-1000).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub batch_size: u16,
    /// Batches in flight at once (1-64). The default keeps a two-core server busy;
    /// `--batch-size 1 --in-flight 1` sends one request at a time, so that the
    /// server's per-plugin times (`--explain`) are the cost of one evaluation, not its
    /// latency among others.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=64))]
    pub in_flight: u8,
}

/// A line of input, parsed.
struct Line {
    number: usize,
    id: Option<Json>,
    request: pb::AuthorizeRequest,
}

/// Runs the command; the result is the process exit code.
pub async fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let name = if args.input.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        args.input.display().to_string()
    };
    let reader: Box<dyn BufRead> = if args.input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(&args.input).with_context(|| format!("cannot open `{name}`"))?,
        ))
    };
    let mut bad_lines = 0;
    let mut lines = Vec::new();
    for (i, text) in reader.lines().enumerate() {
        let text = text.with_context(|| format!("cannot read `{name}`"))?;
        if text.trim().is_empty() {
            continue;
        }
        match parse_line(&text) {
            Ok((id, request)) => {
                let mut request = encode::request(&request);
                request.policy_set = args.policy_set.clone().unwrap_or_default();
                request.explain = args.explain;
                lines.push(Line {
                    number: i + 1,
                    id,
                    request,
                });
            }
            Err(e) => {
                bad_lines += 1;
                eprintln!(
                    "{name}:{}: {e}\nhint: each line is a JSON request (principal, delegation, action, resource, intent, context) or an object with a `request` field",
                    i + 1
                );
            }
        }
    }

    let client = match args.client.connect().await {
        Ok(c) => AuthorizerClient::new(c)
            .max_decoding_message_size(crate::grpc::decode::MAX_MESSAGE_BYTES),
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(2);
        }
    };
    let mut item_errors = 0;
    let batches: Vec<Vec<Line>> = chunk(lines, usize::from(args.batch_size));
    let mut answers = futures::stream::iter(batches.into_iter().map(|batch| {
        let mut client = client.clone();
        async move {
            let requests = batch.iter().map(|l| l.request.clone()).collect();
            let reply = client
                .authorize_batch(pb::AuthorizeBatchRequest { requests })
                .await;
            (batch, reply)
        }
    }))
    .buffered(usize::from(args.in_flight));
    let mut out = std::io::stdout().lock();
    while let Some((batch, reply)) = answers.next().await {
        let items = match reply {
            Ok(r) => r.into_inner().items,
            Err(status) => {
                eprintln!(
                    "error: the server refused a batch: {} ({:?})",
                    status.message(),
                    status.code()
                );
                return Ok(if status.code() == tonic::Code::Unavailable {
                    2
                } else {
                    1
                });
            }
        };
        for (line, item) in batch.iter().zip(items) {
            let mut v = render(item, &mut item_errors);
            v["line"] = json!(line.number);
            if let Some(id) = &line.id {
                v["id"] = id.clone();
            }
            match writeln!(out, "{v}") {
                // The reader went away (`| head`): stop quietly, like other Unix tools.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
                r => r?,
            }
        }
    }
    Ok(if bad_lines + item_errors == 0 { 0 } else { 1 })
}

fn chunk<T>(items: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(size).collect());
    }
    out
}

/// A line is a bare request or an object with a `request` field (and maybe an `id`).
pub fn parse_line(text: &str) -> Result<(Option<Json>, Request), String> {
    let v: Json = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let (id, request) = match v {
        Json::Object(mut m) if m.contains_key("request") => {
            (m.remove("id"), m.remove("request").unwrap_or_default())
        }
        other => (None, other),
    };
    let request =
        serde_json::from_value(request).map_err(|e| format!("not a valid request: {e}"))?;
    Ok((id, request))
}

fn render(item: pb::BatchItem, errors: &mut usize) -> Json {
    match item.result {
        Some(pb::batch_item::Result::Response(r)) => response_json(&r),
        Some(pb::batch_item::Result::Error(e)) => {
            *errors += 1;
            // The batch index means nothing to the reader; the output's `line` says which.
            let field = e
                .field
                .split_once("].")
                .map_or(e.field.as_str(), |(_, f)| f);
            json!({ "error": { "code": code_name(e.code), "field": field, "message": e.message } })
        }
        None => {
            *errors += 1;
            json!({ "error": { "message": "the server sent an empty item" } })
        }
    }
}

/// A decision as the JSON `arbiter check` prints.
pub fn response_json(r: &pb::AuthorizeResponse) -> Json {
    let mut v = json!({
        "decision": encode::outcome_of(r.decision).map_or("unknown", |o| o.as_str()),
        "decision_id": r.decision_id,
        "reasons": r.reasons.iter().map(|x| json!({"code": x.code, "message": x.message})).collect::<Vec<_>>(),
        "policy_set": r.policy_set,
        "policy_set_version": r.policy_set_version,
    });
    if let Some(o) = &r.obligations {
        let mut obligations = serde_json::Map::new();
        if let Some(secs) = o.max_credential_lifetime_seconds {
            obligations.insert("max_credential_lifetime_seconds".into(), json!(secs));
        }
        if let Some(n) = o.approvers_required {
            obligations.insert("approvers_required".into(), json!(n));
        }
        v["obligations"] = Json::Object(obligations);
    }
    if !r.approval_id.is_empty() {
        v["approval_id"] = json!(r.approval_id);
    }
    if !r.plugins.is_empty() {
        v["plugins"] = r
            .plugins
            .iter()
            .map(|p| json!({"plugin": p.plugin, "effect": p.effect, "failure": p.failure, "elapsed_micros": p.elapsed_micros,
                "reasons": p.reasons.iter().map(|x| json!({"code": x.code, "message": x.message})).collect::<Vec<_>>()}))
            .collect();
    }
    v
}

/// The canonical name of a gRPC status code, as in the gRPC specification.
fn code_name(code: i32) -> &'static str {
    use tonic::Code;
    match Code::from_i32(code) {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
