//! Archive: the object goes to archival storage (Archive Date set); it cannot be used until
//! Recover brings it back.

use super::object::{self, payload, uid_item};
use super::{Context, Outcome};
use crate::kmip::Error;
use crate::ttlv::{Item, Value};

/// Handles one Archive request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let obj = object::load_target(ctx, &payload_in)?;
    if super::attributes::date_of(&obj, "Archive Date").is_some() {
        return Err(Error::ObjectArchived(obj.uid.clone()));
    }
    let changes = vec![
        object::set_single(&obj, "Archive Date", Value::DateTime(ctx.now)),
        object::touch(&obj, ctx.now),
    ];
    object::commit(ctx, changes)?;
    Ok(payload(vec![uid_item(&obj.uid)]))
}
