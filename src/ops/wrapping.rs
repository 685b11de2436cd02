//! Key wrapping, shared by Get and the cryptographic operations: wrapping a key for Get with a
//! Key Wrapping Specification (AES key wrap), unwrapping a key registered wrapped, and the token
//! handle of a key whose stored value is wrapped.

use super::object::uid_item;
use super::{Context, attributes, keyblock, object};
use crate::kmip::Error;
use crate::store::StoredObject;
use crate::token::template::usage;
use crate::token::{Attr, AttrType, Class, Handle, KeyType, Mech, Token};
use crate::ttlv::tables::enums::{
    BlockCipherMode, CryptographicAlgorithm, EncodingOption, KeyFormatType, ObjectType,
    WrappingMethod,
};
use crate::ttlv::{Item, Tag, Value};

/// The object structure of `obj` in the clear: its stored value (unwrapped if it was registered
/// wrapped), or the key taken out of the HSM.
pub fn plain_object(ctx: &Context<'_>, obj: &StoredObject) -> Result<Item, Error> {
    if obj.value.is_some() {
        unwrapped(ctx, object::stored_value(obj)?)
    } else if obj.token_ref.is_some() {
        from_hsm(ctx, obj)
    } else {
        Err(Error::ItemNotFound(format!("{} has no value", obj.uid)))
    }
}

/// The token handle of `obj`'s key, unwrapping a key that was registered wrapped.
pub fn key_handle(ctx: &Context<'_>, obj: &StoredObject) -> Result<Handle, Error> {
    ctx.vault()?
        .handle_with(obj, |stored| unwrapped(ctx, stored))
}

/// Runs `f` with the token handle of `obj`'s key. If the token was re-initialised meanwhile
/// (an HSM that went away and came back), the handle went stale with it: the key is looked up
/// again and `f` runs once more.
pub fn with_key<T>(
    ctx: &Context<'_>,
    obj: &StoredObject,
    mut f: impl FnMut(Handle) -> Result<T, Error>,
) -> Result<T, Error> {
    ctx.vault()?.again_after_reset(|| f(key_handle(ctx, obj)?))
}

/// The object with its key value wrapped as the Key Wrapping Specification asks: method
/// Encrypt, AES key wrap (RFC 3394 or 5649) under a wrapping key the caller may use, the key
/// material wrapped as it is (no TTLV encoding).
pub fn wrapped(
    ctx: &Context<'_>,
    obj: &StoredObject,
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
    let no_encoding = no_encoding(spec);
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
    let plain = keyblock::convert(plain_object(ctx, obj)?, want)?;
    let block = keyblock::key_block(&plain)
        .ok_or_else(|| Error::InvalidField("only keys can be wrapped".into()))?;
    if !matches!(keyblock::material(&plain)?, keyblock::Material::Secret(_)) {
        return Err(Error::FeatureNotSupported(
            "wrapping asymmetric keys".into(),
        ));
    }
    let vault = ctx.vault()?;
    let kek = key_handle(ctx, &wrapping)?;
    // No Encoding wraps the key material itself; otherwise (the default) the TTLV encoding of
    // the whole Key Value is wrapped. Either way the wrapped Key Value is a Byte String.
    let wrapped = if no_encoding {
        vault
            .token()
            .wrap_key(kek, key_handle(ctx, obj)?, &mech)
            .map_err(Error::Token)?
    } else {
        let key_value = block
            .child(Tag::KEY_VALUE)
            .ok_or_else(|| Error::InvalidField("the key has no Key Value".into()))?;
        // Zeroed when dropped.
        let encoded = crate::store::SecretBytes::new(keyblock::seal(key_value)?);
        match vault.token().encrypt(kek, &mech, encoded.expose()) {
            Ok(w) => w,
            // An HSM wrapping key that may wrap but not encrypt (CKA_ENCRYPT false) cannot
            // key-wrap arbitrary bytes there: it comes out through the customer KEK and the
            // software token wraps with it.
            Err(_) if wrapping.token_ref.is_some() => {
                let value = vault.export(&wrapping)?;
                let soft = crate::token::soft::SoftToken::new();
                let h = soft
                    .create_object(&[
                        Attr::Token(false),
                        Attr::Class(Class::SecretKey),
                        Attr::KeyType(KeyType::Aes),
                        Attr::Value(value.to_vec()),
                        Attr::Encrypt(true),
                    ])
                    .map_err(Error::Token)?;
                soft.encrypt(h, &mech, encoded.expose())
                    .map_err(Error::Token)?
            }
            Err(e) => return Err(Error::Token(e)),
        }
    };
    let wrapped_value = Item::new(Tag::KEY_VALUE, Value::ByteString(wrapped));
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
                wrapped_value.clone()
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

/// Whether a Key Wrapping Specification or Key Wrapping Data says No Encoding (the key
/// material alone is wrapped) rather than TTLV encoding (the default: the Key Value is).
fn no_encoding(spec: &Item) -> bool {
    matches!(
        spec.child(Tag::ENCODING_OPTION).map(|v| &v.value),
        Some(Value::Enumeration(e)) if *e == EncodingOption::NoEncoding.to_u32()
    )
}

/// The key-wrap mechanism an Encryption Key Information names (its Cryptographic Parameters,
/// else the wrapping key's): RFC 3394 by default, RFC 5649 for AES Key Wrap Padding.
fn wrap_mech(info: &Item, wrapping: &StoredObject) -> Result<Mech, Error> {
    let kept = attributes::first(wrapping, "Cryptographic Parameters");
    let mode = info
        .child(Tag::CRYPTOGRAPHIC_PARAMETERS)
        .or(kept.as_ref())
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
pub fn unwrapped(ctx: &Context<'_>, object: Item) -> Result<Item, Error> {
    let Some(block) = keyblock::key_block(&object) else {
        return Ok(object);
    };
    let Some(data) = block.child(Tag::KEY_WRAPPING_DATA) else {
        return Ok(object);
    };
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
    let vault = ctx.vault()?;
    let token = vault.token();
    let kek_handle = vault.handle(&kek)?;
    let mech = wrap_mech(info, &kek)?;
    let key_value = match block.child(Tag::KEY_VALUE).map(|v| &v.value) {
        // TTLV encoding: the wrapped bytes are a whole Key Value.
        Some(Value::ByteString(b)) if !no_encoding(data) => {
            let encoded = crate::store::SecretBytes::new(
                token
                    .decrypt(kek_handle, &mech, b)
                    .map_err(|_| Error::CryptographicFailure("the key does not unwrap".into()))?,
            );
            keyblock::unseal(encoded.expose())
                .map_err(|_| Error::InvalidField("the unwrapped Key Value".into()))?
        }
        // No Encoding: the wrapped bytes are the key material.
        Some(Value::ByteString(b)) => material_value(token, kek_handle, &mech, b)?,
        Some(Value::Structure(_)) => match keyblock::key_material(block).map(|m| &m.value) {
            Some(Value::ByteString(b)) => material_value(token, kek_handle, &mech, b)?,
            _ => return Err(Error::InvalidField("wrapped Key Material".into())),
        },
        _ => return Err(Error::InvalidField("Key Value".into())),
    };
    let children: Vec<Item> = block
        .children()
        .iter()
        .filter(|c| c.tag != Tag::KEY_WRAPPING_DATA)
        .map(|c| {
            if c.tag == Tag::KEY_VALUE {
                key_value.clone()
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

/// A Key Value holding the key material that `wrapped` unwraps to under `kek`.
fn material_value(
    token: &dyn Token,
    kek: Handle,
    mech: &Mech,
    wrapped: &[u8],
) -> Result<Item, Error> {
    let template = [
        Attr::Token(false),
        Attr::Class(Class::SecretKey),
        Attr::KeyType(KeyType::GenericSecret),
        Attr::Sensitive(false),
        Attr::Extractable(true),
    ];
    let h = token
        .unwrap_key(kek, mech, wrapped, &template)
        .map_err(|_| Error::CryptographicFailure("the key does not unwrap".into()))?;
    let value = token
        .get_attributes(h, &[AttrType::Value])
        .map_err(Error::Token);
    let _ = token.destroy(h);
    let Some(Attr::Value(plain)) = value?.into_iter().next() else {
        return Err(Error::Internal("the token kept the unwrapped key".into()));
    };
    Ok(Item::structure(
        Tag::KEY_VALUE,
        vec![Item::new(Tag::KEY_MATERIAL, Value::ByteString(plain))],
    ))
}

/// The object structure of a key that lives on the HSM: secret and private keys taken out
/// wrapped under the customer KEK and unwrapped here, public keys read from the token.
fn from_hsm(ctx: &Context<'_>, obj: &StoredObject) -> Result<Item, Error> {
    let vault = ctx.vault()?;
    let alg = attributes::enum_of(obj, "Cryptographic Algorithm").unwrap_or(0);
    let bits = attributes::int_of(obj, "Cryptographic Length").unwrap_or(0);
    let is_rsa = CryptographicAlgorithm::from_u32(alg) == CryptographicAlgorithm::RSA;
    match ObjectType::from_u32(obj.object_type) {
        ObjectType::SymmetricKey => Ok(keyblock::symmetric_key(&vault.export(obj)?, alg, bits)),
        ObjectType::PrivateKey => {
            let m = keyblock::private_from_pkcs8(&vault.export(obj)?, is_rsa)?;
            keyblock::key_pair_half(&m, bits)
        }
        ObjectType::PublicKey => {
            let h = vault.handle(obj)?;
            let wanted = [
                AttrType::Modulus,
                AttrType::PublicExponent,
                AttrType::EcPoint,
                AttrType::EcParams,
            ];
            let attrs = vault
                .token()
                .get_attributes(h, &wanted)
                .map_err(Error::Token)?;
            keyblock::key_pair_half(&keyblock::public_from_token(&attrs)?, bits)
        }
        other => Err(Error::NotExtractable(format!(
            "{other:?} objects on the HSM cannot be exported"
        ))),
    }
}
