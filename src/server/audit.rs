//! The audit log: one line per state-changing or key-revealing batch item, and per refused one
//! (time, peer address, client identity, operation, Unique Identifier, result). It never holds
//! key material: the request path hands over only `AuditRecord`s. The file is opened for
//! appending only, created with mode 0600.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::service::AuditRecord;

/// An open audit log.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
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
            file: Mutex::new(file),
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
        let who = identity.map_or_else(|| "-".to_string(), |i| format!("{i:?}"));
        let mut text = String::new();
        for r in records {
            text.push_str(&line(&time, peer, &who, r));
        }
        let written = match self.file.lock() {
            Ok(mut f) => f.write_all(text.as_bytes()),
            Err(_) => Err(std::io::Error::other("audit log lock poisoned")),
        };
        if let Err(e) = written {
            crate::log::error(&format!("audit log {}: {e}", self.path.display()));
        }
    }
}

/// One audit line.
fn line(time: &str, peer: SocketAddr, who: &str, r: &AuditRecord) -> String {
    let mut s = format!(
        "{time} peer={peer} identity={who} operation={} uid={} result={:?}",
        crate::ops::operation_name(r.operation),
        r.uid
            .as_deref()
            .map_or_else(|| "-".to_string(), |u| format!("{u:?}")),
        r.status
    );
    if let Some(reason) = &r.reason {
        s.push_str(&format!(" reason={reason}"));
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ttlv::tables::enums::{Operation, ResultStatus};

    #[test]
    fn a_line_names_who_did_what_to_which_object_and_how_it_ended() {
        let r = AuditRecord {
            operation: Operation::Get,
            uid: Some("12".into()),
            status: ResultStatus::OperationFailed,
            reason: Some("PermissionDenied".into()),
        };
        let peer: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        assert_eq!(
            line("2026-01-01T00:00:00+00:00", peer, "\"other client\"", &r),
            "2026-01-01T00:00:00+00:00 peer=127.0.0.1:4000 identity=\"other client\" \
             operation=Get uid=\"12\" result=OperationFailed reason=PermissionDenied\n"
        );
    }
}
