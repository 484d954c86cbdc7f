//! Fuzz target: `decode_datagram` and `Message::parse`, then `stamp_received` and
//! `response_target` on the result. The body is in `../bodies/codec.rs`, shared with the
//! api crate's tests.
#![no_main]

#[path = "../bodies/codec.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::datagram(data));
