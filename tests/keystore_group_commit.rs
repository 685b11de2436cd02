//! Group commit: many writers at once share syncs, every one of them is answered (none waits
//! for ever for a leader that already left), and every acknowledged change is on disk when the
//! store opens again.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::gateway::TempDir;
use common::keystore::named_key;
use ksg::store::key;
use ksg::store::{Change, Criterion, Key, Store};

const WRITERS: usize = 16;
const COMMITS_EACH: usize = 150;

/// Each writer creates a key, then changes its state, over and over; returns the Unique
/// Identifiers each writer was given.
fn write_concurrently(store: &Store) -> Vec<Vec<String>> {
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                scope.spawn(move || {
                    let mut uids = Vec::new();
                    for i in 0..COMMITS_EACH {
                        let r = store
                            .commit(vec![Change::Create(named_key(&format!("w{w}-k{i}")))])
                            .expect("create");
                        let uid = r[0].uid.clone().expect("uid");
                        if i % 2 == 0 {
                            store
                                .commit(vec![Change::State {
                                    uid: uid.clone(),
                                    state: 2,
                                }])
                                .expect("state");
                        }
                        uids.push(uid);
                    }
                    uids
                })
            })
            .collect();
        writers
            .into_iter()
            .map(|h| h.join().expect("writer"))
            .collect()
    })
}

#[test]
fn concurrent_writers_are_all_answered_and_every_acknowledged_change_survives_a_reopen() {
    let d = TempDir::new("ks-group-commit");
    let k = key::load(None, &d.0.join("ksgbaseKey.txt")).expect("key").0;
    let (done_tx, done_rx) = mpsc::channel();
    let dir = d.0.clone();
    let k2 = k.clone();
    std::thread::spawn(move || {
        let (store, _) = Store::open(&dir, &k2, "test", false).expect("open");
        let _ = done_tx.send(write_concurrently(&store));
    });
    // A committer that is never woken would hang here rather than fail: bound the wait.
    let uids = done_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("every writer answered within 120 s (a parked committer was never woken?)");

    let (store, report) = Store::open(&d.0, &k, "test", false).expect("reopen");
    let expected_records = WRITERS * (COMMITS_EACH + COMMITS_EACH.div_ceil(2));
    assert_eq!(report.records as usize, expected_records);
    assert_eq!(report.objects, WRITERS * COMMITS_EACH);
    assert_eq!(report.torn_bytes, 0);
    for (w, mine) in uids.iter().enumerate() {
        for (i, uid) in mine.iter().enumerate() {
            let want_state = if i % 2 == 0 { 2 } else { 1 };
            assert_eq!(
                store.with_object(uid, |o| o.state),
                Some(want_state),
                "writer {w}, commit {i}"
            );
            let found = store.find(&[Criterion::Equals(
                "Name".into(),
                Key::Text(format!("w{w}-k{i}").into()),
            )]);
            assert_eq!(found, vec![uid.clone()], "writer {w}, commit {i}");
        }
    }
    let all: std::collections::HashSet<&String> = uids.iter().flatten().collect();
    assert_eq!(all.len(), WRITERS * COMMITS_EACH, "identifiers are unique");
}
