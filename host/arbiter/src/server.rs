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

use crate::config::Config;
use crate::embedded;
use crate::grpc::{authorizer::Authorizer, decode::MAX_TRANSPORT_BYTES};
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
        sets.clone(),
        config.capacity as usize,
    ))
    .max_decoding_message_size(MAX_TRANSPORT_BYTES)
    .max_encoding_message_size(MAX_TRANSPORT_BYTES);

    let (stop, stopped) = oneshot::channel::<()>();
    let router = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(authorizer);
    // Without TCP_NODELAY, small responses wait for delayed ACKs: 40 ms tails.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
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
