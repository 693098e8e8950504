//! `arbiter serve`: loads the configured sets, then serves gRPC (Authorizer, health,
//! reflection) until asked to stop, finishing the requests in flight.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use arbiter_runtime::{Runtime, RuntimeConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::approvals::ApprovalDesk;
use crate::auth::{self, Authenticator};
use crate::config::Config;
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
    /// Where AuthZEN is served over HTTP, when it is.
    pub http_addr: Option<SocketAddr>,
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
        arbiter_service::audit_log::ship::finish(&self.app).await;
        // A replica with the same id may start at once.
        if let Some(lease) = self.app.lease().cloned() {
            let _ = tokio::task::spawn_blocking(move || lease.release()).await;
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
    let (reflection, reflection_alpha) =
        arbiter_grpc::reflection::services().context("cannot build the reflection service")?;
    let decider = arbiter_service::pipeline::Decider::new(app.clone(), config.capacity as usize);
    // One byte budget for the bodies of every door.
    let budget = arbiter_service::budget::Budget::new(config.connections.request_bytes_in_flight);
    let (http_addr, http_task) = match &config.http {
        Some(h) => {
            let (a, t) =
                crate::upkeep::start_http(h, config, decider.clone(), budget.clone()).await?;
            (Some(a), Some(t))
        }
        None => (None, None),
    };
    let ext_authz =
        arbiter_grpc::envoy::ExtAuthz::new(decider.clone(), config.envoy.clone()).into_server();
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
    // Health follows the state database (approvals, credentials) and, on a shared
    // one, whether this process still holds its replica id (everything).
    let (state_ok, state_seen) = tokio::sync::watch::channel(true);
    let refresher = arbiter_service::upkeep::spawn_token_refresher(app.clone(), state_ok);
    let shared = arbiter_service::approvals::shared::spawn(app.clone());
    let lease = app.lease().map(|l| l.watch());
    crate::grpc::health::follow(health_reporter.clone(), state_seen, lease);
    let renewer = app
        .lease()
        .map(|l| arbiter_service::replica::spawn_renewer(l.clone(), app.metrics().clone()));
    let sweeper = arbiter_service::upkeep::spawn_expiry_sweeper(app.clone(), config.state_keep);
    arbiter_notify::spawn(app.clone(), &config.notifications).context("cannot set up webhooks")?;
    let watcher = config
        .watch_dir
        .clone()
        .map(|dir| crate::watch::spawn(app.clone(), dir));
    arbiter_service::history::follow::spawn(app.clone());
    let shipper = arbiter_service::audit_log::ship::spawn(app.clone());
    let (metrics_addr, metrics_task) = match config.metrics_listen {
        Some(addr) => {
            let (a, t) = crate::upkeep::start_metrics(addr, app.clone(), config).await?;
            (Some(a), Some(t))
        }
        None => (None, None),
    };
    let tls = match &config.tls {
        Some(t) => Some(
            arbiter_grpc::listen::acceptor(
                "grpc",
                t.grpc.clone(),
                arbiter_grpc::listen::GRPC_ALPN,
                app.metrics().clone(),
            )
            .context("cannot set up TLS for the gRPC listener")?,
        ),
        None => None,
    };
    let reloader = tls.as_ref().map(|(_, r)| r.abort_handle());

    let (stop, stopped) = oneshot::channel::<()>();
    // Who is calling is settled from the headers before any body is read, and the
    // bodies in flight are bounded (see `arbiter_grpc::gate`).
    let gate = arbiter_grpc::gate::GateLayer::new(app.auth().clone(), budget);
    let router = tonic::transport::Server::builder()
        .max_concurrent_streams(Some(config.connections.max_streams))
        .layer(gate)
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(authorizer)
        .add_service(ext_authz)
        .add_service(approvals)
        .add_service(credentials)
        .add_service(audit)
        .add_service(admin);
    let stopping_app = app.clone();
    let shutdown = async move {
        let _ = stopped.await;
        if let Some(r) = &reloader {
            r.abort();
        }
        refresher.abort();
        shared.iter().for_each(JoinHandle::abort);
        renewer.iter().for_each(JoinHandle::abort);
        shipper.iter().for_each(JoinHandle::abort);
        sweeper.abort();
        if let Some(w) = &watcher {
            w.abort();
        }
        if let Some(t) = &http_task {
            t.abort();
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
    };
    let limit = arbiter_grpc::listen::PeerLimit::new(
        config.connections.max_per_peer,
        config.connections.exempt_loopback,
    );
    let metrics = app.metrics().clone();
    let task = match tls {
        Some((acceptor, _)) => {
            let incoming = arbiter_grpc::listen::tls(listener, acceptor, limit, metrics);
            tokio::spawn(router.serve_with_incoming_shutdown(incoming, shutdown))
        }
        None => {
            let incoming = arbiter_grpc::listen::plain(listener, limit, metrics);
            tokio::spawn(router.serve_with_incoming_shutdown(incoming, shutdown))
        }
    };
    for set in sets.all() {
        let id = set.identity();
        tracing::info!(set = %id.name, version = %id.version, digest = %id.digest, default = (id.name == sets.default_name()), "serving policy set");
    }
    tracing::info!(listen = %local_addr, tls = config.tls.is_some(), data_dir = %config.data_dir.display(), replica = %config.replica_id, "arbiter is serving");
    if let Some(addr) = metrics_addr {
        let scheme = match config.tls.as_ref().and_then(|t| t.metrics()) {
            Some(_) => "https",
            None => "http",
        };
        tracing::info!(metrics = %format!("{scheme}://{addr}/metrics"), "serving Prometheus metrics");
        if scheme == "http" && config.tls.is_some() && !addr.ip().is_loopback() {
            tracing::warn!(%addr, "the metrics endpoint serves plain HTTP on a non-loopback address ([tls] metrics_plaintext)");
        }
    }
    Ok(Running {
        local_addr,
        metrics_addr,
        http_addr,
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
    let mut paths = config.trusted_keys.clone();
    paths.extend(config.scoped_keys.iter().map(|(p, _)| p.clone()));
    let trusted = loader::trusted_keys(&paths).context("cannot read a trusted bundle key")?;
    // Keys listed with `sets` sign only those names.
    let scopes = config
        .scoped_keys
        .iter()
        .zip(&trusted[config.trusted_keys.len()..])
        .map(|((_, sets), key)| (key.id(), sets.clone()))
        .collect();
    let sets_dir = config.data_dir.join("sets");
    let newest = arbiter_service::newest::Newest::open(&sets_dir).map_err(anyhow::Error::msg)?;
    let loader = Loader::new(runtime, config.limits, trusted)
        .keeping_in(sets_dir)
        .remembering(newest)
        .scoping(scopes)
        .allowing_builtins(
            config
                .policy_sets
                .iter()
                .filter(|r| r.starts_with(crate::embedded::PREFIX))
                .cloned()
                .collect(),
        );
    let mut enforced = Vec::new();
    let mut shadows = Vec::new();
    for reference in &config.policy_sets {
        let refused = |e: String| anyhow::anyhow!("cannot load policy set `{reference}`: {e}");
        let version = loader
            .load_held(Source::Reference(reference.clone()))
            .await
            .map_err(refused)?;
        // A version the server held before comes back as it was; any other must not
        // be older than the newest of its name ever loaded.
        let id = version.set.identity();
        if !History::held(&config.data_dir, &id.name).contains(&id.digest) {
            loader.admit(&version).map_err(refused)?;
        }
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
    let history = History::new(&config.data_dir, &sets);
    let app = Arc::new(open_state(config, sets, loader, history, clock)?);
    // Versions loaded at runtime before a restart come back (shared: the fleet's).
    arbiter_service::history::follow::restore(&app)
        .await
        .context("cannot read or store the policy sets in the state database")?;
    Ok(app)
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
    let (url, password) = config.state_url.clone().unzip();
    let store = arbiter_store::open(url.as_deref(), password.flatten().as_deref(), &path)
        .with_context(|| {
            let shown = url.as_deref().map(arbiter_store::redact_url);
            format!(
                "cannot open the state database `{}`",
                shown.unwrap_or_else(|| path.display().to_string())
            )
        })?;
    // On a shared database, no other live process may run as this replica.
    let claim = || arbiter_service::replica::Lease::claim(store.clone(), &config.replica_id);
    let lease = url.as_ref().map(|_| claim()).transpose()?;
    let metrics = Arc::new(Metrics::new());
    let stored_tokens = store
        .tokens()
        .context("cannot read the caller tokens from the state database")?;
    metrics.set_state_up(true);
    // The zero-config tour lets loopback callers decide without a token, until the
    // data directory holds tokens: from then on callers say who they are.
    let anonymous = if config.tour && !stored_tokens.is_empty() {
        tracing::info!(
            "callers without a token are refused: the data directory holds tokens (set [auth] anonymous_roles = [\"enforcer\"] to allow them on loopback)"
        );
        Vec::new()
    } else {
        config.anonymous_roles.clone()
    };
    let tour = config.tour && stored_tokens.is_empty();
    let auth = Authenticator::new(config.tokens.clone(), anonymous)
        .with_peers(auth::PeerMap::new(config.peers.clone()))
        .with_groups(config.groups.clone())
        .with_metrics(metrics.clone());
    // On the tour, anyone on this machine may try every loaded set.
    let auth = if tour {
        auth.anonymous_may_name_any_set()
    } else {
        auth
    };
    auth.replace(stored_tokens);
    if !config.listen.ip().is_loopback() && !auth.has_tokens() && config.peers.is_empty() {
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
    let audit = match &config.audit {
        None => {
            tracing::warn!("the audit log is off: decisions are not recorded");
            None
        }
        Some(s) => {
            let options = arbiter_service::audit_log::AuditOptions {
                checkpoint_every: s.checkpoint_every,
                queue_capacity: s.queue_capacity,
                checkpoint_copy: s.checkpoint_copy.clone(),
            };
            Some(arbiter_service::audit_log::open(
                &config.data_dir,
                &options,
                metrics.clone(),
            )?)
        }
    };
    let redact = config
        .audit
        .as_ref()
        .map(|a| a.redact.clone())
        .unwrap_or_default();
    let redaction = if redact.is_empty() {
        arbiter_service::redaction::Redaction::none()
    } else {
        // Replicas sharing a key secret share the redaction key derived from it.
        let key = match &config.credentials.key_secret {
            Some(secret) => secret.redaction_key(),
            None => arbiter_service::redaction::Redaction::load_key(&config.data_dir.join("keys"))
                .context("cannot read or create the redaction key")?,
        };
        arbiter_service::redaction::Redaction::new(redact, key)
    };
    Ok(App::new(arbiter_service::app::Parts {
        sets,
        history: history.sharing(url.map(|_| store.clone()), &config.replica_id),
        auth,
        store,
        approvals,
        credentials,
        audit,
        redaction,
        metrics,
        loader,
        clock,
        replica_id: config.replica_id.clone(),
        lease,
    }))
}
