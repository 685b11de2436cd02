//! Register: a client-supplied object of any type (lifting the seed's limitation 7), kept
//! sealed in the keystore; keys reach the token when first used.

use super::attributes::{self, Attribute};
use super::object::{self, payload, uid_item};
use super::{Context, Outcome, keyblock};
use crate::kmip::Error;
use crate::ttlv::tables::enums::ObjectType;
use crate::ttlv::{Item, Tag, Value};

/// Handles one Register request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let payload_ref = &payload_in;
    let object_type = object::object_type_of(payload_ref)?;
    let mut attrs = attributes::parse_all(payload_ref.child(Tag::TEMPLATE_ATTRIBUTE))?;
    // Attributes the object itself states (its certificate type and length) are taken from the
    // object; a client repeating them in the template is not refused.
    attrs.retain(|a| !matches!(a.name.as_str(), "Certificate Type" | "Certificate Length"));
    let tag = keyblock::object_tag(object_type)
        .ok_or_else(|| Error::InvalidField(format!("cannot register {object_type:?}")))?;
    let value = payload_ref
        .children()
        .iter()
        .find(|c| c.tag == tag)
        .ok_or_else(|| Error::InvalidMessage(format!("the {object_type:?} object is missing")))?;
    let extra = implied_attributes(object_type, value, &attrs, ctx.version)?;
    let mut obj = object::new_object(ctx, object_type, &attrs, extra)?;
    if object_type == ObjectType::Template {
        // A Template is only its attributes (KMIP 1.x; deprecated in 1.3).
        for a in attributes::parse_all(Some(value))? {
            if let Some(v) = a.value {
                object::add(&mut obj, &a.name, v);
            }
        }
    } else {
        object::set_value(ctx, &mut obj, value)?;
    }
    let uid = object::store_new(ctx, vec![obj])?.remove(0);
    Ok(payload(vec![uid_item(&uid)]))
}

/// Attributes the object itself states: algorithm and length of a key block, certificate type
/// and length.
fn implied_attributes(
    t: ObjectType,
    value: &Item,
    client: &[Attribute],
    version: crate::ttlv::Version,
) -> Result<Vec<(&'static str, Value)>, Error> {
    let mut out = Vec::new();
    if let Some(block) = keyblock::key_block(value) {
        if keyblock::format_of(block).is_none() {
            return Err(Error::InvalidField("Key Format Type".into()));
        }
        if let Some(Value::Enumeration(a)) =
            block.child(Tag::CRYPTOGRAPHIC_ALGORITHM).map(|v| &v.value)
        {
            out.push(("Cryptographic Algorithm", Value::Enumeration(*a)));
        }
        if let Some(Value::Integer(l)) = block.child(Tag::CRYPTOGRAPHIC_LENGTH).map(|v| &v.value) {
            out.push(("Cryptographic Length", Value::Integer(*l)));
        } else if t == ObjectType::SymmetricKey
            && attributes::find(client, "Cryptographic Length").is_none()
            && let Ok(keyblock::Material::Secret(k)) = keyblock::material(value)
        {
            out.push(("Cryptographic Length", Value::Integer(k.len() as i32 * 8)));
        }
        // A registered key may be metadata only (its value kept elsewhere: Key Value Location).
        out.push((
            "Key Value Present",
            Value::Boolean(block.child(Tag::KEY_VALUE).is_some()),
        ));
        // Asymmetric keys say what they are in their material (RSA modulus, EC curve).
        if let Some((alg, bits)) = keyblock::implied_algorithm(value, version) {
            out.push(("Cryptographic Algorithm", Value::Enumeration(alg)));
            out.push(("Cryptographic Length", Value::Integer(bits)));
        }
    }
    if t == ObjectType::Certificate {
        match value.child(Tag::CERTIFICATE_TYPE).map(|v| &v.value) {
            Some(Value::Enumeration(ct)) => out.push(("Certificate Type", Value::Enumeration(*ct))),
            _ => return Err(Error::InvalidField("Certificate Type".into())),
        }
        match value.child(Tag::CERTIFICATE_VALUE).map(|v| &v.value) {
            Some(Value::ByteString(der)) => {
                out.push(("Certificate Length", Value::Integer(der.len() as i32)));
            }
            _ => return Err(Error::InvalidField("Certificate Value".into())),
        }
    }
    Ok(out)
}
