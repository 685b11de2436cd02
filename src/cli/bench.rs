//! `ksg bench`: a load generator for any KMIP server. Persistent connections, each in its own
//! thread, send one pre-serialised request again and again for a fixed time; it prints
//! throughput, latency percentiles and errors, and with `--server-pid` the server's CPU time
//! per request and its resident memory over the run.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::args::Args;
use super::connect;
use crate::conformance::Transport;
use crate::conformance::transport::{Connection, Target};
use crate::ttlv::tables::enums::{ObjectType, Operation};
use crate::ttlv::{Item, Tag, Value, Version};

const HELP: &str = "\
Usage: ksg bench --server HOST:PORT --op OP [options]

Load on a KMIP server (ksg or any other): N persistent connections, each sending the same
pre-serialised request as fast as the answers come, for S seconds. Prints operations per
second, latency percentiles (p50, p90, p99, max) and errors.

  --op OP              create (AES-256 keys), get (one key), encrypt (AES-GCM, 64 bytes),
                       locate (by name), register (AES-256 keys), or mixed (get, encrypt,
                       locate and get-attributes in turn, on objects made at the start: the
                       store does not grow, as for a soak test)
  --connections N      concurrent connections (default 1)
  --duration S         seconds of load (default 10)
  --batch K            batch items per request (default 1); throughput counts items
  --new-connections    open a new connection (a full TLS handshake) for every request, to
                       measure connection set-up rather than requests
  --kmip-version V     1.0 to 1.4 (default 1.4)
  --csv FILE           append one line of results (a header line when the file is new)
  --server-pid PID     the server's process: report its CPU time per request (from
                       /proc/PID/stat) and sample its resident memory every second
  --rss-csv FILE       write those memory samples (seconds, KiB) to FILE

Connection options:
";

/// Options that take a value (besides the connection's).
const VALUE_OPTIONS: [&str; 8] = [
    "op",
    "connections",
    "duration",
    "batch",
    "kmip-version",
    "csv",
    "server-pid",
    "rss-csv",
];

/// Runs `ksg bench`.
pub fn run(args: &[String]) -> i32 {
    let args = match Args::parse(
        args,
        &[&connect::VALUE_OPTIONS[..], &VALUE_OPTIONS[..]].concat(),
        &[&connect::SWITCHES[..], &["help", "new-connections"]].concat(),
    ) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    if args.has("help") {
        print!("{HELP}{}", connect::HELP);
        return 0;
    }
    match bench(&args) {
        Ok(()) => 0,
        Err(Failure::Usage(m)) => usage_error(&m),
        Err(Failure::Run(m)) => {
            eprintln!("ksg bench: {m}");
            1
        }
    }
}

fn usage_error(message: &str) -> i32 {
    eprintln!("ksg bench: {message}\nRun `ksg bench --help` for usage.");
    2
}

#[derive(Debug)]
enum Failure {
    Usage(String),
    Run(String),
}

fn number(args: &Args, name: &str, default: u64) -> Result<u64, Failure> {
    match args.value(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| Failure::Usage(format!("--{name} {v:?} is not a positive number"))),
    }
}

/// The load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Create,
    Get,
    Encrypt,
    Locate,
    Register,
    Mixed,
}

fn bench(args: &Args) -> Result<(), Failure> {
    let op = match args.value("op") {
        Some("create") => Op::Create,
        Some("get") => Op::Get,
        Some("encrypt") => Op::Encrypt,
        Some("locate") => Op::Locate,
        Some("register") => Op::Register,
        Some("mixed") => Op::Mixed,
        Some(other) => return Err(Failure::Usage(format!("--op {other:?} is not a load"))),
        None => return Err(Failure::Usage("--op is required".into())),
    };
    let connections = number(args, "connections", 1)? as usize;
    let duration = Duration::from_secs(number(args, "duration", 10)?);
    let batch = number(args, "batch", 1)? as usize;
    let version = match args.value("kmip-version").unwrap_or("1.4") {
        v @ ("1.0" | "1.1" | "1.2" | "1.3" | "1.4") => Version::new(1, v[2..].parse().unwrap_or(4)),
        other => return Err(Failure::Usage(format!("--kmip-version {other:?}"))),
    };
    let pid = args
        .value("server-pid")
        .map(|p| {
            p.parse::<u32>()
                .map_err(|_| Failure::Usage(format!("--server-pid {p:?}")))
        })
        .transpose()?;
    let target = connect::target(args, None).map_err(Failure::Usage)?;

    // Objects the load works on, made once before it starts.
    let mut setup = Connection::open(&target).map_err(Failure::Run)?;
    let fixtures = Fixtures::make(&mut setup, version, op)?;
    let requests: Vec<Vec<u8>> = fixtures
        .payloads(op)
        .into_iter()
        .map(|(operation, payload)| {
            setup
                .prepare(&message(version, operation, &payload, batch))
                .map_err(Failure::Run)
        })
        .collect::<Result<_, _>>()?;
    drop(setup);

    let cpu_before = pid.and_then(cpu_ticks);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = pid.map(|p| {
        let stop = stop.clone();
        std::thread::spawn(move || sample_rss(p, &stop))
    });
    let started = Instant::now();
    let fresh = args.has("new-connections");
    let results: Vec<Result<Worker, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..connections)
            .map(|n| {
                let target = &target;
                let requests = &requests;
                s.spawn(move || load(target, requests, n, batch, duration, fresh))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a load thread panicked".into()))
            })
            .collect()
    });
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let cpu_after = pid.and_then(cpu_ticks);
    let rss = sampler.and_then(|h| h.join().ok()).unwrap_or_default();

    let mut latencies = Vec::new();
    let (mut ops, mut errors) = (0u64, 0u64);
    let mut first_error = None;
    for r in results {
        let w = r.map_err(Failure::Run)?;
        ops += w.items;
        errors += w.errors;
        latencies.extend(w.latencies_us);
        first_error = first_error.or(w.first_error);
    }
    latencies.sort_unstable();
    let pct = |p: f64| -> u32 {
        if latencies.is_empty() {
            return 0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i]
    };
    let rate = ops as f64 / elapsed.as_secs_f64();
    let op_name = args.value("op").unwrap_or_default();
    let encoding = format!(
        "{}{}",
        args.value("encoding").unwrap_or("ttlv"),
        if args.has("http") { "/https" } else { "" }
    );
    println!(
        "{op_name}: {connections} connections, {encoding}, batch {batch}, {:.1} s",
        elapsed.as_secs_f64()
    );
    println!("  {rate:.0} ops/s ({ops} operations, {errors} errors)");
    println!(
        "  latency per request: p50 {} µs, p90 {} µs, p99 {} µs, max {} µs",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        latencies.last().copied().unwrap_or(0)
    );
    if let Some(e) = &first_error {
        println!("  first error: {e}");
    }
    let cpu_per_op = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) if ops > 0 => {
            let us = (a - b) as f64 * 1e6 / clock_ticks_per_second() / ops as f64;
            println!("  server CPU: {us:.1} µs per operation");
            Some(us)
        }
        _ => None,
    };
    if let (Some(first), Some(last)) = (rss.first(), rss.last()) {
        let max = rss.iter().map(|r| r.1).max().unwrap_or(0);
        println!(
            "  server resident memory: {} KiB at start, {} KiB at end, {} KiB at most",
            first.1, last.1, max
        );
    }
    if let Some(path) = args.value("rss-csv") {
        let text: String = std::iter::once("seconds,rss_kib\n".to_string())
            .chain(rss.iter().map(|(t, k)| format!("{t},{k}\n")))
            .collect();
        std::fs::write(path, text).map_err(|e| Failure::Run(format!("{path}: {e}")))?;
    }
    if let Some(path) = args.value("csv") {
        let new = !std::path::Path::new(path).exists();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Failure::Run(format!("{path}: {e}")))?;
        let mut line = String::new();
        if new {
            line.push_str("op,connections,encoding,batch,seconds,ops_per_s,p50_us,p90_us,p99_us,max_us,errors,server_cpu_us_per_op\n");
        }
        line.push_str(&format!(
            "{op_name},{connections},{encoding},{batch},{:.1},{rate:.0},{},{},{},{},{errors},{}\n",
            elapsed.as_secs_f64(),
            pct(0.5),
            pct(0.9),
            pct(0.99),
            latencies.last().copied().unwrap_or(0),
            cpu_per_op.map_or(String::new(), |c| format!("{c:.1}"))
        ));
        f.write_all(line.as_bytes())
            .map_err(|e| Failure::Run(format!("{path}: {e}")))?;
    }
    if errors > 0 {
        return Err(Failure::Run(format!("{errors} requests failed")));
    }
    Ok(())
}

/// What one connection did.
struct Worker {
    items: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    first_error: Option<String>,
}

fn load(
    target: &Target,
    requests: &[Vec<u8>],
    n: usize,
    batch: usize,
    duration: Duration,
    fresh: bool,
) -> Result<Worker, String> {
    let mut c = Connection::open(target)?;
    let mut w = Worker {
        items: 0,
        errors: 0,
        latencies_us: Vec::with_capacity(1 << 16),
        first_error: None,
    };
    let end = Instant::now() + duration;
    let mut i = n;
    while Instant::now() < end {
        let request = &requests[i % requests.len()];
        i += 1;
        let t = Instant::now();
        if fresh {
            c = match Connection::open(target) {
                Ok(c) => c,
                Err(e) => {
                    w.errors += 1;
                    w.first_error.get_or_insert(e);
                    continue;
                }
            };
        }
        let outcome = c
            .exchange_prepared(request)
            .and_then(|body| c.decode_response(&body))
            .and_then(|r| check(&r, batch));
        w.latencies_us
            .push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        match outcome {
            Ok(()) => w.items += batch as u64,
            Err(e) => {
                w.errors += 1;
                w.first_error.get_or_insert(e);
            }
        }
    }
    Ok(w)
}

/// Every batch item succeeded.
fn check(response: &Item, batch: usize) -> Result<(), String> {
    let items: Vec<&Item> = response.children_with(Tag::BATCH_ITEM).collect();
    if items.len() != batch {
        return Err(format!("{} batch items in the answer", items.len()));
    }
    for item in items {
        if item.child(Tag::RESULT_STATUS).map(|s| &s.value) != Some(&Value::Enumeration(0)) {
            let msg = match item.child(Tag::RESULT_MESSAGE).map(|m| &m.value) {
                Some(Value::TextString(m)) => m.clone(),
                _ => "failed".into(),
            };
            return Err(msg);
        }
    }
    Ok(())
}

fn message(version: Version, operation: Operation, payload: &[Item], batch: usize) -> Item {
    connect::request_message(version, None, operation.to_u32(), payload, batch)
}

fn attribute(name: &str, value: Value) -> Item {
    Item::structure(
        Tag::ATTRIBUTE,
        vec![
            Item::new(Tag::ATTRIBUTE_NAME, Value::TextString(name.into())),
            Item::new(Tag::ATTRIBUTE_VALUE, value),
        ],
    )
}

fn name_attribute(name: &str) -> Item {
    Item::structure(
        Tag::ATTRIBUTE,
        vec![
            Item::new(Tag::ATTRIBUTE_NAME, Value::TextString("Name".into())),
            Item::structure(
                Tag::ATTRIBUTE_VALUE,
                vec![
                    Item::new(Tag::NAME_VALUE, Value::TextString(name.into())),
                    Item::new(Tag::NAME_TYPE, Value::Enumeration(1)),
                ],
            ),
        ],
    )
}

fn uid(text: &str) -> Item {
    Item::new(Tag::UNIQUE_IDENTIFIER, Value::TextString(text.into()))
}

fn aes_template(name: Option<&str>) -> Item {
    let mut attrs = vec![
        attribute("Cryptographic Algorithm", Value::Enumeration(3)),
        attribute("Cryptographic Length", Value::Integer(256)),
        attribute("Cryptographic Usage Mask", Value::Integer(0x0C)),
    ];
    attrs.extend(name.map(name_attribute));
    Item::structure(Tag::TEMPLATE_ATTRIBUTE, attrs)
}

/// The objects a load uses.
struct Fixtures {
    key: Option<String>,
    name: String,
}

impl Fixtures {
    fn make(c: &mut Connection, version: Version, op: Op) -> Result<Fixtures, Failure> {
        let name = format!("ksg-bench-{}", std::process::id());
        if matches!(op, Op::Create | Op::Register) {
            return Ok(Fixtures { key: None, name });
        }
        let create = vec![
            Item::new(
                Tag::OBJECT_TYPE,
                Value::Enumeration(ObjectType::SymmetricKey.to_u32()),
            ),
            aes_template(Some(&name)),
        ];
        let answer = c
            .exchange(&message(version, Operation::Create, &create, 1))
            .map_err(Failure::Run)?;
        check(&answer, 1).map_err(|e| Failure::Run(format!("setup Create: {e}")))?;
        let key = answer
            .child(Tag::BATCH_ITEM)
            .and_then(|i| i.child(Tag::RESPONSE_PAYLOAD))
            .and_then(|p| p.child(Tag::UNIQUE_IDENTIFIER))
            .and_then(|u| match &u.value {
                Value::TextString(s) => Some(s.clone()),
                _ => None,
            })
            .ok_or_else(|| Failure::Run("setup Create gave no identifier".into()))?;
        let activate = c
            .exchange(&message(version, Operation::Activate, &[uid(&key)], 1))
            .map_err(Failure::Run)?;
        check(&activate, 1).map_err(|e| Failure::Run(format!("setup Activate: {e}")))?;
        Ok(Fixtures {
            key: Some(key),
            name,
        })
    }

    /// The request(s) of the load, sent in turn.
    fn payloads(&self, op: Op) -> Vec<(Operation, Vec<Item>)> {
        let key = self.key.as_deref().unwrap_or_default();
        let get = (Operation::Get, vec![uid(key)]);
        let encrypt = (
            Operation::Encrypt,
            vec![
                uid(key),
                Item::structure(
                    Tag::CRYPTOGRAPHIC_PARAMETERS,
                    vec![
                        Item::new(Tag::BLOCK_CIPHER_MODE, Value::Enumeration(9)),
                        Item::new(Tag::RANDOM_IV, Value::Boolean(true)),
                    ],
                ),
                Item::new(Tag::DATA, Value::ByteString(vec![0x42; 64])),
            ],
        );
        let locate = (Operation::Locate, vec![name_attribute(&self.name)]);
        match op {
            Op::Create => vec![(
                Operation::Create,
                vec![
                    Item::new(
                        Tag::OBJECT_TYPE,
                        Value::Enumeration(ObjectType::SymmetricKey.to_u32()),
                    ),
                    aes_template(None),
                ],
            )],
            Op::Register => vec![(
                Operation::Register,
                vec![
                    Item::new(
                        Tag::OBJECT_TYPE,
                        Value::Enumeration(ObjectType::SymmetricKey.to_u32()),
                    ),
                    aes_template(None),
                    Item::structure(
                        Tag::SYMMETRIC_KEY,
                        vec![Item::structure(
                            Tag::KEY_BLOCK,
                            vec![
                                Item::new(Tag::KEY_FORMAT_TYPE, Value::Enumeration(1)),
                                Item::structure(
                                    Tag::KEY_VALUE,
                                    vec![Item::new(
                                        Tag::KEY_MATERIAL,
                                        Value::ByteString(vec![0x5A; 32]),
                                    )],
                                ),
                                Item::new(Tag::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(3)),
                                Item::new(Tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
                            ],
                        )],
                    ),
                ],
            )],
            Op::Get => vec![get],
            Op::Encrypt => vec![encrypt],
            Op::Locate => vec![locate],
            Op::Mixed => vec![
                get,
                encrypt,
                locate,
                (Operation::GetAttributes, vec![uid(key)]),
            ],
        }
    }
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Clock ticks per second (USER_HZ, 100 on Linux).
fn clock_ticks_per_second() -> f64 {
    100.0
}

/// The resident set of a process in KiB, every second until `stop`: (seconds, KiB).
fn sample_rss(pid: u32, stop: &AtomicBool) -> Vec<(u64, u64)> {
    let start = Instant::now();
    let mut out = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        if let Some(kib) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        {
            out.push((start.elapsed().as_secs(), kib));
        }
        let next = Instant::now() + Duration::from_secs(1);
        while Instant::now() < next && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    out
}
