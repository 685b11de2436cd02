//! Destroy: the value is destroyed (on the token too); the metadata stays in state Destroyed
//! (or Destroyed Compromised). An Active object must be revoked first.

use super::object::{self, payload, uid_item};
use super::{Context, Outcome};
use crate::kmip::Error;
use crate::store::Change;
use crate::ttlv::tables::enums::State;
use crate::ttlv::{Item, Value};

/// Handles one Destroy request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let obj = object::load_target(ctx, &payload_in)?;
    let state = State::from_u32(obj.state);
    let new_state = match state {
        State::Active if object::is_key_like(obj.object_type) => {
            return Err(Error::WrongKeyLifecycleState(format!(
                "{} is active: revoke it first",
                obj.uid
            )));
        }
        State::Destroyed | State::DestroyedCompromised => {
            return Err(Error::WrongKeyLifecycleState(format!(
                "{} is already destroyed",
                obj.uid
            )));
        }
        State::Compromised => State::DestroyedCompromised,
        _ => State::Destroyed,
    };
    let vault = ctx.vault()?;
    vault.forget(&obj.uid);
    if let Some(r) = &obj.token_ref {
        let found = vault
            .token()
            .find(&[crate::token::Attr::Id(r.id.clone())])
            .map_err(Error::Token)?;
        for h in found {
            vault.token().destroy(h).map_err(Error::Token)?;
        }
    }
    let mut changes = vec![Change::Destroy {
        uid: obj.uid.clone(),
        state: new_state.to_u32(),
    }];
    changes.push(object::set_single(
        &obj,
        "Destroy Date",
        Value::DateTime(ctx.now),
    ));
    changes.push(object::touch(&obj, ctx.now));
    object::commit(ctx, changes)?;
    Ok(payload(vec![uid_item(&obj.uid)]))
}
