//! Generates the gRPC code from `proto/` (with protox: no `protoc` needed).

use std::path::{Path, PathBuf};

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let root = arbiter_plugin_build::repo_root();
    protos(&root, &out)
}

fn protos(root: &Path, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = root.join("proto");
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    let fds = protox::compile(
        [
            "arbiter/v1/authorizer.proto",
            "arbiter/v1/approvals.proto",
            "arbiter/v1/credentials.proto",
            "arbiter/v1/audit.proto",
            "arbiter/v1/admin.proto",
        ],
        [&proto_dir],
    )?;
    std::fs::write(out.join("arbiter_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
