//! Query: what the server offers, from `p6kmip_auxiliary_ksg.conf` (operations, objects,
//! profiles, vendorId, capabilities), limited to what this build implements and to what the
//! request's protocol version defines.

use super::{Context, IMPLEMENTED, Outcome, SUPPORTED_OBJECT_TYPES};
use crate::kmip::Error;
use crate::ttlv::tables::enum_defined_in as defined_in;
use crate::ttlv::tables::enums::QueryFunction;
use crate::ttlv::{Item, Tag, Value, Version};

/// Handles one Query request payload.
pub fn handle(ctx: &mut Context<'_>, payload: Item) -> Outcome {
    let mut functions = Vec::new();
    for f in payload.children_with(Tag::QUERY_FUNCTION) {
        match f.value {
            Value::Enumeration(v) => functions.push(QueryFunction::from_u32(v)),
            _ => {
                return Err(Error::InvalidField(
                    "Query Function must be an Enumeration".into(),
                ));
            }
        }
    }
    let asked = |f: QueryFunction| {
        functions.contains(&f) && defined_in("QueryFunction", f.to_u32(), ctx.version)
    };
    let aux = ctx.aux;
    let mut out = Vec::new();
    if asked(QueryFunction::QueryOperations) {
        for op in IMPLEMENTED {
            let v = op.to_u32();
            if super::offered(*op, aux) && defined_in("Operation", v, ctx.version) {
                out.push(Item::new(Tag::OPERATION, Value::Enumeration(v)));
            }
        }
    }
    if asked(QueryFunction::QueryObjects) {
        for &t in SUPPORTED_OBJECT_TYPES {
            if aux.objects.as_ref().is_none_or(|l| l.contains(&t))
                && defined_in("ObjectType", t, ctx.version)
            {
                out.push(Item::new(Tag::OBJECT_TYPE, Value::Enumeration(t)));
            }
        }
    }
    if asked(QueryFunction::QueryServerInformation)
        && let Some(vendor) = &aux.vendor_id
    {
        out.push(Item::new(
            Tag::VENDOR_IDENTIFICATION,
            Value::TextString(vendor.clone()),
        ));
    }
    if asked(QueryFunction::QueryProfiles) {
        for &p in &aux.profiles {
            out.push(Item::structure(
                Tag::PROFILE_INFORMATION,
                vec![Item::new(Tag::PROFILE_NAME, Value::Enumeration(p))],
            ));
        }
    }
    if asked(QueryFunction::QueryRNGs) {
        // The generator keys come from (the Random Number Generator attribute says the same).
        out.push(Item::new(
            Tag::RNG_PARAMETERS,
            super::object::rng_attribute(),
        ));
    }
    if asked(QueryFunction::QueryCapabilities) {
        let mut caps = vec![
            Item::new(
                Tag::STREAMING_CAPABILITY,
                Value::Boolean(aux.streaming_enabled),
            ),
            Item::new(Tag::ASYNCHRONOUS_CAPABILITY, Value::Boolean(false)),
            Item::new(Tag::ATTESTATION_CAPABILITY, Value::Boolean(false)),
        ];
        if ctx.version >= Version::new(1, 4) {
            caps.push(Item::new(Tag::BATCH_UNDO_CAPABILITY, Value::Boolean(true)));
            caps.push(Item::new(
                Tag::BATCH_CONTINUE_CAPABILITY,
                Value::Boolean(true),
            ));
        }
        caps.extend([
            Item::new(Tag::UNWRAP_MODE, Value::Enumeration(aux.unwrap_mode)),
            Item::new(Tag::DESTROY_ACTION, Value::Enumeration(aux.destroy_action)),
            Item::new(
                Tag::SHREDDING_ALGORITHM,
                Value::Enumeration(aux.shredding_algorithm),
            ),
            Item::new(Tag::RNG_MODE, Value::Enumeration(aux.rng_mode)),
        ]);
        out.push(Item::structure(Tag::CAPABILITY_INFORMATION, caps));
    }
    Ok(Some(Item::structure(Tag::RESPONSE_PAYLOAD, out)))
}
