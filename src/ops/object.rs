//! Managed objects as the operations see them: finding one by identifier (or the ID
//! Placeholder), its lifecycle state as of now, making a new one from client attributes, and
//! committing changes.

use std::sync::Arc;

use super::Context;
use super::attributes::{self, Attribute};
use crate::kmip::Error;
use crate::store::{Attributes, Change, StoredObject};
use crate::ttlv::tables::enums::{ObjectType, State};
use crate::ttlv::{Item, Tag, Value};

/// The Unique Identifier a request names, or the batch's ID Placeholder when it names none.
pub fn target_uid(ctx: &Context<'_>, payload: &Item) -> Result<String, Error> {
    match payload.child(Tag::UNIQUE_IDENTIFIER).map(|u| &u.value) {
        Some(Value::TextString(s)) => Ok(s.clone()),
        Some(_) => Err(Error::InvalidField("Unique Identifier must be text".into())),
        None => ctx
            .id_placeholder
            .clone()
            .ok_or_else(|| Error::MissingData("Unique Identifier".into())),
    }
}

/// The state an object is in at `now`: dates that have passed move it along
/// (Pre-Active → Active at the Activation Date, Active → Deactivated at the Deactivation Date).
pub fn state_at(obj: &StoredObject, now: i64) -> u32 {
    let s = obj.state;
    let reached = |name| attributes::date_of(obj, name).is_some_and(|d| d <= now);
    if s == State::PreActive.to_u32() && reached("Deactivation Date") {
        return State::Deactivated.to_u32();
    }
    if s == State::PreActive.to_u32() && reached("Activation Date") {
        return State::Active.to_u32();
    }
    if s == State::Active.to_u32() && reached("Deactivation Date") {
        return State::Deactivated.to_u32();
    }
    s
}

/// A copy of object `uid` with its current state, or Item Not Found; Permission Denied when
/// the caller may not perform the request's operation on it (see `access`).
pub fn load(ctx: &Context<'_>, uid: &str) -> Result<StoredObject, Error> {
    let store = ctx.store()?;
    let mut obj = store
        .with_object(uid, StoredObject::clone)
        .ok_or_else(|| Error::ItemNotFound(format!("no object {uid}")))?;
    super::access::check(ctx, &obj)?;
    obj.state = state_at(&obj, ctx.now);
    Ok(obj)
}

/// Loads the request's target object.
pub fn load_target(ctx: &Context<'_>, payload: &Item) -> Result<StoredObject, Error> {
    let uid = target_uid(ctx, payload)?;
    load(ctx, &uid)
}

/// Commits `changes`, mapping store failures to a safe KMIP error.
pub fn commit(
    ctx: &Context<'_>,
    changes: Vec<Change>,
) -> Result<Vec<crate::store::CommitResult>, Error> {
    let store = ctx.store()?;
    if let Some(undo) = &ctx.undo {
        // Remember each object as it was before the batch first changed it.
        let mut seen = undo.borrow_mut();
        for uid in changes.iter().filter_map(Change::uid) {
            if !uid.is_empty() && !seen.iter().any(|(u, _)| u == uid) {
                let before = store.with_object(uid, StoredObject::clone);
                seen.push((uid.to_string(), before));
            }
        }
    }
    let results = store.commit(changes).map_err(|e| {
        crate::log::error(&format!("keystore commit failed: {e}"));
        Error::Store(e.to_string())
    })?;
    if let Some(undo) = &ctx.undo {
        let mut seen = undo.borrow_mut();
        for uid in results.iter().filter_map(|r| r.uid.as_deref()) {
            if !seen.iter().any(|(u, _)| u == uid) {
                seen.push((uid.to_string(), None));
            }
        }
    }
    Ok(results)
}

/// Puts every object the batch changed back as it was (Batch Error Continuation Option Undo),
/// in one atomic commit.
pub fn undo_batch(ctx: &Context<'_>) -> Result<(), Error> {
    let Some(undo) = &ctx.undo else {
        return Ok(());
    };
    let store = ctx.store()?;
    let vault = ctx.vault()?;
    let mut changes = Vec::new();
    for (uid, before) in undo.take().into_iter().rev() {
        let now = store.with_object(&uid, |o| {
            let same_key = before
                .as_ref()
                .is_some_and(|b| b.token_ref == o.token_ref && b.value == o.value);
            (o.token_ref.clone(), same_key)
        });
        // A handle made for the key stays while the undo keeps that key: other requests may be
        // using it.
        if !now.as_ref().is_some_and(|(_, same_key)| *same_key) {
            vault.forget(&uid);
        }
        let now = now.map(|(token_ref, _)| token_ref);
        if let (None, Some(Some(r))) = (&before, &now) {
            // A key the batch generated on the HSM goes too.
            for h in vault
                .token()
                .find(&[crate::token::Attr::Id(r.id.clone())])
                .unwrap_or_default()
            {
                let _ = vault.token().destroy(h);
            }
        }
        if now.is_some() {
            changes.push(Change::Erase { uid: uid.clone() });
        }
        if let Some(o) = before {
            changes.push(Change::Create(o));
        }
    }
    store.commit(changes).map(|_| ()).map_err(|e| {
        crate::log::error(&format!("keystore undo failed: {e}"));
        Error::Store(e.to_string())
    })
}

/// The changes that record `uid`'s state change and bump its Last Change Date.
pub fn state_changes(obj: &StoredObject, state: u32, now: i64) -> Vec<Change> {
    let mut c = vec![Change::State {
        uid: obj.uid.clone(),
        state,
    }];
    c.push(touch(obj, now));
    c
}

/// The change that sets Last Change Date to `now`.
pub fn touch(obj: &StoredObject, now: i64) -> Change {
    set_single(obj, "Last Change Date", Value::DateTime(now))
}

/// Sets a single-instance attribute (modify when present, add otherwise).
pub fn set_single(obj: &StoredObject, name: &str, v: Value) -> Change {
    let value = attributes::value(v);
    if obj.attributes.has(name, None) {
        Change::ModifyAttribute {
            uid: obj.uid.clone(),
            name: name.into(),
            index: 0,
            value,
        }
    } else {
        Change::AddAttribute {
            uid: obj.uid.clone(),
            name: name.into(),
            index: Some(0),
            value,
        }
    }
}

/// Checks that the client may give these attributes when creating an object of `object_type`.
pub fn check_client_attributes(ctx: &Context<'_>, list: &[Attribute]) -> Result<(), Error> {
    if let Some(Value::TextString(p)) =
        attributes::find(list, "Operation Policy Name").map(|v| &v.value)
        && !super::access::known_policy(ctx.policies, p)
    {
        return Err(Error::InvalidField(format!(
            "no operation policy named {p:?}"
        )));
    }
    for a in list {
        let rule = attributes::known(&a.name)?;
        if !attributes::defined_in(&a.name, ctx.version) {
            return Err(Error::InvalidField(format!(
                "{} is not defined in KMIP {}",
                a.name, ctx.version
            )));
        }
        if !rule.client_sets {
            return Err(Error::AttributeReadOnly(a.name.clone()));
        }
        if a.value.is_none() {
            return Err(Error::InvalidMessage(format!("{} has no value", a.name)));
        }
        if !rule.multi && list.iter().filter(|b| b.name == a.name).count() > 1 {
            return Err(Error::InvalidField(format!("{} may occur once", a.name)));
        }
    }
    Ok(())
}

/// A new object (Unique Identifier chosen by the store) with the client's attributes and the
/// server's own: Initial Date, Last Change Date, the state its Activation Date gives, Fresh.
pub fn new_object(
    ctx: &Context<'_>,
    object_type: ObjectType,
    client: &[Attribute],
    extra: Vec<(&str, Value)>,
) -> Result<StoredObject, Error> {
    check_client_attributes(ctx, client)?;
    if ctx
        .aux
        .objects
        .as_ref()
        .is_some_and(|l| !l.contains(&object_type.to_u32()))
    {
        return Err(Error::FeatureNotSupported(format!(
            "{object_type:?} objects are switched off"
        )));
    }
    // Gathered first and encoded once: adding them one by one re-encodes the set each time.
    let mut list = NewAttributes::default();
    for a in client {
        let Some(v) = &a.value else { continue };
        list.add(&a.name, v.clone());
    }
    // What the server adds: single-instance attributes only when not set already (the client's
    // value or an earlier one wins), every instance of a multi-instance one.
    for (name, v) in extra {
        let multi = attributes::rule_of(name).is_some_and(|r| r.multi);
        let given = client.iter().any(|a| a.name == name);
        if (multi && !given) || !list.has(name) {
            list.add(name, attributes::value(v));
        }
    }
    for name in ["Initial Date", "Last Change Date", "Original Creation Date"] {
        list.add(name, attributes::value(Value::DateTime(ctx.now)));
    }
    if is_key_like(object_type.to_u32()) {
        // KMIP 1.4 key-protection attributes, with their defaults, on every cryptographic object.
        let sensitive = attributes::find_bool(client, "Sensitive").unwrap_or(false);
        let extractable = attributes::find_bool(client, "Extractable").unwrap_or(true);
        for (name, v) in [
            ("Sensitive", sensitive),
            ("Always Sensitive", sensitive),
            ("Extractable", extractable),
            ("Never Extractable", !extractable),
        ] {
            if !list.has(name) {
                list.add(name, attributes::value(Value::Boolean(v)));
            }
        }
        list.add(
            "Lease Time",
            attributes::value(Value::Interval(super::obtain_lease::LEASE_SECONDS)),
        );
    }
    list.add("Fresh", attributes::value(Value::Boolean(true)));
    let mut obj = StoredObject {
        uid: String::new(),
        object_type: object_type.to_u32(),
        state: State::PreActive.to_u32(),
        owner: ctx.identity.map(Arc::from),
        hsm_name: Arc::from(ctx.hsm_name()),
        attributes: list.encode()?,
        token_ref: None,
        value: None,
    };
    obj.state = state_at(&obj, ctx.now);
    Ok(obj)
}

/// A new object's attribute instances, each with the next index of its name, before they are
/// encoded together.
#[derive(Debug, Default)]
struct NewAttributes<'a> {
    instances: Vec<(&'a str, u32, Item)>,
}

impl<'a> NewAttributes<'a> {
    fn has(&self, name: &str) -> bool {
        self.instances.iter().any(|(n, ..)| *n == name)
    }

    fn add(&mut self, name: &'a str, mut value: Item) {
        value.tag = Tag::ATTRIBUTE_VALUE;
        let index = self.instances.iter().filter(|(n, ..)| *n == name).count() as u32;
        self.instances.push((name, index, value));
    }

    /// Encodes them all; a value the keystore cannot hold is refused, naming its attribute.
    fn encode(&self) -> Result<Attributes, Error> {
        let all = self.instances.iter().map(|(n, i, v)| (*n, *i, v));
        Attributes::try_from_instances(all).ok_or_else(|| {
            let refused = self
                .instances
                .iter()
                .find(|(n, i, v)| !Attributes::new().push(n, *i, v))
                .map_or("an attribute", |(n, ..)| n);
            unstorable(refused)
        })
    }
}

fn unstorable(name: &str) -> Error {
    Error::InvalidField(format!(
        "{name}: the value cannot be stored (an unresolved placeholder, or nested too deep)"
    ))
}

/// Appends an attribute instance with the next index. A value the keystore cannot hold (an
/// unresolved test-case placeholder from XML or JSON, or nesting deeper than a record allows)
/// is refused, never dropped.
pub fn add(obj: &mut StoredObject, name: &str, mut value: Item) -> Result<(), Error> {
    value.tag = Tag::ATTRIBUTE_VALUE;
    let index = obj.next_index(name);
    if obj.attributes.push(name, index, &value) {
        Ok(())
    } else {
        Err(unstorable(name))
    }
}

/// Whether the object holds cryptographic material whose use the lifecycle restricts.
pub fn is_key_like(object_type: u32) -> bool {
    matches!(
        ObjectType::from_u32(object_type),
        ObjectType::SymmetricKey
            | ObjectType::PublicKey
            | ObjectType::PrivateKey
            | ObjectType::SplitKey
            | ObjectType::SecretData
            | ObjectType::Certificate
            | ObjectType::PGPKey
    )
}

/// Refuses use of an archived object.
pub fn check_not_archived(obj: &StoredObject) -> Result<(), Error> {
    if attributes::date_of(obj, "Archive Date").is_some() {
        return Err(Error::ObjectArchived(obj.uid.clone()));
    }
    Ok(())
}

/// The object may be used to protect (encrypt, sign, MAC, wrap): it must be Active, and the
/// Protect Stop Date must not have passed.
pub fn check_may_protect(obj: &StoredObject, now: i64) -> Result<(), Error> {
    check_not_archived(obj)?;
    if obj.state != State::Active.to_u32() {
        return Err(Error::WrongKeyLifecycleState(format!(
            "{} is not active",
            obj.uid
        )));
    }
    if attributes::date_of(obj, "Protect Stop Date").is_some_and(|d| d <= now) {
        return Err(Error::WrongKeyLifecycleState(format!(
            "{} is past its Protect Stop Date",
            obj.uid
        )));
    }
    Ok(())
}

/// The object may be used to process (decrypt, verify): Active, or Deactivated/Compromised
/// (to read old data), and the Process Start Date reached.
pub fn check_may_process(obj: &StoredObject, now: i64) -> Result<(), Error> {
    check_not_archived(obj)?;
    let s = State::from_u32(obj.state);
    if !matches!(s, State::Active | State::Deactivated | State::Compromised) {
        return Err(Error::WrongKeyLifecycleState(format!(
            "{} may not be used in state {s:?}",
            obj.uid
        )));
    }
    if attributes::date_of(obj, "Process Start Date").is_some_and(|d| d > now) {
        return Err(Error::WrongKeyLifecycleState(format!(
            "{} is before its Process Start Date",
            obj.uid
        )));
    }
    Ok(())
}

/// The usage mask allows `bits` (any of them).
pub fn check_usage(obj: &StoredObject, bits: u32, what: &str) -> Result<(), Error> {
    let mask = attributes::int_of(obj, "Cryptographic Usage Mask").unwrap_or(0) as u32;
    if mask & bits == 0 {
        return Err(Error::IncompatibleUsageMask(what.to_string()));
    }
    Ok(())
}

/// A Unique Identifier response item.
pub fn uid_item(uid: &str) -> Item {
    Item::new(Tag::UNIQUE_IDENTIFIER, Value::TextString(uid.to_string()))
}

/// A Response Payload.
pub fn payload(children: Vec<Item>) -> Option<Item> {
    Some(Item::structure(Tag::RESPONSE_PAYLOAD, children))
}

/// Seals `value` (an object structure) into `obj`, with the Digest attribute of its key
/// material (SHA-256, as KMIP recommends).
pub fn set_value(obj: &mut StoredObject, value: &Item) -> Result<(), Error> {
    use sha2::Digest as _;
    if let Some(input) = super::keyblock::digest_input(value) {
        let fmt = super::keyblock::key_block(value)
            .and_then(super::keyblock::format_of)
            .unwrap_or(crate::ttlv::tables::enums::KeyFormatType::Raw);
        set_digest(obj, sha2::Sha256::digest(&input).to_vec(), fmt);
    }
    obj.value = Some(crate::store::SecretBytes::new(super::keyblock::seal(
        value,
    )?));
    Ok(())
}

/// Sets the Digest attribute: SHA-256 `digest` of the key in format `format`.
pub fn set_digest(
    obj: &mut StoredObject,
    digest: Vec<u8>,
    format: crate::ttlv::tables::enums::KeyFormatType,
) {
    // Kept with its Key Format Type (KMIP 1.1 on); a 1.0 answer leaves that field out.
    let d = vec![
        Item::new(
            Tag::HASHING_ALGORITHM,
            Value::Enumeration(crate::ttlv::tables::enums::HashingAlgorithm::SHA_256.to_u32()),
        ),
        Item::new(Tag::DIGEST_VALUE, Value::ByteString(digest)),
        Item::new(Tag::KEY_FORMAT_TYPE, Value::Enumeration(format.to_u32())),
    ];
    obj.attributes.remove(|n, _| n == "Digest");
    let stored = add(obj, "Digest", Item::structure(Tag::ATTRIBUTE_VALUE, d));
    debug_assert!(
        stored.is_ok(),
        "a Digest structure always has a compact form"
    );
}

/// Stores a new Symmetric Key (algorithm from the template) or Secret Data (a seed) made of
/// `bytes`, which Derive Key and Join Split Key produce; returns its Unique Identifier.
pub fn store_made_secret(
    ctx: &Context<'_>,
    object_type: ObjectType,
    attrs: &[Attribute],
    bits: i32,
    bytes: &[u8],
    operation: &str,
) -> Result<String, Error> {
    let value = match object_type {
        ObjectType::SymmetricKey => {
            let alg = attributes::find_enum(attrs, "Cryptographic Algorithm")
                .ok_or_else(|| Error::MissingData("Cryptographic Algorithm".into()))?;
            super::keyblock::symmetric_key(bytes, alg, bits)
        }
        ObjectType::SecretData => super::keyblock::secret_data(
            bytes,
            crate::ttlv::tables::enums::SecretDataType::Seed.to_u32(),
        ),
        other => {
            return Err(Error::InvalidField(format!(
                "{operation} makes Symmetric Keys and Secret Data, not {other:?}"
            )));
        }
    };
    let mut obj = new_object(ctx, object_type, attrs, vec![])?;
    set_value(&mut obj, &value)?;
    Ok(store_new(ctx, vec![obj])?.remove(0))
}

/// Stores new objects; returns their Unique Identifiers, in order.
pub fn store_new(ctx: &Context<'_>, objects: Vec<StoredObject>) -> Result<Vec<String>, Error> {
    let results = commit(ctx, objects.into_iter().map(Change::Create).collect())?;
    let uids: Vec<String> = results.into_iter().filter_map(|r| r.uid).collect();
    Ok(uids)
}

/// The stored object structure of `obj`.
pub fn stored_value(obj: &StoredObject) -> Result<Item, Error> {
    let v = obj
        .value
        .as_ref()
        .ok_or_else(|| Error::ItemNotFound(format!("{} has no value", obj.uid)))?;
    super::keyblock::unseal(v.expose())
}

/// The Object Type of a request payload.
pub fn object_type_of(payload: &Item) -> Result<ObjectType, Error> {
    match payload.child(Tag::OBJECT_TYPE).map(|v| &v.value) {
        Some(Value::Enumeration(t)) => Ok(ObjectType::from_u32(*t)),
        Some(_) => Err(Error::InvalidField("Object Type".into())),
        None => Err(Error::InvalidMessage("Object Type is missing".into())),
    }
}

/// The Random Number Generator attribute of keys ksg generates: the token's DRBG (the operating
/// system's generator for the software token, the HSM's for PKCS#11).
pub fn rng_attribute() -> Value {
    Value::Structure(vec![Item::new(
        Tag::RNG_ALGORITHM,
        Value::Enumeration(crate::ttlv::tables::enums::RNGAlgorithm::DRBG.to_u32()),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ttlv::ItemType;

    #[test]
    fn an_unresolved_placeholder_is_refused_not_dropped() {
        let mut obj = StoredObject {
            uid: "1".into(),
            object_type: ObjectType::SymmetricKey.to_u32(),
            state: State::PreActive.to_u32(),
            owner: None,
            hsm_name: "h".into(),
            attributes: Attributes::new(),
            token_ref: None,
            value: None,
        };
        // What the XML and JSON decoders make of `value="$M"` for an Integer.
        let placeholder = attributes::value(Value::Placeholder(ItemType::Integer, "$M".into()));
        assert!(matches!(
            add(&mut obj, "Cryptographic Usage Mask", placeholder),
            Err(Error::InvalidField(_))
        ));
        assert!(obj.attributes.is_empty());
        add(
            &mut obj,
            "Cryptographic Usage Mask",
            attributes::value(Value::Integer(12)),
        )
        .expect("an integer is stored");
        assert_eq!(obj.attributes.len(), 1);
    }
}
