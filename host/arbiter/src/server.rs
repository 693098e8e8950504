//! `arbiter serve`: loads the configured sets, then serves gRPC (Authorizer, health,
//! reflection) until asked to stop, finishing the requests in flight.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use arbiter_runtime::{Runtime, RuntimeConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

use arbiter_audit::{AuditConfig, AuditLog};
use arbiter_store::{SqliteStore, StateStore};

use crate::app::{App, AuditObserver};
use crate::approvals::ApprovalDesk;
use crate::auth::{self, Authenticator};
use crate::config::{AuditSettings, Config};
use crate::credentials::Credentials;
use crate::grpc::{
    admin::AdminService, approvals::ApprovalsService, audit::AuditService, authorizer::Authorizer,
    credentials::CredentialsService, decode::MAX_TRANSPORT_BYTES,
};
use crate::history::History;
use crate::loader::{self, Loader, Source};
use crate::metrics::Metrics;
use crate::proto;
use crate::sets::Sets;

/// A server that is accepting connections.
#[derive(Debug)]
pub struct Running {
    /// The bound address (useful with port 0).
    pub local_addr: SocketAddr,
    /// Where Prometheus metrics are served, when they are.
    pub metrics_addr: Option<SocketAddr>,
    /// The loaded sets.
    pub sets: Arc<Sets>,
    /// Everything the services share.
    pub app: Arc<App>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish, and returns when done.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let served = self
            .task
            .await
            .context("server task panicked")?
            .context("server failed");
        // Every request has finished: write what is queued and sign the final head.
        if let Some(log) = &self.app.audit() {
            log.close().await.context("cannot close the audit log")?;
        }
        served
    }

    /// Waits until the server stops on its own (it only stops when asked).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task)
            .await
            .context("server task panicked")?
            .context("server failed")
    }
}

/// Loads every configured set (refusing to start if any fails) and binds.
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    start_with_clock(config, arbiter_core::system_clock()).await
}

/// [`start`], with the clock that approvals, credentials and records go by (tests
/// move time with a [`arbiter_core::ManualClock`] instead of sleeping).
pub async fn start_with_clock(
    config: &Config,
    clock: arbiter_core::SharedClock,
) -> anyhow::Result<Running> {
    // Bind before compiling the sets, so that a port conflict is reported at once, not
    // after seconds of compiling; connections wait in the backlog until we serve.
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local_addr = listener.local_addr()?;

    let app = open(config, clock).await?;
    let sets = app.sets().clone();

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<proto::authorizer_server::AuthorizerServer<Authorizer>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::DESCRIPTOR)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("cannot build the reflection service")?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::DESCRIPTOR)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .context("cannot build the reflection service")?;
    let decider = arbiter_service::pipeline::Decider::new(app.clone(), config.capacity as usize);
    let authorizer = proto::authorizer_server::AuthorizerServer::new(Authorizer::new(decider))
        .max_decoding_message_size(MAX_TRANSPORT_BYTES)
        .max_encoding_message_size(MAX_TRANSPORT_BYTES);
    let approvals =
        proto::approvals_server::ApprovalsServer::new(ApprovalsService::new(app.clone()));
    let credentials =
        proto::credentials_server::CredentialsServer::new(CredentialsService::new(app.clone()));
    let admin = proto::policy_admin_server::PolicyAdminServer::new(AdminService::new(app.clone()))
        .max_decoding_message_size(crate::loader::MAX_UPLOAD_BYTES + 1024 * 1024);
    let audit = proto::audit_server::AuditServer::new(AuditService::new(app.clone()))
        .max_encoding_message_size(MAX_TRANSPORT_BYTES);
    // Before serving: from here on only tokens on record authenticate.
    if let Err(e) = crate::tokens::refresh(&app).await {
        tracing::warn!(
            error = format!("{e:#}"),
            "cannot record the caller tokens; tokens not on record do not authenticate yet"
        );
    }
    let refresher = spawn_token_refresher(app.clone());
    let sweeper = spawn_expiry_sweeper(app.clone(), config.state_keep);
    let watcher = config
        .watch_dir
        .clone()
        .map(|dir| crate::watch::spawn(app.clone(), dir));
    let (metrics_addr, metrics_task) = match config.metrics_listen {
        Some(addr) => {
            let (a, t) = start_metrics(addr, app.clone()).await?;
            (Some(a), Some(t))
        }
        None => (None, None),
    };

    let (stop, stopped) = oneshot::channel::<()>();
    let router = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(authorizer)
        .add_service(approvals)
        .add_service(credentials)
        .add_service(audit)
        .add_service(admin);
    // Without TCP_NODELAY, small responses wait for delayed ACKs: 40 ms tails.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let stopping_app = app.clone();
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stopped.await;
                refresher.abort();
                sweeper.abort();
                if let Some(w) = &watcher {
                    w.abort();
                }
                if let Some(t) = &metrics_task {
                    t.abort();
                }
                // Watch streams end, so that the drain does not wait on them forever.
                stopping_app.stop();
                // Health watchers learn the server is going away before it does.
                health_reporter
                    .set_not_serving::<proto::authorizer_server::AuthorizerServer<Authorizer>>()
                    .await;
            })
            .await
    });
    for set in sets.all() {
        let id = set.identity();
        tracing::info!(set = %id.name, version = %id.version, digest = %id.digest, default = (id.name == sets.default_name()), "serving policy set");
    }
    tracing::info!(listen = %local_addr, data_dir = %config.data_dir.display(), "arbiter is serving");
    if let Some(addr) = metrics_addr {
        tracing::info!(metrics = %format!("http://{addr}/metrics"), "serving Prometheus metrics");
    }
    Ok(Running {
        local_addr,
        metrics_addr,
        sets,
        app,
        stop,
        task,
    })
}

/// Everything a server decides with, without a listener: the runtime, the configured
/// sets (and the versions kept from before a restart), the state database, the
/// approval desk, credentials and the audit log. `arbiter serve` wires its front
/// doors onto this; `arbiter test --pipeline` calls the pipeline on it directly.
pub async fn open(config: &Config, clock: arbiter_core::SharedClock) -> anyhow::Result<Arc<App>> {
    arbiter_runtime::create_private_dir(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory `{}`",
            config.data_dir.display()
        )
    })?;
    // The sandbox pool and the admission limit are sized together, from one number.
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(config.data_dir.join("cache")),
        pool_instances: config.capacity,
        wasm_stack_bytes: config.wasm_stack_bytes,
    })?;
    let trusted =
        loader::trusted_keys(&config.trusted_keys).context("cannot read a trusted bundle key")?;
    let loader =
        Loader::new(runtime, config.limits, trusted).keeping_in(config.data_dir.join("sets"));
    let mut enforced = Vec::new();
    let mut shadows = Vec::new();
    for reference in &config.policy_sets {
        let version = loader
            .load(Source::Reference(reference.clone()))
            .await
            .map_err(|e| anyhow::anyhow!("cannot load policy set `{reference}`: {e}"))?;
        if version.set.manifest().mode == arbiter_core::Mode::Shadow {
            shadows.push(version);
        } else {
            enforced.push(version);
        }
    }
    if enforced.is_empty() && !shadows.is_empty() {
        anyhow::bail!(
            "every configured policy set is marked `mode = \"shadow\"`; a shadow set watches an enforced set of the same name, so configure that one too"
        );
    }
    let sets =
        Arc::new(Sets::new(enforced, config.default_set.as_deref()).map_err(anyhow::Error::msg)?);
    // A shadow set watches the enforced set of the same name.
    for v in shadows {
        let name = v.set.identity().name.clone();
        sets.add(v, false, true).map_err(|e| {
            anyhow::anyhow!("policy set `{name}` is marked `mode = \"shadow\"`: {e}")
        })?;
    }
    // Versions loaded at runtime before a restart come back, as they were.
    let history = History::new(&config.data_dir, &sets);
    history.restore(&loader, &sets).await;
    history.save(&sets);
    Ok(Arc::new(open_state(config, sets, loader, history, clock)?))
}

/// Opens the state database and everything built on it, and checks that callers
/// will have to authenticate where that matters.
fn open_state(
    config: &Config,
    sets: Arc<Sets>,
    loader: Loader,
    history: History,
    clock: arbiter_core::SharedClock,
) -> anyhow::Result<App> {
    let path = config.data_dir.join("state.db");
    let store: Arc<dyn StateStore> = Arc::new(
        SqliteStore::open(&path)
            .with_context(|| format!("cannot open the state database `{}`", path.display()))?,
    );
    let auth = Authenticator::new(config.tokens.clone(), config.anonymous_roles.clone());
    auth.refresh(&*store)
        .context("cannot read the caller tokens from the state database")?;
    if !config.listen.ip().is_loopback() && !auth.has_tokens() {
        anyhow::bail!(
            "refusing to serve on {} without any caller token: anyone who can reach it could ask for decisions and credentials. Create tokens with `arbiter token create --id ID --kind KIND --role ROLE --data-dir {}` (or list their hashes under [[auth.tokens]] in the config), or listen on 127.0.0.1",
            config.listen,
            config.data_dir.display()
        );
    }
    if !config.anonymous_roles.is_empty() && !config.listen.ip().is_loopback() {
        tracing::warn!(listen = %config.listen, "callers without a token may ask for decisions on a non-loopback address ([auth] anonymous_roles)");
    }
    let credentials = Arc::new(
        Credentials::open(
            store.clone(),
            &config.data_dir,
            config.credentials.clone(),
            clock.clone(),
        )
        .context("cannot set up the credential signing keys")?,
    );
    let approvals = ApprovalDesk::new(store.clone(), config.approval_ttl, clock.clone());
    let metrics = Arc::new(Metrics::new());
    let audit = match &config.audit {
        None => {
            tracing::warn!("the audit log is off: decisions are not recorded");
            None
        }
        Some(settings) => Some(open_audit(config, settings, metrics.clone())?),
    };
    let redact = config
        .audit
        .as_ref()
        .map(|a| a.redact.clone())
        .unwrap_or_default();
    Ok(App::new(arbiter_service::app::Parts {
        sets,
        auth,
        store,
        approvals,
        credentials,
        audit,
        redact,
        metrics,
        loader,
        history,
        clock,
    }))
}

/// Opens `<data_dir>/audit.db`, signing checkpoints with `<data_dir>/keys/audit.pem`
/// (created on first start) and publishing its public half as `keys/audit.pub`.
fn open_audit(
    config: &Config,
    settings: &AuditSettings,
    metrics: Arc<Metrics>,
) -> anyhow::Result<AuditLog> {
    let keys = config.data_dir.join("keys");
    arbiter_runtime::create_private_dir(&keys)?;
    let key = arbiter_keys::SecretKey::load_or_create(&keys.join("audit.pem"))
        .context("cannot load the audit checkpoint key")?;
    key.public()
        .write(&keys.join("audit.pub"))
        .context("cannot write the audit public key")?;
    let mut audit = AuditConfig::new(config.data_dir.join("audit.db"), key);
    audit.checkpoint_every = settings.checkpoint_every;
    audit.queue_capacity = std::num::NonZeroUsize::new(settings.queue_capacity)
        .context("the audit queue capacity must be at least 1")?;
    let copy = match &settings.checkpoint_copy {
        None => None,
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| {
                    format!(
                        "cannot open the audit checkpoint copy `{}` ([audit] checkpoint_copy) for appending",
                        path.display()
                    )
                })?;
            Some((path.clone(), std::sync::Mutex::new(file)))
        }
    };
    AuditLog::open(audit, Some(Arc::new(AuditObserver { metrics, copy })))
        .context("cannot open the audit log")
}

/// Serves Prometheus metrics, refreshing the gauges that are read at scrape time.
async fn start_metrics(
    addr: SocketAddr,
    app: Arc<App>,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await.with_context(|| {
        format!("cannot serve metrics on {addr} (set --metrics-listen, or `off`)")
    })?;
    let local = listener.local_addr()?;
    let refresh_app = app.clone();
    let refresh = Arc::new(move |m: &Metrics| {
        if let Some(log) = refresh_app.audit() {
            m.audit_queue(log.queue_depth());
        }
        for set in refresh_app.sets().all() {
            for status in set.plugin_status() {
                m.plugin_health(&set.identity().name, &status);
            }
        }
    });
    let metrics = app.metrics().clone();
    Ok((
        local,
        tokio::spawn(crate::metrics_http::serve(listener, metrics, refresh)),
    ))
}

/// Picks up (and records) tokens created or removed with `arbiter token` while the
/// server runs.
fn spawn_token_refresher(app: Arc<App>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(auth::REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = crate::tokens::refresh(&app).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "cannot re-read or record the caller tokens; trying again shortly"
                );
            }
        }
    })
}

/// Records approvals whose time ran out as `expired` (audit record, watch event, stored
/// state), so that expiry is an approval step on record like the others; and, with
/// `keep` set, purges what closed or expired longer ago than that, at start and then
/// every [`crate::approvals::PURGE_EVERY`].
fn spawn_expiry_sweeper(app: Arc<App>, keep: Option<std::time::Duration>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(crate::approvals::EXPIRY_SWEEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut purged: Option<tokio::time::Instant> = None;
        loop {
            tick.tick().await;
            if let Err(e) = crate::approvals::sweep_expired(&app).await {
                tracing::warn!(error = %e, "cannot record expired approvals; trying again shortly");
            }
            let Some(keep) = keep else { continue };
            if purged.is_some_and(|at| at.elapsed() < crate::approvals::PURGE_EVERY) {
                continue;
            }
            match crate::approvals::purge_old(&app, keep).await {
                Ok(_) => purged = Some(tokio::time::Instant::now()),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot purge old approvals and credentials; trying again shortly")
                }
            }
        }
    })
}

/// Resolves when the process receives SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM; stop with SIGINT");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
