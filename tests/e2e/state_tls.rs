//! `arbiter serve --state-url` on a PostgreSQL that speaks only TLS
//! (`scripts/postgres-test-server --tls`): with `sslmode=verify-full` and the right CA
//! the real binary starts and answers; with another CA it does not start, and says
//! why. Skipped, loudly, where no PostgreSQL can run (`ARBITER_TEST_POSTGRES` unset).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/postgres-test-server"
);

/// The TLS-only server's directory, port and CA; stopped and removed when dropped.
struct TlsDatabase {
    dir: String,
    port: String,
    ca: String,
}

impl Drop for TlsDatabase {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT).args(["stop", &self.dir]).status();
    }
}

fn tls_database() -> Option<TlsDatabase> {
    if std::env::var("ARBITER_TEST_POSTGRES").is_err() {
        eprintln!(
            "SKIPPED: no PostgreSQL here (ARBITER_TEST_POSTGRES is unset; scripts/test starts one)"
        );
        return None;
    }
    let out = Command::new(SCRIPT)
        .arg("--tls")
        .output()
        .expect("the script runs");
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
    Some(TlsDatabase {
        port: url.rsplit(':').next().expect("port").to_string(),
        dir: dir.to_string(),
        ca: ca.to_string(),
    })
}

/// `arbiter serve` on `state_url`, listening on `port`.
fn serve(state_url: &str, port: u16, data: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_arbiter"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--metrics-listen", "127.0.0.1:0", "--state-url", state_url])
        .arg("--data-dir")
        .arg(data)
        .env("ARBITER_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("arbiter serve starts")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_on_a_tls_database_verifies_its_certificate_and_starts_only_when_it_holds() {
    let Some(db) = tls_database() else {
        return;
    };
    let url = |ca: &str| {
        format!(
            "postgres://arbiter@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={ca}",
            db.port
        )
    };
    // Another CA: the server does not start, and says whose certificate it refused.
    let data = tempfile::tempdir().expect("tempdir");
    let other_ca = data.path().join("other-ca.pem");
    let other = rcgen::generate_simple_self_signed(vec!["other CA".to_string()]).expect("rcgen");
    std::fs::write(&other_ca, other.cert.pem()).expect("write");
    let mut refused = serve(
        &url(&other_ca.display().to_string()),
        free_port(),
        data.path(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = refused.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = refused.kill();
            panic!("arbiter serve kept running on a database whose certificate it cannot verify");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stderr = std::io::read_to_string(refused.stderr.take().expect("stderr")).expect("stderr");
    assert!(!status.success());
    assert!(
        stderr.contains("certificate is refused") && stderr.contains("other-ca.pem"),
        "{stderr}"
    );

    // The right CA: it starts and answers.
    let data = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut server = serve(&url(&db.ca), port, data.path());
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut client = loop {
        if let Ok(c) =
            arbiter::proto::authorizer_client::AuthorizerClient::connect(endpoint.clone()).await
        {
            break c;
        }
        assert!(
            server.try_wait().expect("wait").is_none(),
            "arbiter serve exited on a database it can verify"
        );
        assert!(Instant::now() < deadline, "arbiter serve did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let answer = client.authorize(normal_request()).await;
    let _ = server.kill();
    let _ = server.wait();
    assert!(answer.is_ok(), "{answer:?}");
}
