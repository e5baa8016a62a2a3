//! Compiles the protobuf definitions in `../proto` with protox, a pure-Rust
//! compiler, so building needs no system `protoc`. The encoded descriptor set is
//! also written out for gRPC server reflection.

use std::{env, path::PathBuf};

const PROTO_ROOT: &str = "../proto";
const PROTO_FILES: &[&str] = &[
    "com/example/user/model/v1/user.proto",
    "com/example/user/service/v1/user_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");

    let file_descriptors = protox::compile(PROTO_FILES, [PROTO_ROOT])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("usersvc_descriptor.bin");
    std::fs::write(&descriptor_path, prost::Message::encode_to_vec(&file_descriptors))?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(file_descriptors)?;
    Ok(())
}
