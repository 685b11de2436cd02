//! Obtain Lease: the time the client may use the object before checking again.

use super::object::{self, payload, uid_item};
use super::{Context, Outcome};
use crate::ttlv::{Item, Tag, Value};

/// The lease ksg grants, in seconds.
pub const LEASE_SECONDS: u32 = 3600;

/// Handles one Obtain Lease request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let obj = object::load_target(ctx, &payload_in)?;
    object::check_may_process(&obj, ctx.now)?;
    let changes = vec![
        object::set_single(&obj, "Lease Time", Value::Interval(LEASE_SECONDS)),
        object::touch(&obj, ctx.now),
    ];
    object::commit(ctx, changes)?;
    Ok(payload(vec![
        uid_item(&obj.uid),
        Item::new(Tag::LEASE_TIME, Value::Interval(LEASE_SECONDS)),
        Item::new(Tag::LAST_CHANGE_DATE, Value::DateTime(ctx.now)),
    ]))
}
