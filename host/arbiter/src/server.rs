//! `arbiter serve`: loads the configured sets, then serves gRPC (Authorizer, health,
//! reflection) until asked to stop, finishing the requests in flight.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use arbiter_runtime::{PolicySet, Runtime, RuntimeConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

use arbiter_store::{SqliteStore, StateStore};

use crate::app::App;
use crate::approvals::ApprovalDesk;
use crate::auth::{self, Authenticator};
use crate::config::Config;
use crate::credentials::Credentials;
use crate::embedded;
use crate::grpc::{
    approvals::ApprovalsService, authorizer::Authorizer, credentials::CredentialsService,
    decode::MAX_TRANSPORT_BYTES,
};
use crate::proto;
use crate::sets::Sets;

/// A server that is accepting connections.
#[derive(Debug)]
pub struct Running {
    /// The bound address (useful with port 0).
    pub local_addr: SocketAddr,
    /// The loaded sets.
    pub sets: Arc<Sets>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish, and returns when done.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task
            .await
            .context("server task panicked")?
            .context("server failed")
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
    arbiter_runtime::create_private_dir(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory `{}`",
            config.data_dir.display()
        )
    })?;
    // Bind before compiling the sets, so that a port conflict is reported at once, not
    // after seconds of compiling; connections wait in the backlog until we serve.
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local_addr = listener.local_addr()?;

    // The sandbox pool and the admission limit are sized together, from one number.
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(config.data_dir.join("cache")),
        pool_instances: config.capacity,
        wasm_stack_bytes: config.wasm_stack_bytes,
    })?;
    let mut loaded = Vec::new();
    for reference in &config.policy_sets {
        let source = embedded::resolve(reference).map_err(anyhow::Error::msg)?;
        let set = PolicySet::load(&runtime, source, config.limits)
            .await
            .with_context(|| format!("cannot load policy set `{reference}`"))?;
        if set.manifest().mode == arbiter_core::Mode::Shadow {
            anyhow::bail!(
                "policy set `{reference}` is marked `mode = \"shadow\"`, but this server cannot shadow sets yet; set `mode = \"enforce\"` or leave it out"
            );
        }
        loaded.push(set);
    }
    let sets =
        Arc::new(Sets::new(loaded, config.default_set.as_deref()).map_err(anyhow::Error::msg)?);
    let app = Arc::new(open_state(config, sets.clone())?);

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
    let authorizer = proto::authorizer_server::AuthorizerServer::new(Authorizer::new(
        app.clone(),
        config.capacity as usize,
    ))
    .max_decoding_message_size(MAX_TRANSPORT_BYTES)
    .max_encoding_message_size(MAX_TRANSPORT_BYTES);
    let approvals =
        proto::approvals_server::ApprovalsServer::new(ApprovalsService::new(app.clone()));
    let credentials =
        proto::credentials_server::CredentialsServer::new(CredentialsService::new(app.clone()));
    let refresher = spawn_token_refresher(app.clone());

    let (stop, stopped) = oneshot::channel::<()>();
    let router = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(authorizer)
        .add_service(approvals)
        .add_service(credentials);
    // Without TCP_NODELAY, small responses wait for delayed ACKs: 40 ms tails.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let stopping_app = app.clone();
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stopped.await;
                refresher.abort();
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
    Ok(Running {
        local_addr,
        sets,
        stop,
        task,
    })
}

/// Opens the state database and everything built on it, and checks that callers
/// will have to authenticate where that matters.
fn open_state(config: &Config, sets: Arc<Sets>) -> anyhow::Result<App> {
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
        Credentials::open(store.clone(), &config.data_dir, config.credentials.clone())
            .context("cannot set up the credential signing keys")?,
    );
    let approvals = ApprovalDesk::new(store.clone(), config.approval_ttl);
    Ok(App::new(sets, auth, store, approvals, credentials))
}

/// Picks up tokens created or removed with `arbiter token` while the server runs.
fn spawn_token_refresher(app: Arc<App>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(auth::REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let a = app.clone();
            let refreshed = tokio::task::spawn_blocking(move || a.auth.refresh(&*a.store)).await;
            if let Ok(Err(e)) = refreshed {
                tracing::warn!(error = %e, "cannot re-read caller tokens; keeping the previous ones");
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
