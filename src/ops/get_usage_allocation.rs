//! Get Usage Allocation: reserves part of an object's Usage Limits.

use super::object::{self, payload, uid_item};
use super::{Context, Outcome};
use crate::kmip::Error;
use crate::ttlv::{Item, Tag, Value};

/// Handles one Get Usage Allocation request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let obj = object::load_target(ctx, &payload_in)?;
    let wanted = match payload_in.child(Tag::USAGE_LIMITS_COUNT).map(|v| &v.value) {
        Some(Value::LongInteger(n)) if *n > 0 => *n,
        Some(_) => return Err(Error::InvalidField("Usage Limits Count".into())),
        None => return Err(Error::MissingData("Usage Limits Count".into())),
    };
    object::check_may_protect(&obj, ctx.now)?;
    consume(ctx, &obj, wanted)?;
    Ok(payload(vec![uid_item(&obj.uid)]))
}

/// Takes `n` from the object's Usage Limits Count, if it has Usage Limits.
pub fn consume(ctx: &Context<'_>, obj: &crate::store::StoredObject, n: i64) -> Result<(), Error> {
    let Some(limits) = super::attributes::first(obj, "Usage Limits") else {
        return Ok(());
    };
    let total = match limits.child(Tag::USAGE_LIMITS_TOTAL).map(|v| &v.value) {
        Some(Value::LongInteger(t)) => *t,
        _ => return Ok(()),
    };
    let left = match limits.child(Tag::USAGE_LIMITS_COUNT).map(|v| &v.value) {
        Some(Value::LongInteger(c)) => *c,
        _ => total,
    };
    if n > left {
        return Err(Error::UsageLimitExceeded(format!("{left} uses left")));
    }
    let mut children: Vec<Item> = limits
        .children()
        .iter()
        .filter(|c| c.tag != Tag::USAGE_LIMITS_COUNT)
        .cloned()
        .collect();
    children.push(Item::new(
        Tag::USAGE_LIMITS_COUNT,
        Value::LongInteger(left - n),
    ));
    let change = object::set_single(obj, "Usage Limits", Value::Structure(children));
    object::commit(ctx, vec![change])?;
    Ok(())
}
