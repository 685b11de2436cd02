//! `ksg codec`: converts KMIP messages between encodings, a whole file at a time.

use std::io::{Read, Write};

use super::args::Args;
use crate::ttlv::{self, Document, Limits, binary, json, tree, xml};

const HELP: &str = "\
Usage: ksg codec --from FMT --to FMT [--now SECONDS] [--max-size BYTES] [FILE]

Converts KMIP messages from one encoding to another. Reads FILE, or standard input when no FILE
is given; writes standard output. A file may hold several messages (an OASIS XML test case, a
JSON array, TTLV frames end to end, hex lines); they come out in the same order.

FMT:
  ttlv   binary TTLV
  hex    TTLV as hex text (spaces, '|' and newlines between bytes are ignored on input;
         one message per line on output)
  xml    the KMIP XML encoding (OASIS test-case files with a <KMIP> root included)
  json   the KMIP JSON encoding (one object, or an array of messages)
  tree   an annotated, indented TTLV dump for people (output only)

Options:
  --now SECONDS      the time that $NOW and $NOW±N placeholders in Date-Time fields stand for
                     (POSIX seconds; default: the current time), so conversions are reproducible
  --max-size BYTES   largest input accepted (default 16 MiB)

Other test-case placeholders ($UNIQUE_IDENTIFIER_0 in text fields, $DATA_0 in byte strings, …)
are kept by XML and JSON; converting a message that holds one in a non-text field to TTLV fails
and names it.

Exit status: 0 on success, 1 on bad input, 2 on bad usage.
";

/// Runs `ksg codec`.
pub fn run(args: &[String]) -> i32 {
    let args = match Args::parse(args, &["from", "to", "now", "max-size"], &["help"]) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    if args.has("help") {
        print!("{HELP}");
        return 0;
    }
    let (Some(from), Some(to)) = (args.value("from"), args.value("to")) else {
        return usage_error("--from and --to are required");
    };
    let Some(from) = Format::parse(from) else {
        return usage_error(&format!("unknown format {from:?}"));
    };
    let Some(to) = Format::parse(to) else {
        return usage_error(&format!("unknown format {to:?}"));
    };
    if from == Format::Tree {
        return usage_error("tree is an output format only");
    }
    let now = match args.value("now") {
        Some(n) => match n.parse::<i64>() {
            Ok(v) => v,
            Err(_) => return usage_error(&format!("--now {n:?} is not a number of seconds")),
        },
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };
    let mut limits = Limits::default();
    if let Some(m) = args.value("max-size") {
        match m.parse() {
            Ok(v) => limits.max_size = v,
            Err(_) => return usage_error(&format!("--max-size {m:?} is not a number")),
        }
    }
    if args.positionals.len() > 1 {
        return usage_error("at most one FILE");
    }
    let source = args.positionals.first().map_or("<stdin>", String::as_str);
    let input = match read_input(args.positionals.first(), limits.max_size) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("ksg codec: {source}: {e}");
            return 1;
        }
    };
    match convert(&input, from, to, now, &limits) {
        Ok(out) => match std::io::stdout().lock().write_all(&out) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("ksg codec: cannot write output: {e}");
                1
            }
        },
        Err(e) => {
            eprintln!("ksg codec: {source}: {e}");
            1
        }
    }
}

fn usage_error(msg: &str) -> i32 {
    eprintln!("ksg codec: {msg}\nRun `ksg codec --help` for usage.");
    2
}

fn read_input(path: Option<&String>, max: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let limit = max as u64 + 1;
    match path {
        Some(p) => std::fs::File::open(p)?.take(limit).read_to_end(&mut buf)?,
        None => std::io::stdin().lock().take(limit).read_to_end(&mut buf)?,
    };
    Ok(buf)
}

/// The encodings `ksg codec` reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Binary TTLV.
    Ttlv,
    /// TTLV as hex text.
    Hex,
    /// KMIP XML.
    Xml,
    /// KMIP JSON.
    Json,
    /// Annotated dump (output only).
    Tree,
}

impl Format {
    /// The format called `name` on the command line.
    pub fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "ttlv" => Format::Ttlv,
            "hex" => Format::Hex,
            "xml" => Format::Xml,
            "json" => Format::Json,
            "tree" => Format::Tree,
            _ => return None,
        })
    }
}

/// Converts `input` from one format to another; errors are ready for a person to read.
pub fn convert(
    input: &[u8],
    from: Format,
    to: Format,
    now: i64,
    limits: &Limits,
) -> Result<Vec<u8>, String> {
    if input.len() > limits.max_size {
        return Err(format!("input is larger than {} bytes", limits.max_size));
    }
    let text = || std::str::from_utf8(input).map_err(|e| format!("input is not UTF-8: {e}"));
    let doc = match from {
        Format::Ttlv => Document {
            messages: binary::decode_stream(input, limits).map_err(|e| e.to_string())?,
            container: None,
        },
        Format::Hex => {
            let bytes = hex_input(text()?)?;
            Document {
                messages: binary::decode_stream(&bytes, limits).map_err(|e| e.to_string())?,
                container: None,
            }
        }
        Format::Xml => xml::decode_document(text()?, now, limits).map_err(|e| e.to_string())?,
        Format::Json => json::decode_document(text()?, now, limits).map_err(|e| e.to_string())?,
        Format::Tree => return Err("tree is an output format only".to_string()),
    };
    let mut out = Vec::new();
    match to {
        Format::Xml => out.extend_from_slice(xml::encode_document(&doc).as_bytes()),
        Format::Json => out.extend_from_slice(json::encode_document(&doc).as_bytes()),
        Format::Ttlv | Format::Hex => {
            for (i, m) in doc.messages.iter().enumerate() {
                let bytes = ttlv::to_ttlv(m).map_err(|e| format!("message {}: {e}", i + 1))?;
                if to == Format::Ttlv {
                    out.extend_from_slice(&bytes);
                } else {
                    let line: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                    out.extend_from_slice(line.as_bytes());
                    out.push(b'\n');
                }
            }
        }
        Format::Tree => {
            let mut offset = 0;
            out.extend_from_slice(tree::HEADING.as_bytes());
            for m in &doc.messages {
                out.extend_from_slice(tree::dump(m, offset).as_bytes());
                offset += tree::encoded_len(m).unwrap_or(0);
            }
        }
    }
    Ok(out)
}

/// Bytes from hex text, ignoring whitespace, `|` and `:` between digits.
fn hex_input(text: &str) -> Result<Vec<u8>, String> {
    let digits: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '|' | ':'))
        .collect();
    let digits = digits.strip_prefix("0x").unwrap_or(&digits);
    if let Some(bad) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("hex input has a non-hex character {bad:?}"));
    }
    if !digits.len().is_multiple_of(2) {
        return Err("hex input has an odd number of digits".to_string());
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16)
                .map_err(|_| format!("not hex at digit {}", i + 1))
        })
        .collect()
}
