//! A short run of every fuzz target (`ksg::fuzzing`, the same bodies the cargo-fuzz binaries in
//! `tests/fuzz` run for hours): each over seeds taken from the OASIS test cases and the shipped
//! files, and over deterministic mutations of them (bit flips, truncations, inserted and
//! repeated bytes). Any panic, failed check or hang fails CI.

mod common;

use common::Rng;

use std::time::{Duration, Instant};

use ksg::ttlv::{Item, binary, json, xml};

/// `count` mutations of `seed`.
fn mutations(seed: &[u8], rng: &mut Rng, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| {
            let mut m = seed.to_vec();
            match rng.below(5) {
                0 if !m.is_empty() => {
                    let i = rng.below(m.len());
                    m[i] ^= 1 << rng.below(8);
                }
                1 => m.truncate(rng.below(m.len() + 1)),
                2 => {
                    let i = rng.below(m.len() + 1);
                    m.insert(i, rng.next() as u8);
                }
                3 if !m.is_empty() => {
                    let i = rng.below(m.len());
                    let j = (i + rng.below(16)).min(m.len());
                    let copy = m[i..j].to_vec();
                    m.splice(i..i, copy.iter().cycle().take(copy.len() * 8).copied());
                }
                _ if m.len() >= 4 => {
                    let i = rng.below(m.len() - 3);
                    m[i..i + 4].copy_from_slice(&(rng.next() as u32).to_be_bytes());
                }
                _ => m.push(0xFF),
            }
            m
        })
        .collect()
}

fn run(target: &str, seeds: &[Vec<u8>], per_seed: usize, budget: Duration) -> usize {
    let f = ksg::fuzzing::TARGETS
        .iter()
        .find(|(n, _)| *n == target)
        .map(|(_, f)| *f)
        .expect("a target");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ target.len() as u64);
    let start = Instant::now();
    let mut runs = 0;
    for seed in seeds {
        f(seed);
        runs += 1;
        for m in mutations(seed, &mut rng, per_seed) {
            f(&m);
            runs += 1;
        }
        if start.elapsed() > budget {
            break;
        }
    }
    eprintln!("{target}: {runs} inputs in {:?}", start.elapsed());
    runs
}

fn oasis_items() -> Vec<Item> {
    common::all_messages()
        .into_iter()
        .flat_map(|(_, msgs)| msgs)
        .collect()
}

fn spread<T: Clone>(all: &[T], n: usize) -> Vec<T> {
    let step = (all.len() / n.max(1)).max(1);
    all.iter().step_by(step).take(n).cloned().collect()
}

#[test]
fn every_fuzz_target_survives_its_seeds_and_their_mutations() {
    let items = oasis_items();
    let ttlv: Vec<Vec<u8>> = items
        .iter()
        .filter(|i| i.first_placeholder().is_none())
        .filter_map(|i| binary::to_vec(i).ok())
        .collect();
    let xml_text: Vec<Vec<u8>> = items.iter().map(|i| xml::encode(i).into_bytes()).collect();
    let json_text: Vec<Vec<u8>> = items.iter().map(|i| json::encode(i).into_bytes()).collect();
    let budget = Duration::from_secs(20);
    assert!(run("ttlv_decode", &spread(&ttlv, 400), 50, budget) > 10_000);
    assert!(run("xml_decode", &spread(&xml_text, 300), 20, budget) > 5_000);
    assert!(run("json_decode", &spread(&json_text, 300), 20, budget) > 5_000);

    let heads: Vec<Vec<u8>> = [
        "POST /kmip HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\nContent-Length: 40\r\n\r\n",
        "POST /kmip HTTP/1.1\r\nContent-Type: text/xml\r\nContent-Length: 9\r\nConnection: keep-alive\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "POST /kmip HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    assert!(run("http_head", &heads, 2_500, budget) > 10_000);

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut confs: Vec<Vec<u8>> = [
        "ksg.conf",
        "p6kmipserver.conf",
        "p6kmip_auxiliary_ksg.conf",
        "stunnel.conf",
    ]
    .iter()
    .map(|f| std::fs::read(root.join("confs").join(f)).expect("shipped conf"))
    .collect();
    confs.push(b"[policy p]\nSymmetricKey.Get = AllowAll\n*.* = DisallowAll\n".to_vec());
    confs.push(b"[credentials]\nalice = pbkdf2-sha256$1$0001020304050607$00\n".to_vec());
    assert!(run("ini_parse", &confs, 1_500, budget) > 5_000);

    let records: Vec<Vec<u8>> = spread(&ttlv, 100)
        .into_iter()
        .enumerate()
        .map(|(i, t)| [&[(i % 6) as u8 + 1][..], &t].concat())
        .collect();
    assert!(run("keystore_record", &records, 50, budget) > 5_000);

    let salts = ksg::pkcs12::Salts::from_random(&[5; 48]);
    let p12 = ksg::pkcs12::build(
        b"\x30\x03\x02\x01\x00",
        &[vec![0x30, 0x00]],
        Some("a"),
        b"password",
        &salts,
    );
    assert!(run("pkcs12_parse", &[p12], 1_000, budget) > 500);

    // Whole requests through an in-process gateway: fewer, since some make RSA keys.
    let requests: Vec<Item> = items
        .iter()
        .filter(|i| i.tag == ksg::ttlv::Tag::REQUEST_MESSAGE && i.first_placeholder().is_none())
        .cloned()
        .collect();
    let request_ttlv: Vec<Vec<u8>> = spread(&requests, 120)
        .iter()
        .filter_map(|i| binary::to_vec(i).ok())
        .collect();
    assert!(run("request_ttlv", &request_ttlv, 20, Duration::from_secs(40)) > 1_000);
    let request_xml: Vec<Vec<u8>> = spread(&requests, 60)
        .iter()
        .map(|i| xml::encode(i).into_bytes())
        .collect();
    assert!(run("request_xml", &request_xml, 10, Duration::from_secs(30)) > 300);
}
