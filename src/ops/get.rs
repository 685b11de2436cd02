//! Get: the object's value, in the format it is stored in or the Key Format Type asked for.
//! Sensitive keys leave only wrapped; non-extractable keys never.

use super::attributes;
use super::object::{self, payload, uid_item};
use super::{Context, Outcome, keyblock, wrapping};
use crate::kmip::Error;
use crate::ttlv::tables::enums::{KeyFormatType, KeyWrapType, ObjectType, State};
use crate::ttlv::{Item, Tag, Value};

/// Handles one Get request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let obj = object::load_target(ctx, &payload_in)?;
    if matches!(
        State::from_u32(obj.state),
        State::Destroyed | State::DestroyedCompromised
    ) {
        return Err(Error::WrongKeyLifecycleState(format!(
            "{} is destroyed",
            obj.uid
        )));
    }
    object::check_not_archived(&obj)?;
    let object_type = ObjectType::from_u32(obj.object_type);
    let want = match payload_in.child(Tag::KEY_FORMAT_TYPE).map(|v| &v.value) {
        Some(Value::Enumeration(f)) => Some(KeyFormatType::from_u32(*f)),
        Some(_) => return Err(Error::InvalidField("Key Format Type".into())),
        None => None,
    };
    if let Some(Value::Enumeration(c)) = payload_in
        .child(Tag::KEY_COMPRESSION_TYPE)
        .map(|v| &v.value)
    {
        return Err(Error::FeatureNotSupported(format!(
            "Key Compression Type {c}"
        )));
    }
    let wrapping = payload_in.child(Tag::KEY_WRAPPING_SPECIFICATION);
    if attributes::bool_of(&obj, "Extractable") == Some(false) {
        return Err(Error::NotExtractable(obj.uid.clone()));
    }
    if let Some(spec) = wrapping {
        let value = wrapping::wrapped(ctx, &obj, spec, want)?;
        mark_not_fresh(ctx, &obj)?;
        return Ok(payload(vec![
            Item::new(Tag::OBJECT_TYPE, Value::Enumeration(obj.object_type)),
            uid_item(&obj.uid),
            value,
        ]));
    }
    if attributes::bool_of(&obj, "Sensitive") == Some(true) {
        return Err(Error::Sensitive(format!(
            "{} may leave only wrapped",
            obj.uid
        )));
    }
    let value = if want == Some(KeyFormatType::PKCS_12) {
        super::pkcs12_objects::export(ctx, &obj)?
    } else if object_type == ObjectType::Template {
        let attrs = obj
            .attributes
            .iter()
            .filter(|a| attributes::rule_of(&a.name).is_some_and(|r| r.client_sets))
            .map(|a| attributes::to_item(&a.name, a.index, &a.value))
            .collect();
        Item::structure(Tag::TEMPLATE, attrs)
    } else {
        let plain = match payload_in.child(Tag::KEY_WRAP_TYPE).map(|v| &v.value) {
            Some(Value::Enumeration(t)) if *t == KeyWrapType::NotWrapped.to_u32() => {
                wrapping::plain_object(ctx, &obj)?
            }
            // As registered (a key registered wrapped stays wrapped).
            _ if obj.value.is_some() => object::stored_value(&obj)?,
            _ => wrapping::plain_object(ctx, &obj)?,
        };
        keyblock::convert(plain, want)?
    };
    mark_not_fresh(ctx, &obj)?;
    Ok(payload(vec![
        Item::new(Tag::OBJECT_TYPE, Value::Enumeration(obj.object_type)),
        uid_item(&obj.uid),
        value,
    ]))
}

/// An object handed out is no longer Fresh. When the keystore cannot take the change (a full
/// disk), the key is still served: reading must not depend on room to write; the failure is
/// logged and Fresh stays set until a later Get can record it.
fn mark_not_fresh(ctx: &Context<'_>, obj: &crate::store::StoredObject) -> Result<(), Error> {
    if attributes::bool_of(obj, "Fresh") == Some(true) {
        let change = vec![object::set_single(obj, "Fresh", Value::Boolean(false))];
        match object::commit(ctx, change) {
            Ok(_) => {}
            Err(Error::Store(detail)) => crate::log::warn(&format!(
                "Get {}: served, but Fresh = false could not be recorded: {detail}",
                obj.uid
            )),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
