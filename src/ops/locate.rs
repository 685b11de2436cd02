//! Locate: the objects whose attributes match every given attribute (date attributes given
//! twice give a range), with Maximum Items, Offset Items, Storage Status Mask and Object Group
//! Member. Destroyed objects are found only when the State is asked for.

use super::attributes::{self, Attribute};
use super::object::{self, payload, uid_item};
use super::{Context, Outcome};
use crate::kmip::Error;
use crate::store::StoredObject;
use crate::store::index::{Criterion, key_of};
use crate::ttlv::tables::enums::{ObjectGroupMember, State};

/// Storage Status Mask bits.
const ON_LINE: u32 = 1;
const ARCHIVAL: u32 = 2;
use crate::ttlv::{Item, ItemType, Tag, Value, Version};

/// Handles one Locate request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let int = |tag: Tag| match payload_in.child(tag).map(|v| &v.value) {
        Some(Value::Integer(n)) if *n >= 0 => Ok(Some(*n as usize)),
        Some(_) => Err(Error::InvalidField(format!("{tag}"))),
        None => Ok(None),
    };
    let max = int(Tag::MAXIMUM_ITEMS)?
        .unwrap_or(ctx.max_locate_results)
        .min(ctx.max_locate_results);
    let offset = int(Tag::OFFSET_ITEMS)?.unwrap_or(0);
    let storage = int(Tag::STORAGE_STATUS_MASK)?.map_or(ON_LINE, |m| m as u32);
    let group_member = match payload_in.child(Tag::OBJECT_GROUP_MEMBER).map(|v| &v.value) {
        Some(Value::Enumeration(g)) => Some(ObjectGroupMember::from_u32(*g)),
        _ => None,
    };
    let mut wanted: Vec<Attribute> = payload_in
        .children_with(Tag::ATTRIBUTE)
        .map(attributes::parse)
        .collect::<Result<_, _>>()?;
    wanted.iter_mut().for_each(serial_as_stored);
    let state_asked = wanted.iter().any(|a| a.name == "State");
    let criteria = index_criteria(&wanted);
    let store = ctx.store()?;
    let index = store.read();
    let mut found = Vec::new();
    // Newest first: the most recent key is usually the one a client wants, and what Maximum
    // Items keeps.
    for uid in index.find(&criteria).into_iter().rev() {
        let Some(obj) = index.get(&uid) else { continue };
        let mut obj_now;
        let obj = if object::state_at(obj, ctx.now) != obj.state {
            obj_now = obj.clone();
            obj_now.state = object::state_at(obj, ctx.now);
            &obj_now
        } else {
            obj
        };
        let destroyed = matches!(
            State::from_u32(obj.state),
            State::Destroyed | State::DestroyedCompromised
        );
        if destroyed && !state_asked {
            continue;
        }
        let archived = attributes::date_of(obj, "Archive Date").is_some();
        let status = if archived { ARCHIVAL } else { ON_LINE };
        if storage & status == 0 {
            continue;
        }
        if group_member == Some(ObjectGroupMember::GroupMemberFresh)
            && attributes::bool_of(obj, "Fresh") != Some(true)
        {
            continue;
        }
        // What the caller may not see is left out, not refused.
        if matches_all(obj, &wanted, ctx.version)
            && super::access::may(ctx, obj, crate::ttlv::tables::enums::Operation::Locate)
        {
            found.push(uid);
        }
    }
    drop(index);
    let total = found.len();
    let mut out = Vec::new();
    // Located Items is optional; it is given when the client pages (Maximum or Offset Items).
    let paging = payload_in.child(Tag::MAXIMUM_ITEMS).is_some()
        || payload_in.child(Tag::OFFSET_ITEMS).is_some();
    if ctx.version >= Version::new(1, 3) && paging {
        out.push(Item::new(Tag::LOCATED_ITEMS, Value::Integer(total as i32)));
    }
    out.extend(found.iter().skip(offset).take(max).map(|u| uid_item(u)));
    Ok(payload(out))
}

/// A certificate serial number given as the INTEGER's contents, as some clients send it, is
/// looked for as the whole DER INTEGER (tag, length, contents), the form the attribute holds.
fn serial_as_stored(a: &mut Attribute) {
    if a.name != "X.509 Certificate Identifier" {
        return;
    }
    let Some(Value::Structure(fields)) = a.value.as_mut().map(|v| &mut v.value) else {
        return;
    };
    for f in fields.iter_mut() {
        if f.tag != Tag::CERTIFICATE_SERIAL_NUMBER {
            continue;
        }
        if let Value::ByteString(b) = &f.value {
            let mut r = crate::der::Der(b);
            let whole_integer = r.expect(0x02).is_some() && r.0.is_empty();
            if !whole_integer && !b.is_empty() {
                f.value = Value::ByteString(crate::der::tlv(0x02, b));
            }
        }
    }
}

/// Criteria the index can answer (exact values, date ranges); the rest is checked per object.
fn index_criteria(wanted: &[Attribute]) -> Vec<Criterion> {
    let mut out = Vec::new();
    for a in wanted {
        let Some(v) = &a.value else { continue };
        if v.value.item_type() == ItemType::DateTime
            || a.name == "Cryptographic Usage Mask"
            || a.name == "State"
        {
            continue;
        }
        if let Some(k) = key_of(&a.name, v) {
            out.push(Criterion::Equals(a.name.clone(), k));
        }
    }
    out
}

fn matches_all(obj: &StoredObject, wanted: &[Attribute], v: Version) -> bool {
    let mut i = 0;
    while i < wanted.len() {
        let a = &wanted[i];
        let Some(value) = &a.value else {
            i += 1;
            continue;
        };
        // Two instances of a date attribute in a row: a range.
        if let Value::DateTime(lo) = value.value
            && let Some(next) = wanted.get(i + 1)
            && next.name == a.name
            && let Some(Value::DateTime(hi)) = next.value.as_ref().map(|x| &x.value)
        {
            if !instances(obj, &a.name, v)
                .iter()
                .any(|x| matches!(x.value, Value::DateTime(d) if d >= lo && d <= *hi))
            {
                return false;
            }
            i += 2;
            continue;
        }
        let mask = a.name == "Cryptographic Usage Mask";
        if !instances(obj, &a.name, v)
            .iter()
            .any(|x| match (&x.value, &value.value) {
                // A usage mask matches objects having at least those bits.
                (Value::Integer(h), Value::Integer(w)) if mask => h & w == *w,
                _ => same(x, value),
            })
        {
            return false;
        }
        i += 1;
    }
    true
}

fn instances(obj: &StoredObject, name: &str, v: Version) -> Vec<Item> {
    super::get_attributes::selected(obj, v, |n| n == name)
        .into_iter()
        .map(|(_, _, item)| item)
        .collect()
}

/// Equal values; for structures, every field the request gives must match.
fn same(have: &Item, want: &Item) -> bool {
    match (&have.value, &want.value) {
        (Value::Structure(h), Value::Structure(w)) => w
            .iter()
            .all(|wc| h.iter().any(|hc| hc.tag == wc.tag && same(hc, wc))),
        (h, w) => h == w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serial_attribute(serial: &[u8]) -> Attribute {
        Attribute {
            name: "X.509 Certificate Identifier".into(),
            index: None,
            value: Some(Item::structure(
                Tag::ATTRIBUTE_VALUE,
                vec![Item::new(
                    Tag::CERTIFICATE_SERIAL_NUMBER,
                    Value::ByteString(serial.to_vec()),
                )],
            )),
        }
    }

    #[test]
    fn a_serial_number_given_as_integer_contents_is_looked_for_as_der() {
        let stored = [0x02, 0x03, 0x00, 0xD2, 0xF5];
        for given in [&stored[..], &stored[2..]] {
            let mut a = serial_attribute(given);
            serial_as_stored(&mut a);
            assert_eq!(a.value, serial_attribute(&stored).value, "{given:02x?}");
        }
    }
}
