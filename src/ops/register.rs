//! Register: a client-supplied object of any type (lifting the seed's limitation 7), kept
//! sealed in the keystore; keys reach the token when first used.

use super::attributes::{self, Attribute};
use super::object::{self, payload, uid_item};
use super::{Context, Outcome, keyblock};
use crate::kmip::Error;
use crate::ttlv::tables::enums::{KeyFormatType, ObjectType};
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
    let given = payload_ref
        .children()
        .iter()
        .find(|c| c.tag == tag)
        .ok_or_else(|| Error::InvalidMessage(format!("the {object_type:?} object is missing")))?;
    // Attributes a client puts inside the Key Value (KMIP 1.x allows it) become the object's
    // attributes (the template's win), and the value is kept without them: many clients do
    // not expect attributes in a Key Value they get back.
    let (stripped, embedded) = keyblock::without_embedded_attributes(given)?;
    for a in embedded {
        if !attrs.iter().any(|t| t.name == a.name) {
            attrs.push(a);
        }
    }
    let value = &stripped;
    let format = keyblock::key_block(value).and_then(keyblock::format_of);
    if object_type == ObjectType::PrivateKey && format == Some(KeyFormatType::PKCS_12) {
        let uid = super::pkcs12_objects::register(ctx, &attrs, value)?;
        return Ok(payload(vec![uid_item(&uid)]));
    }
    let decrypted;
    let value = if object_type == ObjectType::PrivateKey && format == Some(KeyFormatType::PKCS_8) {
        match super::pkcs12_objects::decrypt_pkcs8(ctx, &attrs, value)? {
            Some(plain) => {
                decrypted = plain;
                &decrypted
            }
            None => value,
        }
    } else {
        value
    };
    let extra = implied_attributes(object_type, value, &attrs, ctx.version)?;
    let mut obj = object::new_object(ctx, object_type, &attrs, extra)?;
    if object_type == ObjectType::Template {
        // A Template is only its attributes (KMIP 1.x; deprecated in 1.3).
        for a in attributes::parse_all(Some(value))? {
            if let Some(v) = a.value {
                object::add(&mut obj, &a.name, v)?;
            }
        }
    } else {
        object::set_value(&mut obj, value)?;
    }
    let uid = object::store_new(ctx, vec![obj])?.remove(0);
    Ok(payload(vec![uid_item(&uid)]))
}

/// Attributes the object itself states: algorithm and length of a key block, certificate type
/// and length.
pub(super) fn implied_attributes(
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
    if t == ObjectType::Certificate
        && let Some(Value::ByteString(der)) = value.child(Tag::CERTIFICATE_VALUE).map(|v| &v.value)
        && let Some(cert) = crate::x509::details(der)
    {
        out.extend(certificate_attributes(&cert, version));
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

/// What an X.509 certificate says about itself, as KMIP 1.x attributes: its identifier, subject
/// and issuer (as text, DER, and per name attribute), signature algorithm, and its public key's
/// algorithm and length.
fn certificate_attributes(
    cert: &crate::x509::CertDetails,
    version: crate::ttlv::Version,
) -> Vec<(&'static str, Value)> {
    let hex: String = cert.serial.iter().map(|b| format!("{b:02x}")).collect();
    let text = |t: Tag, s: String| Item::new(t, Value::TextString(s));
    let bytes = |t: Tag, b: &[u8]| Item::new(t, Value::ByteString(b.to_vec()));
    let issuer = crate::x509::dn_text(&cert.issuer);
    let mut out = vec![
        (
            "Certificate Identifier",
            Value::Structure(vec![
                text(Tag::ISSUER, issuer.clone()),
                text(Tag::SERIAL_NUMBER, hex),
            ]),
        ),
        (
            "Certificate Subject",
            Value::Structure(vec![text(
                Tag::CERTIFICATE_SUBJECT_DISTINGUISHED_NAME,
                crate::x509::dn_text(&cert.subject),
            )]),
        ),
        (
            "Certificate Issuer",
            Value::Structure(vec![text(
                Tag::CERTIFICATE_ISSUER_DISTINGUISHED_NAME,
                issuer,
            )]),
        ),
        (
            "X.509 Certificate Identifier",
            Value::Structure(vec![
                bytes(Tag::ISSUER_DISTINGUISHED_NAME, &cert.issuer_der),
                bytes(Tag::CERTIFICATE_SERIAL_NUMBER, &cert.serial_der),
            ]),
        ),
        (
            "X.509 Certificate Subject",
            Value::Structure(vec![bytes(
                Tag::SUBJECT_DISTINGUISHED_NAME,
                &cert.subject_der,
            )]),
        ),
        (
            "X.509 Certificate Issuer",
            Value::Structure(vec![bytes(
                Tag::ISSUER_DISTINGUISHED_NAME,
                &cert.issuer_der,
            )]),
        ),
    ];
    for (subject, names) in [(true, &cert.subject), (false, &cert.issuer)] {
        for (t, v) in names {
            if let Some(name) = certificate_name_attribute(subject, t) {
                out.push((name, Value::TextString(v.clone())));
            }
        }
    }
    if let Some(a) = signature_algorithm(&cert.signature_algorithm) {
        out.push(("Digital Signature Algorithm", Value::Enumeration(a)));
    }
    if let Some((alg, bits)) =
        keyblock::spki_material(&cert.spki).and_then(|m| keyblock::material_algorithm(&m, version))
    {
        out.push(("Cryptographic Algorithm", Value::Enumeration(alg)));
        out.push(("Cryptographic Length", Value::Integer(bits)));
    }
    out
}

/// The KMIP 1.4 attribute for one name attribute (RFC 4514 short name) of a certificate's
/// subject or issuer.
fn certificate_name_attribute(subject: bool, short: &str) -> Option<&'static str> {
    const NAMES: [(&str, &str, &str); 12] = [
        ("CN", "Certificate Subject CN", "Certificate Issuer CN"),
        ("O", "Certificate Subject O", "Certificate Issuer O"),
        ("OU", "Certificate Subject OU", "Certificate Issuer OU"),
        ("E", "Certificate Subject Email", "Certificate Issuer Email"),
        ("C", "Certificate Subject C", "Certificate Issuer C"),
        ("ST", "Certificate Subject ST", "Certificate Issuer ST"),
        ("L", "Certificate Subject L", "Certificate Issuer L"),
        ("UID", "Certificate Subject UID", "Certificate Issuer UID"),
        (
            "SERIALNUMBER",
            "Certificate Subject Serial Number",
            "Certificate Issuer Serial Number",
        ),
        ("T", "Certificate Subject Title", "Certificate Issuer Title"),
        ("DC", "Certificate Subject DC", "Certificate Issuer DC"),
        (
            "DNQUALIFIER",
            "Certificate Subject DN Qualifier",
            "Certificate Issuer DN Qualifier",
        ),
    ];
    NAMES
        .iter()
        .find(|(s, _, _)| *s == short)
        .map(|(_, s, i)| if subject { *s } else { *i })
}

/// The KMIP Digital Signature Algorithm of a certificate's signature algorithm OID.
fn signature_algorithm(oid: &[u8]) -> Option<u32> {
    use crate::ttlv::tables::enums::DigitalSignatureAlgorithm as D;
    const PKCS1: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01];
    const ECDSA: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04];
    let a = if let Some(rest) = oid.strip_prefix(PKCS1) {
        match rest {
            [0x04] => D::MD5WithRSAEncryption,
            [0x05] => D::SHA_1WithRSAEncryption,
            [0x0E] => D::SHA_224WithRSAEncryption,
            [0x0B] => D::SHA_256WithRSAEncryption,
            [0x0C] => D::SHA_384WithRSAEncryption,
            [0x0D] => D::SHA_512WithRSAEncryption,
            [0x0A] => D::RSASSA_PSS,
            _ => return None,
        }
    } else if let Some(rest) = oid.strip_prefix(ECDSA) {
        match rest {
            [0x01] => D::ECDSAWithSHA_1,
            [0x03, 0x01] => D::ECDSAWithSHA224,
            [0x03, 0x02] => D::ECDSAWithSHA256,
            [0x03, 0x03] => D::ECDSAWithSHA384,
            [0x03, 0x04] => D::ECDSAWithSHA512,
            _ => return None,
        }
    } else {
        return None;
    };
    Some(a.to_u32())
}
