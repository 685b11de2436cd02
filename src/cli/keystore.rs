//! `ksg keystore verify|dump|compact|bench`: audit and maintenance of the keystore.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::args::Args;
use crate::config::{Config, gate_flags};
use crate::store::{self, Change, Criterion, Key, Store, StoredAttribute, StoredObject, key};
use crate::ttlv::tables;
use crate::ttlv::{Item, Tag, Value};

const HELP: &str = "\
Usage: ksg keystore <verify|dump|compact|bench> [options]

  verify   [--confs DIR] [--data DIR]
           check the whole chain of <data>/keystore.ksg and print counts; exit 1 on damage
  dump     [--confs DIR] [--data DIR]
           print every object's metadata for audit (never key material or secrets)
  compact  [--confs DIR] [--data DIR] [--recover]
           rewrite the log as one record per object under a fresh salt and swap it in
           atomically; the gateway must be stopped. With --recover, a keystore whose
           signature check fails is re-sealed from the records before the damage (the damaged
           file is kept as keystore.ksg.damaged-<time>)
  bench    --data DIR [--writers N] [--objects N] [--batch K] [--seconds S] [--ack-file F]
           [--open-only] [--locates N]
           write objects with N concurrent writers and report acknowledged writes/s; with
           --open-only, report open time, resident memory and Locate-by-Name latency

The store key comes from ksg.conf (customerKeyPath, else baseKeyPath) in --confs (default
./confs); --data defaults to ./data. bench uses <data>/ksgbaseKey.txt.
";

/// Runs `ksg keystore`.
pub fn run(args: &[String]) -> i32 {
    let (sub, a) = match super::args::subcommand(
        "keystore",
        HELP,
        args,
        &[
            "confs", "data", "writers", "objects", "batch", "seconds", "ack-file", "locates",
        ],
        &["recover", "open-only"],
    ) {
        Ok(parsed) => parsed,
        Err(status) => return status,
    };
    let data = PathBuf::from(a.value("data").unwrap_or("data"));
    let result = match sub {
        "verify" => with_config(&a, &data).and_then(|c| verify(&c, &data)),
        "dump" => with_config(&a, &data).and_then(|c| dump(&c, &data)),
        "compact" => with_config(&a, &data).and_then(|c| compact(&c, &data, a.has("recover"))),
        "bench" => bench(&a, &data),
        other => {
            eprintln!("ksg keystore: unknown subcommand {other:?}\n\n{HELP}");
            return 2;
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ksg keystore {sub}: {e}");
            1
        }
    }
}

fn with_config(a: &Args, data: &Path) -> Result<Config, String> {
    let confs = PathBuf::from(a.value("confs").unwrap_or("confs"));
    Config::load(&confs, data).map_err(|e| e.to_string())
}

fn store_key(c: &Config) -> Result<key::Key256, String> {
    let base = &c.ksg.base_key_path;
    if c.ksg.customer_key_path.is_none() && !base.exists() {
        return Err(format!(
            "no store key at {} (the gateway makes it on first start)",
            base.display()
        ));
    }
    key::load(c.ksg.customer_key_path.as_deref(), base).map(|(k, _)| k)
}

fn verify(c: &Config, data: &Path) -> Result<i32, String> {
    // Printed whole at the end: a reader that stops early (`| head`) ends the output, not the
    // program.
    let mut out = String::new();
    let code = verify_into(c, data, &mut out);
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    code
}

fn verify_into(c: &Config, data: &Path, out: &mut String) -> Result<i32, String> {
    use std::fmt::Write as _;
    let key = store_key(c)?;
    let path = data.join(store::FILE_NAME);
    let s = store::scan(&path, &key, &c.ksg.hsm_name, true, false).map_err(|e| e.to_string())?;
    let _ = writeln!(out, "keystore {}", path.display());
    let version = s.format_version();
    if version < store::record::VERSION {
        let _ = writeln!(
            out,
            "format version: {version} (`ksg keystore compact` rewrites it as version {}, which opens faster)",
            store::record::VERSION
        );
    } else {
        let _ = writeln!(out, "format version: {version}");
    }
    let _ = writeln!(out, "records verified: {}", s.records);
    for (i, n) in s.by_kind.iter().enumerate().filter(|(_, n)| **n > 0) {
        let kind = store::Kind::from_byte(i as u8).map_or("?", |k| k.name());
        let _ = writeln!(out, "  {kind}: {n}");
    }
    let destroyed = s.index.iter().filter(|o| matches!(o.state, 5 | 6)).count();
    let _ = writeln!(
        out,
        "objects ({}): {} ({} destroyed)",
        c.ksg.hsm_name,
        s.index.len(),
        destroyed
    );
    let _ = writeln!(out, "objects of other HSM_names: {}", s.index.foreign_len());
    let _ = writeln!(out, "next unique identifier: {}", s.index.next_uid());
    if s.torn_bytes > 0 && s.damage.is_none() {
        let _ = writeln!(
            out,
            "torn tail: {} bytes (an unfinished write; cut at the next open)",
            s.torn_bytes
        );
    }
    if s.spare_bytes > 0 {
        let _ = writeln!(
            out,
            "room after the last record: {} bytes (zeros the writer made ahead)",
            s.spare_bytes
        );
    }
    for i in &s.inconsistent {
        let _ = writeln!(out, "warning: {i}");
    }
    match s.damage {
        Some(d) => {
            let _ = writeln!(
                out,
                "DAMAGED: at byte {} (record {}): {}; {} bytes after the last good record cannot be trusted",
                d.offset, d.seq, d.what, d.dropped_bytes
            );
            Ok(1)
        }
        None => {
            let _ = writeln!(out, "chain: OK");
            Ok(0)
        }
    }
}

fn enum_name(tag: Tag, v: u32) -> String {
    match tables::tag_info(tag).map(|t| t.kind) {
        Some(tables::TagKind::Enumeration(id)) => id
            .table()
            .by_value(v)
            .map_or_else(|| format!("0x{v:08X}"), |n| n.name.to_string()),
        _ => format!("0x{v:08X}"),
    }
}

/// A one-line, secret-free rendering of an attribute value.
fn short(name: &str, v: &Item) -> String {
    let kind = tables::tag_by_spec_name(name).map(|t| t.kind);
    match &v.value {
        Value::Enumeration(e) => match kind {
            Some(tables::TagKind::Enumeration(id)) => id
                .table()
                .by_value(*e)
                .map_or_else(|| format!("0x{e:08X}"), |n| n.name.to_string()),
            _ => format!("0x{e:08X}"),
        },
        Value::Integer(i) => match kind {
            Some(tables::TagKind::Mask(id)) => tables::mask_names(id.table(), *i as u32)
                .map_or_else(|| i.to_string(), |n| n.join("|")),
            _ => i.to_string(),
        },
        Value::TextString(s) => format!("{s:?}"),
        Value::DateTime(t) => crate::ttlv::format_iso8601(*t, None),
        Value::ByteString(b) => format!("<{} bytes>", b.len()),
        Value::Structure(items) => {
            let inner: Vec<String> = items
                .iter()
                .map(|i| {
                    let n = i.tag.name().unwrap_or("?");
                    let spec = tables::tag_info(i.tag).map_or("", |t| t.spec_name);
                    format!("{n}={}", short(spec, i))
                })
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        other => format!("{other:?}"),
    }
}

fn dump(c: &Config, data: &Path) -> Result<i32, String> {
    let key = store_key(c)?;
    let path = data.join(store::FILE_NAME);
    let s = store::scan(&path, &key, &c.ksg.hsm_name, true, false).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    for o in s.index.all() {
        // A reader that stops early (`| head`) ends the dump.
        let head = writeln!(
            out,
            "{} type={} state={} owner={} hsm={}{}{}",
            o.uid,
            enum_name(Tag::OBJECT_TYPE, o.object_type),
            enum_name(Tag::STATE, o.state),
            o.owner.as_deref().unwrap_or("-"),
            o.hsm_name,
            o.token_ref
                .as_ref()
                .map(|t| format!(
                    " token(id={} class={} label={:?})",
                    hex(&t.id),
                    t.class,
                    t.label
                ))
                .unwrap_or_default(),
            if o.value.is_some() {
                " value=<kept, not shown>"
            } else {
                ""
            }
        );
        if head.is_err() {
            break;
        }
        for a in o.attributes.iter() {
            let _ = writeln!(
                out,
                "    {}[{}] = {}",
                a.name,
                a.index,
                short(&a.name, &a.value)
            );
        }
    }
    if let Some(d) = s.damage {
        eprintln!(
            "warning: the chain breaks at byte {}; objects after it are not shown",
            d.offset
        );
        return Ok(1);
    }
    Ok(0)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn compact(c: &Config, data: &Path, recover: bool) -> Result<i32, String> {
    let key = store_key(c)?;
    let recover = recover || c.ksg.gate_flags & gate_flags::RECOVER_SIGNATURE != 0;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let r = store::compact(data, &key, recover, now).map_err(|e| e.to_string())?;
    println!(
        "compacted {}: {} records, {} bytes -> {} objects, {} bytes",
        data.join(store::FILE_NAME).display(),
        r.old_records,
        r.old_bytes,
        r.objects,
        r.new_bytes
    );
    if let Some(copy) = r.damaged_copy {
        println!(
            "re-sealed after damage; the damaged original is kept as {}",
            copy.display()
        );
    }
    Ok(0)
}

/// A typical key's metadata: algorithm, length, usage mask, name, dates, a custom attribute.
pub fn sample_object(n: u64, owner: &str, hsm: &str, now: i64) -> StoredObject {
    let attr = |name: &str, value: Value| StoredAttribute {
        name: name.into(),
        index: 0,
        value: Item::new(Tag::ATTRIBUTE_VALUE, value),
    };
    let name = Item::structure(
        Tag::ATTRIBUTE_VALUE,
        vec![
            Item::new(Tag::NAME_VALUE, Value::TextString(format!("bench-key-{n}"))),
            Item::new(Tag::NAME_TYPE, Value::Enumeration(1)),
        ],
    );
    StoredObject {
        uid: String::new(),
        object_type: 2,
        state: 1,
        owner: Some(owner.into()),
        hsm_name: hsm.into(),
        attributes: vec![
            attr("Cryptographic Algorithm", Value::Enumeration(3)),
            attr("Cryptographic Length", Value::Integer(256)),
            attr("Cryptographic Usage Mask", Value::Integer(12)),
            StoredAttribute {
                name: "Name".into(),
                index: 0,
                value: name,
            },
            attr("Initial Date", Value::DateTime(now)),
            attr("Last Change Date", Value::DateTime(now)),
            attr(
                "Object Group",
                Value::TextString(format!("group-{}", n % 100)),
            ),
            attr("x-bench", Value::Integer((n % 1000) as i32)),
        ]
        .into_iter()
        .collect(),
        token_ref: None,
        value: Some(store::SecretBytes::new(
            (0..32).map(|i| (i as u8) ^ (n as u8)).collect(),
        )),
    }
}

fn number(a: &Args, name: &str, default: u64) -> Result<u64, String> {
    a.value(name).map_or(Ok(default), |v| {
        v.parse()
            .map_err(|_| format!("--{name} {v:?} is not a number"))
    })
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn bench(a: &Args, data: &Path) -> Result<i32, String> {
    let base = data.join("ksgbaseKey.txt");
    let (key, _) = key::load(None, &base)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if a.has("open-only") {
        let rss0 = rss_kib();
        let t = Instant::now();
        let (store, report) = Store::open(data, &key, "bench", false).map_err(|e| e.to_string())?;
        let open = t.elapsed();
        let rss = rss_kib();
        println!(
            "open: {} objects, {} records in {:.3} s; resident memory {:.1} MiB (before open {:.1} MiB)",
            report.objects,
            report.records,
            open.as_secs_f64(),
            rss as f64 / 1024.0,
            rss0 as f64 / 1024.0
        );
        let locates = number(a, "locates", 1000)?;
        if report.objects > 0 && locates > 0 {
            let t = Instant::now();
            let mut found = 0;
            for i in 0..locates {
                let n = (i * 7919) % report.objects as u64;
                let hits = store.find(&[Criterion::Equals(
                    "Name".into(),
                    Key::Text(format!("bench-key-{n}").into()),
                )]);
                found += hits.len();
            }
            let per = t.elapsed().as_secs_f64() / locates as f64;
            println!(
                "locate by Name: {:.1} µs per query ({found} hits in {locates} queries)",
                per * 1e6
            );
        }
        return Ok(0);
    }
    let writers = number(a, "writers", 1)?.max(1);
    let objects = number(a, "objects", u64::MAX)?;
    let batch = number(a, "batch", 1)?.max(1);
    let seconds = number(a, "seconds", if objects == u64::MAX { 5 } else { 3600 })?;
    let (store, _) = Store::open(data, &key, "bench", false).map_err(|e| e.to_string())?;
    let store = Arc::new(store);
    let ack = match a.value("ack-file") {
        Some(p) => Some(Arc::new(std::sync::Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("{p}: {e}"))?,
        ))),
        None => None,
    };
    let done = Arc::new(AtomicU64::new(0));
    let committed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let (store, ack, done, stop) = (store.clone(), ack.clone(), done.clone(), stop.clone());
            let committed = committed.clone();
            std::thread::spawn(move || -> Result<(), String> {
                let mut n = w;
                while !stop.load(Ordering::Relaxed) {
                    if done.fetch_add(batch, Ordering::Relaxed) >= objects {
                        break;
                    }
                    let changes: Vec<Change> = (0..batch)
                        .map(|i| {
                            Change::Create(sample_object(n * batch + i, "bench", "bench", now))
                        })
                        .collect();
                    n += writers;
                    let results = store.commit(changes).map_err(|e| e.to_string())?;
                    committed.fetch_add(results.len() as u64, Ordering::Relaxed);
                    if let Some(ack) = &ack {
                        let mut line = String::new();
                        for r in results {
                            line.push_str(r.uid.as_deref().unwrap_or("?"));
                            line.push('\n');
                        }
                        let mut f = ack.lock().map_err(|_| "ack lock")?;
                        f.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
                    }
                }
                Ok(())
            })
        })
        .collect();
    while start.elapsed() < Duration::from_secs(seconds) && !handles.iter().all(|h| h.is_finished())
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().map_err(|_| "a writer panicked".to_string())??;
    }
    let secs = start.elapsed().as_secs_f64();
    let total = store.read().len();
    let written = committed.load(Ordering::Relaxed);
    println!(
        "{writers} writer(s), {batch} object(s) per commit: {} objects in {secs:.2} s = {:.0} acknowledged creates/s; {total} objects in the store",
        written,
        written as f64 / secs
    );
    Ok(0)
}
