//! The reference policy in Rego (`policies/reference.rego`), in regorus's interpreter
//! and in its RVM (the policy compiled to bytecode once, run by one reused VM).
//!
//! Rego has no fixed outcomes: the `decision` rule returns the outcome as a string
//! with the set of rule ids that made it, the same else-chain as the other
//! implementations (any forbid denies; no permit denies; any gate holds for approval;
//! else allow).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use arbiter_core::{Attributes, Outcome, Principal, Request, Value as Attribute};
use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::rvm::vm::RegoVM;
use regorus::{Engine, Value};

use crate::Verdict;

/// The rule that decides.
const ENTRY: &str = "data.arbiter.decision";

fn engine(dir: &Path) -> anyhow::Result<Engine> {
    let path = dir.join("reference.rego");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut engine = Engine::new();
    // OPA's default (and the RVM's): a builtin that fails is undefined, so that an
    // address that does not parse is not corporate instead of an error.
    engine.set_strict_builtin_errors(false);
    engine
        .add_policy(path.display().to_string(), text)
        .with_context(|| format!("{}", path.display()))?;
    Ok(engine)
}

/// The interpreter: one engine holding the parsed policy, a new input per decision.
#[derive(Debug)]
pub(crate) struct Interpreter {
    engine: Engine,
}

impl Interpreter {
    pub(crate) fn load(dir: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            engine: engine(dir)?,
        })
    }

    pub(crate) fn decide(&mut self, r: &Request, approved: bool) -> anyhow::Result<Verdict> {
        self.engine.set_input(input(r, approved));
        verdict(&self.engine.eval_rule(ENTRY.to_owned())?)
    }
}

/// The RVM: the policy compiled to a program once, loaded into one VM that is given a
/// new input per decision.
#[derive(Debug)]
pub(crate) struct Vm {
    vm: RegoVM,
}

impl Vm {
    pub(crate) fn load(dir: &Path) -> anyhow::Result<Self> {
        let compiled = engine(dir)?
            .compile_with_entrypoint(&ENTRY.into())
            .context("compiling the rego policy")?;
        let program: Arc<Program> = Compiler::compile_from_policy(&compiled, &[ENTRY])
            .context("compiling the rego policy to RVM bytecode")?;
        let mut vm = RegoVM::new();
        vm.set_strict_builtin_errors(false);
        vm.load_program(program);
        Ok(Self { vm })
    }

    pub(crate) fn decide(&mut self, r: &Request, approved: bool) -> anyhow::Result<Verdict> {
        self.vm.set_input(input(r, approved));
        verdict(&self.vm.execute()?)
    }
}

/// `{"outcome": ..., "rules": {...}}` as a verdict.
fn verdict(decision: &Value) -> anyhow::Result<Verdict> {
    let outcome = decision["outcome"]
        .as_string()
        .context("`decision.outcome` is not a string")?;
    let Some(outcome) = Outcome::parse(outcome) else {
        bail!("`decision.outcome` is `{outcome}`");
    };
    let mut rules = Vec::new();
    for rule in decision["rules"]
        .as_set()
        .context("`decision.rules` is not a set")?
        .iter()
    {
        rules.push(
            rule.as_string()
                .context("a rule id is not a string")?
                .to_string(),
        );
    }
    Ok(Verdict {
        outcome,
        rules: Some(rules),
    })
}

/// The request as Rego input: its JSON shape, with `approved` beside it.
fn input(r: &Request, approved: bool) -> Value {
    let intent = object([
        ("purpose", text(&r.intent.purpose)),
        ("task_id", text(&r.intent.task_id)),
        ("ticket", text(&r.intent.ticket)),
        ("justification", text(&r.intent.justification)),
    ]);
    object([
        ("principal", principal(&r.principal)),
        (
            "delegation",
            Value::from(r.delegation.iter().map(principal).collect::<Vec<_>>()),
        ),
        (
            "action",
            object([
                ("name", text(&r.action.name)),
                ("privilege", Value::from(r.action.privilege.as_str())),
                ("attributes", attributes(&r.action.attributes)),
            ]),
        ),
        (
            "resource",
            object([
                ("id", text(&r.resource.id)),
                ("kind", text(&r.resource.kind)),
                ("attributes", attributes(&r.resource.attributes)),
            ]),
        ),
        ("intent", intent),
        ("context", attributes(&r.context)),
        ("approved", Value::from(approved)),
    ])
}

fn principal(p: &Principal) -> Value {
    object([
        ("id", text(&p.id)),
        ("kind", Value::from(p.kind.as_str())),
        ("attributes", attributes(&p.attributes)),
    ])
}

fn attributes(attrs: &Attributes) -> Value {
    let map: BTreeMap<Value, Value> = attrs
        .iter()
        .map(|(name, v)| (text(name), attribute(v)))
        .collect();
    Value::from(map)
}

fn attribute(v: &Attribute) -> Value {
    match v {
        Attribute::Bool(b) => Value::from(*b),
        Attribute::Int(i) => Value::from(*i),
        Attribute::Float(x) => Value::from(*x),
        Attribute::Str(s) => text(s),
        Attribute::Strings(list) => Value::from(list.iter().map(|s| text(s)).collect::<Vec<_>>()),
    }
}

fn text(s: &str) -> Value {
    Value::from(s)
}

fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::from(
        fields
            .into_iter()
            .map(|(k, v)| (text(k), v))
            .collect::<BTreeMap<_, _>>(),
    )
}
