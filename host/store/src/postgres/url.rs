//! The database URL and password as operators give them.

use crate::StoreError;

/// The password in `path` (a mounted secret), without its final newline.
pub(crate) fn read_password(path: &std::path::Path) -> Result<String, StoreError> {
    std::fs::read_to_string(path)
        .map(|p| p.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| {
            StoreError::Unreachable(format!(
                "cannot read the database password file `{}`: {e}",
                path.display()
            ))
        })
}

/// `url` with any password replaced, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.split('?').next().unwrap_or_default().to_string();
    };
    match rest.split_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => format!("{scheme}://{rest}"),
    }
}
