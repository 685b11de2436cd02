//! TTLV decoding never panics, and whatever decodes encodes back to the very same bytes.
#![no_main]

use ksg::ttlv::{Limits, binary};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_size: 1 << 20, max_depth: 16, max_items: 10_000 };
    if let Ok(items) = binary::decode_stream(data, &limits) {
        let mut out = Vec::with_capacity(data.len());
        for item in &items {
            binary::encode(item, &mut out).expect("a decoded tree has no placeholders");
        }
        assert_eq!(out, data, "decode then encode must give the same bytes");
    }
});
