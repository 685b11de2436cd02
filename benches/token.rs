//! Token-interface overhead over raw cryptoki, on SoftHSM2: encrypt of 64 bytes (AES-CBC-PAD)
//! and AES-256-GCM (one thread and eight), and AES-256 token-object generation, the same calls
//! both ways.
//!
//! `cargo bench --bench token [-- ROW-TEXT [SECONDS]]` (needs softhsm2; makes its own token in
//! a temporary directory and re-runs itself with SOFTHSM2_CONF pointing at it). SoftHSM2 writes
//! each token object's file once per attribute, so key generation is mostly the file system's
//! work: run it on a file system that has not just deleted thousands of files (ext4 scans
//! recently freed inodes when it allocates new ones).

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use ksg::config::Secret;
use ksg::token::pkcs11::{Config, Pkcs11Token, SlotChoice, Trace};
use ksg::token::template::{self, Identity, usage};
use ksg::token::{Mech, Token};

fn rate(seconds: f64, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs_f64(seconds) {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    if std::env::var_os("KSG_BENCH_CHILD").is_none() {
        let dir = std::env::temp_dir().join(format!("ksg-bench-softhsm-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("tokens")).expect("mkdir");
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nlog.level = ERROR\n",
                dir.join("tokens").display()
            ),
        )
        .expect("conf");
        let ok = Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                "bench",
                "--pin",
                "1234",
                "--so-pin",
                "5678",
            ])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .expect("softhsm2-util (install softhsm2)");
        assert!(ok.status.success());
        let status = Command::new(std::env::current_exe().expect("self"))
            .args(std::env::args().skip(1))
            .env("SOFTHSM2_CONF", &conf)
            .env("KSG_BENCH_CHILD", "1")
            .status()
            .expect("re-run");
        let _ = std::fs::remove_dir_all(&dir);
        std::process::exit(status.code().unwrap_or(1));
    }
    let module = [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("libsofthsm2.so");
    let token = Pkcs11Token::open(&Config {
        module: module.into(),
        slot: SlotChoice::Label("bench".into()),
        pin: Some(Secret::new("1234".into())),
        trace: Trace::Off,
    })
    .expect("token");
    let id = Identity {
        uid: "bench-key",
        name: None,
        extractable: true,
    };
    let (mech, t) =
        template::secret_key(3, 256, usage::ENCRYPT | usage::DECRYPT, &id).expect("template");
    let key = token.generate_key(&mech, &t).expect("key");
    let data = [7u8; 64];
    let cbc = Mech::AesCbcPad([1u8; 16]);

    // Raw cryptoki on the same module (the context is already initialised by the token).
    let ctx = token.context();
    let session = ctx.open_rw_session(token.slot()).expect("session");
    let _ = session.login(UserType::User, Some(&AuthPin::new("1234".into())));
    let raw_key = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
            ],
        )
        .expect("raw key");
    // `cargo bench --bench token -- [ROW-TEXT] [SECONDS]`: only the rows whose name contains
    // ROW-TEXT, each side measured for SECONDS (2 by default).
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let only = args.next().unwrap_or_default();
    let secs: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let gcm = |iv: &mut [u8; 12]| -> Vec<u8> {
        // Each call a fresh IV, as the gateway makes one per request.
        iv[0] = iv[0].wrapping_add(1);
        iv.to_vec()
    };
    let raw_gcm_with = |session: &cryptoki::session::Session,
                        iv: &mut [u8; 12],
                        key: cryptoki::object::ObjectHandle| {
        let mut nonce = gcm(iv);
        let params =
            cryptoki::mechanism::aead::GcmParams::new(&mut nonce, &[], 128.into()).expect("gcm");
        black_box(
            session
                .encrypt(&Mechanism::AesGcm(params), key, &data)
                .expect("raw GCM"),
        );
    };
    let raw_gcm = |session: &cryptoki::session::Session, iv: &mut [u8; 12]| {
        raw_gcm_with(session, iv, raw_key)
    };
    let raw_session = || {
        let s = ctx.open_rw_session(token.slot()).expect("session");
        let _ = s.login(UserType::User, Some(&AuthPin::new("1234".into())));
        s
    };
    let if_gcm_with = |iv: &mut [u8; 12], key| {
        let m = Mech::AesGcm {
            iv: gcm(iv),
            aad: Vec::new(),
            tag_bits: 128,
        };
        black_box(token.encrypt(key, &m, &data).expect("GCM"));
    };
    let if_gcm = |iv: &mut [u8; 12]| if_gcm_with(iv, key);
    let minimal_template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Token(true),
        Attribute::Encrypt(true),
    ];
    // The very key the gateway makes (its template: label, ID, private, sensitive, each usage
    // flag set), for the like-for-like row.
    let gateway_template = ksg::token::pkcs11::template(&t);
    let raw_keygen_with = |session: &cryptoki::session::Session, template: &[Attribute]| {
        black_box(
            session
                .generate_key(&Mechanism::AesKeyGen, template)
                .expect("raw keygen"),
        );
    };
    let raw_keygen =
        |session: &cryptoki::session::Session| raw_keygen_with(session, &minimal_template);
    let if_keygen = || {
        black_box(token.generate_key(&mech, &t).expect("keygen"));
    };
    type Row<'a> = (&'static str, Box<dyn Fn() -> (f64, f64) + 'a>);
    let rows: Vec<Row> = vec![
        (
            "encrypt 64 B, AES-256-CBC-PAD, 1 thread",
            Box::new(|| {
                let raw = rate(secs, || {
                    black_box(
                        session
                            .encrypt(&Mechanism::AesCbcPad([1u8; 16]), raw_key, &data)
                            .expect("raw encrypt"),
                    );
                });
                let ours = rate(secs, || {
                    black_box(token.encrypt(key, &cbc, &data).expect("encrypt"));
                });
                (raw, ours)
            }),
        ),
        (
            "encrypt 64 B, AES-256-GCM, 1 thread",
            Box::new(|| {
                let mut iv = [0u8; 12];
                let raw = rate(secs, || raw_gcm(&session, &mut iv));
                (raw, rate(secs, || if_gcm(&mut iv)))
            }),
        ),
        (
            "encrypt 64 B, AES-256-GCM, 8 threads",
            Box::new(|| {
                let raw = threads(8, secs, |_| {
                    let s = raw_session();
                    let mut iv = [0u8; 12];
                    move || raw_gcm(&s, &mut iv)
                });
                let ours = threads(8, secs, |_| {
                    let mut iv = [0u8; 12];
                    move || if_gcm(&mut iv)
                });
                (raw, ours)
            }),
        ),
        (
            // What `sessionKeyCopies` has the gateway use: SoftHSM2 reads a token object from
            // disk on each use, a session object from memory.
            "same, session copies of the keys",
            Box::new(|| {
                let raw_copy = session
                    .copy_object(raw_key, &[Attribute::Token(false)])
                    .expect("raw C_CopyObject");
                let if_copy = token
                    .copy_object(key, &[ksg::token::Attr::Token(false)])
                    .expect("C_CopyObject");
                let raw = threads(8, secs, |_| {
                    let s = raw_session();
                    let mut iv = [0u8; 12];
                    move || raw_gcm_with(&s, &mut iv, raw_copy)
                });
                let ours = threads(8, secs, |_| {
                    let mut iv = [0u8; 12];
                    move || if_gcm_with(&mut iv, if_copy)
                });
                (raw, ours)
            }),
        ),
        (
            "generate AES-256 token key, 1 thread",
            Box::new(|| (rate(secs, || raw_keygen(&session)), rate(secs, if_keygen))),
        ),
        (
            "same, the gateway's template, 1 thread",
            Box::new(|| {
                let raw = rate(secs, || raw_keygen_with(&session, &gateway_template));
                (raw, rate(secs, if_keygen))
            }),
        ),
        (
            "generate AES-256 token key, 8 threads",
            Box::new(|| {
                let raw = threads(8, secs, |_| {
                    let s = raw_session();
                    move || raw_keygen(&s)
                });
                (raw, threads(8, secs, |_| if_keygen))
            }),
        ),
    ];
    println!(
        "{:<40} {:>12} {:>12} {:>9}",
        "operation (SoftHSM2)", "raw ops/s", "ksg ops/s", "overhead"
    );
    for (name, run) in rows.iter().filter(|(name, _)| name.contains(&only)) {
        let (raw, ours) = run();
        println!(
            "{name:<40} {raw:>12.0} {ours:>12.0} {:>8.1}%",
            (raw / ours - 1.0) * 100.0
        );
    }
}

/// Operations per second of `n` threads, each running the closure `make` gives it.
fn threads<F: FnMut()>(n: usize, seconds: f64, make: impl Fn(usize) -> F + Sync) -> f64 {
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let make = &make;
                s.spawn(move || {
                    let mut f = make(i);
                    let mut count = 0u64;
                    while start.elapsed() < Duration::from_secs_f64(seconds) {
                        f();
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}
