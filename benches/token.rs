//! Token-interface overhead over raw cryptoki, on SoftHSM2: encrypt of 64 bytes (AES-CBC-PAD)
//! and AES-256 token-object generation, single-threaded, the same calls both ways.
//!
//! `cargo bench --bench token` (needs softhsm2; makes its own token in a temporary directory
//! and re-runs itself with SOFTHSM2_CONF pointing at it).

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
    let secs = 2.0;
    let raw_enc = rate(secs, || {
        black_box(
            session
                .encrypt(&Mechanism::AesCbcPad([1u8; 16]), raw_key, &data)
                .expect("raw encrypt"),
        );
    });
    let if_enc = rate(secs, || {
        black_box(token.encrypt(key, &cbc, &data).expect("encrypt"));
    });
    let raw_gen = rate(secs, || {
        black_box(
            session
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::AES),
                        Attribute::ValueLen(32.into()),
                        Attribute::Token(true),
                        Attribute::Encrypt(true),
                    ],
                )
                .expect("raw keygen"),
        );
    });
    let if_gen = rate(secs, || {
        black_box(token.generate_key(&mech, &t).expect("keygen"));
    });
    println!(
        "{:<34} {:>12} {:>12} {:>9}",
        "operation (SoftHSM2, 1 thread)", "raw ops/s", "ksg ops/s", "overhead"
    );
    for (name, raw, ours) in [
        ("encrypt 64 B, AES-256-CBC-PAD", raw_enc, if_enc),
        ("generate AES-256 token key", raw_gen, if_gen),
    ] {
        println!(
            "{name:<34} {raw:>12.0} {ours:>12.0} {:>8.1}%",
            (raw / ours - 1.0) * 100.0
        );
    }
}
