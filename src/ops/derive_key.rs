//! Derive Key: a new Symmetric Key or Secret Data from base objects' values, by PBKDF2, HASH or
//! HMAC from one secret, or by ECDH (Asymmetric Key) from an EC private key and a peer's public
//! key, computed here from the values in the clear (the keystore's, or taken out of the HSM
//! through the customer KEK). The new object is linked to its bases and back.

use super::attributes::{self, Attribute, find_int};
use super::create_key_pair::link_change;
use super::keyblock::{self, Material};
use super::object::{self, payload, uid_item};
use super::{Context, Outcome, wrapping};
use crate::kmip::Error;
use crate::store::SecretBytes;
use crate::token::mechanism;
use crate::token::template::usage;
use crate::ttlv::tables::enums::{DerivationMethod, LinkType, ObjectType};
use crate::ttlv::{Item, Tag, Value};

/// The most PBKDF2 iterations one request may ask for (it is work the server does).
pub const MAX_ITERATIONS: i32 = 1_000_000;

/// Handles one Derive Key request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let object_type = object::object_type_of(&payload_in)?;
    let mut bases = Vec::new();
    for u in payload_in.children_with(Tag::UNIQUE_IDENTIFIER) {
        match &u.value {
            Value::TextString(s) => bases.push(s.clone()),
            _ => return Err(Error::InvalidField("Unique Identifier must be text".into())),
        }
    }
    if bases.is_empty() {
        let placeholder = ctx.id_placeholder.clone();
        bases.push(placeholder.ok_or_else(|| Error::MissingData("Unique Identifier".into()))?);
    }
    let method = match payload_in.child(Tag::DERIVATION_METHOD).map(|v| &v.value) {
        Some(Value::Enumeration(m)) => DerivationMethod::from_u32(*m),
        _ => return Err(Error::MissingData("Derivation Method".into())),
    };
    let params = payload_in
        .child(Tag::DERIVATION_PARAMETERS)
        .ok_or_else(|| Error::MissingData("Derivation Parameters".into()))?;
    let attrs = attributes::parse_all(payload_in.child(Tag::TEMPLATE_ATTRIBUTE))?;
    let bits = find_int(&attrs, "Cryptographic Length")
        .ok_or_else(|| Error::MissingData("Cryptographic Length".into()))?;
    if bits <= 0 || bits % 8 != 0 || bits > 8192 {
        return Err(Error::InvalidField("Cryptographic Length".into()));
    }
    let len = bits as usize / 8;
    // Every base object must be usable for derivation (a peer's public key needs no such
    // permission); their values in the clear.
    let mut materials = Vec::with_capacity(bases.len());
    for uid in &bases {
        let base = object::load(ctx, uid)?;
        object::check_may_protect(&base, ctx.now)?;
        if ObjectType::from_u32(base.object_type) != ObjectType::PublicKey {
            object::check_usage(&base, usage::DERIVE_KEY, "Derive Key")?;
        }
        materials.push(keyblock::material(&wrapping::plain_object(ctx, &base)?)?);
    }
    let derived = match method {
        DerivationMethod::AsymmetricKey => ecdh(&materials, len)?,
        _ => {
            let secret = match materials.as_slice() {
                [Material::Secret(s)] => SecretBytes::new(s.clone()),
                [_] => {
                    return Err(Error::FeatureNotSupported(format!(
                        "{method:?} derivation from an asymmetric key"
                    )));
                }
                _ => {
                    return Err(Error::FeatureNotSupported(format!(
                        "{method:?} derivation from several objects"
                    )));
                }
            };
            SecretBytes::new(from_secret(method, params, &secret, len)?)
        }
    };
    store_derived(ctx, object_type, &attrs, bits, &derived, &bases)
}

/// PBKDF2, HASH or HMAC of `secret`, `len` bytes.
fn from_secret(
    method: DerivationMethod,
    params: &Item,
    secret: &SecretBytes,
    len: usize,
) -> Result<Vec<u8>, Error> {
    let bytes = |tag: Tag| match params.child(tag).map(|v| &v.value) {
        Some(Value::ByteString(b)) => Ok(b.clone()),
        Some(_) => Err(Error::InvalidField(format!("{tag}"))),
        None => Ok(Vec::new()),
    };
    let hash_named = params
        .child(Tag::CRYPTOGRAPHIC_PARAMETERS)
        .and_then(|p| p.child(Tag::HASHING_ALGORITHM))
        .and_then(|h| match h.value {
            Value::Enumeration(v) => Some(v),
            _ => None,
        })
        .map(mechanism::hash)
        .transpose()
        .map_err(|e| Error::InvalidField(e.to_string()))?;
    match method {
        DerivationMethod::PBKDF2 => {
            let iterations = match params.child(Tag::ITERATION_COUNT).map(|v| &v.value) {
                Some(Value::Integer(n)) if (1..=MAX_ITERATIONS).contains(n) => *n as u32,
                Some(_) => {
                    return Err(Error::InvalidField(format!(
                        "Iteration Count must be 1 to {MAX_ITERATIONS}"
                    )));
                }
                None => return Err(Error::MissingData("Iteration Count".into())),
            };
            // PBKDF2's default PRF is HMAC-SHA-1 (RFC 8018).
            let h = hash_named.unwrap_or(crate::token::Hash::Sha1);
            Ok(mechanism::pbkdf2(
                h,
                secret.expose(),
                &bytes(Tag::SALT)?,
                iterations,
                len,
            ))
        }
        DerivationMethod::HASH | DerivationMethod::HMAC => {
            let h = hash_named.ok_or_else(|| Error::MissingData("Hashing Algorithm".into()))?;
            let data = bytes(Tag::DERIVATION_DATA)?;
            let mut out = if method == DerivationMethod::HASH {
                mechanism::digest(h, &[secret.expose(), &data].concat())
            } else {
                mechanism::hmac(h, secret.expose(), &data)
            };
            if out.len() < len {
                return Err(Error::InvalidField(format!(
                    "{method:?} gives {} bytes, fewer than the {len} asked for",
                    out.len()
                )));
            }
            out.truncate(len);
            Ok(out)
        }
        other => Err(Error::FeatureNotSupported(format!(
            "the {other:?} derivation method"
        ))),
    }
}

/// ECDH between an EC private key and a peer's public key on the same curve: the shared
/// secret's leading `len` bytes.
fn ecdh(materials: &[Material], len: usize) -> Result<SecretBytes, Error> {
    let (curve, d, q) = match materials {
        [
            Material::EcPrivate { curve, d },
            Material::EcPublic { curve: c2, q },
        ]
        | [
            Material::EcPublic { curve: c2, q },
            Material::EcPrivate { curve, d },
        ] if curve == c2 => (*curve, d, q),
        _ => {
            return Err(Error::InvalidField(
                "ECDH takes one EC private key and one EC public key on the same curve".into(),
            ));
        }
    };
    let shared = crate::token::soft::ecdh_shared_secret(curve, d, q)
        .ok_or_else(|| Error::CryptographicFailure("ECDH failed".into()))?;
    if shared.len() < len {
        return Err(Error::InvalidField(format!(
            "ECDH gives {} bytes, fewer than the {len} asked for",
            shared.len()
        )));
    }
    Ok(SecretBytes::new(shared[..len].to_vec()))
}

/// Stores the derived object and links it to its bases (and them to it).
fn store_derived(
    ctx: &mut Context<'_>,
    object_type: ObjectType,
    attrs: &[Attribute],
    bits: i32,
    derived: &SecretBytes,
    bases: &[String],
) -> Outcome {
    let uid = object::store_made_secret(
        ctx,
        object_type,
        attrs,
        bits,
        derived.expose(),
        "Derive Key",
    )?;
    let mut links = Vec::with_capacity(2 * bases.len());
    for base in bases {
        links.push(link_change(&uid, LinkType::DerivationBaseObjectLink, base));
        links.push(link_change(base, LinkType::DerivedKeyLink, &uid));
    }
    object::commit(ctx, links)?;
    Ok(payload(vec![uid_item(&uid)]))
}
