//! The tool catalog: what Arbiter's request needs and MCP does not say. Each tool's
//! privilege level, the kind of resource it acts on, which arguments name that
//! resource, and whether the upstream gets a just-in-time credential for it. A tool
//! missing from the catalog is denied. Two stages: the raw TOML as written, then a
//! validated [`Catalog`] in which an unknown privilege cannot be expressed.

use std::collections::BTreeMap;
use std::path::Path;

use arbiter_proto::Privilege;
use serde::Deserialize;

/// The catalog format this build reads.
pub const FORMAT: u32 = 1;

/// The prefix of a catalog shipped in the binary (`--catalog builtin:filesystem`).
pub const BUILTIN: &str = "builtin:";

/// Catalogs shipped in the binary: name and TOML text.
const BUILTINS: &[(&str, &str)] = &[("filesystem", include_str!("../catalogs/filesystem.toml"))];

/// Names of the built-in catalogs.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(n, _)| *n)
}

/// A catalog that cannot be used: where and why, with a hint.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file cannot be read.
    #[error("cannot read the catalog `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// No built-in catalog by that name.
    #[error("no built-in catalog `{name}` (built in: {known})")]
    UnknownBuiltin { name: String, known: String },
    /// TOML syntax or shape.
    #[error("{origin}:{line}: {message}")]
    Invalid {
        origin: String,
        line: usize,
        message: String,
    },
}

/// How a tool is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    /// The MCP tool name.
    pub name: String,
    /// Its privilege level.
    pub privilege: Privilege,
    /// The kind of resource it acts on (`file`, `ticket`, ...); `tool` when it names none.
    pub resource_kind: String,
    /// Arguments naming the resource: each string value (or each string of a list) is
    /// one resource, decided separately; all must be allowed.
    pub resource_arguments: Vec<String>,
    /// The resource arguments are filesystem paths: made absolute (against the
    /// workspace) and lexically normalised before they are decided, and forwarded in
    /// that form, so that what is decided is what the server acts on.
    pub paths: bool,
    /// Ask for a just-in-time credential on allow and hand it to the upstream.
    pub credential: bool,
}

/// A validated catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The MCP server's identity: `resource.id` of server-wide methods.
    pub server: String,
    /// Privilege of methods other than `tools/call` (default: read).
    pub methods: BTreeMap<String, Privilege>,
    /// Tools by name.
    pub tools: BTreeMap<String, Tool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    format: u32,
    server: String,
    #[serde(default)]
    methods: BTreeMap<String, toml::Spanned<String>>,
    #[serde(default)]
    tools: Vec<toml::Spanned<RawTool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    name: String,
    privilege: toml::Spanned<String>,
    #[serde(default)]
    resource_kind: Option<String>,
    #[serde(default)]
    resource_arguments: Vec<String>,
    #[serde(default)]
    paths: bool,
    #[serde(default)]
    credential: bool,
}

/// Parses a privilege level as the catalog and the API spell it.
pub fn privilege(s: &str) -> Option<Privilege> {
    Some(match s {
        "read" => Privilege::Read,
        "write" => Privilege::Write,
        "admin" => Privilege::Admin,
        "identity-change" => Privilege::IdentityChange,
        "secret-access" => Privilege::SecretAccess,
        _ => return None,
    })
}

const PRIVILEGES: &str = "read, write, admin, identity-change or secret-access";

impl Catalog {
    /// Loads `builtin:NAME` or a TOML file.
    pub fn load(reference: &str) -> Result<Self, CatalogError> {
        if let Some(name) = reference.strip_prefix(BUILTIN) {
            let (_, text) = BUILTINS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
                CatalogError::UnknownBuiltin {
                    name: name.to_string(),
                    known: builtin_names().collect::<Vec<_>>().join(", "),
                }
            })?;
            return Self::parse(reference, text);
        }
        let text =
            std::fs::read_to_string(Path::new(reference)).map_err(|source| CatalogError::Read {
                path: reference.to_string(),
                source,
            })?;
        Self::parse(reference, &text)
    }

    /// Parses catalog text; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<Self, CatalogError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let invalid = |offset: usize, message: String| CatalogError::Invalid {
            origin: origin.to_string(),
            line: line_of(offset),
            message,
        };
        let raw: RawCatalog = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            invalid(at, e.message().to_string())
        })?;
        if raw.format != FORMAT {
            return Err(invalid(
                0,
                format!(
                    "catalog format {} is not supported; this build reads `format = {FORMAT}`",
                    raw.format
                ),
            ));
        }
        if raw.server.trim().is_empty() {
            return Err(invalid(
                0,
                "`server` is empty; name the MCP server, e.g. `server = \"filesystem\"`".into(),
            ));
        }
        let mut methods = BTreeMap::new();
        for (method, p) in raw.methods {
            let level = privilege(p.get_ref()).ok_or_else(|| {
                invalid(
                    p.span().start,
                    format!(
                        "method `{method}`: privilege `{}` is not {PRIVILEGES}",
                        p.get_ref()
                    ),
                )
            })?;
            if method == "tools/call" {
                return Err(invalid(
                    p.span().start,
                    "`tools/call` takes each tool's privilege from [[tools]], not from [methods]"
                        .into(),
                ));
            }
            methods.insert(method, level);
        }
        let mut tools = BTreeMap::new();
        for spanned in raw.tools {
            let at = spanned.span().start;
            let t = spanned.into_inner();
            let level = privilege(t.privilege.get_ref()).ok_or_else(|| {
                invalid(
                    t.privilege.span().start,
                    format!(
                        "tool `{}`: privilege `{}` is not {PRIVILEGES}",
                        t.name,
                        t.privilege.get_ref()
                    ),
                )
            })?;
            if t.name.is_empty() {
                return Err(invalid(at, "a tool has an empty `name`".into()));
            }
            if t.resource_arguments.is_empty() && (t.paths || t.resource_kind.is_some()) {
                return Err(invalid(
                    at,
                    format!(
                        "tool `{}`: `resource_kind` and `paths` need `resource_arguments` (the arguments that name the resource)",
                        t.name
                    ),
                ));
            }
            let tool = Tool {
                resource_kind: t.resource_kind.unwrap_or_else(|| {
                    if t.resource_arguments.is_empty() {
                        "tool".into()
                    } else {
                        "resource".into()
                    }
                }),
                name: t.name.clone(),
                privilege: level,
                resource_arguments: t.resource_arguments,
                paths: t.paths,
                credential: t.credential,
            };
            if tools.insert(t.name.clone(), tool).is_some() {
                return Err(invalid(at, format!("tool `{}` is listed twice", t.name)));
            }
        }
        Ok(Self {
            server: raw.server,
            methods,
            tools,
        })
    }

    /// The privilege of a method other than `tools/call`.
    pub fn method_privilege(&self, method: &str) -> Privilege {
        self.methods.get(method).copied().unwrap_or(Privilege::Read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_filesystem_catalog_loads() {
        let c = Catalog::load("builtin:filesystem").expect("loads");
        assert_eq!(c.server, "filesystem");
        let write = &c.tools["write_file"];
        assert_eq!(write.privilege, Privilege::Write);
        assert_eq!(write.resource_arguments, ["path"]);
        assert!(write.paths && write.credential);
        assert_eq!(
            c.tools["move_file"].resource_arguments,
            ["source", "destination"]
        );
    }

    #[test]
    fn errors_name_the_line_and_say_what_to_do() {
        let text = "format = 1\nserver = \"s\"\n[[tools]]\nname = \"t\"\nprivilege = \"root\"\n";
        let e = Catalog::parse("c.toml", text).unwrap_err().to_string();
        assert!(
            e.starts_with("c.toml:5: tool `t`: privilege `root` is not read"),
            "{e}"
        );
        let e = Catalog::parse("c.toml", "format = 1\nserver = \"s\"\nbogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:3:") && e.contains("bogus"), "{e}");
        let e = Catalog::parse("c.toml", "format = 2\nserver = \"s\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("format = 1"), "{e}");
        let twice = "format = 1\nserver = \"s\"\n[[tools]]\nname = \"t\"\nprivilege = \"read\"\n[[tools]]\nname = \"t\"\nprivilege = \"read\"\n";
        let e = Catalog::parse("c.toml", twice).unwrap_err().to_string();
        assert!(e.starts_with("c.toml:6:") && e.contains("twice"), "{e}");
        let e = Catalog::load("builtin:nope").unwrap_err().to_string();
        assert!(e.contains("filesystem"), "{e}");
    }
}
