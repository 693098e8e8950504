//! The `arbiter` binary.

use clap::Parser as _;

/// mimalloc instead of the system allocator: a decision allocates and frees many small
/// strings on two threads, where glibc malloc cost ~8% of server CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use arbiter::cli::{
    Cli, Command, approvals, audit, bench, build, bundle, check, credentials, keygen, mcp, new,
    replay, replicas, serve, sets, test, token,
};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args).await.map(|()| 0),
        Command::Check(args) => check::run(args).await,
        Command::Test(args) => {
            serve::init_logging(arbiter::config::LogFormat::Text, "warn");
            test::run(args).await
        }
        Command::Bench(args) => bench::run(args).await,
        Command::Replay(args) => {
            serve::init_logging(arbiter::config::LogFormat::Text, "warn");
            replay::run(args).await
        }
        Command::Approvals(args) => approvals::run(args).await,
        Command::Audit(args) => audit::run(args).await,
        Command::Sets(args) => sets::run(args).await,
        Command::Replicas(args) => replicas::run(args).await,
        Command::Credentials(args) => credentials::run(args).await,
        Command::Token(args) => token::run(args),
        Command::New(args) => new::run(args),
        Command::Build(args) => build::run(args),
        Command::Bundle(args) => bundle::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::McpGateway(args) => mcp::run(args).await,
    };
    match result {
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        // The reader of our output went away (`| head`): stop quietly.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
