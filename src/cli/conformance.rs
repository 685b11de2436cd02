//! `ksg conformance`: replays OASIS KMIP XML test cases against a live KMIP server.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::args::Args;
use crate::conformance::transport::{self, Connection, Encoding, Target};
use crate::conformance::{self, Outcome, SkipList, Step};

const HELP: &str = "\
Usage: ksg conformance --server HOST:PORT [options] PATH...

Replays OASIS KMIP XML test cases against a running KMIP server (any server, not only ksg).
PATH is a test-case file or a directory, searched at any depth for *.xml files (run in sorted
order). Each file runs top to bottom on one connection (a new connection per file): the i-th
request is sent, with the values earlier responses gave filled in ($UNIQUE_IDENTIFIER_0, ...),
and the answer is compared with the i-th expected response, allowing the variations the KMIP
profiles permit (identifiers, time stamps, server-generated key material and random outputs,
attribute order and extra attributes, Query contents, extra protocol versions, equivalent
Result Reasons; Result Message is ignored). The first difference fails the file.

Options:
  --server HOST:PORT   the KMIP server (required); [v6-address]:PORT for IPv6
  --ca FILE            CA certificate(s) the server certificate must chain to, PEM
                       (default ./data/tls/ca.pem, the ksg development PKI)
  --cert FILE          client certificate chain, PEM (default ./data/tls/client.pem)
  --key FILE           client private key, PEM (default ./data/tls/client.key)
  --server-name NAME   the name the server certificate must carry (default: the host of
                       --server; an IP address is checked as an IP address)
  --plain              connect over plain TCP, without TLS (--ca, --cert, --key unused)
  --encoding ENC       ttlv (default), xml or json; xml and json need --http
  --http               send each message as an HTTP/1.1 POST to /kmip on a keep-alive
                       connection (Content-Type application/octet-stream, text/xml or
                       application/json) instead of raw TTLV on the stream
  --timeout SECS       how long to wait for a connection and for each response (default 10)
  --skip FILE          test files not to run: one per line, a file name, the end of a path or
                       a name prefix ending in '*' (TC-SJ-*), optionally followed by a
                       reason; a line starting with '#' is a comment; a line [NAME] starts
                       a section whose entries apply only with --skip-section NAME
  --skip-section NAME  also skip the entries of section [NAME] of the --skip file (the
                       limits of one server or backend)
  --verbose            print every step of every file
  --help               show this help

Output: one line per file, `PASS PATH`, `FAIL PATH: step N (Operation): WHERE: expected X,
got Y` or `SKIP PATH: REASON` (files with server-to-client Notify/Put are skipped), then
`N passed, M failed` (and `, K skipped` when some were). A file that cannot be parsed, a lost
connection or a timeout fails that file only; the run goes on with the next file.

Exit status: 0 if no file failed, 1 if some did, 2 for bad usage (including an unreadable
--ca, --cert, --key or --skip file, or a PATH that does not exist).
";

/// Runs `ksg conformance`.
pub fn run(args: &[String]) -> i32 {
    let args = match Args::parse(
        args,
        &[
            "server",
            "ca",
            "cert",
            "key",
            "server-name",
            "encoding",
            "timeout",
            "skip",
            "skip-section",
        ],
        &["plain", "http", "verbose", "help"],
    ) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    if args.has("help") {
        print!("{HELP}");
        return 0;
    }
    let target = match target(&args) {
        Ok(t) => t,
        Err(e) => return usage_error(&e),
    };
    if args.positionals.is_empty() {
        return usage_error("no test-case PATH given");
    }
    let paths: Vec<PathBuf> = args.positionals.iter().map(PathBuf::from).collect();
    let files = match conformance::collect_files(&paths) {
        Ok(f) => f,
        Err(e) => return usage_error(&e),
    };
    let skip = match args.value("skip") {
        Some(f) => match std::fs::read_to_string(f) {
            Ok(text) => SkipList::parse(&text, args.value("skip-section")),
            Err(e) => return usage_error(&format!("--skip {f}: {e}")),
        },
        None => SkipList::default(),
    };
    let verbose = args.has("verbose");
    let (mut passed, mut failed, mut skipped) = (0usize, 0usize, 0usize);
    let mut out = std::io::stdout();
    for file in &files {
        let outcome = run_one(file, &target, &skip, verbose);
        let shown = file.display();
        let line = match &outcome {
            Outcome::Pass => {
                passed += 1;
                format!("PASS {shown}")
            }
            Outcome::Fail(why) => {
                failed += 1;
                format!("FAIL {shown}: {why}")
            }
            Outcome::Skip(why) => {
                skipped += 1;
                format!("SKIP {shown}: {why}")
            }
        };
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
    let mut summary = format!("{passed} passed, {failed} failed");
    if skipped > 0 {
        summary.push_str(&format!(", {skipped} skipped"));
    }
    let _ = writeln!(out, "{summary}");
    i32::from(failed > 0)
}

fn run_one(file: &Path, target: &Target, skip: &SkipList, verbose: bool) -> Outcome {
    if let Some(reason) = skip.reason(file) {
        return Outcome::Skip(reason);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let doc = match conformance::load_file(file, now) {
        Ok(d) => d,
        Err(e) => return Outcome::Fail(e),
    };
    if let Some(reason) = conformance::skip_reason(&doc) {
        return Outcome::Skip(reason);
    }
    let mut connection = match Connection::open(target) {
        Ok(c) => c,
        Err(e) => return Outcome::Fail(format!("connection: {e}")),
    };
    let mut print_step = |s: &Step<'_>| {
        if verbose {
            match s.result {
                Ok(()) => println!("  step {} ({}): ok", s.index, s.operation),
                Err(e) => println!("  step {} ({}): {e}", s.index, s.operation),
            }
        }
    };
    conformance::run_file_with(&mut connection, &doc, &mut print_step)
}

fn target(args: &Args) -> Result<Target, String> {
    let address = args
        .value("server")
        .ok_or("--server HOST:PORT is required")?
        .to_string();
    let host = transport::host_of(&address);
    if host.is_empty() || !address.contains(':') {
        return Err(format!("--server {address:?} is not HOST:PORT"));
    }
    let encoding = match args.value("encoding") {
        None => Encoding::Ttlv,
        Some(e) => Encoding::parse(e)
            .ok_or_else(|| format!("--encoding {e:?}: expected ttlv, xml or json"))?,
    };
    let http = args.has("http");
    if encoding != Encoding::Ttlv && !http {
        return Err(
            "--encoding xml and json are only sent over HTTP: add --http (raw streams carry TTLV)"
                .to_string(),
        );
    }
    let timeout = match args.value("timeout") {
        None => 10,
        Some(t) => t
            .parse::<u64>()
            .ok()
            .filter(|t| *t > 0)
            .ok_or_else(|| format!("--timeout {t:?} is not a positive number of seconds"))?,
    };
    let server_name = match args.value("server-name") {
        Some(n) => rustls_pki_types::ServerName::try_from(n.to_string())
            .map_err(|_| format!("--server-name {n:?} is not a DNS name or IP address"))?,
        None => transport::server_name_for(host),
    };
    let tls = if args.has("plain") {
        None
    } else {
        let file = |name: &str, default: &str| PathBuf::from(args.value(name).unwrap_or(default));
        let config = transport::client_config(
            &file("ca", "./data/tls/ca.pem"),
            &file("cert", "./data/tls/client.pem"),
            &file("key", "./data/tls/client.key"),
        )?;
        Some(config)
    };
    Ok(Target {
        address,
        tls,
        server_name,
        encoding,
        http,
        timeout: Duration::from_secs(timeout),
    })
}

fn usage_error(message: &str) -> i32 {
    eprintln!("ksg conformance: {message}\nRun `ksg conformance --help` for usage.");
    2
}
