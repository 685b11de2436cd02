//! Finding the first difference between two item trees, reported by path, for tests and for the
//! conformance runner.

use super::{Item, Value};

/// Where two trees first differ: a path like `RequestMessage/BatchItem[1]/Operation`, and the
/// two sides in short form (byte strings by length and a prefix, never whole key material).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// Path from the root to the differing item.
    pub path: String,
    /// What the left tree has there.
    pub left: String,
    /// What the right tree has there.
    pub right: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} vs {}", self.path, self.left, self.right)
    }
}

/// The first difference between `a` and `b`, depth first, or `None` if they are equal.
pub fn first_difference(a: &Item, b: &Item) -> Option<Difference> {
    walk(a, b, a.tag.to_string())
}

fn walk(a: &Item, b: &Item, path: String) -> Option<Difference> {
    if a.tag != b.tag {
        return Some(Difference {
            path,
            left: a.tag.to_string(),
            right: b.tag.to_string(),
        });
    }
    match (&a.value, &b.value) {
        (Value::Structure(x), Value::Structure(y)) => {
            for (i, (cx, cy)) in x.iter().zip(y).enumerate() {
                let nth = x[..i].iter().filter(|c| c.tag == cx.tag).count();
                if let Some(d) = walk(cx, cy, format!("{path}/{}[{nth}]", cx.tag)) {
                    return Some(d);
                }
            }
            (x.len() != y.len()).then(|| Difference {
                path,
                left: format!("{} children", x.len()),
                right: format!("{} children", y.len()),
            })
        }
        (x, y) if x == y => None,
        (x, y) => Some(Difference {
            path,
            left: short(x),
            right: short(y),
        }),
    }
}

fn short(v: &Value) -> String {
    match v {
        Value::ByteString(b) | Value::BigInteger(b) => {
            let head: String = b.iter().take(8).map(|x| format!("{x:02x}")).collect();
            format!("{} ({} bytes, {head}…)", v.item_type().name(), b.len())
        }
        other => format!("{other:?}"),
    }
}
