//! Check: whether the object could be used with a usage mask, a usage count and a lease time.

use super::object::{self, payload, uid_item};
use super::{Context, Outcome};
use crate::kmip::Error;
use crate::ttlv::{Item, Tag, Value};

/// Handles one Check request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let obj = object::load_target(ctx, &payload_in)?;
    if let Some(Value::Integer(mask)) = payload_in
        .child(Tag::CRYPTOGRAPHIC_USAGE_MASK)
        .map(|v| &v.value)
    {
        let have = super::attributes::int_of(&obj, "Cryptographic Usage Mask").unwrap_or(0);
        if have & mask != *mask {
            return Err(Error::IncompatibleUsageMask("the asked usage".into()));
        }
    }
    if let Some(Value::LongInteger(n)) = payload_in.child(Tag::USAGE_LIMITS_COUNT).map(|v| &v.value)
        && let Some(limits) = super::attributes::first(&obj, "Usage Limits")
        && let Some(Value::LongInteger(left)) =
            limits.child(Tag::USAGE_LIMITS_COUNT).map(|v| &v.value)
        && n > left
    {
        return Err(Error::UsageLimitExceeded(format!("{left} uses left")));
    }
    Ok(payload(vec![uid_item(&obj.uid)]))
}
