//! Truncating or flipping bits in the encoding of every OASIS test-case message never panics:
//! each attempt ends in an error or in a valid tree that encodes back to the same bytes.
//! (std only; the coverage-guided version of this lives in tests/fuzz.)

mod common;

use common::Rng;

use ksg::ttlv::{Limits, binary, json, xml};

fn check_ttlv(bytes: &[u8], limits: &Limits) -> bool {
    match binary::decode(bytes, limits) {
        Ok(item) => {
            let again = binary::to_vec(&item).expect("a decoded tree encodes");
            assert_eq!(
                again, bytes,
                "a mutated message decoded but did not re-encode identically"
            );
            true
        }
        Err(_) => false,
    }
}

#[test]
fn ttlv_truncations_and_bit_flips_of_every_vector() {
    let limits = Limits {
        max_size: 1 << 20,
        max_depth: 32,
        max_items: 100_000,
    };
    let mut rng = Rng(0x6b73_6721_5eed_0001);
    let (mut messages, mut attempts, mut accepted) = (0usize, 0usize, 0usize);
    for (_, msgs) in common::all_messages() {
        for m in msgs.iter().filter(|m| m.first_placeholder().is_none()) {
            let bytes = binary::to_vec(m).expect("encodes");
            messages += 1;
            // Every cut in the first 64 bytes (headers), then 32 cuts spread over the rest.
            let cuts = (0..bytes.len().min(64)).chain((0..32).map(|_| rng.below(bytes.len())));
            for cut in cuts {
                attempts += 1;
                assert!(
                    !check_ttlv(&bytes[..cut], &limits),
                    "a strict prefix must not decode"
                );
            }
            let mut mutated = bytes.clone();
            for _ in 0..48 {
                let at = rng.below(bytes.len());
                let bit = 1u8 << rng.below(8);
                mutated[at] ^= bit;
                attempts += 1;
                accepted += usize::from(check_ttlv(&mutated, &limits));
                mutated[at] ^= bit;
            }
        }
    }
    println!("{messages} messages, {attempts} mutated decodes, {accepted} still valid");
    assert!(
        messages > 9_000,
        "expected the OASIS vectors, found {messages} messages"
    );
}

#[test]
fn xml_and_json_truncations_and_byte_flips_never_panic() {
    let limits = Limits::default();
    let mut rng = Rng(0x6b73_6721_5eed_0002);
    let mut attempts = 0usize;
    for (_, msgs) in common::all_messages().into_iter().step_by(3) {
        for m in &msgs {
            for text in [xml::encode(m), json::encode(m)] {
                let bytes = text.as_bytes();
                for _ in 0..16 {
                    let cut = rng.below(bytes.len());
                    let mut mutated = bytes[..cut].to_vec();
                    if !mutated.is_empty() {
                        let at = rng.below(mutated.len());
                        mutated[at] = b"<>\"/&{}[],:$ 0x"[rng.below(15)];
                    }
                    mutated.extend_from_slice(&bytes[cut..]);
                    let Ok(t) = std::str::from_utf8(&mutated) else {
                        continue;
                    };
                    attempts += 1;
                    for decoded in [
                        xml::decode(t, common::NOW, &limits),
                        json::decode(t, common::NOW, &limits),
                    ]
                    .into_iter()
                    .flatten()
                    {
                        // Whatever decodes must survive its own re-encoding.
                        let again = json::decode(&json::encode(&decoded), common::NOW, &limits);
                        assert_eq!(again.as_ref(), Ok(&decoded));
                    }
                }
            }
        }
    }
    assert!(attempts > 10_000, "{attempts}");
}
