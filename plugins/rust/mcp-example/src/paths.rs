//! Paths as the MCP gateway sends them: absolute and lexically normalised (no `.` or
//! `..` segments, no empty segments, no trailing slash except for `/`). Every test here
//! compares whole segments, so `/ws2` is not inside `/ws`. Paths are POSIX paths,
//! compared byte for byte (the secrets rules excepted): a path spelt in another case
//! than the workspace is outside it, which fails closed on case-insensitive file
//! systems.

/// Directory names that hold keys or credentials: any path through one is a secret.
const SECRET_DIRS: [&str; 4] = [".ssh", ".gnupg", "secrets", ".aws"];

/// File names that are secrets themselves. Public keys (`id_rsa.pub`) are not.
const SECRET_NAMES: [&str; 9] = [
    ".env",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "credentials",
    ".netrc",
    ".npmrc",
    ".pypirc",
];

/// Extensions of key and certificate-bundle files.
const SECRET_EXTENSIONS: [&str; 4] = [".pem", ".key", ".p12", ".pfx"];

/// True for an absolute, lexically normalised POSIX path.
pub fn is_normalised_absolute(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    rest.split('/')
        .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

/// True when `path` is `base` or lies under it, segment by segment. Both must be
/// normalised ([`is_normalised_absolute`]).
pub fn is_inside(path: &str, base: &str) -> bool {
    base == "/"
        || path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The rule that makes `path` a secrets path, for messages: a secrets directory on the
/// way, or the file's name. Compared case-insensitively (`.ENV`, `KEY.PEM`), since
/// several file systems are.
pub fn secret_rule(path: &str) -> Option<SecretRule> {
    let lower = path.to_ascii_lowercase();
    let segments: Vec<&str> = lower.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(dir) = segments.iter().find(|s| SECRET_DIRS.contains(s)) {
        return Some(SecretRule::Directory(lookup(&SECRET_DIRS, dir)));
    }
    let name = segments.last()?;
    if let Some(exact) = SECRET_NAMES.iter().find(|n| *name == **n) {
        return Some(SecretRule::Name(exact));
    }
    if name.starts_with(".env.") {
        return Some(SecretRule::Name(".env.*"));
    }
    SECRET_EXTENSIONS
        .iter()
        .find(|ext| name.ends_with(**ext))
        .map(|ext| SecretRule::Extension(ext))
}

/// The static spelling of `found` in `list` (it is always there).
fn lookup(list: &[&'static str], found: &str) -> &'static str {
    list.iter().find(|d| **d == found).copied().unwrap_or("?")
}

/// Why a path is a secrets path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretRule {
    /// It goes through this directory.
    Directory(&'static str),
    /// Its file name is this one (or matches `.env.*`).
    Name(&'static str),
    /// Its file name ends with this extension.
    Extension(&'static str),
}

impl std::fmt::Display for SecretRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Directory(d) => write!(f, "it is in a `{d}` directory"),
            Self::Name(n) => write!(f, "its file name is `{n}`"),
            Self::Extension(e) => write!(f, "its file name ends with `{e}`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_absolute_paths() {
        for ok in ["/", "/ws", "/ws/a/b.txt", "/ws/.hidden", "/ws/a..b"] {
            assert!(is_normalised_absolute(ok), "{ok}");
        }
        for bad in [
            "",
            "ws",
            "./ws",
            "/ws/",
            "//ws",
            "/ws//a",
            "/ws/./a",
            "/ws/..",
            "/ws/../etc",
            "~/ws",
            "C:\\ws",
        ] {
            assert!(!is_normalised_absolute(bad), "{bad}");
        }
    }

    #[test]
    fn inside_compares_whole_segments() {
        assert!(is_inside("/ws", "/ws"));
        assert!(is_inside("/ws/a", "/ws"));
        assert!(is_inside("/ws/a/b", "/ws/a"));
        assert!(!is_inside("/ws2", "/ws"));
        assert!(!is_inside("/ws2/a", "/ws"));
        assert!(!is_inside("/w", "/ws"));
        assert!(!is_inside("/", "/ws"));
        assert!(!is_inside("/other/ws", "/ws"));
    }

    #[test]
    fn everything_is_inside_the_root() {
        assert!(is_inside("/", "/"));
        assert!(is_inside("/etc/passwd", "/"));
    }

    #[test]
    fn secrets_by_directory_name_and_extension() {
        let dir = |d| Some(SecretRule::Directory(d));
        let name = |n| Some(SecretRule::Name(n));
        let ext = |e| Some(SecretRule::Extension(e));
        assert_eq!(secret_rule("/ws/a/.ssh/x"), dir(".ssh"));
        assert_eq!(secret_rule("/ws/.ssh"), dir(".ssh"));
        assert_eq!(secret_rule("/ws/.SSH/config"), dir(".ssh"));
        assert_eq!(secret_rule("/ws/.gnupg/pubring.kbx"), dir(".gnupg"));
        assert_eq!(secret_rule("/ws/deploy/secrets/db.txt"), dir("secrets"));
        assert_eq!(secret_rule("/home/u/.aws/config"), dir(".aws"));
        assert_eq!(secret_rule("/ws/.env"), name(".env"));
        assert_eq!(secret_rule("/ws/.ENV"), name(".env"));
        assert_eq!(secret_rule("/ws/app/.env.local"), name(".env.*"));
        assert_eq!(secret_rule("/ws/id_rsa"), name("id_rsa"));
        assert_eq!(secret_rule("/ws/ID_ED25519"), name("id_ed25519"));
        assert_eq!(secret_rule("/ws/id_ecdsa"), name("id_ecdsa"));
        assert_eq!(secret_rule("/ws/.aws-not/credentials"), name("credentials"));
        assert_eq!(secret_rule("/ws/.netrc"), name(".netrc"));
        assert_eq!(secret_rule("/ws/.npmrc"), name(".npmrc"));
        assert_eq!(secret_rule("/ws/.pypirc"), name(".pypirc"));
        assert_eq!(secret_rule("/ws/tls/server.pem"), ext(".pem"));
        assert_eq!(secret_rule("/ws/tls/SERVER.KEY"), ext(".key"));
        assert_eq!(secret_rule("/ws/cert.p12"), ext(".p12"));
        assert_eq!(secret_rule("/ws/cert.pfx"), ext(".pfx"));
    }

    #[test]
    fn look_alikes_are_not_secrets() {
        for path in [
            "/",
            "/ws",
            "/ws/src/main.rs",
            "/ws/id_rsa.pub",
            "/ws/id_ed25519.pub",
            "/ws/.envrc",
            "/ws/env",
            "/ws/.environment",
            "/ws/secrets-manager/readme.md",
            "/ws/my.ssh/notes",
            "/ws/keys/readme.md",
            "/ws/monkey",
            "/ws/credentials.md",
            "/ws/docs/pem.txt",
        ] {
            assert_eq!(secret_rule(path), None, "{path}");
        }
    }
}
