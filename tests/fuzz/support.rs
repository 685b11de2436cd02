//! The round-trip oracle shared by the text-format fuzz targets.

use ksg::ttlv::{Item, Limits, binary, json, xml};

const NOW: i64 = 1_700_000_000;

/// Every decoded tree re-encodes to XML, JSON and (without placeholders) TTLV and decodes back
/// to itself.
pub fn check_round_trips(messages: &[Item]) {
    let limits = Limits { max_size: 64 << 20, max_depth: 64, max_items: 1 << 20 };
    for m in messages {
        let x = xml::decode(&xml::encode(m), NOW, &limits).expect("own XML decodes");
        assert_eq!(&x, m, "XML round trip");
        let j = json::decode(&json::encode(m), NOW, &limits).expect("own JSON decodes");
        assert_eq!(&j, m, "JSON round trip");
        if m.first_placeholder().is_none() {
            let bytes = binary::to_vec(m).expect("encodes");
            let t = binary::decode(&bytes, &limits).expect("own TTLV decodes");
            assert_eq!(&t, m, "TTLV round trip");
        }
    }
}
