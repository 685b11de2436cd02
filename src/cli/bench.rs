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
                       locate (by name), register (AES-256 keys), mixed (get, encrypt,
                       locate and get-attributes in turn, on objects made at the start: the
                       store does not grow, as for a soak test), or lifecycle (create, get
                       and destroy a key: three requests, each counted)
  --server [NAME=]HOST:PORT
                       may be given several times: the same load runs against each server in
                       turn, and a comparison closes the report; NAME labels it there and in
                       the chart
  --connections N      concurrent connections (default 1); a list such as 1,4,16 runs the
                       load once per count
  --duration S         seconds of load per run (default 10)
  --batch K            batch items per request (default 1); throughput counts items
  --new-connections    open a new connection (a full TLS handshake) for every request, to
                       measure connection set-up rather than requests
  --kmip-version V     1.0 to 1.4 (default 1.4)
  --csv FILE           append one line of results per run (a header line when the file is new)
  --server-pid PID     the server's process (with several servers, one per --server, in the
                       same order): report its CPU time per request (from /proc/PID/stat, with
                       its child processes') and sample its resident memory every second
                       (the load generator's own CPU per request is reported either way)
  --rss-csv FILE       write those memory samples (seconds, KiB) to FILE
  --plot FILE.svg      draw throughput against connections, a line per server

Connection options (the same for every server):
";

/// Options that take a value (besides the connection's).
const VALUE_OPTIONS: [&str; 9] = [
    "op",
    "connections",
    "duration",
    "batch",
    "kmip-version",
    "csv",
    "server-pid",
    "rss-csv",
    "plot",
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

fn positive(name: &str, v: &str) -> Result<u64, Failure> {
    v.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Failure::Usage(format!("--{name} {v:?} is not a positive number")))
}

fn number(args: &Args, name: &str, default: u64) -> Result<u64, Failure> {
    args.value(name).map_or(Ok(default), |v| positive(name, v))
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
    Lifecycle,
}

/// What one run measured.
struct Measured {
    server: String,
    connections: usize,
    elapsed: Duration,
    ops: u64,
    errors: u64,
    /// Sorted.
    latencies_us: Vec<u32>,
    first_error: Option<String>,
    cpu_us_per_op: Option<f64>,
    /// This process's own CPU per request: on a machine it shares with the server, what the
    /// load generator takes from it.
    client_cpu_us_per_op: Option<f64>,
    rss: Vec<(u64, u64)>,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> u32 {
        let l = &self.latencies_us;
        if l.is_empty() {
            return 0;
        }
        l[((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1]
    }
}

/// The settings every run shares.
struct Plan {
    op: Op,
    batch: usize,
    duration: Duration,
    version: Version,
    fresh: bool,
}

fn bench(args: &Args) -> Result<(), Failure> {
    let op = match args.value("op") {
        Some("create") => Op::Create,
        Some("get") => Op::Get,
        Some("encrypt") => Op::Encrypt,
        Some("locate") => Op::Locate,
        Some("register") => Op::Register,
        Some("mixed") => Op::Mixed,
        Some("lifecycle") => Op::Lifecycle,
        Some(other) => return Err(Failure::Usage(format!("--op {other:?} is not a load"))),
        None => return Err(Failure::Usage("--op is required".into())),
    };
    let counts = args
        .value("connections")
        .unwrap_or("1")
        .split(',')
        .map(|c| positive("connections", c.trim()).map(|n| n as usize))
        .collect::<Result<Vec<usize>, _>>()?;
    let plan = Plan {
        op,
        batch: number(args, "batch", 1)? as usize,
        duration: Duration::from_secs(number(args, "duration", 10)?),
        version: match args.value("kmip-version").unwrap_or("1.4") {
            v @ ("1.0" | "1.1" | "1.2" | "1.3" | "1.4") => {
                Version::new(1, v[2..].parse().unwrap_or(4))
            }
            other => return Err(Failure::Usage(format!("--kmip-version {other:?}"))),
        },
        fresh: args.has("new-connections"),
    };
    if op == Op::Lifecycle && plan.batch > 1 {
        return Err(Failure::Usage(
            "--op lifecycle sends each request alone: no --batch".into(),
        ));
    }
    let servers = args.values("server");
    if servers.is_empty() {
        return Err(Failure::Usage("--server HOST:PORT is required".into()));
    }
    let pids = args
        .values("server-pid")
        .into_iter()
        .map(|p| {
            p.parse::<u32>()
                .map_err(|_| Failure::Usage(format!("--server-pid {p:?}")))
        })
        .collect::<Result<Vec<u32>, _>>()?;
    if !pids.is_empty() && pids.len() != servers.len() {
        return Err(Failure::Usage(format!(
            "{} --server-pid for {} --server: give one per server, in the same order",
            pids.len(),
            servers.len()
        )));
    }
    if let Some(path) = args.value("csv") {
        check_csv_header(path)?;
    }
    let mut all = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        let (label, address) = server.split_once('=').unwrap_or((server, server));
        let target = connect::target_at(args, address).map_err(Failure::Usage)?;
        for &connections in &counts {
            let m = measure(&plan, &target, label, connections, pids.get(i).copied())?;
            report(args, &plan, &m)?;
            all.push(m);
        }
    }
    if servers.len() > 1 {
        compare(&all, &counts);
    }
    if let Some(path) = args.value("plot") {
        let op_name = args.value("op").unwrap_or_default();
        std::fs::write(path, plot(&all, op_name))
            .map_err(|e| Failure::Run(format!("{path}: {e}")))?;
    }
    let errors: u64 = all.iter().map(|m| m.errors).sum();
    if errors > 0 {
        return Err(Failure::Run(format!("{errors} requests failed")));
    }
    Ok(())
}

/// One run: the load on `target` over `connections` connections.
fn measure(
    plan: &Plan,
    target: &Target,
    server: &str,
    connections: usize,
    pid: Option<u32>,
) -> Result<Measured, Failure> {
    // Objects the load works on, made once before it starts.
    let mut setup = Connection::open(target).map_err(Failure::Run)?;
    let fixtures = Fixtures::make(&mut setup, plan.version, plan.op)?;
    let requests: Vec<Vec<u8>> = fixtures
        .payloads(plan.op)
        .into_iter()
        .map(|(operation, payload)| {
            setup
                .prepare(&message(plan.version, operation, &payload, plan.batch))
                .map_err(Failure::Run)
        })
        .collect::<Result<_, _>>()?;
    drop(setup);

    let cpu_before = pid.and_then(cpu_ticks);
    let own_cpu_before = own_cpu_ticks();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = pid.map(|p| {
        let stop = stop.clone();
        std::thread::spawn(move || sample_rss(p, &stop))
    });
    let started = Instant::now();
    let results: Vec<Result<Worker, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..connections)
            .map(|n| {
                let requests = &requests;
                s.spawn(move || load(plan, target, requests, n))
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
    let own_cpu_after = own_cpu_ticks();
    let rss = sampler.and_then(|h| h.join().ok()).unwrap_or_default();

    let mut m = Measured {
        server: server.to_string(),
        connections,
        elapsed,
        ops: 0,
        errors: 0,
        latencies_us: Vec::new(),
        first_error: None,
        cpu_us_per_op: None,
        client_cpu_us_per_op: None,
        rss,
    };
    for r in results {
        let w = r.map_err(Failure::Run)?;
        m.ops += w.items;
        m.errors += w.errors;
        m.latencies_us.extend(w.latencies_us);
        m.first_error = m.first_error.or(w.first_error);
    }
    m.latencies_us.sort_unstable();
    let per_op = |before: Option<u64>, after: Option<u64>| match (before, after) {
        // Less after than before: a child process went away unreaped; no figure then.
        (Some(b), Some(a)) if m.ops > 0 && a >= b => {
            Some((a - b) as f64 * 1e6 / clock_ticks_per_second() / m.ops as f64)
        }
        _ => None,
    };
    m.cpu_us_per_op = per_op(cpu_before, cpu_after);
    if let Some(p) = pid
        && m.cpu_us_per_op.is_none()
    {
        // Said, not silently left out: a wrong or restarted PID is a mistake in the set-up.
        eprintln!(
            "ksg bench: no CPU figure for {server}: process {p} {}",
            match (cpu_before, cpu_after) {
                (None, _) => "was not there when the load began",
                (_, None) => "was gone when the load ended",
                _ => "used less CPU at the end than at the start (a child went unreaped)",
            }
        );
    }
    m.client_cpu_us_per_op = per_op(own_cpu_before, own_cpu_after);
    Ok(m)
}

/// Prints one run and appends it to the CSV and memory files asked for.
fn report(args: &Args, plan: &Plan, m: &Measured) -> Result<(), Failure> {
    let op_name = args.value("op").unwrap_or_default();
    let encoding = format!(
        "{}{}",
        args.value("encoding").unwrap_or("ttlv"),
        if args.has("http") { "/https" } else { "" }
    );
    println!(
        "{op_name} on {}: {} connections, {encoding}, batch {}, {:.1} s",
        m.server,
        m.connections,
        plan.batch,
        m.elapsed.as_secs_f64()
    );
    println!(
        "  {:.0} ops/s ({} operations, {} errors)",
        m.rate(),
        m.ops,
        m.errors
    );
    println!(
        "  latency per request: p50 {} µs, p90 {} µs, p99 {} µs, max {} µs",
        m.percentile(0.50),
        m.percentile(0.90),
        m.percentile(0.99),
        m.latencies_us.last().copied().unwrap_or(0)
    );
    if let Some(e) = &m.first_error {
        println!("  first error: {e}");
    }
    if let Some(us) = m.cpu_us_per_op {
        println!("  server CPU: {us:.1} µs per operation");
    }
    if let Some(us) = m.client_cpu_us_per_op {
        println!("  load generator CPU: {us:.1} µs per operation");
    }
    if let (Some(first), Some(last)) = (m.rss.first(), m.rss.last()) {
        let max = m.rss.iter().map(|r| r.1).max().unwrap_or(0);
        println!(
            "  server resident memory: {} KiB at start, {} KiB at end, {} KiB at most",
            first.1, last.1, max
        );
    }
    if let Some(path) = args.value("rss-csv") {
        let text: String = std::iter::once("seconds,rss_kib\n".to_string())
            .chain(m.rss.iter().map(|(t, k)| format!("{t},{k}\n")))
            .collect();
        std::fs::write(path, text).map_err(|e| Failure::Run(format!("{path}: {e}")))?;
    }
    if let Some(path) = args.value("csv") {
        let new = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Failure::Run(format!("{path}: {e}")))?;
        let mut line = String::new();
        if new {
            line.push_str(CSV_HEADER);
            line.push('\n');
        }
        line.push_str(&format!(
            "{op_name},{},{encoding},{},{:.1},{:.0},{},{},{},{},{},{},{},{}\n",
            m.connections,
            plan.batch,
            m.elapsed.as_secs_f64(),
            m.rate(),
            m.percentile(0.5),
            m.percentile(0.9),
            m.percentile(0.99),
            m.latencies_us.last().copied().unwrap_or(0),
            m.errors,
            m.cpu_us_per_op.map_or(String::new(), |c| format!("{c:.1}")),
            m.server,
            m.client_cpu_us_per_op
                .map_or(String::new(), |c| format!("{c:.1}"))
        ));
        f.write_all(line.as_bytes())
            .map_err(|e| Failure::Run(format!("{path}: {e}")))?;
    }
    Ok(())
}

const CSV_HEADER: &str = "op,connections,encoding,batch,seconds,ops_per_s,p50_us,p90_us,p99_us,max_us,errors,server_cpu_us_per_op,server,client_cpu_us_per_op";

/// Refuses, before any load runs, a CSV file whose header is not this version's: its lines
/// would not have the columns their header names.
fn check_csv_header(path: &str) -> Result<(), Failure> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Failure::Run(format!("{path}: {e}"))),
    };
    match text.lines().next() {
        None => Ok(()),
        Some(header) if header == CSV_HEADER => Ok(()),
        Some(_) => Err(Failure::Usage(format!(
            "--csv {path}: its header names other columns than this ksg bench writes \
             ({CSV_HEADER}); give a new file"
        ))),
    }
}

/// The closing comparison of several servers under the same load: each against the first.
fn compare(all: &[Measured], counts: &[usize]) {
    println!("comparison (the same load, one run; ratios against the first server):");
    for &n in counts {
        let runs: Vec<&Measured> = all.iter().filter(|m| m.connections == n).collect();
        let Some(first) = runs.first() else { continue };
        for m in &runs {
            let cpu = m
                .cpu_us_per_op
                .map_or("-".to_string(), |c| format!("{c:.1} µs CPU/op"));
            println!(
                "  {n:>3} connections  {:<24} {:>9.0} ops/s  p99 {:>7} µs  {cpu}  {:.2}x ops/s of the first",
                m.server,
                m.rate(),
                m.percentile(0.99),
                m.rate() / first.rate().max(f64::MIN_POSITIVE)
            );
        }
        for m in runs.iter().skip(1) {
            println!(
                "  {n:>3} connections  {} does {:.1}x the operations per second of {}",
                first.server,
                first.rate() / m.rate().max(f64::MIN_POSITIVE),
                m.server
            );
        }
    }
}

/// A small SVG chart of throughput against connections, a line per server.
fn plot(all: &[Measured], op: &str) -> String {
    const W: f64 = 640.0;
    const H: f64 = 400.0;
    const LEFT: f64 = 80.0;
    const RIGHT: f64 = 170.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 50.0;
    const COLOURS: [&str; 6] = [
        "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
    ];
    let mut counts: Vec<usize> = all.iter().map(|m| m.connections).collect();
    counts.sort_unstable();
    counts.dedup();
    let top = nice_ceiling(all.iter().map(Measured::rate).fold(1.0, f64::max));
    let x = |n: usize| {
        let i = counts.iter().position(|c| *c == n).unwrap_or(0) as f64;
        LEFT + (W - LEFT - RIGHT) * (i + 0.5) / counts.len() as f64
    };
    let y = |rate: f64| TOP + (H - TOP - BOTTOM) * (1.0 - rate / top);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"22\" font-size=\"14\">ksg bench --op {}: operations per second</text>\n",
        xml_text(op)
    );
    for i in 0..=4 {
        let v = top * f64::from(i) / 4.0;
        let yy = y(v);
        svg.push_str(&format!(
            "<line x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{v:.0}</text>\n",
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0
        ));
    }
    for &n in &counts {
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{n}</text>\n",
            x(n),
            H - BOTTOM + 18.0
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">connections</text>\n",
        (LEFT + W - RIGHT) / 2.0,
        H - 12.0
    ));
    let mut servers: Vec<&str> = Vec::new();
    for m in all {
        if !servers.contains(&m.server.as_str()) {
            servers.push(&m.server);
        }
    }
    for (i, server) in servers.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = all
            .iter()
            .filter(|m| m.server == *server)
            .map(|m| format!("{:.1},{:.1}", x(m.connections), y(m.rate())))
            .collect();
        svg.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n",
            points.join(" ")
        ));
        for p in &points {
            let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
            svg.push_str(&format!(
                "<circle cx=\"{px}\" cy=\"{py}\" r=\"3\" fill=\"{colour}\"/>\n"
            ));
        }
        let ly = TOP + 18.0 * i as f64;
        svg.push_str(&format!(
            "<line x1=\"{:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{colour}\" stroke-width=\"2\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            W - RIGHT + 12.0,
            W - RIGHT + 32.0,
            W - RIGHT + 38.0,
            ly + 4.0,
            xml_text(server)
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

/// The smallest of 1, 2 or 5 times a power of ten at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * p)
}

fn xml_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What one connection did.
struct Worker {
    items: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    first_error: Option<String>,
}

impl Worker {
    fn record(&mut self, started: Instant, outcome: Result<(), String>, items: u64) {
        self.latencies_us
            .push(started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        match outcome {
            Ok(()) => self.items += items,
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }
}

fn load(plan: &Plan, target: &Target, requests: &[Vec<u8>], n: usize) -> Result<Worker, String> {
    let mut c = Connection::open(target)?;
    let mut w = Worker {
        items: 0,
        errors: 0,
        latencies_us: Vec::with_capacity(1 << 16),
        first_error: None,
    };
    let end = Instant::now() + plan.duration;
    let mut i = n;
    while Instant::now() < end {
        let request = &requests[i % requests.len()];
        i += 1;
        let t = Instant::now();
        if plan.fresh {
            c = match Connection::open(target) {
                Ok(c) => c,
                Err(e) => {
                    w.errors += 1;
                    w.first_error.get_or_insert(e);
                    continue;
                }
            };
        }
        let answer = c
            .exchange_prepared(request)
            .and_then(|body| c.decode_response(&body));
        if plan.op != Op::Lifecycle {
            w.record(
                t,
                answer.and_then(|r| check(&r, plan.batch)),
                plan.batch as u64,
            );
            continue;
        }
        // Create, then Get and Destroy what it made: built per key, since the identifier is new.
        let created = answer.and_then(|r| {
            check(&r, 1)?;
            created_uid(&r).ok_or_else(|| "Create gave no identifier".to_string())
        });
        let key = match created {
            Ok(key) => {
                w.record(t, Ok(()), 1);
                key
            }
            Err(e) => {
                w.record(t, Err(e), 1);
                continue;
            }
        };
        for operation in [Operation::Get, Operation::Destroy] {
            let t = Instant::now();
            let outcome = c
                .prepare(&message(plan.version, operation, &[uid(&key)], 1))
                .and_then(|r| c.exchange_prepared(&r))
                .and_then(|body| c.decode_response(&body))
                .and_then(|r| check(&r, 1));
            w.record(t, outcome, 1);
        }
    }
    Ok(w)
}

/// The Unique Identifier a Create answered with.
fn created_uid(response: &Item) -> Option<String> {
    match &response
        .child(Tag::BATCH_ITEM)?
        .child(Tag::RESPONSE_PAYLOAD)?
        .child(Tag::UNIQUE_IDENTIFIER)?
        .value
    {
        Value::TextString(s) => Some(s.clone()),
        _ => None,
    }
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
        if matches!(op, Op::Create | Op::Register | Op::Lifecycle) {
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
        let key = created_uid(&answer)
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
            Op::Create | Op::Lifecycle => vec![(
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

/// CPU time of a process and of its descendants, in clock ticks: utime + stime of each, plus
/// the children each has already waited for (servers such as PyKMIP's serve each connection in
/// a child process).
fn cpu_ticks(pid: u32) -> Option<u64> {
    // (pid, ppid, ticks) of every process.
    let all: Vec<(u32, u32, u64)> = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let (ppid, ticks) = stat_ticks(&p.to_string())?;
            Some((p, ppid, ticks))
        })
        .collect();
    all.iter().find(|(p, _, _)| *p == pid)?;
    let mut total = 0;
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for (child, parent, ticks) in &all {
            if *child == p {
                total += ticks;
            }
            if *parent == p {
                frontier.push(*child);
            }
        }
    }
    Some(total)
}

/// This process's own CPU time in clock ticks (it has no children to count).
fn own_cpu_ticks() -> Option<u64> {
    stat_ticks("self").map(|(_, ticks)| ticks)
}

/// (parent, utime + stime + cutime + cstime) of `/proc/PROC/stat`.
fn stat_ticks(proc: &str) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{proc}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, ppid 4, utime 14,
    // stime 15, cutime 16, cstime 17.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some((n(1)? as u32, n(11)? + n(12)? + n(13)? + n(14)?))
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
