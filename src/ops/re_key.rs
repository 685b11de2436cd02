//! Re-Key: a new symmetric key replacing an existing one, with the old key's attributes, dates
//! shifted by the Offset, and Replaced/Replacement Links between the two.

use super::attributes::{self, Attribute};
use super::create_key_pair::link_change;
use super::object::{self, payload, uid_item};
use super::{Context, Outcome};
use crate::kmip::Error;
use crate::ttlv::tables::enums::{LinkType, ObjectType};
use crate::ttlv::{Item, Tag, Value};

/// Attributes a replacement does not inherit (the server sets them afresh).
pub const NOT_INHERITED: &[&str] = &[
    "Unique Identifier",
    "Initial Date",
    "Last Change Date",
    "Digest",
    "Link",
    "State",
    "Fresh",
    "Revocation Reason",
    "Compromise Date",
    "Compromise Occurrence Date",
    "Destroy Date",
    "Archive Date",
    "Lease Time",
    "Original Creation Date",
    "Always Sensitive",
    "Never Extractable",
    "Random Number Generator",
];

/// The old object's attributes for its replacement, with date offsets applied and the
/// request's template attributes on top.
pub fn inherited(
    ctx: &Context<'_>,
    old: &crate::store::StoredObject,
    offset: Option<i64>,
    template: &[Attribute],
) -> Vec<Attribute> {
    let mut out: Vec<Attribute> = Vec::new();
    let old_activation = attributes::date_of(old, "Activation Date");
    for a in old.attributes.iter() {
        // The template replaces a single-instance attribute; instances of a multi-instance one
        // (a new Name) are added to the inherited ones.
        let replaced = template.iter().any(|t| t.name == *a.name)
            && attributes::rule_of(&a.name).is_some_and(|r| !r.multi);
        if NOT_INHERITED.contains(&&*a.name)
            || replaced
            || !attributes::defined_in(&a.name, ctx.version)
        {
            continue;
        }
        let rule = attributes::rule_of(&a.name);
        if rule.is_some_and(|r| !r.client_sets) {
            continue;
        }
        let mut value = a.value.clone();
        if let (Some(off), Value::DateTime(d)) = (offset, &value.value) {
            let base = old_activation.unwrap_or(*d);
            let shifted = match &*a.name {
                "Activation Date" => Some(ctx.now + off),
                "Process Start Date" | "Protect Stop Date" | "Deactivation Date" => {
                    Some(ctx.now + off + (*d - base))
                }
                _ => None,
            };
            if let Some(s) = shifted {
                value.value = Value::DateTime(s);
            }
        }
        // Without an Offset the lifecycle dates are copied as they are (KMIP 1.x Re-key).
        out.push(Attribute {
            name: a.name.to_string(),
            index: None,
            value: Some(value),
        });
    }
    out.extend(template.iter().cloned());
    out
}

/// Handles one Re-Key request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let old = object::load_target(ctx, &payload_in)?;
    if ObjectType::from_u32(old.object_type) != ObjectType::SymmetricKey {
        return Err(Error::InvalidField("Re-Key replaces symmetric keys".into()));
    }
    let offset = match payload_in.child(Tag::OFFSET).map(|v| &v.value) {
        Some(Value::Interval(o)) => Some(i64::from(*o)),
        Some(_) => return Err(Error::InvalidField("Offset".into())),
        None => None,
    };
    let template = attributes::parse_all(payload_in.child(Tag::TEMPLATE_ATTRIBUTE))?;
    let attrs = inherited(ctx, &old, offset, &template);
    let new = super::create::new_symmetric_key(ctx, &attrs, None)?;
    let uid = object::store_new(ctx, vec![new])?.remove(0);
    object::commit(
        ctx,
        vec![
            link_change(&old.uid, LinkType::ReplacementObjectLink, &uid),
            link_change(&uid, LinkType::ReplacedObjectLink, &old.uid),
        ],
    )?;
    Ok(payload(vec![uid_item(&uid)]))
}
