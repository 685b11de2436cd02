//! XML decoding never panics, and whatever decodes survives XML, JSON and TTLV unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let limits = ksg::ttlv::Limits { max_size: 1 << 20, max_depth: 16, max_items: 10_000 };
        if let Ok(doc) = ksg::ttlv::xml::decode_document(text, 1_700_000_000, &limits) {
            ksg_fuzz_support::check_round_trips(&doc.messages);
        }
    }
});

#[path = "../support.rs"]
mod ksg_fuzz_support;
