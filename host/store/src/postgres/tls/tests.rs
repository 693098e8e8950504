//! TLS to the database. Settings that cannot work stop the open before anything is
//! sent (no server needed); the rest run against a TLS-only PostgreSQL of the test's
//! own (`scripts/postgres-test-server --tls`: a throwaway CA, plaintext refused),
//! started where the plain test server runs (`ARBITER_TEST_POSTGRES`) and said
//! loudly to be skipped elsewhere.

use crate::contract::approval;
use crate::postgres::PgStore;
use crate::postgres::url::split_params;
use crate::{StateStore, redact_url};

/// A TLS-only PostgreSQL server; stopped and removed when dropped.
struct TlsServer {
    port: String,
    dir: String,
    ca: String,
}

impl TlsServer {
    const SCRIPT: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/postgres-test-server"
    );

    fn start() -> Option<Self> {
        if std::env::var("ARBITER_TEST_POSTGRES").is_err() {
            eprintln!(
                "SKIPPED: no PostgreSQL here (ARBITER_TEST_POSTGRES is unset; scripts/test starts one)"
            );
            return None;
        }
        let out = std::process::Command::new(Self::SCRIPT)
            .arg("--tls")
            .output()
            .expect("scripts/postgres-test-server runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let lines: Vec<&str> = text.lines().collect();
        let [url, dir, ca] = lines[..] else {
            panic!("three lines from --tls: {text}");
        };
        Some(Self {
            port: url.rsplit(':').next().expect("port").to_string(),
            dir: dir.to_string(),
            ca: ca.to_string(),
        })
    }

    /// The `postgres` database as `user` at `host` (which must resolve; the address
    /// is 127.0.0.1 whatever the name), with URL parameters `params`.
    fn url(&self, user: &str, host: &str, params: &str) -> String {
        format!(
            "postgres://{user}@{host}:{}/postgres?hostaddr=127.0.0.1&{params}",
            self.port
        )
    }

    fn file(&self, name: &str) -> String {
        format!("{}/tls/{name}", self.dir)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new(Self::SCRIPT)
            .args(["stop", &self.dir])
            .status();
    }
}

/// Whether the store's connections are encrypted, as the server sees them.
fn encrypted(s: &PgStore) -> bool {
    s.run(|c| async move {
        Ok(c.query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?
        .get(0))
    })
    .expect("pg_stat_ssl")
}

/// A few calls through the store: it works, not just connects.
fn use_store(s: &PgStore, id: &str) {
    s.create_approval(&approval(id, 1)).expect("create");
    assert!(s.approval(id, 2).expect("read").is_some());
    assert!(s.credential("none").expect("credential").is_none());
}

fn open_err(url: &str) -> String {
    let e = PgStore::open(url).expect_err("refused").to_string();
    assert!(!e.contains("s3cret"), "the password is never shown: {e}");
    e
}

#[test]
fn verify_full_refuses_a_server_that_another_ca_vouches_for_or_that_has_another_name() {
    let Some(pg) = TlsServer::start() else {
        return;
    };
    let other = tempfile::tempdir().expect("tempdir");
    let other_ca = other.path().join("other-ca.pem");
    let cert = rcgen::generate_simple_self_signed(vec!["other CA".to_string()]).expect("rcgen");
    std::fs::write(&other_ca, cert.cert.pem()).expect("write");
    let other_ca = other_ca.display().to_string();
    // Another CA: refused, naming the file, and not retried in plaintext.
    for mode in ["verify-full", "verify-ca", "require", "prefer"] {
        let e = open_err(&pg.url(
            "arbiter:s3cret",
            "127.0.0.1",
            &format!("sslmode={mode}&sslrootcert={other_ca}"),
        ));
        assert!(
            e.contains("certificate is refused")
                && e.contains(&other_ca)
                && e.contains("UnknownIssuer"),
            "{mode}: {e}"
        );
    }
    // The right CA, but the server's certificate is not for `localhost.localdomain`.
    let wrong_name = pg.url(
        "arbiter",
        "localhost.localdomain",
        &format!("sslmode=verify-full&sslrootcert={}", pg.ca),
    );
    let e = open_err(&wrong_name);
    assert!(
        e.contains("certificate is refused") && e.contains("not valid for name"),
        "{e}"
    );
    // verify-ca checks the chain only, as in libpq.
    let chain_only = wrong_name.replace("verify-full", "verify-ca");
    let s = PgStore::open(&chain_only).expect("verify-ca ignores the name");
    assert!(encrypted(&s));
    // Plaintext is refused by this server.
    let e = open_err(&pg.url("arbiter", "127.0.0.1", "sslmode=disable"));
    assert!(e.contains("pg_hba.conf rejects"), "{e}");
}

#[test]
fn verify_full_with_the_right_ca_connects_encrypted_and_a_client_certificate_signs_in() {
    let Some(pg) = TlsServer::start() else {
        return;
    };
    let verify_full = format!("sslmode=verify-full&sslrootcert={}", pg.ca);
    let s = PgStore::open(&pg.url("arbiter", "127.0.0.1", &verify_full)).expect("verify-full");
    assert!(encrypted(&s));
    use_store(&s, "tls-full");
    // `localhost` is the certificate's other name.
    let s = PgStore::open(&pg.url("arbiter", "localhost", &verify_full)).expect("by name");
    use_store(&s, "tls-name");
    // `require` without a CA encrypts without checking, as in libpq; `prefer` (the
    // default) takes TLS when the server offers it.
    for params in ["sslmode=require", "sslmode=prefer", ""] {
        let s = PgStore::open(&pg.url("arbiter", "127.0.0.1", params)).expect(params);
        assert!(encrypted(&s), "{params}");
    }
    // `certuser` signs in by certificate only.
    let e = open_err(&pg.url("certuser", "127.0.0.1", &verify_full));
    assert!(e.contains("certificate"), "{e}");
    let with_cert = format!(
        "{verify_full}&sslcert={}&sslkey={}",
        pg.file("client.pem"),
        pg.file("client.key")
    );
    let s =
        PgStore::open(&pg.url("certuser", "127.0.0.1", &with_cert)).expect("client certificate");
    assert!(encrypted(&s));
    use_store(&s, "tls-cert");
}

#[test]
fn tls_settings_that_cannot_work_stop_the_open_naming_the_parameter_or_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate\n").expect("write");
    let not_pem = not_pem.display().to_string();
    let missing = dir.path().join("missing.pem").display().to_string();
    // Nothing listens on port 1: each of these must fail before connecting.
    let url = |params: &str| format!("postgres://arbiter:s3cret@127.0.0.1:1/arbiter?{params}");
    let cases = [
        ("sslmode=verify-full", "needs sslrootcert"),
        ("sslmode=verify-ca", "needs sslrootcert"),
        ("sslmode=allow", "sslmode `allow` is not supported"),
        (
            "sslmode=verify-full&sslrootcert=system",
            "sslrootcert=system is not supported",
        ),
        (
            &format!("sslmode=verify-full&sslrootcert={missing}"),
            &format!("cannot read the TLS database CA (sslrootcert) `{missing}`"),
        ),
        (
            &format!("sslmode=require&sslrootcert={not_pem}"),
            &format!("`{not_pem}` holds no `-----BEGIN CERTIFICATE-----`"),
        ),
        (
            &format!("sslcert={not_pem}"),
            "sslcert and sslkey go together",
        ),
        (
            &format!("sslcert={missing}&sslkey={missing}"),
            "database client certificate (sslcert)",
        ),
    ];
    for (params, expected) in cases {
        let e = open_err(&url(params));
        assert!(e.contains(expected), "{params}: {e}");
        assert!(
            !e.contains("cannot be reached"),
            "refused before connecting: {e}"
        );
    }
    // The key=value form carries the same parameters.
    let e = open_err(&format!(
        "host=127.0.0.1 port=1 user=arbiter password=s3cret sslmode=verify-full sslrootcert='{missing}'"
    ));
    assert!(e.contains(&missing), "{e}");
}

#[test]
fn tls_parameters_are_taken_from_either_url_form_and_passwords_never_shown() {
    let keys = ["sslmode", "sslrootcert"];
    let (rest, taken) = split_params(
        "postgres://u:p@db:5432/x?sslmode=verify-full&connect_timeout=3&sslrootcert=%2Fetc%2Fca%20x.pem",
        &keys,
    );
    assert_eq!(rest, "postgres://u:p@db:5432/x?connect_timeout=3");
    assert_eq!(
        taken,
        [
            ("sslmode".to_string(), "verify-full".to_string()),
            ("sslrootcert".to_string(), "/etc/ca x.pem".to_string())
        ]
    );
    let (rest, taken) = split_params(
        r"host=db user=u sslmode = verify-full  sslrootcert='/etc/it\'s ca.pem' dbname=x",
        &keys,
    );
    assert_eq!(rest, "host=db user=u dbname=x");
    assert_eq!(taken[1].1, "/etc/it's ca.pem");
    assert_eq!(
        redact_url("host=db password='s3 cret' user=u"),
        "host=db user=u"
    );
    assert_eq!(
        redact_url("postgres://u@db/x?password=s3cret&sslmode=require"),
        "postgres://u:***@db/x?sslmode=require"
    );
    assert_eq!(
        redact_url("postgres://u:s3cret@db/x?sslrootcert=/a@b/ca.pem"),
        "postgres://u:***@db/x?sslrootcert=/a@b/ca.pem"
    );
    // A password may hold `?` or `/` (tokio-postgres reads it to the first `@`): it
    // is neither shown nor mistaken for the start of the query.
    assert_eq!(
        redact_url("postgres://arbiter:pa?s/s@db/arbiter?sslmode=require"),
        "postgres://arbiter:***@db/arbiter?sslmode=require"
    );
    let (rest, taken) = split_params("postgres://arbiter:pa?ss@db/x?sslmode=require", &keys);
    assert_eq!(rest, "postgres://arbiter:pa?ss@db/x");
    assert_eq!(taken, [("sslmode".to_string(), "require".to_string())]);
    // What does not parse is not shown at all.
    for broken in [
        "host=db password='s3cret",
        "postgres://u@db/x?password=p%ss",
    ] {
        let shown = redact_url(broken);
        assert!(
            !shown.contains("s3cret") && !shown.contains("p%ss"),
            "{shown}"
        );
    }
}
