//! SIGKILL under mixed load: clients create keys, add attributes and destroy keys over mutual
//! TLS while the gateway is killed with SIGKILL at a random moment, three times. After each
//! restart every acknowledged change is there (created keys exist, added attributes are set,
//! destroyed keys are destroyed), and at the end `ksg keystore verify` passes.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::gateway::{Gateway, Settings, TempDir, attribute, request, roundtrip, tls_connect};
use ksg::ttlv::tables::enums::Operation;
use ksg::ttlv::{Item, Tag, Value};

#[derive(Default, Debug)]
struct Acked {
    /// uid → the x-round attribute acknowledged on it, if any.
    created: HashMap<String, Option<String>>,
    destroyed: Vec<String>,
}

fn text(tag: Tag, s: &str) -> Item {
    Item::new(tag, Value::TextString(s.into()))
}

/// The payload of a successful one-item response; None on failure or a lost connection.
fn call(
    tls: &mut rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
    msg: &Item,
) -> Option<Item> {
    let bytes = ksg::ttlv::binary::to_vec(msg).ok()?;
    std::io::Write::write_all(tls, &bytes).ok()?;
    let response = common::gateway::read_ttlv(tls).ok()?;
    let item = response.child(Tag::BATCH_ITEM)?;
    (item.child(Tag::RESULT_STATUS)?.value == Value::Enumeration(0))
        .then(|| item.child(Tag::RESPONSE_PAYLOAD).cloned())
        .flatten()
}

fn uid_of(p: &Item) -> Option<String> {
    match &p.child(Tag::UNIQUE_IDENTIFIER)?.value {
        Value::TextString(s) => Some(s.clone()),
        _ => None,
    }
}

fn load(gw: &Gateway, acked: &Arc<Mutex<Acked>>, client: usize, round: usize) {
    let Ok(mut tls) = std::panic::catch_unwind(|| tls_connect(gw.addr, &gw.data())) else {
        return;
    };
    for n in 0.. {
        let create = request(
            4,
            Operation::Create.to_u32(),
            vec![
                Item::new(Tag::OBJECT_TYPE, Value::Enumeration(2)),
                Item::structure(
                    Tag::TEMPLATE_ATTRIBUTE,
                    vec![
                        attribute("Cryptographic Algorithm", Value::Enumeration(3)),
                        attribute("Cryptographic Length", Value::Integer(128)),
                    ],
                ),
            ],
        );
        let Some(uid) = call(&mut tls, &create).as_ref().and_then(uid_of) else {
            return;
        };
        acked
            .lock()
            .expect("lock")
            .created
            .insert(uid.clone(), None);
        let value = format!("r{round}-c{client}-n{n}");
        let add = request(
            4,
            Operation::AddAttribute.to_u32(),
            vec![
                text(Tag::UNIQUE_IDENTIFIER, &uid),
                attribute("x-round", Value::TextString(value.clone())),
            ],
        );
        if call(&mut tls, &add).is_none() {
            return;
        }
        acked
            .lock()
            .expect("lock")
            .created
            .insert(uid.clone(), Some(value));
        if n % 3 == 0 {
            let destroy = request(
                4,
                Operation::Destroy.to_u32(),
                vec![text(Tag::UNIQUE_IDENTIFIER, &uid)],
            );
            if call(&mut tls, &destroy).is_none() {
                return;
            }
            acked.lock().expect("lock").destroyed.push(uid);
        }
    }
}

#[test]
fn every_acknowledged_change_survives_sigkill_under_mixed_load() {
    let mut gw = Gateway::start(
        "sigkill-load",
        Settings {
            threads: 8,
            ..Settings::default()
        },
    );
    let confs = gw.dir.0.join("confs");
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(11, |t| t.as_nanos() as u64)
        | 1;
    for round in 0..3 {
        std::thread::scope(|s| {
            for client in 0..4 {
                let (gw, acked) = (&gw, &acked);
                s.spawn(move || load(gw, acked, client, round));
            }
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            std::thread::sleep(Duration::from_millis(300 + seed % 700));
            let killed = Command::new("kill")
                .args(["-KILL", &gw.child.id().to_string()])
                .status();
            assert!(killed.is_ok_and(|s| s.success()));
        });
        let _ = gw.child.wait();
        let dir = std::mem::replace(&mut gw.dir, TempDir(std::path::PathBuf::new()));
        gw = Gateway::spawn(&confs, dir);
        check(&gw, &acked.lock().expect("lock"));
    }
    let a = acked.lock().expect("lock");
    assert!(
        a.created.len() > 20,
        "the load made too few keys: {}",
        a.created.len()
    );
    eprintln!(
        "{} keys created, {} destroyed, all there after 3 SIGKILLs",
        a.created.len(),
        a.destroyed.len()
    );
    gw.terminate();
    assert_eq!(gw.wait_exit(Duration::from_secs(10)), Some(0));
    let verify = Command::new(env!("CARGO_BIN_EXE_ksg"))
        .args(["keystore", "verify", "--confs"])
        .arg(&confs)
        .arg("--data")
        .arg(gw.data())
        .output()
        .expect("verify");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

fn check(gw: &Gateway, acked: &Acked) {
    let mut tls = tls_connect(gw.addr, &gw.data());
    for (uid, x) in &acked.created {
        let p = roundtrip(
            &mut tls,
            &request(
                4,
                Operation::GetAttributes.to_u32(),
                vec![text(Tag::UNIQUE_IDENTIFIER, uid)],
            ),
        );
        let payload = p
            .child(Tag::BATCH_ITEM)
            .and_then(|i| i.child(Tag::RESPONSE_PAYLOAD))
            .unwrap_or_else(|| panic!("acknowledged key {uid} is gone: {p:?}"));
        let attr = |name: &str| {
            payload.children_with(Tag::ATTRIBUTE).find_map(|a| {
                (a.child(Tag::ATTRIBUTE_NAME)?.value == Value::TextString(name.into()))
                    .then(|| a.child(Tag::ATTRIBUTE_VALUE).map(|v| v.value.clone()))
                    .flatten()
            })
        };
        if let Some(v) = x {
            assert_eq!(attr("x-round"), Some(Value::TextString(v.clone())), "{uid}");
        }
        // An acknowledged Destroy holds; one in flight at the kill may or may not have landed.
        if acked.destroyed.contains(uid) {
            let state = attr("State");
            assert_eq!(
                state,
                Some(Value::Enumeration(
                    ksg::ttlv::tables::enums::State::Destroyed.to_u32()
                )),
                "{uid}: its Destroy was acknowledged"
            );
        }
    }
}
