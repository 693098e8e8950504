//! Health, reflection and graceful shutdown.

use std::time::Duration;

use arbiter::proto as pb;
use futures::StreamExt as _;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_serving() {
    let server = TestServer::start(&[]).await;
    let mut health = HealthClient::new(server.channel().await);
    for service in ["", "arbiter.v1.Authorizer"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health")
            .into_inner();
        assert_eq!(
            r.status,
            ServingStatus::Serving as i32,
            "service `{service}`"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reflection_lists_the_authorizer() {
    let server = TestServer::start(&[]).await;
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("stream")
        .into_inner();
    let response = responses.next().await.expect("one response").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("{response:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"arbiter.v1.Authorizer".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"envoy.service.auth.v3.Authorization".to_string()),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_drains_requests_in_flight() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slow = misbehave_set(dir.path(), "slow", "behaviour = \"slow\"\nslow_ms = 600");
    let server =
        TestServer::start(&["builtin:reference", slow.to_str().expect("utf-8 path")]).await;
    let mut client = server.client().await;
    let in_flight = tokio::spawn(async move {
        let mut r = normal_request();
        r.policy_set = "slow".into();
        client.authorize(r).await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let url = server.url.clone();
    let TestServer { running, .. } = server;
    running.shutdown().await.expect("clean shutdown");
    let answer = in_flight
        .await
        .expect("joins")
        .expect("the in-flight request was answered");
    assert_eq!(answer.into_inner().decision, pb::Decision::Allow as i32);
    // And the server is gone.
    assert!(
        pb::authorizer_client::AuthorizerClient::connect(url)
            .await
            .is_err()
    );
}
