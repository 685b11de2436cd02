//! Activate: Pre-Active → Active, Activation Date = now.

use super::object::{self, payload, uid_item};
use super::{Context, Outcome};
use crate::kmip::Error;
use crate::ttlv::Item;
use crate::ttlv::Value;
use crate::ttlv::tables::enums::State;

/// Handles one Activate request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let obj = object::load_target(ctx, &payload_in)?;
    if !object::is_key_like(obj.object_type) {
        return Err(Error::InvalidField(
            "this object type has no lifecycle".into(),
        ));
    }
    if obj.state != State::PreActive.to_u32() {
        return Err(Error::WrongKeyLifecycleState(format!(
            "{} is not pre-active",
            obj.uid
        )));
    }
    let mut changes = object::state_changes(&obj, State::Active.to_u32(), ctx.now);
    changes.push(object::set_single(
        &obj,
        "Activation Date",
        Value::DateTime(ctx.now),
    ));
    object::commit(ctx, changes)?;
    Ok(payload(vec![uid_item(&obj.uid)]))
}
