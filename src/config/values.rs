//! Reading typed values out of INI entries, with `file:line` in every error and a warning for
//! every key a section does not know.

use super::ini::{ConfError, Entry, Ini};

/// The entries of one file, checked against the keys each section accepts.
#[derive(Debug)]
pub struct Reader<'a> {
    ini: &'a Ini,
}

impl<'a> Reader<'a> {
    /// Wraps `ini`; unknown sections and keys (per `known`: section name and its keys) become
    /// warnings naming file and line.
    pub fn new(ini: &'a Ini, known: &[(&str, &[&str])], warnings: &mut Vec<String>) -> Self {
        for s in &ini.sections {
            match known.iter().find(|(name, _)| *name == s.name) {
                None => warnings.push(format!(
                    "{}:{}: unknown section [{}] ignored",
                    ini.path.display(),
                    s.line,
                    s.name
                )),
                Some((_, keys)) => {
                    for e in &s.entries {
                        if !keys.contains(&e.key.as_str()) {
                            warnings.push(format!(
                                "{}:{}: unknown key `{}` in [{}] ignored",
                                ini.path.display(),
                                e.line,
                                e.key,
                                s.name
                            ));
                        }
                    }
                }
            }
        }
        Reader { ini }
    }

    /// The last entry for `key` in `section` (later lines override earlier ones).
    pub fn entry(&self, section: &str, keys: &[&str]) -> Option<&'a Entry> {
        self.ini
            .sections
            .iter()
            .rev()
            .filter(|s| s.name == section)
            .flat_map(|s| s.entries.iter().rev())
            .find(|e| keys.contains(&e.key.as_str()))
    }

    /// An error about `entry`.
    pub fn error(&self, entry: &Entry, message: impl Into<String>) -> ConfError {
        ConfError {
            path: self.ini.path.clone(),
            line: entry.line,
            message: message.into(),
        }
    }

    /// A string value.
    pub fn string(&self, section: &str, keys: &[&str]) -> Option<String> {
        self.entry(section, keys)
            .map(|e| e.value.clone())
            .filter(|v| !v.is_empty())
    }

    /// An unsigned number, decimal or `0x` hex, within `max`.
    pub fn number(
        &self,
        section: &str,
        keys: &[&str],
        default: u64,
        max: u64,
    ) -> Result<u64, ConfError> {
        let Some(e) = self.entry(section, keys) else {
            return Ok(default);
        };
        let v = parse_number(&e.value).ok_or_else(|| {
            self.error(
                e,
                format!(
                    "`{}` must be a number (decimal or 0x hex), not {:?}",
                    e.key, e.value
                ),
            )
        })?;
        if v > max {
            return Err(self.error(e, format!("`{}` = {v} is larger than {max}", e.key)));
        }
        Ok(v)
    }

    /// A positive number (at least 1).
    pub fn positive(
        &self,
        section: &str,
        keys: &[&str],
        default: u64,
        max: u64,
    ) -> Result<u64, ConfError> {
        let v = self.number(section, keys, default, max)?;
        if v == 0 {
            let e = self
                .entry(section, keys)
                .expect("a zero came from an entry");
            return Err(self.error(e, format!("`{}` must be at least 1", e.key)));
        }
        Ok(v)
    }

    /// A boolean: 0/1, true/false, yes/no, on/off.
    pub fn boolean(&self, section: &str, keys: &[&str], default: bool) -> Result<bool, ConfError> {
        let Some(e) = self.entry(section, keys) else {
            return Ok(default);
        };
        match e.value.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(self.error(e, format!("`{}` must be 0 or 1, not {:?}", e.key, e.value))),
        }
    }

    /// A comma-separated list of numbers (empty is an empty list); `None` when the key is absent.
    pub fn number_list(&self, section: &str, keys: &[&str]) -> Result<Option<Vec<u32>>, ConfError> {
        let Some(e) = self.entry(section, keys) else {
            return Ok(None);
        };
        e.value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                parse_number(s)
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| self.error(e, format!("`{}`: {s:?} is not a number", e.key)))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// Decimal or `0x` hex.
pub fn parse_number(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}
