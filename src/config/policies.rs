//! `p6kmip_policies.conf` (optional): site operation policies, which an object names with its
//! Operation Policy Name, beside the built-in `default` and `public`.
//!
//! ```ini
//! [policy shared-encrypt]
//! ; OBJECT_TYPE.OPERATION = AllowAll | AllowOwner | DisallowAll; either side may be *
//! SymmetricKey.Encrypt = AllowAll
//! SymmetricKey.Decrypt = AllowAll
//! *.Locate = AllowAll
//! ```
//!
//! The most specific rule wins (type and operation, then operation, then type, then `*.*`);
//! what no rule names is AllowOwner.

use std::path::Path;

use super::ini::{ConfError, Ini};
use crate::ttlv::tables;

/// The policies file's name in the confs directory.
pub const POLICY_CONF: &str = "p6kmip_policies.conf";

/// The built-in policy names, which a site file may not redefine.
pub const BUILT_IN: [&str; 2] = ["default", "public"];

/// Who may perform an operation on an object (KMIP 1.x operation policies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Every authenticated client.
    AllowAll,
    /// The object's owner (the client that made it).
    AllowOwner,
    /// No one, not even the owner.
    DisallowAll,
}

/// One rule: an object type (None: any) and an operation (None: any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRule {
    /// Object Type value.
    pub object_type: Option<u32>,
    /// Operation value.
    pub operation: Option<u32>,
    /// What it allows.
    pub permission: Permission,
}

/// A site policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SitePolicy {
    /// Its name (what Operation Policy Name holds).
    pub name: String,
    /// Its rules.
    pub rules: Vec<PolicyRule>,
}

impl SitePolicy {
    /// The permission for `object_type` and `operation`: the most specific rule, else
    /// AllowOwner.
    pub fn permission(&self, object_type: u32, operation: u32) -> Permission {
        let find = |t: Option<u32>, o: Option<u32>| {
            self.rules
                .iter()
                .find(|r| r.object_type == t && r.operation == o)
                .map(|r| r.permission)
        };
        find(Some(object_type), Some(operation))
            .or_else(|| find(None, Some(operation)))
            .or_else(|| find(Some(object_type), None))
            .or_else(|| find(None, None))
            .unwrap_or(Permission::AllowOwner)
    }
}

/// Loads the site policies from `confs_dir` (none when the file is absent).
pub fn load(confs_dir: &Path) -> Result<Vec<SitePolicy>, ConfError> {
    let path = confs_dir.join(POLICY_CONF);
    if !path.exists() {
        return Ok(Vec::new());
    }
    parse(&Ini::load(&path)?)
}

/// Reads the policies of a parsed file.
pub fn parse(ini: &Ini) -> Result<Vec<SitePolicy>, ConfError> {
    let err = |line: usize, message: String| ConfError {
        path: ini.path.clone(),
        line,
        message,
    };
    let mut out: Vec<SitePolicy> = Vec::new();
    for section in &ini.sections {
        let name = section
            .name
            .strip_prefix("policy ")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                err(
                    section.line,
                    format!("section [{}] should be [policy NAME]", section.name),
                )
            })?;
        if BUILT_IN.contains(&name) {
            return Err(err(
                section.line,
                format!("policy {name:?} is built in and cannot be redefined"),
            ));
        }
        if out.iter().any(|p| p.name == name) {
            return Err(err(
                section.line,
                format!("policy {name:?} is defined twice"),
            ));
        }
        let mut rules = Vec::new();
        for e in &section.entries {
            let (t, o) = e.key.split_once('.').ok_or_else(|| {
                err(
                    e.line,
                    format!(
                        "`{}` should be OBJECT_TYPE.OPERATION (either may be *)",
                        e.key
                    ),
                )
            })?;
            let lookup = |table: &str, v: &str| -> Result<Option<u32>, ConfError> {
                if v.trim() == "*" {
                    return Ok(None);
                }
                tables::enum_by_name(table)
                    .and_then(|t| t.by_name(v.trim()))
                    .map(|n| Some(n.value))
                    .ok_or_else(|| err(e.line, format!("unknown {table} {:?}", v.trim())))
            };
            let permission = match e.value.as_str() {
                "AllowAll" => Permission::AllowAll,
                "AllowOwner" => Permission::AllowOwner,
                "DisallowAll" => Permission::DisallowAll,
                other => {
                    return Err(err(
                        e.line,
                        format!("`{other}`: expected AllowAll, AllowOwner or DisallowAll"),
                    ));
                }
            };
            rules.push(PolicyRule {
                object_type: lookup("ObjectType", t)?,
                operation: lookup("Operation", o)?,
                permission,
            });
        }
        out.push(SitePolicy {
            name: name.to_string(),
            rules,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ttlv::tables::enums::{ObjectType, Operation};

    fn ini(text: &str) -> Ini {
        Ini::parse(text, Path::new("p6kmip_policies.conf")).expect("ini")
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let p = parse(&ini(
            "[policy shared]\nSymmetricKey.Encrypt = AllowAll\n*.Encrypt = DisallowAll\n\
             SymmetricKey.* = AllowAll\n*.* = DisallowAll\n",
        ))
        .expect("parse");
        let p = &p[0];
        let sym = ObjectType::SymmetricKey.to_u32();
        let private = ObjectType::PrivateKey.to_u32();
        assert_eq!(
            p.permission(sym, Operation::Encrypt.to_u32()),
            Permission::AllowAll
        );
        assert_eq!(
            p.permission(private, Operation::Encrypt.to_u32()),
            Permission::DisallowAll
        );
        assert_eq!(
            p.permission(sym, Operation::Get.to_u32()),
            Permission::AllowAll
        );
        assert_eq!(
            p.permission(private, Operation::Get.to_u32()),
            Permission::DisallowAll
        );
        let empty = &parse(&ini("[policy empty]\n")).expect("parse")[0];
        assert_eq!(
            empty.permission(sym, Operation::Get.to_u32()),
            Permission::AllowOwner
        );
    }

    #[test]
    fn mistakes_name_the_line() {
        for (text, line, words) in [
            (
                "[policy x]\nSymmetricKey.Encrypt = Maybe\n",
                2,
                "expected AllowAll",
            ),
            (
                "[policy x]\nSymmetricKey = AllowAll\n",
                2,
                "OBJECT_TYPE.OPERATION",
            ),
            (
                "[policy x]\nSymmetricKee.Get = AllowAll\n",
                2,
                "unknown ObjectType",
            ),
            ("[policy default]\n", 1, "built in"),
            ("[shared]\n", 1, "[policy NAME]"),
            ("[policy x]\n[policy x]\n", 2, "twice"),
        ] {
            let e = parse(&ini(text)).expect_err(text);
            assert_eq!(e.line, line, "{text}");
            assert!(e.message.contains(words), "{text}: {}", e.message);
        }
    }
}
