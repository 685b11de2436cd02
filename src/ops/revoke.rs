//! Revoke: Compromised for a compromise reason (Compromise Date, Compromise Occurrence Date),
//! Deactivated otherwise (Deactivation Date); the Revocation Reason is recorded.

use super::object::{self, payload, uid_item};
use super::{Context, Outcome};
use crate::kmip::Error;
use crate::ttlv::tables::enums::{RevocationReasonCode, State};
use crate::ttlv::{Item, Tag, Value};

/// Handles one Revoke request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let obj = object::load_target(ctx, &payload_in)?;
    let reason = payload_in
        .child(Tag::REVOCATION_REASON)
        .ok_or_else(|| Error::InvalidMessage("Revocation Reason is missing".into()))?;
    let code = match reason.child(Tag::REVOCATION_REASON_CODE).map(|v| &v.value) {
        Some(Value::Enumeration(c)) => RevocationReasonCode::from_u32(*c),
        _ => {
            return Err(Error::InvalidMessage(
                "Revocation Reason Code is missing".into(),
            ));
        }
    };
    let compromise = matches!(
        code,
        RevocationReasonCode::KeyCompromise | RevocationReasonCode::CACompromise
    );
    let state = State::from_u32(obj.state);
    let (new_state, mut changes) = if compromise {
        let occurred = match payload_in
            .child(Tag::COMPROMISE_OCCURRENCE_DATE)
            .map(|v| &v.value)
        {
            Some(Value::DateTime(d)) => *d,
            Some(_) => return Err(Error::InvalidField("Compromise Occurrence Date".into())),
            None => ctx.now,
        };
        let new = match state {
            State::Destroyed | State::DestroyedCompromised => State::DestroyedCompromised,
            _ => State::Compromised,
        };
        let c = vec![
            object::set_single(&obj, "Compromise Date", Value::DateTime(ctx.now)),
            object::set_single(
                &obj,
                "Compromise Occurrence Date",
                Value::DateTime(occurred),
            ),
        ];
        (new, c)
    } else {
        match state {
            State::Active | State::PreActive => {}
            other => {
                return Err(Error::WrongKeyLifecycleState(format!(
                    "{} cannot be revoked in state {other:?}",
                    obj.uid
                )));
            }
        }
        let mut c = Vec::new();
        if crate::ops::attributes::date_of(&obj, "Deactivation Date").is_none_or(|d| d > ctx.now) {
            c.push(object::set_single(
                &obj,
                "Deactivation Date",
                Value::DateTime(ctx.now),
            ));
        }
        (State::Deactivated, c)
    };
    let mut stored_reason = reason.clone();
    stored_reason.tag = Tag::ATTRIBUTE_VALUE;
    changes.push(object::set_single(
        &obj,
        "Revocation Reason",
        stored_reason.value,
    ));
    changes.extend(object::state_changes(&obj, new_state.to_u32(), ctx.now));
    object::commit(ctx, changes)?;
    Ok(payload(vec![uid_item(&obj.uid)]))
}
