//! Which replica this server is: a name unique among the live replicas that share
//! one state database (the pod name in Kubernetes), used to tell their records,
//! chains and status apart; on a shared database, held by one live process at a time
//! through a lease (`lease.rs`).

mod lease;

pub use lease::{Lease, LeaseError, RENEW_EVERY, TTL, spawn_renewer};

/// Longest replica id: a DNS label, as a pod name is.
pub const MAX_ID_LEN: usize = 63;

/// The replica id given (`--replica-id`, `ARBITER_REPLICA_ID`, `[state] replica_id`),
/// else this machine's host name. `Err` says what is wrong with the one given.
pub fn resolve(given: Option<&str>) -> Result<String, String> {
    let id = match given {
        Some(id) => id.to_string(),
        None => host_name(),
    };
    check(&id)?;
    Ok(id)
}

/// Refuses an id that is empty, too long, or holds anything but ASCII letters,
/// digits, `.`, `_` and `-`.
pub fn check(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(format!(
            "replica id `{id}` must be 1 to {MAX_ID_LEN} characters"
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "replica id `{}` holds {c:?}: use ASCII letters, digits, `.`, `_` and `-` (a pod name fits)",
            id.escape_debug()
        ));
    }
    Ok(())
}

/// The kernel's host name (the pod name in Kubernetes), else `$HOSTNAME`, else
/// `arbiter`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| check(h).is_ok())
        .unwrap_or_else(|| "arbiter".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_id_is_checked_and_the_default_is_a_valid_host_name() {
        assert_eq!(resolve(Some("arbiter-0")).unwrap(), "arbiter-0");
        assert!(resolve(Some("")).unwrap_err().contains("1 to 63"));
        assert!(
            resolve(Some(&"a".repeat(64)))
                .unwrap_err()
                .contains("1 to 63")
        );
        assert!(resolve(Some("a b")).unwrap_err().contains("' '"));
        assert!(resolve(Some("a\0b")).unwrap_err().contains("\\0"));
        assert!(check(&resolve(None).unwrap()).is_ok());
    }
}
