//! Join Split Key: rebuilds a key from enough of its Split Key parts (fewer than the threshold
//! is a Cryptographic Failure).

use super::attributes::{self, find_int};
use super::create_split_key::{shamir_join, xor_join};
use super::object::{self, payload, uid_item};
use super::{Context, Outcome, keyblock};
use crate::kmip::Error;
use crate::ttlv::tables::enums::{ObjectType, SplitKeyMethod};
use crate::ttlv::{Item, Tag, Value};

/// One part: its identifier (x), threshold, method and share.
struct Part {
    id: i32,
    threshold: i32,
    method: u32,
    share: crate::store::SecretBytes,
}

fn part(ctx: &Context<'_>, uid: &str) -> Result<Part, Error> {
    let obj = object::load(ctx, uid)?;
    if ObjectType::from_u32(obj.object_type) != ObjectType::SplitKey {
        return Err(Error::InvalidField(format!("{uid} is not a Split Key")));
    }
    object::check_not_archived(&obj)?;
    let value = object::stored_value(&obj)?;
    let int = |tag: Tag| match value.child(tag).map(|v| &v.value) {
        Some(Value::Integer(n)) => Ok(*n),
        _ => Err(Error::InvalidField(format!("{uid}: {tag}"))),
    };
    let method = match value.child(Tag::SPLIT_KEY_METHOD).map(|v| &v.value) {
        Some(Value::Enumeration(m)) => *m,
        _ => return Err(Error::InvalidField(format!("{uid}: Split Key Method"))),
    };
    let share = match keyblock::material(&value)? {
        keyblock::Material::Secret(s) => crate::store::SecretBytes::new(s),
        _ => return Err(Error::InvalidField(format!("{uid}: the part's key"))),
    };
    Ok(Part {
        id: int(Tag::KEY_PART_IDENTIFIER)?,
        threshold: int(Tag::SPLIT_KEY_THRESHOLD)?,
        method,
        share,
    })
}

/// Handles one Join Split Key request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let object_type = object::object_type_of(&payload_in)?;
    let mut parts = Vec::new();
    for u in payload_in.children_with(Tag::UNIQUE_IDENTIFIER) {
        match &u.value {
            Value::TextString(s) => parts.push(part(ctx, s)?),
            _ => return Err(Error::InvalidField("Unique Identifier must be text".into())),
        }
    }
    let Some(first) = parts.first() else {
        return Err(Error::MissingData("the parts' Unique Identifiers".into()));
    };
    let (method, threshold) = (first.method, first.threshold);
    let len = first.share.len();
    if parts
        .iter()
        .any(|p| p.method != method || p.threshold != threshold || p.share.len() != len)
    {
        return Err(Error::InvalidField(
            "the parts do not belong together".into(),
        ));
    }
    if (parts.len() as i32) < threshold {
        return Err(Error::CryptographicFailure(format!(
            "{} parts given, {threshold} needed",
            parts.len()
        )));
    }
    let secret = crate::store::SecretBytes::new(match SplitKeyMethod::from_u32(method) {
        SplitKeyMethod::XOR => {
            xor_join(&parts.iter().map(|p| p.share.expose()).collect::<Vec<_>>())
        }
        SplitKeyMethod::PolynomialSharingGF2_8 => {
            let points: Vec<(u8, &[u8])> = parts
                .iter()
                .map(|p| (p.id.clamp(1, 255) as u8, p.share.expose()))
                .collect();
            shamir_join(&points)
        }
        other => {
            return Err(Error::FeatureNotSupported(format!(
                "the {other:?} split key method"
            )));
        }
    });
    let attrs = attributes::parse_all(payload_in.child(Tag::TEMPLATE_ATTRIBUTE))?;
    let bits = find_int(&attrs, "Cryptographic Length").unwrap_or(len as i32 * 8);
    let uid = object::store_made_secret(
        ctx,
        object_type,
        &attrs,
        bits,
        secret.expose(),
        "Join Split Key",
    )?;
    Ok(payload(vec![uid_item(&uid)]))
}
