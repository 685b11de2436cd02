//! cargo-fuzz entry for `ksg::fuzzing::json_decode` (the body and its checks live there, shared with
//! the CI smoke test `tests/fuzz_smoke_every_target.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ksg::fuzzing::json_decode(data));
