//! What the gateway learns from and does to `tools/list`: the declared mappings of the
//! server's tools, and with `--hide-denied-tools` the tools the agent could never
//! call left out, found with probe decisions.

use std::sync::Arc;

use arbiter_proto as pb;
use serde_json::{Value as Json, json};

use crate::coaz::{self, Mapping};
use crate::gate::{Declared, Gateway, Refusal, Session, Upstream};
use crate::request::{self, Framing};

/// The most `tools/list` pages the gateway reads to learn mappings.
const MAX_TOOL_PAGES: usize = 100;

impl Gateway {
    /// Lists the upstream's tools (every page) to learn their declared mappings.
    pub(crate) async fn learn_tools(
        &self,
        session: &Session,
        upstream: &dyn Upstream,
    ) -> Result<Declared, Refusal> {
        let mut cursor = None;
        let mut tools = Vec::new();
        for _ in 0..MAX_TOOL_PAGES {
            let page = upstream.list_tools(cursor.take()).await.map_err(|e| {
                Refusal::internal(format!(
                    "cannot list the server's tools to learn their mappings: {e}"
                ))
            })?;
            tools.extend(
                page.get("tools")
                    .and_then(Json::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            match page.get("nextCursor").and_then(Json::as_str) {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        Ok(self.remember_tools(session, &tools))
    }

    /// Records the declared mappings of `tools` (a `tools/list` result's list).
    pub(crate) fn remember_tools(&self, session: &Session, tools: &[Json]) -> Declared {
        let mut map = session.declared().map(|d| (*d).clone()).unwrap_or_default();
        for t in tools {
            let Some(name) = t.get("name").and_then(Json::as_str) else {
                continue;
            };
            let declared = t
                .pointer("/inputSchema/x-authzen-mapping")
                .map(|m| Mapping::compile(m, true).map(Arc::new));
            map.insert(name.to_string(), declared);
        }
        let map = Arc::new(map);
        *session.declared.lock().unwrap_or_else(|e| e.into_inner()) = Some(map.clone());
        map
    }

    /// A `tools/list` result as the agent should see it: declared mappings learnt, and
    /// with `--hide-denied-tools` the tools it could never call left out (tools missing
    /// from the catalog, and those a probe decision denies).
    pub async fn filter_tools(&self, session: &Session, result: &mut Json) {
        let tools = result
            .get("tools")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        self.remember_tools(session, &tools);
        if !self.settings.hide_denied_tools {
            return;
        }
        let mut kept = Vec::new();
        for t in tools {
            let name = t.get("name").and_then(Json::as_str).unwrap_or_default();
            if self.could_call(session, name).await {
                kept.push(t);
            }
        }
        result["tools"] = Json::Array(kept);
    }

    /// A probe: could this session's agent ever be allowed to call `name`?
    async fn could_call(&self, session: &Session, name: &str) -> bool {
        let Some(tool) = self.catalog.tools.get(name) else {
            return false;
        };
        let Some(mapping) = coaz::default_mapping("tools/call") else {
            return false;
        };
        let params = json!({ "name": name, "arguments": {} });
        let Ok(evals) = mapping.evaluations(&params, &session.claims) else {
            return false;
        };
        let resource =
            (tool.resource_kind != "tool").then(|| (tool.resource_kind.clone(), String::new()));
        let framing = Framing {
            method: "tools/call",
            tool: Some(name),
            default_mapping: true,
            agent: session.claims.get("client_id").and_then(Json::as_str),
            privilege: tool.privilege,
            resource,
            task_id: &session.task_id,
            context: &self.context,
            policy_set: &self.settings.policy_set,
        };
        let Some(Ok(mut r)) = evals.first().map(|e| request::authorize(e, &framing)) else {
            return false;
        };
        r.probe = true;
        if let Some(a) = r.action.as_mut() {
            a.attributes.insert(
                "probe".into(),
                pb::Value {
                    kind: Some(pb::value::Kind::Boolean(true)),
                },
            );
        }
        match self.pdp.authorize(r).await {
            Ok(answer) => answer.decision != pb::Decision::Deny as i32,
            Err(e) => {
                tracing::warn!(tool = name, error = %e, "probe failed: the tool is hidden");
                false
            }
        }
    }
}
