//! A tiny INI reader for the `.conf` files: `[sections]`, `key = value`, double-quoted values,
//! and `;` or `#` comments (whole lines, or after whitespace following a value). Every error and
//! every entry carries its file and line.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem in a configuration file, reported as `file:line: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line number (0 when the problem is the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for ConfError {}

/// One `key = value` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key as written.
    pub key: String,
    /// The value, unquoted.
    pub value: String,
    /// Its line.
    pub line: usize,
}

/// One `[section]` and its entries, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// The name between the brackets.
    pub name: String,
    /// Its line.
    pub line: usize,
    /// Entries in file order.
    pub entries: Vec<Entry>,
}

/// A parsed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ini {
    /// Where it came from, for messages.
    pub path: PathBuf,
    /// Sections in file order.
    pub sections: Vec<Section>,
}

impl Ini {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Ini, ConfError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfError {
            path: path.to_path_buf(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        Ini::parse(&text, path)
    }

    /// Parses `text`, naming `path` in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Ini, ConfError> {
        let mut sections: Vec<Section> = Vec::new();
        let err = |line: usize, message: String| ConfError {
            path: path.to_path_buf(),
            line,
            message,
        };
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with(';') || l.starts_with('#') {
                continue;
            }
            if let Some(rest) = l.strip_prefix('[') {
                let Some((name, after)) = rest.split_once(']') else {
                    return Err(err(line, "section header without ']'".into()));
                };
                if !is_comment_or_empty(after) {
                    return Err(err(line, "text after the section header".into()));
                }
                let name = name.trim();
                if name.is_empty() {
                    return Err(err(line, "empty section name".into()));
                }
                sections.push(Section {
                    name: name.to_string(),
                    line,
                    entries: Vec::new(),
                });
                continue;
            }
            let Some((key, value)) = l.split_once('=') else {
                return Err(err(line, format!("expected `key = value`, found {l:?}")));
            };
            let key = key.trim();
            if key.is_empty() || key.contains(char::is_whitespace) {
                return Err(err(line, format!("bad key {key:?}")));
            }
            let value = parse_value(value.trim()).map_err(|m| err(line, m))?;
            let Some(section) = sections.last_mut() else {
                return Err(err(line, format!("`{key}` comes before any [section]")));
            };
            section.entries.push(Entry {
                key: key.to_string(),
                value,
                line,
            });
        }
        Ok(Ini {
            path: path.to_path_buf(),
            sections,
        })
    }
}

fn is_comment_or_empty(s: &str) -> bool {
    let s = s.trim();
    s.is_empty() || s.starts_with(';') || s.starts_with('#')
}

fn parse_value(v: &str) -> Result<String, String> {
    if let Some(rest) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    if !is_comment_or_empty(&rest[i + 1..]) {
                        return Err("text after the closing quote".into());
                    }
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, e @ ('"' | '\\'))) => out.push(e),
                    Some((_, e)) => {
                        out.push('\\');
                        out.push(e);
                    }
                    None => return Err("unterminated quoted value".into()),
                },
                c => out.push(c),
            }
        }
        return Err("unterminated quoted value".into());
    }
    // An unquoted value ends at a comment that follows whitespace.
    let end = v
        .char_indices()
        .find(|&(i, c)| (c == ';' || c == '#') && i > 0 && v[..i].ends_with(char::is_whitespace))
        .map_or(v.len(), |(i, _)| i);
    Ok(v[..end].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_examples() {
        let text = "; comment\n[p6ksg-gen]\nbaseKeyPath=\"ksgbaseKey.txt\"\nserverLogFlags=1036 ; trace\n\
                    HSM_addr=123.10.3.45\n\n[p6kmip-server-auxiliary]\nprofiles =\nvendorId = \"www.p6r.com; KSG 2018.1\"\n";
        let ini = Ini::parse(text, Path::new("x.conf")).expect("parses");
        assert_eq!(ini.sections.len(), 2);
        let e = &ini.sections[0].entries;
        assert_eq!(
            (e[0].key.as_str(), e[0].value.as_str(), e[0].line),
            ("baseKeyPath", "ksgbaseKey.txt", 3)
        );
        assert_eq!(e[1].value, "1036");
        assert_eq!(e[2].value, "123.10.3.45");
        let a = &ini.sections[1].entries;
        assert_eq!(a[0].value, "");
        assert_eq!(a[1].value, "www.p6r.com; KSG 2018.1");
    }

    #[test]
    fn errors_name_file_and_line() {
        for (text, line) in [
            ("[a]\nkey\n", 2),
            ("key = 1\n", 1),
            ("[a\n", 1),
            ("[a]\nk = \"open\n", 2),
            ("[a]\nk = \"v\" extra\n", 2),
        ] {
            let e = Ini::parse(text, Path::new("confs/ksg.conf")).expect_err(text);
            assert_eq!(e.line, line, "{text}");
            assert!(
                e.to_string()
                    .starts_with(&format!("confs/ksg.conf:{line}: ")),
                "{e}"
            );
        }
    }
}
