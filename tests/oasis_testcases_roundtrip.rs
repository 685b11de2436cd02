//! Every RequestMessage and ResponseMessage of the OASIS KMIP 1.0–2.1 XML test cases decodes,
//! converts to JSON and back to the same tree (and to XML and back), and — when its only
//! placeholders are `$NOW…` or in text fields — converts to TTLV and back to the same tree and
//! the same bytes.
//!
//! Runs without the libtest harness so it can print counts per folder and end with
//! `N passed, M failed` (one unit per file).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{FOLDERS, KNOWN_DEFECTS, NOW, load, testcases_root, xml_files};
use ksg::ttlv::diff::first_difference;
use ksg::ttlv::{Item, Limits, Tag, binary, json, xml};

#[derive(Default)]
struct Counts {
    files: usize,
    passed: usize,
    messages: usize,
    ttlv: usize,
}

fn check_message(m: &Item, limits: &Limits) -> Result<bool, String> {
    if m.tag != Tag::REQUEST_MESSAGE && m.tag != Tag::RESPONSE_MESSAGE {
        return Err(format!("unexpected top-level element {}", m.tag));
    }
    let text = json::encode(m);
    let back =
        json::decode(&text, NOW, limits).map_err(|e| format!("JSON does not decode: {e}"))?;
    if let Some(d) = first_difference(m, &back) {
        return Err(format!("XML→JSON→tree differs at {d}"));
    }
    let text = xml::encode(m);
    let back = xml::decode(&text, NOW, limits)
        .map_err(|e| format!("XML re-encoding does not decode: {e}"))?;
    if let Some(d) = first_difference(m, &back) {
        return Err(format!("tree→XML→tree differs at {d}"));
    }
    if m.first_placeholder().is_some() {
        return Ok(false);
    }
    let bytes = binary::to_vec(m).map_err(|e| format!("TTLV encode: {e}"))?;
    let back = binary::decode(&bytes, limits).map_err(|e| format!("TTLV does not decode: {e}"))?;
    if let Some(d) = first_difference(m, &back) {
        return Err(format!("tree→TTLV→tree differs at {d}"));
    }
    let again = binary::to_vec(&back).map_err(|e| format!("TTLV re-encode: {e}"))?;
    if again != bytes {
        return Err("TTLV re-encoding is not byte-identical".to_string());
    }
    Ok(true)
}

fn main() {
    let root = testcases_root();
    if !root.join("v1.4").is_dir() {
        eprintln!(
            "OASIS test cases not found at {} (set KSG_TESTCASES)",
            root.display()
        );
        println!("0 passed, 1 failed");
        std::process::exit(1);
    }
    println!("OASIS KMIP test cases from {}", root.display());
    println!("known defects handled:");
    for d in KNOWN_DEFECTS {
        println!("  {}: {}", d.file, d.reason);
    }
    let limits = Limits {
        max_size: 64 << 20,
        ..Limits::default()
    };
    let mut by_folder: BTreeMap<String, Counts> = BTreeMap::new();
    let mut failures = Vec::new();
    for folder in FOLDERS {
        for path in xml_files(&root.join(folder)) {
            let rel = path.strip_prefix(&root).unwrap_or(&path);
            let group = rel.parent().unwrap_or(Path::new("")).display().to_string();
            let c = by_folder.entry(group).or_default();
            c.files += 1;
            let result = load(&path).and_then(|doc| {
                if doc.messages.is_empty() {
                    return Err("no messages".to_string());
                }
                let mut ttlv = 0;
                for (i, m) in doc.messages.iter().enumerate() {
                    ttlv += usize::from(
                        check_message(m, &limits).map_err(|e| format!("message {i}: {e}"))?,
                    );
                }
                Ok((doc.messages.len(), ttlv))
            });
            match result {
                Ok((messages, ttlv)) => {
                    c.passed += 1;
                    c.messages += messages;
                    c.ttlv += ttlv;
                }
                Err(e) => failures.push(format!("FAIL {}: {e}", rel.display())),
            }
        }
    }
    let (mut files, mut passed, mut messages, mut ttlv) = (0, 0, 0, 0);
    println!(
        "{:<40} {:>6} {:>6} {:>9} {:>9}",
        "folder", "files", "passed", "messages", "via TTLV"
    );
    for (folder, c) in &by_folder {
        println!(
            "{folder:<40} {:>6} {:>6} {:>9} {:>9}",
            c.files, c.passed, c.messages, c.ttlv
        );
        files += c.files;
        passed += c.passed;
        messages += c.messages;
        ttlv += c.ttlv;
    }
    println!(
        "{:<40} {files:>6} {passed:>6} {messages:>9} {ttlv:>9}",
        "total"
    );
    for f in &failures {
        println!("{f}");
    }
    let failed = files - passed;
    if files == 0 {
        println!("no test-case files found under {}", root.display());
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 || files == 0 {
        std::process::exit(1);
    }
}
