//! PKCS#12 as KMIP 1.4 defines it, between files and managed objects: Register of a Private
//! Key in Key Format Type PKCS#12 keeps its key and certificates as separate objects, linked
//! by PKCS#12 Certificate Links; Get of a Private Key as PKCS#12 packs the key with that chain.
//! Both take the password from the Secret Data its PKCS#12 Password Link names, which must be
//! Active.

use zeroize::Zeroizing;

use super::attributes::{self, Attribute};
use super::create_key_pair::link_change;
use super::{Context, keyblock, object, register, wrapping};
use crate::kmip::Error;
use crate::pkcs12::{self, Pkcs12Error};
use crate::store::StoredObject;
use crate::ttlv::tables::enums::{CertificateType, KeyFormatType, LinkType, ObjectType, State};
use crate::ttlv::{Item, Tag, Value};

/// Certificates followed from a key through PKCS#12 Certificate Links, at most.
const MAX_CHAIN: usize = 10;

impl From<Pkcs12Error> for Error {
    fn from(e: Pkcs12Error) -> Error {
        match e {
            Pkcs12Error::Malformed(_) => Error::InvalidField(e.to_string()),
            Pkcs12Error::WrongPassword => Error::CryptographicFailure(e.to_string()),
            Pkcs12Error::Unsupported(_) => Error::FeatureNotSupported(e.to_string()),
        }
    }
}

/// The password held by the Secret Data `uid`, which must be Active.
fn password(ctx: &Context<'_>, uid: Option<String>) -> Result<Zeroizing<Vec<u8>>, Error> {
    let uid = uid.ok_or_else(|| {
        Error::MissingData("PKCS#12 needs a PKCS#12 Password Link to a Secret Data".into())
    })?;
    let obj = object::load(ctx, &uid)?;
    if ObjectType::from_u32(obj.object_type) != ObjectType::SecretData {
        return Err(Error::InvalidField(format!(
            "the PKCS#12 Password Link names {uid}, which is not Secret Data"
        )));
    }
    object::check_not_archived(&obj)?;
    if obj.state != State::Active.to_u32() {
        return Err(Error::PermissionDenied(format!(
            "the PKCS#12 password {uid} is not active"
        )));
    }
    match keyblock::material(&wrapping::plain_object(ctx, &obj)?)? {
        keyblock::Material::Secret(p) => Ok(Zeroizing::new(p)),
        _ => Err(Error::InvalidField(format!(
            "the PKCS#12 password {uid} is not a secret"
        ))),
    }
}

/// The PKCS#12 Password Link among a request's attributes.
fn password_link(attrs: &[Attribute]) -> Option<String> {
    let links = attrs
        .iter()
        .filter(|a| a.name == "Link")
        .filter_map(|a| a.value.as_ref());
    attributes::link_target(links, LinkType::PKCS_12PasswordLink)
}

/// The PKCS#12 file inside a registered Private Key (its Key Value is the file, as a Byte
/// String, or a Key Material byte string).
pub fn file_of(value: &Item) -> Option<&[u8]> {
    let key_value = keyblock::key_block(value)?.child(Tag::KEY_VALUE)?;
    match &key_value.value {
        Value::ByteString(b) => Some(b),
        _ => match &key_value.child(Tag::KEY_MATERIAL)?.value {
            Value::ByteString(b) => Some(b),
            _ => None,
        },
    }
}

/// A registered PKCS#8 Private Key that is an EncryptedPrivateKeyInfo, decrypted with the
/// password its PKCS#12 Password Link names; `None` when it is not encrypted. Without the
/// link it is refused: the key could never be used.
pub fn decrypt_pkcs8(
    ctx: &Context<'_>,
    attrs: &[Attribute],
    value: &Item,
) -> Result<Option<Item>, Error> {
    let Some(block) = keyblock::key_block(value) else {
        return Ok(None);
    };
    let Some(Value::ByteString(der)) = keyblock::key_material(block).map(|km| &km.value) else {
        return Ok(None);
    };
    // PrivateKeyInfo starts with its INTEGER version, EncryptedPrivateKeyInfo with a SEQUENCE.
    let mut outer = crate::der::Der(der);
    let encrypted = outer
        .expect(0x30)
        .is_some_and(|body| body.first() == Some(&0x30));
    if !encrypted {
        return Ok(None);
    }
    let uid = password_link(attrs).ok_or_else(|| {
        Error::InvalidField(
            "the PKCS#8 key is encrypted; give its password with a PKCS#12 Password Link".into(),
        )
    })?;
    let password = password(ctx, Some(uid))?;
    let plain = pkcs12::decrypt_private_key(der, &password)?;
    let children = block
        .children()
        .iter()
        .map(|c| {
            if c.tag == Tag::KEY_VALUE {
                Item::structure(
                    Tag::KEY_VALUE,
                    vec![Item::new(
                        Tag::KEY_MATERIAL,
                        Value::ByteString(plain.to_vec()),
                    )],
                )
            } else {
                c.clone()
            }
        })
        .collect();
    Ok(Some(Item::structure(
        value.tag,
        vec![Item::structure(Tag::KEY_BLOCK, children)],
    )))
}

/// Registers a PKCS#12 file: the private key (kept as PKCS#8, with the client's attributes)
/// and each certificate (with the file's friendly name), the key linked to its certificate
/// and each certificate to its issuer. Returns the key's Unique Identifier.
pub fn register(ctx: &Context<'_>, attrs: &[Attribute], value: &Item) -> Result<String, Error> {
    let file = file_of(value)
        .ok_or_else(|| Error::InvalidField("a PKCS#12 Key Value is a Byte String".into()))?;
    let password = password(ctx, password_link(attrs))?;
    let contents = pkcs12::parse(file, &password)?;
    let der = contents
        .private_key
        .as_ref()
        .ok_or_else(|| Error::InvalidField("the PKCS#12 file holds no private key".into()))?;
    let key_item = {
        let probe = keyblock::pkcs8_private_key(der.to_vec(), 0, 0);
        let (alg, bits) = keyblock::material(&probe)
            .ok()
            .and_then(|m| keyblock::material_algorithm(&m, ctx.version))
            .ok_or_else(|| {
                Error::InvalidField("the PKCS#12 key is not an RSA or EC private key".into())
            })?;
        keyblock::pkcs8_private_key(der.to_vec(), alg, bits)
    };
    let friendly = attributes::find(attrs, "PKCS#12 Friendly Name")
        .cloned()
        .or_else(|| {
            contents
                .key_friendly_name
                .clone()
                .map(|n| attributes::value(Value::TextString(n)))
        });
    let mut key_attrs = attrs.to_vec();
    if attributes::find(attrs, "PKCS#12 Friendly Name").is_none()
        && let Some(name) = &friendly
    {
        key_attrs.push(Attribute {
            name: "PKCS#12 Friendly Name".into(),
            index: None,
            value: Some(name.clone()),
        });
    }
    let extra =
        register::implied_attributes(ObjectType::PrivateKey, &key_item, attrs, ctx.version)?;
    let mut key = object::new_object(ctx, ObjectType::PrivateKey, &key_attrs, extra)?;
    object::set_value(&mut key, &key_item)?;

    // The key's own certificate first, then the rest in file order.
    let mut order: Vec<usize> = (0..contents.certificates.len()).collect();
    if let Some(own) = contents.key_certificate() {
        order.retain(|&i| i != own);
        order.insert(0, own);
    }
    let mut objects = vec![key];
    let mut names = Vec::new();
    for &i in &order {
        let cert = &contents.certificates[i];
        let item = Item::structure(
            Tag::CERTIFICATE,
            vec![
                Item::new(
                    Tag::CERTIFICATE_TYPE,
                    Value::Enumeration(CertificateType::X_509.to_u32()),
                ),
                Item::new(Tag::CERTIFICATE_VALUE, Value::ByteString(cert.der.clone())),
            ],
        );
        let name = cert
            .friendly_name
            .clone()
            .map(|n| attributes::value(Value::TextString(n)))
            .or_else(|| friendly.clone());
        let cert_attrs: Vec<Attribute> = name
            .into_iter()
            .map(|v| Attribute {
                name: "PKCS#12 Friendly Name".into(),
                index: None,
                value: Some(v),
            })
            .collect();
        let extra = register::implied_attributes(ObjectType::Certificate, &item, &[], ctx.version)?;
        let mut obj = object::new_object(ctx, ObjectType::Certificate, &cert_attrs, extra)?;
        object::set_value(&mut obj, &item)?;
        objects.push(obj);
        names.push(crate::x509::details(&cert.der).map(|d| (d.subject_der, d.issuer_der)));
    }
    let uids = object::store_new(ctx, objects)?;
    let mut links = Vec::new();
    if uids.len() > 1 {
        links.push(link_change(
            &uids[0],
            LinkType::PKCS_12CertificateLink,
            &uids[1],
        ));
    }
    for (i, name) in names.iter().enumerate() {
        let Some((subject, issuer)) = name else {
            continue;
        };
        if subject == issuer {
            continue;
        }
        let issuer_at = names
            .iter()
            .position(|n| n.as_ref().is_some_and(|(s, _)| s == issuer));
        if let Some(j) = issuer_at {
            links.push(link_change(
                &uids[i + 1],
                LinkType::PKCS_12CertificateLink,
                &uids[j + 1],
            ));
        }
    }
    if !links.is_empty() {
        object::commit(ctx, links)?;
    }
    Ok(uids[0].clone())
}

/// The Private Key `obj` as a PKCS#12 object structure: the key with the certificates its
/// PKCS#12 Certificate Links lead to, under its PKCS#12 password.
pub fn export(ctx: &Context<'_>, obj: &StoredObject) -> Result<Item, Error> {
    if ObjectType::from_u32(obj.object_type) != ObjectType::PrivateKey {
        return Err(Error::KeyFormatTypeNotSupported(
            "PKCS#12 is a format of private keys".into(),
        ));
    }
    let password = password(ctx, attributes::link_of(obj, LinkType::PKCS_12PasswordLink))?;
    let plain = keyblock::convert(
        wrapping::plain_object(ctx, obj)?,
        Some(KeyFormatType::PKCS_8),
    )?;
    let der = match keyblock::key_block(&plain)
        .and_then(keyblock::key_material)
        .map(|km| &km.value)
    {
        Some(Value::ByteString(b)) => Zeroizing::new(b.clone()),
        _ => return Err(Error::Internal("PKCS#8 conversion gave no bytes".into())),
    };
    let mut chain: Vec<Vec<u8>> = Vec::new();
    let mut seen = vec![obj.uid.clone()];
    let mut next = attributes::link_of(obj, LinkType::PKCS_12CertificateLink);
    while let Some(uid) = next.take() {
        if seen.contains(&uid) || chain.len() >= MAX_CHAIN {
            break;
        }
        let cert = object::load(ctx, &uid)?;
        if ObjectType::from_u32(cert.object_type) != ObjectType::Certificate {
            return Err(Error::InvalidField(format!(
                "the PKCS#12 Certificate Link names {uid}, which is not a certificate"
            )));
        }
        let Ok(value) = object::stored_value(&cert) else {
            break; // destroyed: the chain ends here
        };
        if let Some(Value::ByteString(c)) = value.child(Tag::CERTIFICATE_VALUE).map(|v| &v.value) {
            chain.push(c.clone());
        }
        next = attributes::link_of(&cert, LinkType::PKCS_12CertificateLink);
        seen.push(uid);
    }
    let friendly = match attributes::first(obj, "PKCS#12 Friendly Name")
        .as_ref()
        .map(|v| &v.value)
    {
        Some(Value::TextString(s)) => Some(s.clone()),
        _ => None,
    };
    let random = ctx.vault()?.token().random(48).map_err(Error::Token)?;
    let mut r = [0u8; 48];
    r.copy_from_slice(&random);
    let file = pkcs12::build(
        &der,
        &chain,
        friendly.as_deref(),
        &password,
        &pkcs12::Salts::from_random(&r),
    );
    Ok(Item::structure(
        Tag::PRIVATE_KEY,
        vec![Item::structure(
            Tag::KEY_BLOCK,
            vec![
                Item::new(
                    Tag::KEY_FORMAT_TYPE,
                    Value::Enumeration(KeyFormatType::PKCS_12.to_u32()),
                ),
                Item::new(Tag::KEY_VALUE, Value::ByteString(file)),
            ],
        )],
    ))
}
