//! The keystore refuses every kind of damage to its chained, sealed log — a flipped byte, a
//! truncated middle, a removed record, reordered records, the wrong store key — cuts a torn
//! tail silently, opens the good prefix read-only under the recover flag, and re-seals with
//! compaction. Also: multi-instance attributes, atomic batches, the index, the lock.

mod common;

use std::path::{Path, PathBuf};

use common::gateway::TempDir;
use common::keystore::named_key;
use ksg::store::key::{self, Key256};
use ksg::store::{self, Change, Criterion, Key, SecretBytes, Store, StoreError, StoredObject};
use ksg::ttlv::{Item, Tag, Value};

const FILE_HEADER: usize = 128;

fn key_for(dir: &Path) -> Key256 {
    key::load(None, &dir.join("ksgbaseKey.txt")).expect("key").0
}

/// A store with 6 objects made by 6 commits, then 2 attribute changes: 8 records.
fn populated(dir: &Path) -> Vec<String> {
    let k = key_for(dir);
    let (s, _) = Store::open(dir, &k, "test", false).expect("open");
    let mut uids = Vec::new();
    for i in 0..6 {
        let r = s
            .commit(vec![Change::Create(named_key(&format!("key-{i}")))])
            .expect("create");
        uids.push(r[0].uid.clone().expect("uid"));
    }
    let value = Item::new(Tag::ATTRIBUTE_VALUE, Value::TextString("blue".into()));
    s.commit(vec![Change::AddAttribute {
        uid: uids[0].clone(),
        name: "x-colour".into(),
        index: None,
        value,
    }])
    .expect("add");
    s.commit(vec![Change::State {
        uid: uids[1].clone(),
        state: 2,
    }])
    .expect("state");
    uids
}

fn file(dir: &Path) -> PathBuf {
    dir.join(store::FILE_NAME)
}

/// Byte offsets of each record.
fn records(dir: &Path) -> Vec<(usize, usize)> {
    let bytes = std::fs::read(file(dir)).expect("read");
    let mut out = Vec::new();
    let mut at = FILE_HEADER;
    while at + 24 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        if len == 0 {
            // The zeros the writer makes ahead of its records.
            break;
        }
        let total = 24 + len + 32;
        out.push((at, total));
        at += total;
    }
    out
}

/// Where the last record starts and ends, and the whole file (room ahead included).
fn last_record(dir: &Path) -> (usize, usize, Vec<u8>) {
    let (last, total) = *records(dir).last().expect("records");
    (last, last + total, std::fs::read(file(dir)).expect("read"))
}

/// The keystore file's length, room included.
fn file_len(dir: &Path) -> usize {
    std::fs::metadata(file(dir)).expect("meta").len() as usize
}

fn reopen(dir: &Path, recover: bool) -> Result<(Store, store::OpenReport), StoreError> {
    Store::open(dir, &key_for(dir), "test", recover)
}

fn damaged(dir: &Path) -> store::Damage {
    match reopen(dir, false) {
        Err(StoreError::Damaged(d)) => d,
        Err(other) => panic!("expected damage, got {other}"),
        Ok(_) => panic!("a damaged keystore opened"),
    }
}

#[test]
fn a_clean_store_reopens_with_everything() {
    let d = TempDir::new("ks-clean");
    let uids = populated(&d.0);
    let (s, report) = reopen(&d.0, false).expect("reopen");
    assert_eq!(
        (report.objects, report.records, report.torn_bytes),
        (6, 8, 0)
    );
    assert_eq!(s.with_object(&uids[1], |o| o.state), Some(2));
    assert_eq!(
        s.with_object(&uids[0], |o| o.attribute("x-colour").count()),
        Some(1)
    );
    assert_eq!(
        s.with_object(&uids[0], |o| o.value.as_ref().map(SecretBytes::len)),
        Some(Some(32))
    );
    assert_eq!(records(&d.0).len(), 8);
}

#[test]
fn a_flipped_byte_anywhere_is_detected_with_its_position() {
    let d = TempDir::new("ks-flip");
    populated(&d.0);
    let original = std::fs::read(file(&d.0)).expect("read");
    let recs = records(&d.0);
    let (at, total) = recs[3];
    for offset in [at, at + 5, at + 20, at + 40, at + total - 1] {
        let mut bytes = original.clone();
        bytes[offset] ^= 0x01;
        std::fs::write(file(&d.0), &bytes).expect("write");
        let dmg = damaged(&d.0);
        assert_eq!(dmg.offset as usize, at, "flip at {offset}");
        assert_eq!(dmg.seq, 4);
    }
    // A flipped byte in the file header is the wrong key or not a keystore.
    let mut bytes = original.clone();
    bytes[50] ^= 1;
    std::fs::write(file(&d.0), &bytes).expect("write");
    assert!(matches!(reopen(&d.0, false), Err(StoreError::WrongKey(_))));
}

#[test]
fn a_truncated_middle_a_removed_record_and_reordered_records_are_detected() {
    let d = TempDir::new("ks-cut");
    populated(&d.0);
    let original = std::fs::read(file(&d.0)).expect("read");
    let recs = records(&d.0);
    // Ten bytes cut out of record 3.
    let (at, _) = recs[2];
    let mut bytes = original.clone();
    bytes.drain(at + 30..at + 40);
    std::fs::write(file(&d.0), &bytes).expect("write");
    assert_eq!(damaged(&d.0).offset as usize, at);
    // Record 4 removed whole.
    let (at4, len4) = recs[3];
    let mut bytes = original.clone();
    bytes.drain(at4..at4 + len4);
    std::fs::write(file(&d.0), &bytes).expect("write");
    assert_eq!(damaged(&d.0).offset as usize, at4);
    // Records 5 and 6 swapped.
    let (at5, len5) = recs[4];
    let (at6, len6) = recs[5];
    let mut bytes = original[..at5].to_vec();
    bytes.extend_from_slice(&original[at6..at6 + len6]);
    bytes.extend_from_slice(&original[at5..at5 + len5]);
    bytes.extend_from_slice(&original[at6 + len6..]);
    std::fs::write(file(&d.0), &bytes).expect("write");
    assert_eq!(damaged(&d.0).offset as usize, at5);
    // A record duplicated (replayed).
    let mut bytes = original.clone();
    bytes.splice(at5..at5, original[at5..at5 + len5].iter().copied());
    std::fs::write(file(&d.0), &bytes).expect("write");
    assert_eq!(damaged(&d.0).offset as usize, at5 + len5);
}

#[test]
fn a_torn_tail_is_cut_and_nothing_before_it_is_lost() {
    let d = TempDir::new("ks-torn");
    let uids = populated(&d.0);
    let (last, end, bytes) = last_record(&d.0);
    let original = bytes[..end].to_vec();
    // From the whole length field on (its first bytes are zeros, which read as room ahead).
    for cut in [last + 4, last + 30, original.len() - 1] {
        std::fs::write(file(&d.0), &original[..cut]).expect("write");
        let (s, report) = reopen(&d.0, false).expect("a torn tail opens");
        assert_eq!(report.torn_bytes as usize, cut - last);
        assert_eq!(report.records, 7);
        assert_eq!(
            s.with_object(&uids[1], |o| o.state),
            Some(1),
            "the torn state change is gone"
        );
        drop(s);
        assert_eq!(file_len(&d.0), last, "cut on open");
    }
    // Half a record with zeros after it (a write cut short in the room made ahead) is torn:
    // everything after the last whole record goes.
    let mut bytes = original[..last + 30].to_vec();
    bytes.extend_from_slice(&[0u8; 300]);
    std::fs::write(file(&d.0), &bytes).expect("write");
    let (s, report) = reopen(&d.0, false).expect("a torn tail in zeros opens");
    assert_eq!((report.torn_bytes, report.records), (330, 7));
    drop(s);
    assert_eq!(file_len(&d.0), last, "cut on open");
    // Appending after the cut continues the chain.
    let (s, _) = reopen(&d.0, false).expect("reopen");
    s.commit(vec![Change::Create(named_key("after"))])
        .expect("append");
    drop(s);
    assert_eq!(reopen(&d.0, false).expect("reopen").1.records, 8);
}

#[test]
fn an_unfinished_batch_at_the_end_is_dropped_whole() {
    let d = TempDir::new("ks-batch");
    let uids = populated(&d.0);
    let k = key_for(&d.0);
    {
        let (s, _) = Store::open(&d.0, &k, "test", false).expect("open");
        let v = |t: &str| Item::new(Tag::ATTRIBUTE_VALUE, Value::TextString(t.into()));
        s.commit(vec![
            Change::AddAttribute {
                uid: uids[2].clone(),
                name: "x-a".into(),
                index: None,
                value: v("1"),
            },
            Change::AddAttribute {
                uid: uids[2].clone(),
                name: "x-b".into(),
                index: None,
                value: v("2"),
            },
        ])
        .expect("batch");
    }
    let bytes = std::fs::read(file(&d.0)).expect("read");
    let (last, _) = *records(&d.0).last().expect("records");
    std::fs::write(file(&d.0), &bytes[..last + 10]).expect("tear the second record");
    let (s, report) = reopen(&d.0, false).expect("opens");
    assert_eq!(report.records, 8);
    assert_eq!(
        s.with_object(&uids[2], |o| o.attribute("x-a").count()),
        Some(0),
        "half a batch is not applied"
    );
}

/// Bytes the keystore reads at a time (`store::READ_CHUNK`): records straddle its boundaries.
const READ_CHUNK: usize = 1 << 20;

#[test]
fn records_across_read_chunks_and_larger_than_a_chunk_are_read_and_checked() {
    let d = TempDir::new("ks-chunks");
    let k = key_for(&d.0);
    let (s, _) = Store::open(&d.0, &k, "test", false).expect("open");
    let batch =
        |from: usize| (from..from + 500).map(|i| Change::Create(named_key(&format!("k{i}"))));
    s.commit(batch(0).collect()).expect("first batch");
    // A value three chunks long between two batches of small records.
    let mut big = named_key("big");
    big.value = Some(SecretBytes::new(vec![0x42; 3 * READ_CHUNK]));
    let big_uid = s.commit(vec![Change::Create(big)]).expect("big")[0]
        .uid
        .clone()
        .expect("uid");
    for from in (500..4000).step_by(500) {
        s.commit(batch(from).collect()).expect("batch");
    }
    drop(s);
    let (s, report) = reopen(&d.0, false).expect("reopens");
    assert_eq!((report.objects, report.torn_bytes), (4001, 0));
    assert_eq!(
        s.with_object(&big_uid, |o| o.value.as_ref().map(SecretBytes::len)),
        Some(Some(3 * READ_CHUNK))
    );
    assert_eq!(s.find(&[name_is("k3999")]).len(), 1);
    drop(s);
    let original = std::fs::read(file(&d.0)).expect("read");
    let recs = records(&d.0);
    // Which records straddle the first chunk's end and the big one's: damage in each is found
    // at its start.
    let straddling = |boundary: usize| {
        *recs
            .iter()
            .find(|(at, total)| *at < boundary && boundary < at + total)
            .expect("a record straddles")
    };
    let first_end = straddling(FILE_HEADER + READ_CHUNK);
    let (big_at, big_total) = *recs.iter().max_by_key(|(_, t)| *t).expect("records");
    let after_big = straddling(big_at + big_total + READ_CHUNK / 2);
    for (at, total) in [first_end, (big_at, big_total), after_big] {
        for offset in [at + 2, at + total / 2, at + total - 1] {
            let mut bytes = original.clone();
            bytes[offset] ^= 0x10;
            std::fs::write(file(&d.0), &bytes).expect("write");
            assert_eq!(damaged(&d.0).offset as usize, at, "flip at {offset}");
        }
    }
    // A length that still fits in the file is damage at that record, not a torn tail.
    let (at, _) = first_end;
    let mut bytes = original.clone();
    bytes[at + 3] ^= 0x08;
    std::fs::write(file(&d.0), &bytes).expect("write");
    assert_eq!(damaged(&d.0).offset as usize, at);
}

fn name_is(text: &str) -> Criterion {
    Criterion::Equals("Name".into(), Key::Text(text.into()))
}

#[test]
fn the_writer_makes_room_ahead_in_zeros_which_a_reopen_keeps_and_writes_over() {
    let d = TempDir::new("ks-room");
    populated(&d.0);
    let (_, end, bytes) = last_record(&d.0);
    assert!(bytes.len() > end, "room made ahead of the records");
    assert!(bytes[end..].iter().all(|&b| b == 0), "the room is zeros");
    let (s, report) = reopen(&d.0, false).expect("reopen");
    assert_eq!((report.torn_bytes, report.records), (0, 8));
    assert_eq!(file_len(&d.0), bytes.len(), "the room is kept");
    s.commit(vec![Change::Create(named_key("in the room"))])
        .expect("commit");
    drop(s);
    let recs = records(&d.0);
    assert_eq!(recs.len(), 9);
    assert_eq!(
        recs[8].0, end,
        "written over the room, after the last record"
    );
    assert_eq!(reopen(&d.0, false).expect("reopen").1.records, 9);
}

#[test]
fn in_the_room_an_unfinished_last_record_is_torn_and_a_spoiled_one_is_damage() {
    let d = TempDir::new("ks-room-damage");
    populated(&d.0);
    let recs = records(&d.0);
    let original = std::fs::read(file(&d.0)).expect("read");
    let (last, total) = recs[7];
    assert!(original.len() > last + total, "room after the records");
    // Spoiled, whole: damage, whether the last record or the one before.
    for (at, _) in [recs[7], recs[6]] {
        let mut bytes = original.clone();
        bytes[at + 40] ^= 0x01;
        std::fs::write(file(&d.0), &bytes).expect("write");
        assert_eq!(damaged(&d.0).offset as usize, at);
    }
    // Its end never written (zeros up to the room): torn, cut with what follows.
    let mut bytes = original.clone();
    bytes[last + total - 40..last + total].fill(0);
    std::fs::write(file(&d.0), &bytes).expect("write");
    let (s, report) = reopen(&d.0, false).expect("an unfinished write opens");
    assert_eq!(
        (report.records, report.torn_bytes as usize),
        (7, original.len() - last)
    );
    drop(s);
    // The same record ending in zeros with data after it is damage.
    bytes.truncate(original.len());
    bytes[last + total - 40..last + total].fill(0);
    let end = bytes.len();
    bytes[end - 1] = 1;
    std::fs::write(file(&d.0), &bytes).expect("write");
    assert_eq!(damaged(&d.0).offset as usize, last);
}

#[test]
fn the_log_ends_at_a_header_of_zeros_whatever_a_live_copy_caught_after_it() {
    let d = TempDir::new("ks-live-copy");
    populated(&d.0);
    let (_, end, original) = last_record(&d.0);
    // A copy that read the room before a commit landed in it, and the rest after: zeros where
    // the next record begins, then part of it.
    let mut bytes = original.clone();
    bytes[end + 600..end + 700].fill(0x5a);
    std::fs::write(file(&d.0), &bytes).expect("write");
    let (s, report) = reopen(&d.0, false).expect("a live copy opens");
    assert_eq!(report.records, 8);
    assert_eq!(report.torn_bytes as usize, original.len() - end);
    drop(s);
    assert_eq!(file_len(&d.0), end, "what followed the zeros is cut");
    assert_eq!(reopen(&d.0, false).expect("reopen").1.records, 8);
}

#[test]
fn zero_tails_of_any_length_are_room_not_torn_writes() {
    let d = TempDir::new("ks-zero-tails");
    populated(&d.0);
    let (_, end, bytes) = last_record(&d.0);
    let original = bytes[..end].to_vec();
    for zeros in [0, 10, 24, 25, 300] {
        let mut bytes = original.clone();
        bytes.extend_from_slice(&vec![0u8; zeros]);
        std::fs::write(file(&d.0), &bytes).expect("write");
        let (s, report) = reopen(&d.0, false).expect("a zero tail opens");
        assert_eq!((report.torn_bytes, report.records), (0, 8), "{zeros} zeros");
        s.commit(vec![Change::Create(named_key("next"))])
            .expect("append");
        drop(s);
        assert_eq!(records(&d.0).len(), 9, "{zeros} zeros");
    }
}

#[test]
fn the_wrong_store_key_is_a_clear_error() {
    let d = TempDir::new("ks-key");
    populated(&d.0);
    let wrong = Key256::random().expect("key");
    let err = Store::open(&d.0, &wrong, "test", true).expect_err("refused");
    assert!(matches!(err, StoreError::WrongKey(_)));
    assert!(err.to_string().contains("wrong store key"), "{err}");
}

#[test]
fn the_recover_flag_opens_the_good_prefix_read_only_and_compaction_reseals() {
    let d = TempDir::new("ks-recover");
    let uids = populated(&d.0);
    let recs = records(&d.0);
    let mut bytes = std::fs::read(file(&d.0)).expect("read");
    let (at, _) = recs[4];
    bytes[at + 50] ^= 0x80;
    std::fs::write(file(&d.0), &bytes).expect("write");
    {
        let (s, report) = reopen(&d.0, true).expect("recover opens");
        let dmg = report.damage.expect("damage reported");
        assert_eq!(dmg.offset as usize, at);
        assert_eq!(dmg.dropped_bytes as usize, bytes.len() - at);
        assert_eq!(report.objects, 4, "objects before the damage");
        assert!(s.with_object(&uids[3], |_| ()).is_some());
        assert!(s.with_object(&uids[4], |_| ()).is_none());
        let err = s
            .commit(vec![Change::Create(named_key("no"))])
            .expect_err("read-only");
        assert!(
            err.to_string().contains("ksg keystore compact --recover"),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read(file(&d.0)).expect("read"),
        bytes,
        "recovery never changes the damaged file"
    );
    let k = key_for(&d.0);
    assert!(matches!(
        store::compact(&d.0, &k, false, 1),
        Err(StoreError::Damaged(_))
    ));
    let report = store::compact(&d.0, &k, true, 1).expect("re-seal");
    assert_eq!(report.objects, 4);
    let copy = report.damaged_copy.expect("the damaged original is kept");
    assert_eq!(std::fs::read(&copy).expect("copy"), bytes);
    let (s, report) = reopen(&d.0, false).expect("sealed again");
    assert_eq!((report.objects, report.damage.is_none()), (4, true));
    // Identifiers are never reused, even those of the dropped objects.
    let r = s
        .commit(vec![Change::Create(named_key("new"))])
        .expect("writable");
    let n: u64 = r[0]
        .uid
        .as_deref()
        .and_then(|u| u.parse().ok())
        .expect("numeric uid");
    assert!(n > 4, "uid {n} reused");
}

#[test]
fn compaction_keeps_every_object_and_attribute_and_shrinks_the_log() {
    let d = TempDir::new("ks-compact");
    let uids = populated(&d.0);
    let k = key_for(&d.0);
    {
        let (s, _) = Store::open(&d.0, &k, "test", false).expect("open");
        for i in 0..50 {
            let v = Item::new(Tag::ATTRIBUTE_VALUE, Value::Integer(i));
            s.commit(vec![Change::ModifyAttribute {
                uid: uids[5].clone(),
                name: "Cryptographic Length".into(),
                index: 0,
                value: v,
            }])
            .expect("modify");
        }
        s.commit(vec![Change::Destroy {
            uid: uids[4].clone(),
            state: 6,
        }])
        .expect("destroy");
        // Enough objects that an order other than the identifiers' would show.
        let more = (0..30).map(|i| Change::Create(named_key(&format!("more-{i}"))));
        s.commit(more.collect()).expect("more");
        assert!(
            matches!(
                store::compact(&d.0, &k, false, 1),
                Err(StoreError::Locked(_))
            ),
            "needs the gateway stopped"
        );
    }
    let before: Vec<StoredObject> = {
        let (s, _) = reopen(&d.0, false).expect("open");
        let r = s.read();
        let mut v: Vec<StoredObject> = r.iter().cloned().collect();
        v.sort_by(|a, b| a.uid.cmp(&b.uid));
        v
    };
    let r = store::compact(&d.0, &k, false, 1).expect("compact");
    assert!(r.new_bytes < r.old_bytes, "{r:?}");
    let (s, report) = reopen(&d.0, false).expect("open");
    assert_eq!(report.records, 37, "one floor record and one per object");
    // Written in identifier order, as they were made (a store opens fastest that way).
    let numbers: Vec<u64> = s
        .read()
        .iter()
        .map(|o| o.uid.parse().expect("a numbered identifier"))
        .collect();
    assert!(numbers.is_sorted(), "{numbers:?}");
    let mut after: Vec<StoredObject> = s.read().iter().cloned().collect();
    after.sort_by(|a, b| a.uid.cmp(&b.uid));
    assert_eq!(after, before);
    assert_eq!(
        s.with_object(&uids[4], |o| (o.state, o.value.is_none())),
        Some((6, true)),
        "destroyed: no value"
    );
}

#[test]
fn attributes_have_many_instances_and_the_index_finds_them() {
    let d = TempDir::new("ks-index");
    let uids = populated(&d.0);
    let (s, _) = reopen(&d.0, false).expect("open");
    let group = |g: &str| Item::new(Tag::ATTRIBUTE_VALUE, Value::TextString(g.into()));
    let r = s
        .commit(vec![
            Change::AddAttribute {
                uid: uids[3].clone(),
                name: "Object Group".into(),
                index: None,
                value: group("a"),
            },
            Change::AddAttribute {
                uid: uids[3].clone(),
                name: "Object Group".into(),
                index: None,
                value: group("b"),
            },
            Change::AddAttribute {
                uid: uids[4].clone(),
                name: "Object Group".into(),
                index: None,
                value: group("b"),
            },
        ])
        .expect("add");
    assert_eq!(
        r.iter().map(|x| x.index).collect::<Vec<_>>(),
        vec![Some(0), Some(1), Some(0)]
    );
    let find = |c: Vec<Criterion>| s.find(&c);
    assert_eq!(
        find(vec![Criterion::Equals(
            "Name".into(),
            Key::Text("key-2".into())
        )]),
        vec![uids[2].clone()]
    );
    assert_eq!(
        find(vec![Criterion::Equals(
            "Object Group".into(),
            Key::Text("b".into())
        )])
        .len(),
        2
    );
    assert_eq!(
        find(vec![
            Criterion::Equals("Object Group".into(), Key::Text("b".into())),
            Criterion::Equals("Object Group".into(), Key::Text("a".into())),
        ]),
        vec![uids[3].clone()]
    );
    assert_eq!(
        find(vec![Criterion::Equals("State".into(), Key::Int(2))]),
        vec![uids[1].clone()]
    );
    assert_eq!(
        find(vec![Criterion::Range(
            "Cryptographic Length".into(),
            Key::Int(128),
            Key::Int(512)
        )])
        .len(),
        6
    );
    assert_eq!(
        find(vec![Criterion::Equals(
            "x-colour".into(),
            Key::Text("blue".into())
        )]),
        vec![uids[0].clone()]
    );
    // Delete one instance, then all of them.
    s.commit(vec![Change::DeleteAttribute {
        uid: uids[3].clone(),
        name: "Object Group".into(),
        index: Some(0),
    }])
    .expect("delete one");
    assert_eq!(
        find(vec![Criterion::Equals(
            "Object Group".into(),
            Key::Text("a".into())
        )]),
        Vec::<String>::new()
    );
    s.commit(vec![Change::DeleteAttribute {
        uid: uids[3].clone(),
        name: "Object Group".into(),
        index: None,
    }])
    .expect("delete all");
    assert_eq!(
        find(vec![Criterion::Equals(
            "Object Group".into(),
            Key::Text("b".into())
        )]),
        vec![uids[4].clone()]
    );
    // A batch with an invalid change changes nothing, in memory or on disk.
    let before = records(&d.0).len();
    let err = s
        .commit(vec![
            Change::State {
                uid: uids[0].clone(),
                state: 3,
            },
            Change::DeleteAttribute {
                uid: uids[0].clone(),
                name: "x-none".into(),
                index: None,
            },
        ])
        .expect_err("invalid");
    assert!(matches!(err, StoreError::Invalid(_)));
    assert_eq!(s.with_object(&uids[0], |o| o.state), Some(1));
    assert_eq!(records(&d.0).len(), before);
    assert!(matches!(
        Store::open(&d.0, &key_for(&d.0), "test", false),
        Err(StoreError::Locked(_))
    ));
}

#[test]
fn other_hsm_names_are_kept_apart_and_survive_compaction() {
    let d = TempDir::new("ks-hsm");
    populated(&d.0);
    let k = key_for(&d.0);
    {
        let (s, report) = Store::open(&d.0, &k, "other-hsm", false).expect("open");
        assert_eq!((report.objects, report.foreign), (0, 6));
        let mut o = named_key("theirs");
        o.hsm_name = "other-hsm".into();
        s.commit(vec![Change::Create(o)]).expect("create");
        assert_eq!(s.find(&[]).len(), 1);
    }
    store::compact(&d.0, &k, false, 1).expect("compact");
    let (_, report) = reopen(&d.0, false).expect("open");
    assert_eq!((report.objects, report.foreign), (6, 1));
}

#[test]
fn a_change_too_large_for_one_record_is_refused_and_harms_nothing() {
    let d = TempDir::new("ks-too-large");
    let uids = populated(&d.0);
    let (s, _) = reopen(&d.0, false).expect("reopen");
    let mut huge = named_key("huge");
    huge.value = Some(SecretBytes::new(vec![0x42; 64 << 20]));
    let err = s
        .commit(vec![
            Change::Create(named_key("fits")),
            Change::Create(huge),
        ])
        .expect_err("a record over the limit");
    assert!(err.to_string().contains("byte limit"), "{err}");
    // The whole batch was undone in memory and nothing was written: the store reopens as it was.
    assert_eq!(
        s.read().len(),
        6,
        "the first change of the batch was undone"
    );
    drop(s);
    let (s, report) = reopen(&d.0, false).expect("reopen after the refusal");
    assert_eq!((report.objects, report.records), (6, 8));
    assert!(s.with_object(&uids[0], |o| o.state).is_some());
    s.commit(vec![Change::Create(named_key("after"))])
        .expect("commits go on");
}
