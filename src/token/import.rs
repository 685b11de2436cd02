//! Register: putting objects a client brings into the token (lifting the seed's limitation 7,
//! which only loaded certificates). Pure template builders, plus the private-key path that
//! never puts key material in a template: the key is wrapped locally under the customer KEK and
//! unwrapped inside the token (C_UnwrapKey).

use aes_kw::KwpAes256;
use aes_kw::cipher::KeyInit;

use super::template::{Identity, sensitive_key, usage};
use super::{Attr, Class, Handle, KeyType, Mech, Token, TokenError};

/// CKO_CERTIFICATE for an X.509 certificate (DER): subject, issuer and serial number from the
/// certificate itself, as PKCS#11 expects them.
pub fn certificate(der: &[u8], id: &Identity<'_>) -> Result<Vec<Attr>, TokenError> {
    let (subject, issuer, serial) = crate::x509::names_der(der)
        .ok_or_else(|| TokenError::Unsupported("the certificate is not DER X.509".into()))?;
    Ok(vec![
        Attr::Class(Class::Certificate),
        Attr::CertificateX509,
        Attr::Token(true),
        Attr::Private(false),
        Attr::Id(id.uid.as_bytes().to_vec()),
        Attr::Label(id.name.unwrap_or(id.uid).to_string()),
        Attr::Subject(subject),
        Attr::Issuer(issuer),
        Attr::SerialNumber(serial),
        Attr::Value(der.to_vec()),
    ])
}

/// A secret key with its value (no CKA_VALUE_LEN: tokens such as SoftHSM2 refuse both).
pub fn secret_key(key_type: KeyType, value: &[u8], mask: u32, id: &Identity<'_>) -> Vec<Attr> {
    let mut t = sensitive_key(Class::SecretKey, key_type, id);
    t.push(Attr::Value(value.to_vec()));
    match key_type {
        KeyType::GenericSecret => t.extend([
            Attr::Sign(mask & (usage::MAC_GENERATE | usage::SIGN) != 0),
            Attr::Verify(mask & (usage::MAC_VERIFY | usage::VERIFY) != 0),
        ]),
        _ => t.extend([
            Attr::Encrypt(mask & usage::ENCRYPT != 0),
            Attr::Decrypt(mask & usage::DECRYPT != 0),
            Attr::Wrap(mask & usage::WRAP_KEY != 0),
            Attr::Unwrap(mask & usage::UNWRAP_KEY != 0),
        ]),
    }
    t
}

/// An RSA public key from its modulus and public exponent (big-endian, unsigned).
pub fn rsa_public_key(modulus: &[u8], exponent: &[u8], mask: u32, id: &Identity<'_>) -> Vec<Attr> {
    vec![
        Attr::Class(Class::PublicKey),
        Attr::KeyType(KeyType::Rsa),
        Attr::Token(true),
        Attr::Private(false),
        Attr::Id(id.uid.as_bytes().to_vec()),
        Attr::Label(id.name.unwrap_or(id.uid).to_string()),
        Attr::Modulus(modulus.to_vec()),
        Attr::PublicExponent(exponent.to_vec()),
        Attr::Verify(mask & usage::VERIFY != 0),
        Attr::Encrypt(mask & usage::ENCRYPT != 0),
        Attr::Wrap(mask & usage::WRAP_KEY != 0),
    ]
}

/// CKO_DATA for Secret Data kept on the token instead of the keystore.
pub fn data_object(value: &[u8], id: &Identity<'_>) -> Vec<Attr> {
    vec![
        Attr::Class(Class::Data),
        Attr::Token(true),
        Attr::Private(true),
        Attr::Application("ksg".into()),
        Attr::Label(id.name.unwrap_or(id.uid).to_string()),
        Attr::Value(value.to_vec()),
    ]
}

/// Imports a private key (PKCS#8 DER) without ever placing it in a template: wrapped here with
/// the customer KEK (RFC 5649), unwrapped inside the token.
pub fn private_key_pkcs8(
    token: &dyn Token,
    kek_handle: Handle,
    kek: &[u8; 32],
    pkcs8: &[u8],
    key_type: KeyType,
    mask: u32,
    id: &Identity<'_>,
) -> Result<Handle, TokenError> {
    let kwp = KwpAes256::new_from_slice(kek).map_err(|_| TokenError::Unsupported("KEK".into()))?;
    let mut wrapped = vec![0u8; pkcs8.len() + 16];
    let n = kwp
        .wrap_key(pkcs8, &mut wrapped)
        .map_err(|e| TokenError::Unsupported(format!("wrapping the private key: {e}")))?
        .len();
    wrapped.truncate(n);
    let mut t = sensitive_key(Class::PrivateKey, key_type, id);
    t.push(Attr::Sign(mask & usage::SIGN != 0));
    if key_type == KeyType::Rsa {
        t.extend([
            Attr::Decrypt(mask & usage::DECRYPT != 0),
            Attr::Unwrap(mask & usage::UNWRAP_KEY != 0),
        ]);
    }
    token.unwrap_key(kek_handle, &Mech::AesKeyWrapPad, &wrapped, &t)
}

/// The customer KEK as it goes on the token: an AES key labelled P6RKEK1 that can only wrap and
/// unwrap, is sensitive and never extractable.
pub fn kek_object(kek: &[u8]) -> Vec<Attr> {
    vec![
        Attr::Class(Class::SecretKey),
        Attr::KeyType(KeyType::Aes),
        Attr::Token(true),
        Attr::Private(true),
        Attr::Label(super::vendor::KEK_LABEL.into()),
        Attr::Value(kek.to_vec()),
        Attr::Wrap(true),
        Attr::Unwrap(true),
        Attr::Encrypt(false),
        Attr::Decrypt(false),
        Attr::Sign(false),
        Attr::Verify(false),
        Attr::Sensitive(true),
        Attr::Extractable(false),
    ]
}
