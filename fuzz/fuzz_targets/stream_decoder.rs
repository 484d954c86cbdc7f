//! Fuzz target: `StreamDecoder` fed random splits of random bytes. The body (and the
//! invariants it checks) is in `../bodies/codec.rs`, shared with the api crate's tests.
#![no_main]

#[path = "../bodies/codec.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::stream_decoder(data));
