//! The approver console in a real browser: Debian's headless Chromium driven over
//! WebDriver (`chromedriver`, both installed by `scripts/install-chromium` when
//! missing) with `fantoccini`. An approver signs in, a held action appears on the
//! pending page without a reload (server-sent events), the approver opens it and
//! approves it with a comment, and the enforcement point's resubmission is allowed
//! once. The human the agent acts for sees voting refused with the reason.
//!
//! Screenshots (pending list, approval detail, a 390 px phone) are taken every run
//! into the target directory; with `BLESS=1` they are written to `docs/images/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use arbiter::proto as pb;
use arbiter::proto::authorizer_client::AuthorizerClient;
use fantoccini::{Client, Locator};

use crate::approvals::{bearer, channel, identity_change};
use crate::console::{approval, held, server};

/// One browser at a time: Chromium is heavy on two cores.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long the page may take to show what it should.
const WAIT: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// chromedriver on a free loopback port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
    chromium: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn driver() -> Driver {
    let root = arbiter_plugin_build::repo_root();
    let out = Command::new(root.join("scripts/install-chromium"))
        .output()
        .expect("runs scripts/install-chromium");
    assert!(
        out.status.success(),
        "installing Chromium failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let paths = String::from_utf8(out.stdout).expect("utf-8");
    let mut lines = paths.lines();
    let chromium = lines.next().expect("chromium's path").to_string();
    let chromedriver = lines.next().expect("chromedriver's path").to_string();
    let port = free_port();
    let child = Command::new(chromedriver)
        .args([&format!("--port={port}"), "--allowed-ips=127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        chromium,
    }
}

/// A headless Chromium session. `--no-sandbox` only here: these machines run the tests
/// as root, where Chromium's sandbox refuses to start; never a product setting.
async fn browser(d: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": d.chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1100,900", "--hide-scrollbars"],
        }),
    );
    let plain = hyper_util::client::legacy::connect::HttpConnector::new();
    fantoccini::ClientBuilder::new(plain)
        .capabilities(caps)
        .connect(&d.url)
        .await
        .expect("a WebDriver session")
}

async fn sign_in(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/console/sign-in"))
        .await
        .expect("sign-in page");
    c.find(Locator::Css("#token"))
        .await
        .expect("token field")
        .send_keys(token)
        .await
        .expect("types");
    c.find(Locator::Css("form.card button[type=submit]"))
        .await
        .expect("button")
        .click()
        .await
        .expect("clicks");
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#pending"))
        .await
        .expect("the pending page after sign-in");
}

fn shot(name: &str, png: &[u8]) {
    let target = arbiter_plugin_build::repo_root().join("target/console-screenshots");
    std::fs::create_dir_all(&target).expect("screenshot dir");
    std::fs::write(target.join(format!("console-{name}.png")), png).expect("writes");
    if std::env::var_os("BLESS").is_some() {
        let docs: PathBuf = arbiter_plugin_build::repo_root().join("docs/images");
        std::fs::create_dir_all(&docs).expect("docs/images");
        std::fs::write(docs.join(format!("console-{name}.png")), png).expect("writes");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn console_in_a_browser_shows_a_held_action_live_and_approves_it() {
    let _one = BROWSER.lock().await;
    let (server, t) = server().await;
    let base = format!("http://{}", server.running.http_addr.expect("http"));
    let d = driver().await;
    let c = browser(&d).await;
    sign_in(&c, &base, &t.alice).await;
    // The event stream is open (the page lists what is pending when it opens, so
    // nothing held before then is missed either; waiting makes this test's point).
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#pending[data-live=on]"))
        .await
        .expect("the live stream opens");
    // A mark on this page: still there after the action shows up means no reload.
    c.execute("window.arbiterMark = 'same page';", vec![])
        .await
        .expect("mark");

    // The gateway's request is held while the page is open.
    let mut request = identity_change("console-browser", "arn:aws:iam::1:role/deploy");
    let mut authz = AuthorizerClient::new(channel(&server.url).await);
    let first = authz
        .authorize(bearer(&t.gateway, request.clone()))
        .await
        .expect("authorize")
        .into_inner();
    assert_eq!(first.decision(), pb::Decision::RequireApproval);
    let id = first.approval_id.clone();
    let card = c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&format!("#a-{id}")))
        .await
        .expect("the held action appears without a reload");
    let mark = c
        .execute("return window.arbiterMark;", vec![])
        .await
        .expect("mark");
    assert_eq!(mark, "same page", "the page was not reloaded");
    let text = card.text().await.expect("text");
    assert!(
        text.contains("iam:AttachRolePolicy") && text.contains("bob@acme.org"),
        "{text}"
    );
    // The countdown runs in the page.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let left = c
        .find(Locator::Css(&format!("#a-{id} time")))
        .await
        .expect("time")
        .text()
        .await
        .expect("text");
    assert!(left.contains("min") || left.ends_with(" s"), "{left}");
    shot("pending", &c.screenshot().await.expect("screenshot"));

    // Open it, approve with a comment.
    card.find(Locator::Css("a"))
        .await
        .expect("link")
        .click()
        .await
        .expect("opens");
    let comment = c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#comment"))
        .await
        .expect("the vote form");
    let page = c.source().await.expect("source");
    for shown in [
        "identity-change",
        "access-review",
        "CHG-7",
        "risk",
        "mfa",
        "reference",
    ] {
        assert!(page.contains(shown), "{shown} shown");
    }
    shot("approval", &c.screenshot().await.expect("screenshot"));
    comment
        .send_keys("CHG-7 reviewed in the console")
        .await
        .expect("types");
    c.find(Locator::Css("button.approve"))
        .await
        .expect("approve")
        .click()
        .await
        .expect("clicks");
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::XPath("//span[@class='state'][text()='approved']"))
        .await
        .expect("the approval shows approved");
    let a = approval(&server, &t.alice, &id).await;
    assert_eq!(
        (a.votes.len(), a.votes[0].approver.as_str()),
        (1, "alice@acme.org")
    );
    assert_eq!(a.votes[0].comment, "CHG-7 reviewed in the console");

    // The enforcement point's resubmission is allowed, once.
    request.approval_id = id.clone();
    let again = |r: pb::AuthorizeRequest| {
        let mut authz = authz.clone();
        let token = t.gateway.clone();
        async move {
            authz
                .authorize(bearer(&token, r))
                .await
                .map(|r| r.into_inner())
        }
    };
    let allowed = again(request.clone()).await.expect("authorize");
    assert_eq!(allowed.decision(), pb::Decision::Allow, "{allowed:?}");
    let twice = again(request.clone()).await;
    assert!(
        twice
            .as_ref()
            .map_or(true, |d| d.decision() != pb::Decision::Allow),
        "used once: {twice:?}"
    );

    // The pending list on a phone: decided, so gone; history has it.
    c.set_window_size(390, 844).await.expect("phone size");
    c.goto(&format!("{base}/console/history"))
        .await
        .expect("history");
    let history = c.source().await.expect("source");
    assert!(
        history.contains("CHG-7 reviewed in the console"),
        "history lists the vote"
    );
    let _ = held(&server, &t, "console-phone").await;
    c.goto(&format!("{base}/console/approvals"))
        .await
        .expect("pending");
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#pending li"))
        .await
        .expect("a card");
    let width: serde_json::Value = c
        .execute("return document.documentElement.scrollWidth;", vec![])
        .await
        .expect("width");
    assert!(
        width.as_u64().is_some_and(|w| w <= 390),
        "no sideways scrolling at 390 px: {width}"
    );
    shot("phone", &c.screenshot().await.expect("screenshot"));
    c.close().await.expect("closes");
}

#[tokio::test(flavor = "multi_thread")]
async fn console_in_a_browser_shows_the_requester_why_voting_is_refused() {
    let _one = BROWSER.lock().await;
    let (server, t) = server().await;
    let base = format!("http://{}", server.running.http_addr.expect("http"));
    let id = held(&server, &t, "console-refused").await;
    let d = driver().await;
    let c = browser(&d).await;
    // bob is the human the agent acts for: he may look, not approve.
    sign_in(&c, &base, &t.bob).await;
    c.find(Locator::Css(&format!("#a-{id} a")))
        .await
        .expect("listed")
        .click()
        .await
        .expect("opens");
    let why = c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#why-not"))
        .await
        .expect("the reason");
    let text = why.text().await.expect("text");
    assert!(
        text.contains("bob@acme.org") && text.contains("delegation chain"),
        "{text}"
    );
    for button in ["button.approve", "button.reject"] {
        let b = c.find(Locator::Css(button)).await.expect("button");
        assert!(
            !b.is_enabled().await.expect("enabled?"),
            "{button} is disabled"
        );
    }
    assert!(approval(&server, &t.alice, &id).await.votes.is_empty());
    c.close().await.expect("closes");
}

#[tokio::test(flavor = "multi_thread")]
async fn console_in_a_browser_draws_a_replay_report() {
    let _one = BROWSER.lock().await;
    let (server, t, stem) = crate::console_measure::with_report().await;
    let base = format!("http://{}", server.running.http_addr.expect("http"));
    let d = driver().await;
    let c = browser(&d).await;
    sign_in(&c, &base, &t.admin).await;
    c.goto(&format!("{base}/console/measurements/{stem}"))
        .await
        .expect("the report page");
    let chart = c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("svg.chart"))
        .await
        .expect("a chart");
    assert!(
        chart.is_displayed().await.expect("displayed?"),
        "the chart is visible"
    );
    // Tall enough for the whole report: the summary and every chart in one picture.
    c.set_window_size(1100, 3000).await.expect("a tall window");
    shot("replay", &c.screenshot().await.expect("screenshot"));
    c.close().await.expect("closes");
}
