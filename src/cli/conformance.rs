//! `ksg conformance`: replays OASIS KMIP XML test cases against a live KMIP server.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::args::Args;
use crate::conformance::transport::{Connection, Target};
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
";

const HELP_REST: &str =
    "  --skip FILE          test files not to run: one per line, a file name, the end of a path or
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
            &super::connect::VALUE_OPTIONS[..],
            &["skip", "skip-section"],
        ]
        .concat(),
        &[&super::connect::SWITCHES[..], &["verbose", "help"]].concat(),
    ) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    if args.has("help") {
        print!("{HELP}{}{HELP_REST}", super::connect::HELP);
        return 0;
    }
    let target = match super::connect::target(&args, None) {
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

fn usage_error(message: &str) -> i32 {
    eprintln!("ksg conformance: {message}\nRun `ksg conformance --help` for usage.");
    2
}
