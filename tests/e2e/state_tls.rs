//! `arbiter serve --state-url` on a PostgreSQL that speaks only TLS
//! (`scripts/postgres-test-server --tls`): with `sslmode=verify-full` and the right CA
//! the real binary starts and answers; with another CA it does not start, and says
//! why. Skipped, loudly, where no PostgreSQL can run (`ARBITER_TEST_POSTGRES` unset).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

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
    let Some(db) = crate::replicas::OwnServer::start_tls() else {
        return;
    };
    let url = |ca: &str| {
        format!(
            "postgres://arbiter@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={ca}",
            db.port()
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
    let mut server = serve(
        &url(db.ca.as_deref().expect("a TLS server's CA")),
        port,
        data.path(),
    );
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
