//! A few thousand random and mutated inputs through the request decoder on every test
//! run; the long coverage-guided runs are in tests/fuzz (docs/security.md).

use arbiter::grpc::{encode, fuzz};
use prost::Message as _;

use crate::support::*;

/// A seeded pseudo-random sequence, so a failure reproduces.
fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

#[test]
fn random_bytes_never_panic_the_decoder() {
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    for _ in 0..5000 {
        let len = (next() % 300) as usize;
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        fuzz::decode(&data);
    }
}

#[test]
fn mutated_valid_requests_never_panic_the_decoder() {
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let seeds: Vec<Vec<u8>> = vectors()
        .iter()
        .take(50)
        .map(|v| encode::request(&v.request).encode_to_vec())
        .collect();
    for i in 0..5000 {
        let mut data = seeds[i % seeds.len()].clone();
        for _ in 0..=(next() % 4) {
            if data.is_empty() {
                break;
            }
            let at = (next() as usize) % data.len();
            match next() % 3 {
                0 => data[at] = next() as u8,
                1 => {
                    data.remove(at);
                }
                _ => data.insert(at, next() as u8),
            }
        }
        fuzz::decode(&data);
    }
}
