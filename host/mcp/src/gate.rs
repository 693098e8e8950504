//! The enforcement point: for each message an agent sends, the AuthZEN evaluations
//! its COAZ mapping gives, Arbiter's decision on each, and what the gateway does:
//! forward (with the paths it decided and the credential it was given), refuse with
//! the binding's JSON-RPC error, or hold for a human (see [`crate::hold`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbiter_proto as pb;
use futures::future::BoxFuture;
use serde_json::{Map, Value as Json, json};

use crate::catalog::{Catalog, Tool};
use crate::coaz::{self, Mapping, MappingError};
use crate::jsonrpc::{self, DENIED, INTERNAL, INVALID_PARAMS, Kind};
use crate::pdp::{Pdp, PdpError};
use crate::request::{self, Framing};

/// How the gateway decides, from its flags.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The policy set to ask; empty for the server's default.
    pub policy_set: String,
    /// The agent's workspace (absolute, normalised), sent as context `workspace`.
    pub workspace: Option<String>,
    /// The scratch folder (absolute, normalised), sent as context `scratch`.
    pub scratch: Option<String>,
    /// How long a held call waits for a human before it fails.
    pub approval_timeout: Duration,
    /// Answer a held call at once with the approval id and a retry hint.
    pub no_wait: bool,
    /// Leave tools the agent could never call out of `tools/list`.
    pub hide_denied_tools: bool,
}

/// The upstream, as the gateway itself asks it (to learn declared mappings).
pub trait Upstream: Send + Sync {
    /// One `tools/list` page's `result`.
    fn list_tools(&self, cursor: Option<String>) -> BoxFuture<'_, Result<Json, String>>;
}

/// Every listed tool by name, with its declared mapping if it has one (a mapping that
/// does not compile is kept as its error: calling that tool is a mapping error).
pub(crate) type Declared = Arc<HashMap<String, Option<Result<Arc<Mapping>, MappingError>>>>;

/// One agent session: the MCP session is the task.
#[derive(Debug)]
pub struct Session {
    /// `intent.task_id` of every decision in the session.
    pub task_id: String,
    /// The caller's claims: verified from its bearer token, or configured (stdio).
    pub claims: Json,
    /// Declared mappings by tool, once the server's tools are known.
    pub(crate) declared: Mutex<Option<Declared>>,
    /// Non-blocking mode: approvals a call is waiting for, by the call's digest.
    pub(crate) waiting: Mutex<HashMap<String, Vec<String>>>,
}

impl Session {
    /// A new session with `claims`.
    pub fn new(claims: Json) -> Self {
        Self {
            task_id: format!("mcp-{}", uuid::Uuid::now_v7()),
            claims,
            declared: Mutex::default(),
            waiting: Mutex::default(),
        }
    }

    pub(crate) fn declared(&self) -> Option<Declared> {
        self.declared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// What to do with a message.
#[derive(Debug)]
pub enum Verdict {
    /// Send it on, as given here, with the credential for the upstream if any.
    Forward {
        message: Json,
        credential: Option<String>,
    },
    /// Answer the agent with this instead (an error response).
    Answer(Json),
    /// Neither forward nor answer (a notification the gateway does not pass).
    Drop,
}

/// The decision side of the gateway, shared by its sessions.
#[derive(Debug)]
pub struct Gateway {
    pub(crate) pdp: Pdp,
    pub(crate) catalog: Catalog,
    pub(crate) settings: Settings,
    pub(crate) context: Map<String, Json>,
}

/// One evaluation ready to ask.
pub(crate) struct Ask {
    pub(crate) request: pb::AuthorizeRequest,
}

impl Gateway {
    /// A gateway asking `pdp` about the tools of `catalog`.
    pub fn new(pdp: Pdp, catalog: Catalog, settings: Settings) -> Self {
        let mut context = Map::new();
        context.insert("mcp_server".into(), json!(catalog.server));
        if let Some(w) = &settings.workspace {
            context.insert("workspace".into(), json!(w));
        }
        if let Some(s) = &settings.scratch {
            context.insert("scratch".into(), json!(s));
        }
        Self {
            pdp,
            catalog,
            settings,
            context,
        }
    }

    /// The server name of the catalog (`$token.aud` for stdio sessions).
    pub fn server(&self) -> &str {
        &self.catalog.server
    }

    /// Ends `session`: completes its task in Arbiter, which revokes every credential
    /// issued for it.
    pub async fn end_session(&self, session: &Session) {
        match self.pdp.complete_task(&session.task_id).await {
            Ok(revoked) => {
                tracing::info!(task_id = %session.task_id, revoked = revoked.len(), "MCP session ended; task completed")
            }
            Err(e) => {
                tracing::warn!(task_id = %session.task_id, error = %e, "MCP session ended; completing the task failed: its credentials expire on their own")
            }
        }
    }

    /// Decides `msg`, an agent's message. `progress` sends the agent a notification
    /// while a call is held.
    pub async fn gate(
        &self,
        session: &Session,
        msg: Json,
        upstream: &dyn Upstream,
        progress: &(dyn Fn(Json) + Send + Sync),
    ) -> Verdict {
        let id = jsonrpc::id_of(&msg);
        let method = match jsonrpc::kind(&msg) {
            Kind::Request { method } => method.to_string(),
            // Only MCP notifications pass: an id-less `tools/call` is a request that a
            // generic JSON-RPC server would run without answering.
            Kind::Notification { method } if !coaz::is_pass_through(method, false) => {
                tracing::warn!(
                    method,
                    "an id-less message that is not a notification: dropped"
                );
                return Verdict::Drop;
            }
            // An agent may not widen the server's sandbox with roots of its own.
            Kind::Notification {
                method: "notifications/roots/list_changed",
            } => return Verdict::Drop,
            Kind::Notification { .. } | Kind::Response => {
                return Verdict::Forward {
                    message: strip_credential(msg),
                    credential: None,
                };
            }
            Kind::Invalid => {
                return Verdict::Answer(jsonrpc::error(
                    &id,
                    jsonrpc::INVALID_REQUEST,
                    "not a JSON-RPC 2.0 request, notification or response",
                    None,
                ));
            }
        };
        if id
            .as_str()
            .is_some_and(|i| i.starts_with(crate::jsonrpc::OWN_ID_PREFIX))
        {
            return Verdict::Answer(jsonrpc::error(
                &id,
                jsonrpc::INVALID_REQUEST,
                format!(
                    "request ids starting `{}` are the gateway's own",
                    crate::jsonrpc::OWN_ID_PREFIX
                ),
                None,
            ));
        }
        let params_ok = match msg.get("params") {
            None | Some(Json::Object(_)) => msg
                .pointer("/params/_meta")
                .is_none_or(|m| m.is_object() || m.is_null()),
            Some(_) => false,
        };
        if !params_ok {
            return Verdict::Answer(jsonrpc::error(
                &id,
                INVALID_PARAMS,
                "`params` (and `params._meta`) must be objects",
                None,
            ));
        }
        if coaz::is_pass_through(&method, true) {
            return Verdict::Forward {
                message: strip_credential(msg),
                credential: None,
            };
        }
        let mut msg = strip_credential(msg);
        if method == "initialize"
            && let Some(caps) = msg
                .pointer_mut("/params/capabilities")
                .and_then(Json::as_object_mut)
        {
            // Roots would let the agent set the server's allowed directories (the
            // filesystem server replaces its own with them): the server keeps its own.
            caps.remove("roots");
        }
        let planned = if method == "tools/call" {
            self.plan_tool_call(session, &mut msg, upstream).await
        } else {
            self.plan_method(session, &method, &msg)
        };
        let (asks, credential_wanted) = match planned {
            Ok(p) => p,
            Err(answer) => return Verdict::Answer(answer.into_response(&id)),
        };
        if asks.is_empty() {
            return Verdict::Answer(
                Refusal::invalid("the call names no resource to decide on").into_response(&id),
            );
        }
        // An empty resource id is how a probe asks "whatever the resource"; a real
        // call always names one.
        if asks
            .iter()
            .any(|a| a.request.resource.as_ref().is_none_or(|r| r.id.is_empty()))
        {
            return Verdict::Answer(
                Refusal::invalid("COAZ mapping error: `resource.id` resolved to an empty string")
                    .into_response(&id),
            );
        }
        let token = msg
            .pointer("/params/_meta/progressToken")
            .cloned()
            .filter(|t| !t.is_null());
        // Only non-blocking mode recognises a call made again: no digest otherwise.
        let key = self.settings.no_wait.then(|| {
            let mut call = msg.get("params").cloned().unwrap_or(Json::Null);
            if let Some(p) = call.as_object_mut() {
                p.remove("_meta");
            }
            format!("{method}\n{}", crate::hold::canonical(&call))
        });
        match crate::hold::decide(self, session, asks, key.as_deref(), &token, progress).await {
            Ok(credential) => Verdict::Forward {
                message: msg,
                credential: credential.filter(|_| credential_wanted),
            },
            Err(refusal) => Verdict::Answer(refusal.into_response(&id)),
        }
    }

    /// Methods other than `tools/call`: their default mapping, privilege from the
    /// catalog (read unless it says otherwise).
    fn plan_method(
        &self,
        session: &Session,
        method: &str,
        msg: &Json,
    ) -> Result<(Vec<Ask>, bool), Refusal> {
        let Some(mapping) = coaz::default_mapping(method) else {
            return Err(Refusal::denied(format!(
                "method `{method}` has no COAZ-MCP mapping and is not pass-through: denied"
            )));
        };
        let params = msg.get("params").cloned().unwrap_or_else(|| json!({}));
        let evals = mapping.evaluations(&params, &session.claims)?;
        let framing = Framing {
            method,
            tool: None,
            default_mapping: true,
            agent: session.claims.get("client_id").and_then(Json::as_str),
            privilege: self.catalog.method_privilege(method),
            resource: None,
            task_id: &session.task_id,
            context: &self.context,
            policy_set: &self.settings.policy_set,
        };
        let asks = evals
            .iter()
            .map(|e| {
                Ok(Ask {
                    request: request::authorize(e, &framing)?,
                })
            })
            .collect::<Result<_, MappingError>>()?;
        Ok((asks, false))
    }

    /// `tools/call`: the tool's declared mapping if the server gave one, else the
    /// default with the catalog's resource; paths normalised in `msg` as decided.
    async fn plan_tool_call(
        &self,
        session: &Session,
        msg: &mut Json,
        upstream: &dyn Upstream,
    ) -> Result<(Vec<Ask>, bool), Refusal> {
        let name = msg
            .pointer("/params/name")
            .and_then(Json::as_str)
            .ok_or_else(|| Refusal::invalid("`params.name` (the tool) must be a string"))?
            .to_string();
        let Some(tool) = self.catalog.tools.get(&name) else {
            return Err(Refusal::denied(format!(
                "tool `{name}` is not in this gateway's catalog, so it is denied; use a listed tool"
            )));
        };
        // Paths are normalised (and forwarded so) before any mapping sees them.
        let resources = self.resources(tool, msg)?;
        let declared = match session.declared() {
            Some(d) if d.contains_key(&name) => d,
            // A tool the gateway has not seen listed: list every page first, so that
            // an agent cannot skip a declared mapping by not listing.
            _ => self.learn_tools(session, upstream).await?,
        };
        let declared = declared.get(&name).cloned().flatten().transpose()?;
        let mapping = declared.as_deref().or(coaz::default_mapping("tools/call"));
        let Some(mapping) = mapping else {
            return Err(Refusal::internal(
                "no default mapping for tools/call".into(),
            ));
        };
        let params = msg.get("params").cloned().unwrap_or_else(|| json!({}));
        let evals = mapping.evaluations(&params, &session.claims)?;
        let mut asks = Vec::new();
        for eval in &evals {
            for resource in &resources {
                let framing = Framing {
                    method: "tools/call",
                    tool: Some(&name),
                    default_mapping: declared.is_none(),
                    agent: session.claims.get("client_id").and_then(Json::as_str),
                    privilege: tool.privilege,
                    resource: resource.clone(),
                    task_id: &session.task_id,
                    context: &self.context,
                    policy_set: &self.settings.policy_set,
                };
                asks.push(Ask {
                    request: request::authorize(eval, &framing)?,
                });
            }
        }
        if tool.credential
            && let Some(first) = asks.first_mut()
        {
            first.request.credential = Some(pb::CredentialRequest::default());
        }
        Ok((asks, tool.credential))
    }

    /// The resources a call names (catalog `resource_arguments`), paths normalised and
    /// written back into the arguments; one `None` (the mapping's resource) when the
    /// tool names none.
    fn resources(
        &self,
        tool: &Tool,
        msg: &mut Json,
    ) -> Result<Vec<Option<(String, String)>>, Refusal> {
        if tool.resource_arguments.is_empty() {
            return Ok(vec![None]);
        }
        let mut out = Vec::new();
        for arg in &tool.resource_arguments {
            let slot = msg
                .pointer_mut(&format!("/params/arguments/{arg}"))
                .ok_or_else(|| {
                    Refusal::invalid(format!(
                        "argument `{arg}` of tool `{}` is required: it names the resource",
                        tool.name
                    ))
                })?;
            let values: Vec<&mut Json> = match slot {
                Json::Array(items) => items.iter_mut().collect(),
                one => vec![one],
            };
            for v in values {
                let Some(s) = v.as_str() else {
                    return Err(Refusal::invalid(format!(
                        "argument `{arg}` of tool `{}` must be a string or a list of strings",
                        tool.name
                    )));
                };
                let id = if tool.paths {
                    let base = match (&self.settings.workspace, s.starts_with('/')) {
                        (_, true) => "/",
                        (Some(w), false) => w.as_str(),
                        (None, false) => {
                            return Err(Refusal::invalid(format!(
                                "argument `{arg}`: `{s}` is a relative path and the gateway has no --workspace to resolve it against"
                            )));
                        }
                    };
                    let normal = request::normalise_path(base, s);
                    *v = json!(normal);
                    normal
                } else {
                    s.to_string()
                };
                out.push(Some((tool.resource_kind.clone(), id)));
            }
        }
        Ok(out)
    }
}

/// Removes a credential an agent tried to plant in `_meta`.
fn strip_credential(mut msg: Json) -> Json {
    if let Some(meta) = msg
        .pointer_mut("/params/_meta")
        .and_then(Json::as_object_mut)
    {
        meta.remove(jsonrpc::CREDENTIAL_META);
    }
    msg
}

/// Why a message does not go on.
#[derive(Debug)]
pub struct Refusal {
    pub(crate) code: i64,
    pub(crate) message: String,
    pub(crate) data: Option<Json>,
}

impl Refusal {
    pub(crate) fn denied(message: String) -> Self {
        Self {
            code: DENIED,
            message,
            data: None,
        }
    }
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: INVALID_PARAMS,
            message: message.into(),
            data: None,
        }
    }
    pub(crate) fn internal(message: String) -> Self {
        Self {
            code: INTERNAL,
            message,
            data: None,
        }
    }
    fn into_response(self, id: &Json) -> Json {
        jsonrpc::error(id, self.code, self.message, self.data)
    }
}

impl From<MappingError> for Refusal {
    fn from(e: MappingError) -> Self {
        Self::invalid(e.to_string())
    }
}

impl From<PdpError> for Refusal {
    fn from(e: PdpError) -> Self {
        match e {
            PdpError::Invalid(m) => Self::invalid(format!("invalid params: {m}")),
            PdpError::Unavailable(_) => Self::internal(e.to_string()),
            PdpError::UnknownApproval(_) | PdpError::Precondition(_) => Self::denied(e.to_string()),
        }
    }
}
