//! Get: the object's value, in the format it is stored in or the Key Format Type asked for.
//! Sensitive keys leave only wrapped; non-extractable keys never.

use super::attributes;
use super::object::{self, payload, uid_item};
use super::{Context, Outcome, keyblock};
use crate::kmip::Error;
use crate::token::template::usage;
use crate::token::{Attr, AttrType, Class, KeyType, Mech};
use crate::ttlv::tables::enums::{
    BlockCipherMode, EncodingOption, KeyFormatType, KeyWrapType, ObjectType, State, WrappingMethod,
};
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
        let value = wrapped(ctx, &obj, spec, want)?;
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
    let value = if object_type == ObjectType::Template {
        let attrs = obj
            .attributes
            .iter()
            .filter(|a| attributes::rule_of(&a.name).is_some_and(|r| r.client_sets))
            .map(|a| attributes::to_item(&a.name, a.index, &a.value))
            .collect();
        Item::structure(Tag::TEMPLATE, attrs)
    } else if obj.value.is_some() {
        let stored = object::stored_value(&obj)?;
        let stored = match payload_in.child(Tag::KEY_WRAP_TYPE).map(|v| &v.value) {
            Some(Value::Enumeration(t)) if *t == KeyWrapType::NotWrapped.to_u32() => {
                unwrapped(ctx, stored)?
            }
            _ => stored,
        };
        keyblock::convert(stored, want)?
    } else {
        return Err(Error::NotExtractable(format!(
            "{} lives on the HSM; ksg cannot export it",
            obj.uid
        )));
    };
    mark_not_fresh(ctx, &obj)?;
    Ok(payload(vec![
        Item::new(Tag::OBJECT_TYPE, Value::Enumeration(obj.object_type)),
        uid_item(&obj.uid),
        value,
    ]))
}

/// The key-wrap mechanism an Encryption Key Information names (its Cryptographic Parameters,
/// else the wrapping key's): RFC 3394 by default, RFC 5649 for AES Key Wrap Padding.
fn wrap_mech(info: &Item, wrapping: &crate::store::StoredObject) -> Result<Mech, Error> {
    let mode = info
        .child(Tag::CRYPTOGRAPHIC_PARAMETERS)
        .or_else(|| attributes::first(wrapping, "Cryptographic Parameters"))
        .and_then(|p| p.child(Tag::BLOCK_CIPHER_MODE))
        .and_then(|m| match m.value {
            Value::Enumeration(v) => Some(BlockCipherMode::from_u32(v)),
            _ => None,
        });
    match mode {
        Some(BlockCipherMode::NISTKeyWrap) | None => Ok(Mech::AesKeyWrap),
        Some(BlockCipherMode::AESKeyWrapPadding) => Ok(Mech::AesKeyWrapPad),
        Some(other) => Err(Error::FeatureNotSupported(format!(
            "wrapping with {other:?}"
        ))),
    }
}

/// A key registered wrapped, unwrapped (Key Wrap Type Not Wrapped) with the wrapping key it
/// names, which the caller must be allowed to use. Only key material wrapped as it is (no TTLV
/// encoding) is supported.
fn unwrapped(ctx: &Context<'_>, object: Item) -> Result<Item, Error> {
    let Some(block) = keyblock::key_block(&object) else {
        return Ok(object);
    };
    let Some(data) = block.child(Tag::KEY_WRAPPING_DATA) else {
        return Ok(object);
    };
    if let Some(Value::Enumeration(e)) = data.child(Tag::ENCODING_OPTION).map(|v| &v.value)
        && *e != EncodingOption::NoEncoding.to_u32()
    {
        return Err(Error::FeatureNotSupported(
            "TTLV-encoded wrapped keys".into(),
        ));
    }
    let info = data.child(Tag::ENCRYPTION_KEY_INFORMATION).ok_or_else(|| {
        Error::FeatureNotSupported("keys wrapped other than by encryption".into())
    })?;
    let kek_uid = match info.child(Tag::UNIQUE_IDENTIFIER).map(|v| &v.value) {
        Some(Value::TextString(s)) => s.clone(),
        _ => {
            return Err(Error::MissingData(
                "the wrapping key's Unique Identifier".into(),
            ));
        }
    };
    let kek = object::load(ctx, &kek_uid)?;
    object::check_may_process(&kek, ctx.now)?;
    object::check_usage(
        &kek,
        usage::WRAP_KEY | usage::UNWRAP_KEY,
        "Wrap Key / Unwrap Key",
    )?;
    let wrapped_bytes = match block.child(Tag::KEY_VALUE).map(|v| &v.value) {
        Some(Value::ByteString(b)) => b.clone(),
        Some(Value::Structure(_)) => match keyblock::key_material(block).map(|m| &m.value) {
            Some(Value::ByteString(b)) => b.clone(),
            _ => return Err(Error::InvalidField("wrapped Key Material".into())),
        },
        _ => return Err(Error::InvalidField("Key Value".into())),
    };
    let vault = ctx.vault()?;
    let token = vault.token();
    let template = [
        Attr::Token(false),
        Attr::Class(Class::SecretKey),
        Attr::KeyType(KeyType::GenericSecret),
        Attr::Sensitive(false),
        Attr::Extractable(true),
    ];
    let h = token
        .unwrap_key(
            vault.handle(&kek)?,
            &wrap_mech(info, &kek)?,
            &wrapped_bytes,
            &template,
        )
        .map_err(|_| Error::CryptographicFailure("the key does not unwrap".into()))?;
    let value = token
        .get_attributes(h, &[AttrType::Value])
        .map_err(Error::Token);
    let _ = token.destroy(h);
    let Some(Attr::Value(plain)) = value?.into_iter().next() else {
        return Err(Error::Internal("the token kept the unwrapped key".into()));
    };
    let children: Vec<Item> = block
        .children()
        .iter()
        .filter(|c| c.tag != Tag::KEY_WRAPPING_DATA)
        .map(|c| {
            if c.tag == Tag::KEY_VALUE {
                Item::structure(
                    Tag::KEY_VALUE,
                    vec![Item::new(
                        Tag::KEY_MATERIAL,
                        Value::ByteString(plain.clone()),
                    )],
                )
            } else {
                c.clone()
            }
        })
        .collect();
    let others = object
        .children()
        .iter()
        .map(|c| {
            if c.tag == Tag::KEY_BLOCK {
                Item::structure(Tag::KEY_BLOCK, children.clone())
            } else {
                c.clone()
            }
        })
        .collect();
    Ok(Item::structure(object.tag, others))
}

/// An object handed out is no longer Fresh.
fn mark_not_fresh(ctx: &Context<'_>, obj: &crate::store::StoredObject) -> Result<(), Error> {
    if attributes::bool_of(obj, "Fresh") == Some(true) {
        object::commit(
            ctx,
            vec![object::set_single(obj, "Fresh", Value::Boolean(false))],
        )?;
    }
    Ok(())
}

/// The object with its key value wrapped as the Key Wrapping Specification asks: method
/// Encrypt, AES key wrap (RFC 3394 or 5649) under a wrapping key the caller may use, the key
/// material wrapped as it is (no TTLV encoding).
fn wrapped(
    ctx: &Context<'_>,
    obj: &crate::store::StoredObject,
    spec: &Item,
    want: Option<KeyFormatType>,
) -> Result<Item, Error> {
    if let Some(Value::Enumeration(m)) = spec.child(Tag::WRAPPING_METHOD).map(|v| &v.value)
        && *m != WrappingMethod::Encrypt.to_u32()
    {
        return Err(Error::FeatureNotSupported(
            "wrapping methods other than Encrypt".into(),
        ));
    }
    if spec.child(Tag::MAC_SIGNATURE_KEY_INFORMATION).is_some() {
        return Err(Error::FeatureNotSupported(
            "MAC/signature key wrapping".into(),
        ));
    }
    if let Some(Value::Enumeration(e)) = spec.child(Tag::ENCODING_OPTION).map(|v| &v.value)
        && *e != EncodingOption::NoEncoding.to_u32()
    {
        return Err(Error::FeatureNotSupported("TTLV-encoded wrapping".into()));
    }
    let info = spec
        .child(Tag::ENCRYPTION_KEY_INFORMATION)
        .ok_or_else(|| Error::MissingData("Encryption Key Information".into()))?;
    let wrapping_uid = match info.child(Tag::UNIQUE_IDENTIFIER).map(|v| &v.value) {
        Some(Value::TextString(s)) => s.clone(),
        _ => {
            return Err(Error::MissingData(
                "the wrapping key's Unique Identifier".into(),
            ));
        }
    };
    let wrapping = object::load(ctx, &wrapping_uid)?;
    object::check_may_protect(&wrapping, ctx.now)?;
    object::check_usage(&wrapping, usage::WRAP_KEY, "Wrap Key")?;
    let mech = wrap_mech(info, &wrapping)?;
    let plain = keyblock::convert(object::stored_value(obj)?, want)?;
    let block = keyblock::key_block(&plain)
        .ok_or_else(|| Error::InvalidField("only keys can be wrapped".into()))?;
    if !matches!(keyblock::material(&plain)?, keyblock::Material::Secret(_)) {
        return Err(Error::FeatureNotSupported(
            "wrapping asymmetric keys".into(),
        ));
    }
    let vault = ctx.vault()?;
    let wrapped = vault
        .token()
        .wrap_key(vault.handle(&wrapping)?, vault.handle(obj)?, &mech)
        .map_err(Error::Token)?;
    let encoding = spec.child(Tag::ENCODING_OPTION).cloned();
    let mut info_out = vec![uid_item(&wrapping_uid)];
    if let Some(p) = info.child(Tag::CRYPTOGRAPHIC_PARAMETERS) {
        info_out.push(p.clone());
    }
    let mut children: Vec<Item> = block
        .children()
        .iter()
        .map(|c| {
            if c.tag == Tag::KEY_VALUE {
                Item::new(Tag::KEY_VALUE, Value::ByteString(wrapped.clone()))
            } else {
                c.clone()
            }
        })
        .collect();
    let mut wrapping_data = vec![
        Item::new(
            Tag::WRAPPING_METHOD,
            Value::Enumeration(WrappingMethod::Encrypt.to_u32()),
        ),
        Item::structure(Tag::ENCRYPTION_KEY_INFORMATION, info_out),
    ];
    wrapping_data.extend(encoding);
    children.push(Item::structure(Tag::KEY_WRAPPING_DATA, wrapping_data));
    let others: Vec<Item> = plain
        .children()
        .iter()
        .filter(|c| c.tag != Tag::KEY_BLOCK)
        .cloned()
        .chain(std::iter::once(Item::structure(Tag::KEY_BLOCK, children)))
        .collect();
    Ok(Item::structure(plain.tag, others))
}
