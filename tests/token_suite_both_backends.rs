//! One token test suite, run against both backends: the built-in software token and a real
//! PKCS#11 module, SoftHSM2, on a token of its own in a temporary directory (private
//! `softhsm2.conf`). The module is found through `TEST_PKCS11_MODULE` or the distribution
//! paths; `tests/run-all` installs `softhsm2` and `opensc`, so in CI these tests never skip.
//! Key pairs, pkcs11-tool and device resets are SoftHSM2-only for now.

mod common;

use std::path::PathBuf;
use std::process::Command;

use aes_gcm::aead::{AeadInOut, Nonce, Tag as GcmTag};
use aes_gcm::{Aes256Gcm, KeyInit};
use common::gateway::TempDir;
use ksg::config::Secret;
use ksg::token::import;
use ksg::token::mechanism::{self, CryptoParams};
use ksg::token::pkcs11::{Config, Pkcs11Token, SlotChoice, Trace};
use ksg::token::soft::SoftToken;
use ksg::token::template::{self, Identity, PairSpec, usage};
use ksg::token::vendor::{self, KEK_LABEL, Vendor};
use ksg::token::{Attr, AttrType, Class, Hash, KeyType, Mech, StreamKind, Token, TokenError};
use ksg::ttlv::tables::enums::ResultReason;
use sha2::Digest;

const PIN: &str = "1234";
const LABEL: &str = "ksg-test";

struct Fixture {
    conf: PathBuf,
    module: PathBuf,
    token: Pkcs11Token,
}

fn module() -> PathBuf {
    if let Some(m) = std::env::var_os("TEST_PKCS11_MODULE") {
        return PathBuf::from(m);
    }
    for p in [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ] {
        if std::path::Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("SoftHSM2 not found: install softhsm2 (tests/run-all does) or set TEST_PKCS11_MODULE");
}

/// Runs `body` against a fresh SoftHSM2 token. SoftHSM2 reads `SOFTHSM2_CONF` when the module
/// is initialised, so each test re-runs itself in a child process whose environment points at a
/// private `softhsm2.conf` and token directory made here.
fn with_softhsm(test: &str, body: impl FnOnce(&Fixture)) {
    with_softhsm_owned(test, |f| body(&f));
}

/// [`with_softhsm`], the fixture handed over.
fn with_softhsm_owned(test: &str, body: impl FnOnce(Fixture)) {
    if std::env::var_os("KSG_SOFTHSM_CHILD").is_some() {
        body(open_fixture());
        return;
    }
    let dir = TempDir::new("softhsm");
    let conf = common::softhsm_token(&dir.0, LABEL, PIN);
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env("SOFTHSM2_CONF", &conf)
        .env("KSG_SOFTHSM_CHILD", "1")
        .output()
        .expect("re-run the test");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && log.contains("1 passed"),
        "{test} on SoftHSM2:\n{log}"
    );
}

fn open_fixture() -> Fixture {
    let conf = PathBuf::from(std::env::var_os("SOFTHSM2_CONF").expect("set by the parent"));
    let module = module();
    let token = Pkcs11Token::open(&Config {
        module: module.clone(),
        slot: SlotChoice::Label(LABEL.into()),
        pin: Some(Secret::new(PIN.into())),
        trace: Trace::Error,
    })
    .expect("open the token");
    Fixture {
        conf,
        module,
        token,
    }
}
fn kek_object(kek: &[u8; 32]) -> Vec<Attr> {
    import::kek_object(kek)
}

fn reason<T: std::fmt::Debug>(r: Result<T, TokenError>) -> ResultReason {
    match r {
        Err(e) => ksg::kmip::Error::Token(e).result_reason(),
        Ok(v) => panic!("expected a failure, got {v:?}"),
    }
}

fn generate(
    token: &dyn Token,
    name: &str,
    alg: u32,
    bits: u32,
    mask: u32,
    extractable: bool,
) -> ksg::token::Handle {
    let id = Identity {
        uid: name,
        name: Some(name),
        extractable,
    };
    let (mech, t) = template::secret_key(alg, bits, mask, &id).expect("template");
    token.generate_key(&mech, &t).expect("C_GenerateKey")
}

/// What every backend must do with secret keys, the same way.
fn secret_key_suite(token: &dyn Token, kek: &[u8; 32]) {
    token
        .create_object(&kek_object(kek))
        .expect("import the KEK");
    let found = token
        .find(&[Attr::Label(KEK_LABEL.into()), Attr::Class(Class::SecretKey)])
        .expect("find");
    assert_eq!(found.len(), 1, "exactly one KEK");
    let kek_h = found[0];
    let enc_dec = usage::ENCRYPT | usage::DECRYPT;
    let key = generate(token, "suite-aes", 3, 256, enc_dec, true);

    // Out of the token only wrapped; unwrapped locally it is the key the token encrypts with.
    let wrapped = token
        .wrap_key(kek_h, key, &Vendor::Generic.kek_wrap_mechanism())
        .expect("C_WrapKey");
    let clear = Vendor::Generic
        .unwrap_locally(kek, &wrapped)
        .expect("local unwrap with the KEK");
    assert_eq!(clear.len(), 32);
    let iv = [9u8; 12];
    let gcm_params = CryptoParams {
        block_cipher_mode: Some(9),
        ..CryptoParams::default()
    };
    let mech = mechanism::cipher(3, &gcm_params, Some(&iv), b"hdr").expect("GCM");
    let plain = b"sixty-four bytes of payroll data, encrypted inside the token!!!";
    let ct = token.encrypt(key, &mech, plain).expect("C_Encrypt");

    // A session copy (C_CopyObject) is the same key; a copy cannot change what a key is.
    let copy = token
        .copy_object(key, &[Attr::Token(false)])
        .expect("C_CopyObject");
    assert_eq!(token.decrypt(copy, &mech, &ct).expect("C_Decrypt"), plain);
    assert!(token.copy_object(key, &[Attr::Value(vec![0; 32])]).is_err());
    token.destroy(copy).expect("C_DestroyObject");
    let (body, tag) = ct.split_at(ct.len() - 16);
    let gcm = Aes256Gcm::new_from_slice(&clear).expect("key");
    let mut buf = body.to_vec();
    gcm.decrypt_inout_detached(
        &Nonce::<Aes256Gcm>::from(iv),
        b"hdr",
        buf.as_mut_slice().into(),
        &GcmTag::<Aes256Gcm>::try_from(tag).expect("tag"),
    )
    .expect("the exported key decrypts what the token encrypted");
    assert_eq!(buf, plain);
    assert_eq!(token.decrypt(key, &mech, &ct).expect("C_Decrypt"), plain);
    let mut bad = ct.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert_eq!(
        reason(token.decrypt(key, &mech, &bad)),
        ResultReason::CryptographicFailure,
        "a flipped tag bit"
    );

    // CBC with padding and ECB round trips.
    let cbc = Mech::AesCbcPad([3u8; 16]);
    let ct = token
        .encrypt(key, &cbc, b"seventeen bytes!!")
        .expect("CBC-PAD");
    assert_eq!(ct.len(), 32);
    assert_eq!(
        token.decrypt(key, &cbc, &ct).expect("CBC-PAD"),
        b"seventeen bytes!!"
    );
    let ecb = token.encrypt(key, &Mech::AesEcb, &[0u8; 32]).expect("ECB");
    assert_eq!(
        &ecb[..16],
        &ecb[16..],
        "ECB: equal blocks, equal ciphertext"
    );
    assert_eq!(
        reason(token.encrypt(key, &Mech::AesEcb, &[0u8; 5])),
        ResultReason::CryptographicFailure
    );

    // CTR: any length, the same keystream both ways; and what the local key computes.
    let ctr = Mech::AesCtr([0xF0; 16]);
    let ct = token
        .encrypt(key, &ctr, b"nineteen bytes long")
        .expect("CTR");
    assert_eq!(ct.len(), 19);
    assert_eq!(
        token.decrypt(key, &ctr, &ct).expect("CTR"),
        b"nineteen bytes long"
    );

    // Unwrapping the wrapped key makes a key that encrypts the same.
    let copy_id = Identity {
        uid: "suite-copy",
        name: None,
        extractable: true,
    };
    let copy_t: Vec<Attr> = template::secret_key(3, 256, enc_dec, &copy_id)
        .expect("template")
        .1
        .into_iter()
        .filter(|a| !matches!(a, Attr::ValueLen(_)))
        .collect();
    let copy = token
        .unwrap_key(kek_h, &Mech::AesKeyWrapPad, &wrapped, &copy_t)
        .expect("C_UnwrapKey");
    assert_eq!(
        token.encrypt(copy, &cbc, b"same").expect("copy"),
        token.encrypt(key, &cbc, b"same").expect("orig")
    );

    // C_DigestKey digests the value; the value itself is never readable (CKA_SENSITIVE).
    assert_eq!(
        token.digest_key(key, Hash::Sha256).expect("C_DigestKey"),
        sha2::Sha256::digest(&clear).to_vec()
    );
    let attrs = token
        .get_attributes(key, &[AttrType::Value, AttrType::ValueLen])
        .expect("attributes");
    assert!(
        attrs.iter().all(|a| !matches!(a, Attr::Value(_))),
        "{attrs:?}"
    );

    // Policy: not extractable means not exportable, and usage is enforced.
    let locked = generate(token, "suite-locked", 3, 128, enc_dec, false);
    assert_eq!(
        reason(token.wrap_key(kek_h, locked, &Mech::AesKeyWrapPad)),
        ResultReason::NotExtractable
    );
    let decrypt_only = generate(token, "suite-decrypt-only", 3, 128, usage::DECRYPT, true);
    assert_eq!(
        reason(token.encrypt(decrypt_only, &cbc, b"x")),
        ResultReason::PermissionDenied
    );

    // HMAC.
    let mac_key = generate(
        token,
        "suite-mac",
        9,
        256,
        usage::MAC_GENERATE | usage::MAC_VERIFY,
        true,
    );
    let m = mechanism::mac(9).expect("HMAC-SHA256");
    let t = token.sign(mac_key, &m, b"data").expect("MAC");
    assert_eq!(t.len(), 32);
    assert!(token.verify(mac_key, &m, b"data", &t).expect("MAC verify"));
    assert!(!token.verify(mac_key, &m, b"date", &t).expect("MAC verify"));

    // Multi-part: the same results as single-part, whatever the chunking.
    let whole = token.encrypt(key, &cbc, plain).expect("single-part");
    let mut stream = token
        .begin(StreamKind::Encrypt, key, &cbc)
        .expect("C_EncryptInit");
    let mut parts = Vec::new();
    for chunk in plain.chunks(20) {
        parts.extend(token.update(&mut stream, chunk).expect("C_EncryptUpdate"));
    }
    parts.extend(token.finish(stream, None).expect("C_EncryptFinal"));
    assert_eq!(parts, whole);
    let mut stream = token
        .begin(StreamKind::Decrypt, key, &cbc)
        .expect("C_DecryptInit");
    let mut back = token.update(&mut stream, &whole[..40]).expect("update");
    back.extend(token.update(&mut stream, &whole[40..]).expect("update"));
    back.extend(token.finish(stream, None).expect("C_DecryptFinal"));
    assert_eq!(back, plain);
    let mut stream = token
        .begin(StreamKind::Sign, mac_key, &m)
        .expect("C_SignInit");
    token.update(&mut stream, b"da").expect("update");
    token.update(&mut stream, b"ta").expect("update");
    assert_eq!(token.finish(stream, None).expect("C_SignFinal"), t);
    for (tag, expect) in [(&t[..], vec![1u8]), (&[0u8; 32][..], vec![0u8])] {
        let mut stream = token
            .begin(StreamKind::Verify, mac_key, &m)
            .expect("C_VerifyInit");
        token.update(&mut stream, b"data").expect("update");
        assert_eq!(
            token.finish(stream, Some(tag)).expect("C_VerifyFinal"),
            expect
        );
    }
    // An abandoned stream costs nothing lasting: the next calls still work.
    let abandoned = token.begin(StreamKind::Encrypt, key, &cbc).expect("init");
    drop(abandoned);
    assert_eq!(
        token
            .encrypt(key, &cbc, plain)
            .expect("after an abandoned stream"),
        whole
    );

    // Random, find by CKA_ID, destroy.
    assert_ne!(
        token.random(32).expect("random"),
        token.random(32).expect("random")
    );
    assert_eq!(
        token
            .find(&[Attr::Id(b"suite-mac".to_vec())])
            .expect("find"),
        vec![mac_key]
    );
    token.destroy(mac_key).expect("C_DestroyObject");
    assert!(
        token
            .find(&[Attr::Id(b"suite-mac".to_vec())])
            .expect("find")
            .is_empty()
    );
    assert_eq!(
        reason(token.sign(mac_key, &m, b"data")),
        ResultReason::ItemNotFound
    );
}

/// Register on every backend: a certificate with its names, a secret key with its value (the
/// same value encrypts the same on both backends), a data object; the KEK found by label.
fn register_suite(token: &dyn Token) -> Vec<u8> {
    let kek = vendor::find_kek(token, None).expect("the KEK by label");
    let cert =
        rcgen::generate_simple_self_signed(vec!["hsm.example".to_string()]).expect("certificate");
    let der = cert.cert.der().to_vec();
    let id = Identity {
        uid: "reg-cert",
        name: Some("hsm.example"),
        extractable: true,
    };
    let t = import::certificate(&der, &id).expect("template");
    let subject = t
        .iter()
        .find_map(|a| {
            if let Attr::Subject(s) = a {
                Some(s.clone())
            } else {
                None
            }
        })
        .expect("subject");
    let h = token.create_object(&t).expect("C_CreateObject certificate");
    assert_eq!(
        token
            .find(&[Attr::Class(Class::Certificate), Attr::Subject(subject)])
            .expect("find"),
        vec![h]
    );
    assert_eq!(
        vendor::find_kek(token, token.native_handle(kek)).expect("the KEK by handle"),
        kek
    );
    assert!(
        vendor::find_kek(token, token.native_handle(h)).is_err(),
        "a certificate is no KEK"
    );

    let value = [0x11u8; 32];
    let id = Identity {
        uid: "reg-aes",
        name: None,
        extractable: true,
    };
    let key = token
        .create_object(&import::secret_key(
            KeyType::Aes,
            &value,
            usage::ENCRYPT | usage::DECRYPT,
            &id,
        ))
        .expect("C_CreateObject secret key");
    let mut ct = token
        .encrypt(key, &Mech::AesCbcPad([2u8; 16]), b"registered")
        .expect("encrypt");
    // CTR too: the same key value and counter give the same bytes on every backend.
    ct.extend(
        token
            .encrypt(key, &Mech::AesCtr([0xFE; 16]), &[0u8; 40])
            .expect("CTR"),
    );

    let data = token.create_object(&import::data_object(
        b"a secret",
        &Identity {
            uid: "reg-data",
            name: Some("reg-data"),
            extractable: true,
        },
    ));
    let data = data.expect("C_CreateObject data");
    assert_eq!(
        token
            .find(&[Attr::Class(Class::Data), Attr::Label("reg-data".into())])
            .expect("find"),
        vec![data]
    );
    ct
}

#[test]
fn the_software_token_passes_the_secret_key_suite() {
    let token = SoftToken::new();
    let mut kek = [0u8; 32];
    getrandom::fill(&mut kek).expect("random");
    secret_key_suite(&token, &kek);
    assert_eq!(
        token.seed_random(b"seed"),
        Ok(0),
        "the OS RNG takes no seed, and says so"
    );
}

#[test]
fn softhsm2_passes_the_secret_key_suite() {
    with_softhsm("softhsm2_passes_the_secret_key_suite", |f| {
        secret_key_suite(&f.token, &[0x6Bu8; 32]);
        assert_eq!(
            f.token.seed_random(b"extra entropy"),
            Ok(13),
            "C_SeedRandom works on SoftHSM2"
        );
    });
}

/// Key pairs: generate, sign a software hash with the raw mechanism, verify; a changed digest
/// does not verify, and the public key's point (EC) can be read and re-imported.
fn key_pair_suite(token: &dyn Token, cases: &[(u32, u32, Option<u32>)]) {
    let message = b"to be signed";
    for &(alg, bits, curve) in cases {
        let spec = PairSpec {
            alg,
            bits,
            curve,
            private_mask: usage::SIGN,
            public_mask: usage::VERIFY,
            public: Identity {
                uid: "pub",
                name: None,
                extractable: true,
            },
            private: Identity {
                uid: "priv",
                name: None,
                extractable: false,
            },
        };
        let (mech, public, private) = template::key_pair(&spec).expect("template");
        let (pubk, privk) = token
            .generate_key_pair(&mech, &public, &private)
            .expect("C_GenerateKeyPair");
        let params = CryptoParams {
            hashing_algorithm: Some(6),
            padding_method: Some(8),
            ..CryptoParams::default()
        };
        let (sig_mech, hash) = mechanism::signature(alg, &params).expect("mechanism");
        assert_eq!(hash, Some(Hash::Sha256));
        let digest = sha2::Sha256::digest(message).to_vec();
        let input = if sig_mech == Mech::RsaPkcs {
            [mechanism::digest_info_prefix(Hash::Sha256), &digest].concat()
        } else {
            digest.clone()
        };
        let signature = token.sign(privk, &sig_mech, &input).expect("C_Sign");
        assert!(
            token
                .verify(pubk, &sig_mech, &input, &signature)
                .expect("C_Verify")
        );
        let mut wrong = input.clone();
        wrong[input.len() - 1] ^= 1;
        assert!(
            !token
                .verify(pubk, &sig_mech, &wrong, &signature)
                .expect("C_Verify"),
            "alg {alg}"
        );
        assert_eq!(
            reason(token.sign(pubk, &sig_mech, &input)),
            ResultReason::PermissionDenied,
            "a public key cannot sign"
        );
        if let Some(c) = curve {
            let point = token
                .get_attributes(pubk, &[AttrType::EcPoint])
                .expect("CKA_EC_POINT");
            let Some(Attr::EcPoint(point)) = point.into_iter().next() else {
                panic!("no point")
            };
            let again = token
                .create_object(&[
                    Attr::Class(Class::PublicKey),
                    Attr::KeyType(KeyType::Ec),
                    Attr::Token(false),
                    Attr::EcParams(template::ec_params(c).expect("curve")),
                    Attr::EcPoint(point),
                    Attr::Verify(true),
                ])
                .expect("re-import the public key");
            assert!(
                token
                    .verify(again, &sig_mech, &input, &signature)
                    .expect("verify with the copy")
            );
        }
    }
}

/// RSA encryption (PKCS#1 v1.5 and OAEP) and PSS signatures.
fn rsa_suite(token: &dyn Token, encryption: &[Mech]) {
    let spec = PairSpec {
        alg: 4,
        bits: 2048,
        curve: None,
        private_mask: usage::DECRYPT | usage::SIGN,
        public_mask: usage::ENCRYPT | usage::VERIFY,
        public: Identity {
            uid: "rsa-pub",
            name: None,
            extractable: true,
        },
        private: Identity {
            uid: "rsa-priv",
            name: None,
            extractable: false,
        },
    };
    let (mech, public, private) = template::key_pair(&spec).expect("template");
    let (pubk, privk) = token
        .generate_key_pair(&mech, &public, &private)
        .expect("C_GenerateKeyPair");
    for m in encryption {
        let ct = token
            .encrypt(pubk, m, b"a wrapped secret")
            .expect("RSA encrypt");
        assert_eq!(ct.len(), 256);
        assert_eq!(
            token.decrypt(privk, m, &ct).expect("RSA decrypt"),
            b"a wrapped secret",
            "{m:?}"
        );
    }
    let digest = sha2::Sha256::digest(b"pss").to_vec();
    let pss = Mech::RsaPss {
        hash: Hash::Sha256,
        salt: 32,
    };
    let sig = token.sign(privk, &pss, &digest).expect("PSS sign");
    assert!(token.verify(pubk, &pss, &digest, &sig).expect("PSS verify"));
    assert!(
        !token
            .verify(pubk, &pss, &sha2::Sha256::digest(b"other"), &sig)
            .expect("PSS verify")
    );
    let n = token
        .get_attributes(pubk, &[AttrType::Modulus])
        .expect("CKA_MODULUS");
    assert!(
        matches!(n.as_slice(), [Attr::Modulus(m)] if m.len() == 256),
        "{n:?}"
    );
}

#[test]
fn the_software_token_makes_rsa_and_ec_key_pairs() {
    let token = SoftToken::new();
    key_pair_suite(
        &token,
        &[
            (4, 2048, None),
            (6, 0, Some(7)),
            (6, 0, Some(10)),
            (0x1A, 0, Some(7)),
        ],
    );
    rsa_suite(
        &token,
        &[
            Mech::RsaPkcs,
            Mech::RsaOaep(Hash::Sha256, Hash::Sha256, vec![]),
            Mech::RsaOaep(Hash::Sha1, Hash::Sha1, vec![]),
        ],
    );
}

#[test]
fn softhsm2_makes_rsa_and_ec_key_pairs() {
    with_softhsm("softhsm2_makes_rsa_and_ec_key_pairs", |f| {
        key_pair_suite(
            &f.token,
            &[(4, 2048, None), (6, 0, Some(7)), (6, 0, Some(10))],
        );
        // SoftHSM2 2.6 does OAEP with SHA-1 only.
        rsa_suite(
            &f.token,
            &[Mech::RsaPkcs, Mech::RsaOaep(Hash::Sha1, Hash::Sha1, vec![])],
        );
    });
}

#[test]
fn pkcs11_tool_lists_the_objects_the_gateway_made() {
    with_softhsm("pkcs11_tool_lists_the_objects_the_gateway_made", |f| {
        generate(
            &f.token,
            "listed-by-pkcs11-tool",
            3,
            256,
            usage::ENCRYPT,
            true,
        );
        let out = Command::new("pkcs11-tool")
            .arg("--module")
            .arg(&f.module)
            .args([
                "--token-label",
                LABEL,
                "--login",
                "--pin",
                PIN,
                "--list-objects",
            ])
            .env("SOFTHSM2_CONF", &f.conf)
            .output()
            .expect("pkcs11-tool runs (install opensc)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("label:      listed-by-pkcs11-tool"), "{text}");
        let id_hex: String = b"listed-by-pkcs11-tool"
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(text.contains(&format!("ID:         {id_hex}")), "{text}");
    });
}

#[test]
fn a_device_reset_behind_the_gateways_back_is_recovered_from() {
    with_softhsm(
        "a_device_reset_behind_the_gateways_back_is_recovered_from",
        |f| {
            let key = generate(&f.token, "survives-reset", 3, 256, usage::ENCRYPT, true);
            let iv = [1u8; 16];
            let cbc = Mech::AesCbcPad(iv);
            let before = f.token.encrypt(key, &cbc, b"abc").expect("encrypt");
            let mut open_stream = f.token.begin(StreamKind::Encrypt, key, &cbc).expect("init");
            let generation = f.token.generation();
            f.token.simulate_device_reset();
            // Sessions and login are gone; the next call re-initialises, re-opens and logs in
            // again, and handles from before name nothing any more.
            let found = f
                .token
                .find(&[Attr::Id(b"survives-reset".to_vec())])
                .expect("find after reset");
            assert_eq!(found.len(), 1);
            assert!(f.token.generation() > generation);
            assert!(f.token.recoveries() >= 1);
            assert_eq!(
                reason(f.token.encrypt(key, &cbc, b"abc")),
                ResultReason::ItemNotFound,
                "a handle from before the reset"
            );
            let after = f
                .token
                .encrypt(found[0], &cbc, b"abc")
                .expect("encrypt after reset");
            assert_eq!(before, after);
            // A stream begun before the reset ends with a clear error; dropping it closes no
            // session of the new generation (the pool keeps working).
            assert!(matches!(
                f.token.update(&mut open_stream, b"more"),
                Err(TokenError::Unavailable(_))
            ));
            drop(open_stream);
            let mut stream = f
                .token
                .begin(StreamKind::Encrypt, found[0], &cbc)
                .expect("a new stream");
            let mut out = f.token.update(&mut stream, b"abc").expect("update");
            out.extend(f.token.finish(stream, None).expect("final"));
            assert_eq!(out, before);
            assert_eq!(
                f.token.encrypt(found[0], &cbc, b"abc").expect("encrypt"),
                before
            );
        },
    );
}

/// Session objects are made on one long-lived "anchor" session. The login ended behind the
/// gateway's back (C_Logout on another session of the process, which logs out every session):
/// the next session object made re-initialises the library, gets a new anchor, logged in, and
/// succeeds, as pooled calls recover from a lost session.
#[test]
fn a_lost_anchor_session_is_replaced_when_the_next_session_object_is_made() {
    with_softhsm(
        "a_lost_anchor_session_is_replaced_when_the_next_session_object_is_made",
        |f| {
            let session_key = || {
                vec![
                    Attr::Class(Class::SecretKey),
                    Attr::KeyType(KeyType::Aes),
                    Attr::Token(false),
                    Attr::Private(true),
                    Attr::Value(vec![6u8; 32]),
                    Attr::Encrypt(true),
                    Attr::Decrypt(true),
                ]
            };
            let cbc = Mech::AesCbcPad([4; 16]);
            let first = f
                .token
                .create_object(&session_key())
                .expect("on the anchor");
            let before = f.token.encrypt(first, &cbc, b"anchor").expect("C_Encrypt");
            let generation = f.token.generation();
            let elsewhere = f
                .token
                .context()
                .open_ro_session(f.token.slot())
                .expect("C_OpenSession");
            elsewhere.logout().expect("C_Logout");
            // Closed now: its handle number may be given again after the re-initialisation.
            drop(elsewhere);
            let again = f
                .token
                .create_object(&session_key())
                .expect("made after the anchor was lost");
            assert!(f.token.generation() > generation, "re-initialised");
            assert_eq!(
                f.token.encrypt(again, &cbc, b"anchor").expect("C_Encrypt"),
                before
            );
        },
    );
}

#[test]
fn resets_under_concurrent_calls_never_hang_and_never_use_another_key() {
    with_softhsm(
        "resets_under_concurrent_calls_never_hang_and_never_use_another_key",
        |f| {
            let cbc = Mech::AesCbcPad([2u8; 16]);
            // Two keys: if a handle ever named the other one after a reset, the ciphertext
            // would be the other key's.
            let ids = [b"reset-key-a".to_vec(), b"reset-key-b".to_vec()];
            let mut expected = Vec::new();
            for id in &ids {
                let name = std::str::from_utf8(id).expect("utf-8");
                let k = generate(&f.token, name, 3, 256, usage::ENCRYPT, true);
                expected.push(f.token.encrypt(k, &cbc, b"which key?").expect("encrypt"));
            }
            let done = std::sync::atomic::AtomicBool::new(false);
            let (ok, stale) = std::thread::scope(|s| {
                let workers: Vec<_> = (0..4)
                    .map(|n| {
                        let (token, ids, expected, done, cbc) =
                            (&f.token, &ids, &expected, &done, &cbc);
                        s.spawn(move || {
                            let (mut ok, mut stale) = (0u32, 0u32);
                            let which = n % 2;
                            let mut handle = None;
                            // An abandoned stream per round, dropped whenever it falls out.
                            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                                let h = match handle {
                                    Some(h) => h,
                                    None => match token.find(&[Attr::Id(ids[which].clone())]) {
                                        Ok(found) if found.len() == 1 => found[0],
                                        _ => continue,
                                    },
                                };
                                let _abandoned = token.begin(StreamKind::Encrypt, h, cbc);
                                match token.encrypt(h, cbc, b"which key?") {
                                    Ok(ct) => {
                                        assert_eq!(ct, expected[which], "another key's result");
                                        handle = Some(h);
                                        ok += 1;
                                    }
                                    Err(_) => {
                                        handle = None;
                                        stale += 1;
                                    }
                                }
                            }
                            (ok, stale)
                        })
                    })
                    .collect();
                for _ in 0..5 {
                    std::thread::sleep(std::time::Duration::from_millis(60));
                    f.token.simulate_device_reset();
                }
                std::thread::sleep(std::time::Duration::from_millis(60));
                done.store(true, std::sync::atomic::Ordering::Relaxed);
                workers
                    .into_iter()
                    .map(|w| w.join().expect("a worker panicked"))
                    .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
            });
            eprintln!("concurrent resets: {ok} calls served, {stale} failed across a reset");
            assert!(
                ok > 0 && f.token.recoveries() >= 1,
                "ok {ok}, stale {stale}"
            );
            // Afterwards the token serves as before.
            let found = f.token.find(&[Attr::Id(ids[0].clone())]).expect("find");
            assert_eq!(
                f.token
                    .encrypt(found[0], &cbc, b"which key?")
                    .expect("encrypt"),
                expected[0]
            );
        },
    );
}

#[test]
fn a_wrong_gcm_tag_on_softhsm2_is_a_cryptographic_failure_not_an_outage() {
    with_softhsm(
        "a_wrong_gcm_tag_on_softhsm2_is_a_cryptographic_failure_not_an_outage",
        |f| {
            let key = generate(
                &f.token,
                "gcm",
                3,
                256,
                usage::ENCRYPT | usage::DECRYPT,
                true,
            );
            let gcm = Mech::AesGcm {
                iv: vec![3; 12],
                aad: vec![],
                tag_bits: 128,
            };
            let mut sealed = f.token.encrypt(key, &gcm, b"tagged").expect("encrypt");
            let last = sealed.len() - 1;
            sealed[last] ^= 1;
            let generation = f.token.generation();
            for _ in 0..5 {
                assert!(matches!(
                    f.token.decrypt(key, &gcm, &sealed),
                    Err(TokenError::Call { .. })
                ));
            }
            // The token still answers, so nothing was re-initialised and the handle still works.
            assert_eq!(f.token.generation(), generation);
            assert_eq!(f.token.recoveries(), 0);
            sealed[last] ^= 1;
            assert_eq!(
                f.token.decrypt(key, &gcm, &sealed).expect("decrypt"),
                b"tagged"
            );
        },
    );
}

#[test]
fn the_software_token_registers_objects() {
    let token = SoftToken::new();
    token.create_object(&kek_object(&[0u8; 32])).expect("kek");
    assert_eq!(register_suite(&token).len(), 56);
}

#[test]
fn softhsm2_registers_objects_the_same_way_and_unwraps_private_keys_inside() {
    with_softhsm(
        "softhsm2_registers_objects_the_same_way_and_unwraps_private_keys_inside",
        |f| {
            let kek_bytes = [0x6Bu8; 32];
            f.token.create_object(&kek_object(&kek_bytes)).expect("kek");
            let hsm_ct = register_suite(&f.token);
            // The same registered key value encrypts the same on the software token.
            let soft = SoftToken::new();
            soft.create_object(&kek_object(&[0u8; 32])).expect("kek");
            assert_eq!(register_suite(&soft), hsm_ct);
            // A private key comes in wrapped under the KEK and is unwrapped inside the token.
            let kek = vendor::find_kek(&f.token, None).expect("KEK");
            let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256");
            let id = Identity {
                uid: "reg-ec",
                name: None,
                extractable: false,
            };
            let der = pair.serialize_der();
            let private = import::private_key_pkcs8(
                &f.token,
                kek,
                &kek_bytes,
                &der,
                KeyType::Ec,
                usage::SIGN,
                &id,
            )
            .expect("C_UnwrapKey of a PKCS#8 private key");
            let mut point = vec![0x04, 0x41];
            point.extend_from_slice(pair.public_key_raw());
            let public = f
                .token
                .create_object(&[
                    Attr::Class(Class::PublicKey),
                    Attr::KeyType(KeyType::Ec),
                    Attr::Token(false),
                    Attr::EcParams(template::ec_params(7).expect("P-256")),
                    Attr::EcPoint(point),
                    Attr::Verify(true),
                ])
                .expect("public key");
            let digest = sha2::Sha256::digest(b"registered and signed").to_vec();
            let sig = f
                .token
                .sign(private, &Mech::Ecdsa, &digest)
                .expect("sign with the imported key");
            assert!(
                f.token
                    .verify(public, &Mech::Ecdsa, &digest, &sig)
                    .expect("verify")
            );
        },
    );
}

/// `sessionKeyCopies`: an HSM key is used through a session copy made inside the token, at
/// most that many at a time; the copy goes when the key is forgotten, the token object stays.
#[test]
fn softhsm2_keys_are_used_through_bounded_session_copies_that_go_with_the_key() {
    use ksg::ops::vault::{HsmOptions, Vault};
    use ksg::store::{Attributes, StoredObject, TokenRef};
    use std::sync::Arc;
    with_softhsm_owned(
        "softhsm2_keys_are_used_through_bounded_session_copies_that_go_with_the_key",
        |f| {
            let token: Arc<dyn Token> = Arc::new(f.token);
            let vault = Vault::new(token.clone(), false).with_hsm(HsmOptions {
                vendor: Vendor::Generic,
                kek: None,
                kek_handle: None,
                digest_key: true,
                session_key_copies: 1,
            });
            let mask = usage::ENCRYPT | usage::DECRYPT;
            let keys: Vec<StoredObject> = ["copy-a", "copy-b"]
                .into_iter()
                .map(|id| {
                    generate(&*token, id, 3, 256, mask, false);
                    StoredObject {
                        uid: id.into(),
                        object_type: 2,
                        state: 2,
                        owner: None,
                        hsm_name: "test".into(),
                        attributes: Attributes::default(),
                        token_ref: Some(Box::new(TokenRef {
                            id: id.as_bytes().to_vec(),
                            class: Class::SecretKey.value(),
                            label: id.into(),
                        })),
                        value: None,
                    }
                })
                .collect();
            let on_token = |id: &str, token_object: bool| {
                token
                    .find(&[Attr::Id(id.as_bytes().to_vec()), Attr::Token(token_object)])
                    .expect("C_FindObjects")
            };
            let a = vault.handle(&keys[0]).expect("a handle");
            assert_eq!(on_token("copy-a", false), vec![a], "a session copy is used");
            assert_eq!(vault.handle(&keys[0]).expect("again"), a, "and kept");
            let token_a = on_token("copy-a", true)[0];
            let cbc = Mech::AesCbcPad([3; 16]);
            let ct = token
                .encrypt(a, &cbc, b"through the copy")
                .expect("C_Encrypt");
            assert_eq!(
                token.decrypt(token_a, &cbc, &ct).expect("C_Decrypt"),
                b"through the copy",
                "the copy is the same key"
            );
            // Closing a session destroys the session objects it made: an abandoned stream
            // closes the pooled session it held, and the copy must outlive it.
            for _ in 0..3 {
                drop(
                    token
                        .begin(StreamKind::Encrypt, token_a, &cbc)
                        .expect("a stream"),
                );
            }
            assert_eq!(
                vault.handle(&keys[0]).expect("still cached"),
                a,
                "the copy is still the one in use"
            );
            token
                .encrypt(a, &cbc, b"after the streams")
                .expect("the copy outlives the sessions streams closed");
            // One copy at most: the second key serves as it is.
            let b = vault.handle(&keys[1]).expect("b handle");
            assert_eq!(on_token("copy-b", true), vec![b]);
            assert!(on_token("copy-b", false).is_empty());
            // Forgetting a key destroys its copy only; the place is free again.
            vault.forget("copy-a");
            assert!(on_token("copy-a", false).is_empty());
            assert_eq!(on_token("copy-a", true), vec![token_a]);
            vault.forget("copy-b");
            assert_eq!(
                on_token("copy-b", true),
                vec![b],
                "a token object is never destroyed"
            );
            let b2 = vault.handle(&keys[1]).expect("b again");
            assert_eq!(on_token("copy-b", false), vec![b2]);
        },
    );
}
