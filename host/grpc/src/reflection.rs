//! Server reflection (v1 and v1alpha): Arbiter's own services, health, and Envoy's
//! `ext_authz` service.

use prost_types::{
    FileDescriptorProto, FileDescriptorSet, MethodDescriptorProto, ServiceDescriptorProto,
};

/// The reflection services, v1 then v1alpha.
pub fn services() -> Result<
    (
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    ),
    tonic_reflection::server::Error,
> {
    let envoy = envoy_descriptor();
    let v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::DESCRIPTOR)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_file_descriptor_set(envoy.clone())
        .build_v1()?;
    let v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::DESCRIPTOR)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_file_descriptor_set(envoy)
        .build_v1alpha()?;
    Ok((v1, v1alpha))
}

/// `envoy/service/auth/v3/external_auth.proto`'s service, so that reflection lists
/// `envoy.service.auth.v3.Authorization`. Its message types are Envoy's, compiled
/// into `envoy-types` without a descriptor set to serve: a client that needs them
/// uses Envoy's protos.
fn envoy_descriptor() -> FileDescriptorSet {
    let file = FileDescriptorProto {
        name: Some("envoy/service/auth/v3/external_auth.proto".into()),
        package: Some("envoy.service.auth.v3".into()),
        service: vec![ServiceDescriptorProto {
            name: Some("Authorization".into()),
            method: vec![MethodDescriptorProto {
                name: Some("Check".into()),
                input_type: Some(".envoy.service.auth.v3.CheckRequest".into()),
                output_type: Some(".envoy.service.auth.v3.CheckResponse".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        syntax: Some("proto3".into()),
        ..Default::default()
    };
    FileDescriptorSet { file: vec![file] }
}
