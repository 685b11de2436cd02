//! The KMIP conformance runner: replays OASIS XML test cases against a live KMIP server.
//!
//! A test case is one file of request and response messages (SOURCE.md §4.1). The runner sends
//! each request in turn on one connection, after filling in what earlier responses gave
//! ([`compare::substitute_request`]), and compares the server's answer with the expected
//! response ([`compare::compare_response`]); the first difference fails the file.
//!
//! Around the comparison rules (see [`compare`]), the runner:
//! - pairs the i-th request with the i-th response, and skips files whose requests include
//!   Notify or Put (server to client, TC-NP);
//! - repairs the files in [`ERRATA`], and in every file collapses runs of spaces in Attribute
//!   Names (the v1.0–1.2 extractions write `Unique   Identifier`);
//! - lets a request use a placeholder that no earlier expected response defines when an earlier
//!   response holds a literal with the same tag instead (CS-AC-M-6: a literal MAC Data, then
//!   MAC Verify with `$MAC_DATA`): the value the server gave there is captured;
//! - chooses `$…_RANDOM…` values itself (client-chosen identifiers, TC-IMPEXP-5-20);
//! - loads each file just before running it, so `$NOW` is the current time.
//!
//! It speaks only generic KMIP through the codec in [`crate::ttlv`], so it can test any KMIP
//! server; the core ([`run_file`]) talks to the server through a [`Transport`], so it is tested
//! without sockets.

pub mod compare;
pub mod transport;

use std::path::{Path, PathBuf};

use crate::ttlv::tables::enums::Operation;
use crate::ttlv::tables::{self, TagKind};
use crate::ttlv::{Document, Item, Limits, Tag, Value, xml};

use compare::Bindings;

/// Largest test-case file and largest response accepted, in bytes.
pub const MAX_MESSAGE: usize = 64 << 20;

/// Decoding limits for test-case files and responses.
pub fn limits() -> Limits {
    Limits {
        max_size: MAX_MESSAGE,
        max_depth: 64,
        max_items: 1 << 22,
    }
}

/// Sends one request message to the server and returns its response message.
pub trait Transport {
    /// One round trip. An error (connection lost, timeout, undecodable answer) ends the file.
    fn exchange(&mut self, request: &Item) -> Result<Item, String>;
}

/// How one test-case file went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every response matched.
    Pass,
    /// The first problem, e.g. `step 3 (Get): ResponseMessage/…: expected X, got Y`.
    Fail(String),
    /// Not run, and why.
    Skip(String),
}

/// One exchange of a file, as reported to the caller of [`run_file_with`].
#[derive(Clone, Debug)]
pub struct Step<'a> {
    /// 0-based position of the request in the file.
    pub index: usize,
    /// The operations of its batch items, e.g. `Create` or `Create, Get`.
    pub operation: &'a str,
    /// `Ok` if the response matched, else the reason.
    pub result: Result<(), &'a str>,
}

/// A test-case file that cannot be used as published, and how the runner repairs it.
#[derive(Debug)]
pub struct Erratum {
    /// File name.
    pub file: &'static str,
    /// What is wrong (SOURCE.md §5).
    pub reason: &'static str,
    /// The repair.
    pub repair: Repair,
}

/// A repair of a test-case file.
#[derive(Debug)]
pub enum Repair {
    /// Rewrites the text before it is decoded.
    Text(fn(&str) -> String),
    /// Rewrites the decoded messages.
    Messages(fn(&mut Vec<Item>)),
}

/// The runner's errata list: files that cannot be run as published.
pub const ERRATA: &[Erratum] = &[
    Erratum {
        file: "TC-ECDSA-SIGN-1-14.xml",
        reason: "ends with </KMIP> twice, so it is not well-formed XML",
        repair: Repair::Text(drop_second_root_end),
    },
    Erratum {
        file: "TC-DERIVEKEY-4-10.xml",
        reason: "the Destroy request comes before the Revoke request, but the responses answer \
                 Revoke first",
        repair: Repair::Messages(requests_in_response_order),
    },
];

fn drop_second_root_end(text: &str) -> String {
    match (text.find("</KMIP>"), text.rfind("</KMIP>")) {
        (Some(first), Some(last)) if first != last => {
            format!("{}{}", &text[..last], &text[last + "</KMIP>".len()..])
        }
        _ => text.to_string(),
    }
}

/// Reorders the requests so that the i-th request has the operations of the i-th response,
/// then interleaves them request, response, … (unchanged if that is not possible).
fn requests_in_response_order(messages: &mut Vec<Item>) {
    let (requests, responses): (Vec<Item>, Vec<Item>) = messages
        .iter()
        .cloned()
        .partition(|m| m.tag == Tag::REQUEST_MESSAGE);
    if requests.len() != responses.len() {
        return;
    }
    let mut pool: Vec<Option<Item>> = requests.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(messages.len());
    for response in responses {
        let ops = operations(&response);
        let Some(slot) = pool
            .iter_mut()
            .find(|r| r.as_ref().is_some_and(|r| operations(r) == ops))
        else {
            return;
        };
        if let Some(request) = slot.take() {
            out.push(request);
        }
        out.push(response);
    }
    *messages = out;
}

fn operations(message: &Item) -> Vec<u32> {
    message
        .children_with(Tag::BATCH_ITEM)
        .filter_map(|b| match b.child(Tag::OPERATION).map(|o| &o.value) {
            Some(Value::Enumeration(v)) => Some(*v),
            _ => None,
        })
        .collect()
}

fn operation_names(message: &Item) -> String {
    let table = match tables::tag_info(Tag::OPERATION).map(|t| t.kind) {
        Some(TagKind::Enumeration(id)) => Some(id.table()),
        _ => None,
    };
    let names: Vec<String> = operations(message)
        .into_iter()
        .map(|v| {
            table
                .and_then(|t| t.by_value(v))
                .map_or_else(|| format!("0x{v:08X}"), |n| n.name.to_string())
        })
        .collect();
    if names.is_empty() {
        "no operation".to_string()
    } else {
        names.join(", ")
    }
}

/// Reads and decodes a test-case file, with `$NOW` standing for `now` (POSIX seconds) and the
/// repair from [`ERRATA`] applied if the file is listed there.
pub fn load_file(path: &Path, now: i64) -> Result<Document, String> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    if raw.len() > MAX_MESSAGE {
        return Err(format!("larger than {MAX_MESSAGE} bytes"));
    }
    let text = String::from_utf8(raw).map_err(|e| format!("not UTF-8: {e}"))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let erratum = ERRATA.iter().find(|e| e.file == name);
    let text = match erratum.map(|e| &e.repair) {
        Some(Repair::Text(f)) => f(&text),
        _ => text,
    };
    let mut doc =
        xml::decode_document(&text, now, &limits()).map_err(|e| format!("cannot parse: {e}"))?;
    if let Some(Repair::Messages(f)) = erratum.map(|e| &e.repair) {
        f(&mut doc.messages);
    }
    doc.messages
        .iter_mut()
        .for_each(single_spaced_attribute_names);
    Ok(doc)
}

/// Collapses runs of spaces in Attribute Names: the v1.0–1.2 extractions often have
/// `Unique   Identifier` for `Unique Identifier` (no KMIP attribute name has two spaces in a
/// row), which a server would not recognise in a request and need not echo in a response.
fn single_spaced_attribute_names(item: &mut Item) {
    match &mut item.value {
        Value::Structure(children) => children.iter_mut().for_each(single_spaced_attribute_names),
        Value::TextString(text) if item.tag == Tag::ATTRIBUTE_NAME && text.contains("  ") => {
            *text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        _ => {}
    }
}

/// Why a file cannot be run by a client, if it cannot: Notify and Put requests go from the
/// server to the client (TC-NP).
pub fn skip_reason(doc: &Document) -> Option<String> {
    let server_to_client = [Operation::Notify.to_u32(), Operation::Put.to_u32()];
    doc.messages
        .iter()
        .filter(|m| m.tag == Tag::REQUEST_MESSAGE)
        .any(|m| operations(m).iter().any(|o| server_to_client.contains(o)))
        .then(|| "server-to-client Notify/Put".to_string())
}

/// Runs one test case over `transport` (a fresh connection): see [`run_file_with`].
pub fn run_file(transport: &mut dyn Transport, doc: &Document) -> Outcome {
    run_file_with(transport, doc, &mut |_| {})
}

/// Runs one test case over `transport`, top to bottom, calling `on_step` after each exchange.
/// The i-th request is paired with the i-th response; the first mismatch fails the file.
pub fn run_file_with(
    transport: &mut dyn Transport,
    doc: &Document,
    on_step: &mut dyn FnMut(&Step<'_>),
) -> Outcome {
    if let Some(reason) = skip_reason(doc) {
        return Outcome::Skip(reason);
    }
    let mut requests = Vec::new();
    let mut responses = Vec::new();
    for (i, m) in doc.messages.iter().enumerate() {
        match m.tag {
            Tag::REQUEST_MESSAGE => requests.push(m),
            Tag::RESPONSE_MESSAGE => responses.push(m),
            other => return Outcome::Fail(format!("message {i} is a {other}, not a request")),
        }
    }
    if requests.is_empty() {
        return Outcome::Fail("no request messages".to_string());
    }
    if requests.len() != responses.len() {
        return Outcome::Fail(format!(
            "{} requests but {} responses",
            requests.len(),
            responses.len()
        ));
    }
    let captures = implicit_captures(&requests, &responses);
    let mut bindings = Bindings::new();
    for (index, (request, expected)) in requests.iter().zip(&responses).enumerate() {
        let operation = operation_names(request);
        let result = step(transport, request, expected, &mut bindings);
        on_step(&Step {
            index,
            operation: &operation,
            result: result.as_ref().map(|_| ()).map_err(String::as_str),
        });
        let actual = match result {
            Ok(actual) => actual,
            Err(e) => return Outcome::Fail(format!("step {index} ({operation}): {e}")),
        };
        for (_, tag, name) in captures.iter().filter(|(at, _, _)| *at == index) {
            if bindings.var(name).is_none()
                && let Some(found) = first_with_tag(&actual, *tag)
            {
                bindings.bind(name, found.value.clone());
            }
        }
    }
    Outcome::Pass
}

fn step(
    transport: &mut dyn Transport,
    request: &Item,
    expected: &Item,
    bindings: &mut Bindings,
) -> Result<Item, String> {
    let sent = compare::substitute_request(request, bindings)?;
    let actual = transport.exchange(&sent)?;
    compare::compare_response(expected, &actual, &sent, bindings).map_err(|d| d.to_string())?;
    Ok(actual)
}

/// Placeholders that a request uses but no earlier expected response defines, where an
/// earlier response has a literal in the same place instead (e.g. CS-AC-M-6-14 expects a
/// literal MAC Data and then verifies `$MAC_DATA`; TC-RNG-ATTR-2-13 creates
/// `$UNIQUE_IDENTIFIER_1` and then reads `$UNIQUE_IDENTIFIER_0`). Each becomes a capture from
/// the latest earlier response holding an item with the tag the request uses:
/// (response index, tag, name).
fn implicit_captures(requests: &[&Item], responses: &[&Item]) -> Vec<(usize, Tag, String)> {
    let mut defined: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (k, request) in requests.iter().enumerate() {
        if k > 0 {
            placeholders(responses[k - 1], &mut |_, name| {
                defined.push(name.to_string())
            });
        }
        let mut used = Vec::new();
        placeholders(request, &mut |tag, name| used.push((tag, name.to_string())));
        for (tag, name) in used {
            if name.contains("_RANDOM") || defined.contains(&name) {
                continue;
            }
            if let Some(j) = (0..k)
                .rev()
                .find(|&j| first_with_tag(responses[j], tag).is_some())
            {
                out.push((j, tag, name.clone()));
                defined.push(name);
            }
        }
    }
    out
}

fn placeholders(item: &Item, f: &mut dyn FnMut(Tag, &str)) {
    match &item.value {
        Value::Structure(children) => children.iter().for_each(|c| placeholders(c, f)),
        v => {
            if let Some(name) = compare::placeholder_name(v) {
                f(item.tag, name);
            }
        }
    }
}

fn first_with_tag(item: &Item, tag: Tag) -> Option<&Item> {
    if item.tag == tag && !matches!(item.value, Value::Structure(_)) {
        return Some(item);
    }
    item.children().iter().find_map(|c| first_with_tag(c, tag))
}

/// The test-case files named by `paths`: a file as given, a directory's `*.xml` files at any
/// depth, sorted; in the order of `paths`.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found).map_err(|e| format!("{}: {e}", p.display()))?;
            found.sort();
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(format!("{}: no such file or directory", p.display()));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "xml") {
            out.push(path);
        }
    }
    Ok(())
}

/// A list of test files not to run, one per line: a file name or the end of a path, then
/// optionally a reason. A line starting with `#` is a comment. A line `[NAME]` starts a
/// section that applies only to the server named NAME (`--skip-section NAME`: one backend's
/// limits); entries before any section apply always.
#[derive(Clone, Debug, Default)]
pub struct SkipList {
    entries: Vec<(String, String)>,
}

impl SkipList {
    /// Parses the text of a skip list, keeping the entries of no section and of `section`.
    pub fn parse(text: &str, section: Option<&str>) -> SkipList {
        let mut applies = true;
        let mut entries = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                applies = section == Some(name.trim());
                continue;
            }
            if !applies {
                continue;
            }
            entries.push(match line.split_once(char::is_whitespace) {
                Some((name, reason)) => (name.to_string(), reason.trim().to_string()),
                None => (line.to_string(), String::new()),
            });
        }
        SkipList { entries }
    }

    /// Why `path` is listed, if it is (a generic reason when the list gives none). A name
    /// ending in `*` matches every file name that starts with the rest (`TC-SJ-*`).
    pub fn reason(&self, path: &Path) -> Option<String> {
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default();
        self.entries
            .iter()
            .find(|(name, _)| match name.strip_suffix('*') {
                Some(prefix) => file.starts_with(prefix),
                None => path.ends_with(name),
            })
            .map(|(_, reason)| {
                if reason.is_empty() {
                    "listed in the skip file".to_string()
                } else {
                    reason.clone()
                }
            })
    }
}
