//! Replica ids on a shared PostgreSQL database (`ARBITER_TEST_POSTGRES`): the real
//! `arbiter serve` refuses to start while another live replica holds its id, starts at
//! once after that one stopped gracefully, and runs beside replicas with other ids;
//! a replica whose id another process takes says it is not ready until it holds its
//! id again. Without the test server these tests say loudly that they did not run.

use std::net::SocketAddr;
use std::time::Duration;

use crate::replicas::{database, health};
use crate::support::*;

/// `arbiter serve` on the shared database as replica `id`, with an admin token.
struct Replica {
    child: std::process::Child,
    metrics: SocketAddr,
    url: String,
    admin: String,
    data: tempfile::TempDir,
}

/// What became of a start.
enum Start {
    Serving(Replica),
    /// It exited, with what it printed on stderr.
    Refused(std::process::ExitStatus, String),
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts a replica and waits (generously) until it is ready or has exited.
async fn start(state_url: &str, id: &str) -> Start {
    let data = tempfile::tempdir().expect("tempdir");
    let admin = arbiter::auth::new_token().expect("token");
    let config = data.path().join("arbiter.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nanonymous_roles = []\n[[auth.tokens]]\nsha256 = \"{}\"\nid = \"root\"\nkind = \"human\"\nroles = [\"admin\"]\n",
            arbiter::auth::token_hash(&admin)
        ),
    )
    .expect("config");
    let (port, metrics_port) = (free_port(), free_port());
    let stderr = std::fs::File::create(data.path().join("stderr.log")).expect("log");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_arbiter"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            &format!("127.0.0.1:{metrics_port}"),
            "--state-url",
            state_url,
            "--replica-id",
            id,
            "--config",
        ])
        .arg(&config)
        .arg("--data-dir")
        .arg(data.path())
        .env("ARBITER_LOG", "error")
        .stderr(stderr)
        .spawn()
        .expect("arbiter serve starts");
    let mut replica = Replica {
        child,
        metrics: SocketAddr::from(([127, 0, 0, 1], metrics_port)),
        url: format!("http://127.0.0.1:{port}"),
        admin,
        data,
    };
    for _ in 0..600 {
        if let Some(exit) = replica.child.try_wait().expect("wait") {
            let printed =
                std::fs::read_to_string(replica.data.path().join("stderr.log")).expect("stderr");
            return Start::Refused(exit, printed);
        }
        // The metrics listener comes up only once the server has its state.
        if readyz(replica.metrics).await == Some(200) {
            return Start::Serving(replica);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("replica `{id}` neither served nor exited");
}

impl Replica {
    /// SIGTERM, then waits for a clean exit.
    fn stop(mut self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let exit = self.child.wait().expect("exits");
        assert!(exit.success(), "a graceful stop exits cleanly: {exit:?}");
    }

    /// `arbiter replicas --json` against this replica.
    fn list(&self) -> serde_json::Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_arbiter"))
            .args([
                "replicas",
                "--json",
                "--server",
                &self.url,
                "--token",
                &self.admin,
            ])
            .output()
            .expect("arbiter replicas");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status of `GET /readyz` on the metrics listener at `addr`, if it answers.
pub(crate) async fn readyz(addr: SocketAddr) -> Option<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: arbiter\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.ok()?;
    answer.split(' ').nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_replica_with_the_same_id_is_refused_until_the_first_stops() {
    let Some(url) = database().await else {
        return;
    };
    let Start::Serving(first) = start(&url, "arbiter-0").await else {
        panic!("the first replica starts");
    };
    let Start::Refused(exit, printed) = start(&url, "arbiter-0").await else {
        panic!("a second live replica with the same id must not start");
    };
    assert!(!exit.success(), "{exit:?}");
    assert!(
        printed.contains("replica id `arbiter-0` is held by a live replica (renewed ")
            && printed
                .contains("give each replica its own --replica-id, or wait until the other stops"),
        "{printed}"
    );
    // The first let go of its id when it stopped: the same id starts at once, long
    // before the first's lease would have run out.
    first.stop();
    let Start::Serving(second) = start(&url, "arbiter-0").await else {
        panic!("the id is free once its holder stopped");
    };
    let listed = second.list();
    assert_eq!(listed["replica_id"], "arbiter-0");
    assert_eq!(listed["replicas"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_with_different_ids_run_side_by_side_and_each_lists_them_all() {
    let Some(url) = database().await else {
        return;
    };
    let Start::Serving(a) = start(&url, "arbiter-a").await else {
        panic!("a starts");
    };
    let Start::Serving(b) = start(&url, "arbiter-b").await else {
        panic!("b starts beside a");
    };
    for (replica, id) in [(&a, "arbiter-a"), (&b, "arbiter-b")] {
        let listed = replica.list();
        assert_eq!(listed["replica_id"], id);
        let ids: Vec<&str> = listed["replicas"]
            .as_array()
            .expect("replicas")
            .iter()
            .filter_map(|r| r["id"].as_str())
            .collect();
        assert_eq!(ids, ["arbiter-a", "arbiter-b"]);
        assert_eq!(readyz(replica.metrics).await, Some(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_whose_id_another_process_takes_is_not_ready_until_it_holds_it_again() {
    let Some(url) = database().await else {
        return;
    };
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path());
    config.state_url = Some((url.clone(), None));
    config.replica_id = "arbiter-x".into();
    let server = TestServer::start_config(config, data).await;
    let metrics = server.running.metrics_addr.expect("metrics");
    assert_eq!(readyz(metrics).await, Some(200));
    // Another process (as far as the database can tell) takes the id over.
    let (db, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connects");
    let task = tokio::spawn(conn);
    let taken = db
        .execute(
            "UPDATE replica_leases SET nonce = 'intruder', expires_micros = $1 WHERE id = 'arbiter-x'",
            &[&i64::MAX],
        )
        .await
        .expect("take the id");
    assert_eq!(taken, 1);
    // Found at its next renewal (polling, generous bound): not ready, not serving.
    assert_eq!(until_readyz(metrics, 503).await, 503);
    assert_eq!(health(&server, "", false).await, "NOT_SERVING");
    assert_eq!(
        health(&server, "arbiter.v1.Authorizer", false).await,
        "NOT_SERVING"
    );
    assert_eq!(
        health(&server, "arbiter.v1.Approvals", false).await,
        "NOT_SERVING"
    );
    // The other process lets go: this one claims its id again and is ready.
    db.execute("DELETE FROM replica_leases WHERE id = 'arbiter-x'", &[])
        .await
        .expect("let go");
    assert_eq!(until_readyz(metrics, 200).await, 200);
    assert_eq!(health(&server, "", true).await, "SERVING");
    assert_eq!(
        health(&server, "arbiter.v1.Approvals", true).await,
        "SERVING"
    );
    drop(db);
    let _ = task.await;
    server.running.shutdown().await.expect("stops");
}

/// `/readyz` once it answers `want`, polling with a generous bound (renewals come
/// every five seconds); what it last answered otherwise.
async fn until_readyz(addr: SocketAddr, want: u16) -> u16 {
    let mut last = 0;
    for _ in 0..300 {
        last = readyz(addr).await.unwrap_or(0);
        if last == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}
