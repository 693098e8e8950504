//! `arbiter test --coverage`: which reason codes each plugin declared (`rules` in its
//! `[[plugins]]` entry) were exercised by the tests, which never were, and which it
//! emitted without declaring them.
//!
//! Each plugin's own verdict is counted, not the combined decision: under
//! deny-overrides a deny hides every other plugin's reasons, and a rule whose code
//! only ever appears under someone else's deny is still exercised.

use std::collections::{BTreeMap, BTreeSet};

use arbiter_core::{Decision, PluginOutcome};

/// Printed when a plugin declares no rules.
const DECLARE_HINT: &str = "list the reason codes a plugin can emit in `rules = [\"code\", ...]` \
on its `[[plugins]]` entry in policy-set.toml, to see which are never exercised";

/// The reason codes each plugin gave, over every decision of a run.
#[derive(Debug, Default)]
pub(super) struct Coverage {
    /// Decisions recorded.
    decisions: usize,
    /// By plugin, by code: in how many decisions the plugin's verdict carried it.
    emitted: BTreeMap<String, BTreeMap<String, usize>>,
}

impl Coverage {
    /// Counts the codes of every plugin's verdict in `d` (a failed plugin has none).
    pub(super) fn record(&mut self, d: &Decision) {
        self.decisions += 1;
        for p in &d.plugins {
            let PluginOutcome::Verdict(verdict) = &p.outcome else {
                continue;
            };
            let codes: BTreeSet<&str> = verdict.reasons.iter().map(|r| r.code.as_str()).collect();
            let counts = self.emitted.entry(p.name.clone()).or_default();
            for code in codes {
                *counts.entry(code.to_string()).or_default() += 1;
            }
        }
    }

    /// The report, one plugin after another in `plugins` order (name, declared codes),
    /// then a hint when some plugin declares no rules; each line ends in a newline.
    pub(super) fn report<'a>(
        &self,
        plugins: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> String {
        let mut out = format!(
            "coverage: each plugin's own reason codes over {} decisions\n",
            self.decisions
        );
        let none = BTreeMap::new();
        let mut undeclaring = false;
        for (name, declared) in plugins {
            let emitted = self.emitted.get(name).unwrap_or(&none);
            let counted = |code: &str| format!("{code} ({})", emitted.get(code).unwrap_or(&0));
            if declared.is_empty() {
                let list = if emitted.is_empty() {
                    "no reason codes".to_string()
                } else {
                    join(emitted.keys().map(|c| counted(c)))
                };
                out.push_str(&format!("  {name}: declares no rules; emitted {list}\n"));
                undeclaring = true;
                continue;
            }
            let (exercised, never): (Vec<&String>, Vec<&String>) =
                declared.iter().partition(|c| emitted.contains_key(*c));
            out.push_str(&format!(
                "  {name}: {} of {} declared rules exercised\n",
                exercised.len(),
                declared.len()
            ));
            if !exercised.is_empty() {
                let list = join(exercised.iter().map(|c| counted(c)));
                out.push_str(&format!("    exercised: {list}\n"));
            }
            if !never.is_empty() {
                out.push_str(&format!("    never exercised: {}\n", join(never.iter())));
            }
            let undeclared: Vec<String> = emitted
                .keys()
                .filter(|c| !declared.contains(c))
                .map(|c| counted(c))
                .collect();
            if !undeclared.is_empty() {
                out.push_str(&format!(
                    "    emitted but not declared: {}\n",
                    undeclared.join(", ")
                ));
            }
        }
        if undeclaring {
            out.push_str(&format!("  hint: {DECLARE_HINT}\n"));
        }
        out
    }
}

fn join(items: impl Iterator<Item = impl std::fmt::Display>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}
