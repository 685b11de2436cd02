//! Recover: brings an archived object back on line.

use super::object::{self, payload, uid_item};
use super::{Context, Outcome};
use crate::store::Change;
use crate::ttlv::Item;

/// Handles one Recover request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let obj = object::load_target(ctx, &payload_in)?;
    if super::attributes::date_of(&obj, "Archive Date").is_some() {
        let mut changes = vec![Change::DeleteAttribute {
            uid: obj.uid.clone(),
            name: "Archive Date".into(),
            index: None,
        }];
        changes.push(object::touch(&obj, ctx.now));
        object::commit(ctx, changes)?;
    }
    Ok(payload(vec![uid_item(&obj.uid)]))
}
