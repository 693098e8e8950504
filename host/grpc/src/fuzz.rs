//! Entry point for fuzzing the edge: arbitrary bytes as a protobuf request, then
//! validation. Any input is a request or an error naming a field, never a panic.

use prost::Message as _;

use crate::proto as pb;

/// Decodes `data` as an `AuthorizeRequest` and an `AuthorizeBatchRequest` and validates
/// whatever decodes.
pub fn decode(data: &[u8]) {
    if let Ok(r) = pb::AuthorizeRequest::decode(data) {
        check(r);
    }
    if let Ok(b) = pb::AuthorizeBatchRequest::decode(data) {
        for r in b.requests.into_iter().take(64) {
            check(r);
        }
    }
}

#[expect(
    clippy::expect_used,
    reason = "a fuzz target panics exactly when an invariant breaks"
)]
fn check(r: pb::AuthorizeRequest) {
    let _ = super::decode::check_size("request", &r);
    match super::decode::authorize(r) {
        Ok(a) => {
            assert!(!a.request.principal.id.is_empty());
            assert!(!a.request.action.name.is_empty());
            // What passed validation survives a round trip through the client encoding.
            let again =
                super::decode::authorize(super::encode::request(&a.request)).expect("round trip");
            assert_eq!(again.request, a.request);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}
