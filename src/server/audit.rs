//! The audit log: one line per state-changing or key-revealing batch item, and per refused one
//! (time, peer address, client identity, operation, Unique Identifier, result). It never holds
//! key material: the request path hands over only `AuditRecord`s. The file is opened for
//! appending only, created with mode 0600.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::service::AuditRecord;

/// An open audit log.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    /// Written without a lock: each request's lines go in one `write` on a file opened for
    /// appending, which the kernel appends whole (a lock here queued every request behind
    /// another's system call).
    file: File,
}

impl AuditLog {
    /// Opens (or creates, 0600) `path` for appending.
    pub fn open(path: &Path) -> Result<AuditLog, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("auditLog {}: {e}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("auditLog {}: {e}", path.display()))?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends the lines for one request's `records` (nothing when there are none).
    pub fn write(
        &self,
        now: i64,
        peer: SocketAddr,
        identity: Option<&str>,
        records: &[AuditRecord],
    ) {
        if records.is_empty() {
            return;
        }
        let time = crate::ttlv::format_iso8601(now, None);
        // One buffer for every line, written in place: no string per field.
        let mut text = String::with_capacity(160 * records.len());
        for r in records {
            line(&mut text, &time, peer, identity, r);
        }
        if let Err(e) = (&self.file).write_all(text.as_bytes()) {
            crate::log::error(&format!("audit log {}: {e}", self.path.display()));
        }
    }
}

/// Appends `text` quoted, or `-` when there is none.
fn quoted_or_dash(out: &mut String, text: Option<&str>) {
    use std::fmt::Write as _;
    match text {
        // Writing to a String cannot fail.
        Some(t) => {
            let _ = write!(out, "{t:?}");
        }
        None => out.push('-'),
    }
}

/// Appends one audit line to `out`.
fn line(out: &mut String, time: &str, peer: SocketAddr, identity: Option<&str>, r: &AuditRecord) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = write!(out, "{time} peer={peer} identity=");
    quoted_or_dash(out, identity);
    let _ = write!(
        out,
        " operation={} uid=",
        crate::ops::operation_name(r.operation)
    );
    quoted_or_dash(out, r.uid.as_deref());
    let _ = write!(out, " result={:?}", r.status);
    if let Some(reason) = &r.reason {
        let _ = write!(out, " reason={reason}");
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ttlv::tables::enums::{Operation, ResultStatus};

    #[test]
    fn requests_writing_at_once_leave_whole_lines_in_request_order_per_thread() {
        let dir = crate::test_dir::TempDir::new("audit");
        let path = dir.join("audit.log");
        let log = AuditLog::open(&path).expect("open");
        let peer: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        let (threads, requests) = (8, 300);
        std::thread::scope(|s| {
            for t in 0..threads {
                let log = &log;
                s.spawn(move || {
                    for i in 0..requests {
                        // Two lines a request, as a two-item batch gives.
                        let r = |uid: String| AuditRecord {
                            operation: Operation::Get,
                            uid: Some(uid),
                            status: ResultStatus::Success,
                            reason: None,
                        };
                        let records = [r(format!("{t}-{i}-a")), r(format!("{t}-{i}-b"))];
                        log.write(0, peer, Some("client"), &records);
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), threads * requests * 2);
        let mut next = vec![0usize; threads];
        for pair in lines.chunks(2) {
            let uid = |l: &str| {
                assert!(
                    l.starts_with("1970-01-01T00:00:00") && l.ends_with("result=Success"),
                    "a whole line: {l}"
                );
                l.split("uid=\"")
                    .nth(1)
                    .expect("uid")
                    .split('"')
                    .next()
                    .expect("uid")
                    .to_string()
            };
            let (a, b) = (uid(pair[0]), uid(pair[1]));
            let t: usize = a
                .split('-')
                .next()
                .expect("thread")
                .parse()
                .expect("number");
            assert_eq!(
                a,
                format!("{t}-{}-a", next[t]),
                "a request's lines stay together, in order"
            );
            assert_eq!(b, format!("{t}-{}-b", next[t]));
            next[t] += 1;
        }
    }

    #[test]
    fn a_line_names_who_did_what_to_which_object_and_how_it_ended() {
        let r = AuditRecord {
            operation: Operation::Get,
            uid: Some("12".into()),
            status: ResultStatus::OperationFailed,
            reason: Some("PermissionDenied".into()),
        };
        let peer: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        let mut out = String::new();
        line(
            &mut out,
            "2026-01-01T00:00:00+00:00",
            peer,
            Some("other client"),
            &r,
        );
        assert_eq!(
            out,
            "2026-01-01T00:00:00+00:00 peer=127.0.0.1:4000 identity=\"other client\" \
             operation=Get uid=\"12\" result=OperationFailed reason=PermissionDenied\n"
        );
        let anonymous = AuditRecord {
            uid: None,
            reason: None,
            ..r
        };
        out.clear();
        line(&mut out, "t", peer, None, &anonymous);
        assert_eq!(
            out,
            "t peer=127.0.0.1:4000 identity=- operation=Get uid=- result=OperationFailed\n"
        );
    }
}
