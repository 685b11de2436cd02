//! Managed-object values: the object structures of Register and Get (Symmetric Key, Public and
//! Private Key, Secret Data, Certificate, Opaque Object, Split Key, PGP Key, Template), the key
//! material inside them, and conversion between Key Format Types.
//!
//! The keystore keeps an object's value as the TTLV encoding of its object structure, in the
//! format it was registered or generated in, so Get returns exactly what was registered unless
//! another format is asked for.

use crate::der::{self, Der};
use crate::kmip::Error;
use crate::token::template::curve_of_params;
use crate::ttlv::tables::enums::{CryptographicAlgorithm, KeyFormatType, ObjectType};
use crate::ttlv::{Item, Tag, Value, binary};

/// The tag of the object structure for an Object Type.
pub fn object_tag(t: ObjectType) -> Option<Tag> {
    Some(match t {
        ObjectType::Certificate => Tag::CERTIFICATE,
        ObjectType::SymmetricKey => Tag::SYMMETRIC_KEY,
        ObjectType::PublicKey => Tag::PUBLIC_KEY,
        ObjectType::PrivateKey => Tag::PRIVATE_KEY,
        ObjectType::SplitKey => Tag::SPLIT_KEY,
        ObjectType::Template => Tag::TEMPLATE,
        ObjectType::SecretData => Tag::SECRET_DATA,
        ObjectType::OpaqueObject => Tag::OPAQUE_OBJECT,
        ObjectType::PGPKey => Tag::PGP_KEY,
        _ => return None,
    })
}

/// Key material as the crypto path needs it.
#[derive(Clone)]
pub enum Material {
    /// A secret key's bytes (symmetric keys, secret data, HMAC keys).
    Secret(Vec<u8>),
    /// An RSA private key, PKCS#8 DER.
    RsaPrivate(Vec<u8>),
    /// An RSA public key: modulus and public exponent, big-endian.
    RsaPublic { n: Vec<u8>, e: Vec<u8> },
    /// An EC private key: curve (Recommended Curve) and scalar.
    EcPrivate { curve: u32, d: Vec<u8> },
    /// An EC public key: curve and uncompressed point.
    EcPublic { curve: u32, q: Vec<u8> },
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Material::Secret(_) => "Secret",
            Material::RsaPrivate(_) => "RsaPrivate",
            Material::RsaPublic { .. } => "RsaPublic",
            Material::EcPrivate { .. } => "EcPrivate",
            Material::EcPublic { .. } => "EcPublic",
        })
    }
}

/// Encodes an object structure for the keystore.
pub fn seal(object: &Item) -> Result<Vec<u8>, Error> {
    binary::to_vec(object).map_err(|e| Error::Internal(format!("encoding an object: {e}")))
}

/// Decodes an object structure from the keystore.
pub fn unseal(bytes: &[u8]) -> Result<Item, Error> {
    binary::decode(bytes, &binary::Limits::default())
        .map_err(|e| Error::Internal(format!("decoding a stored object: {e}")))
}

/// The Key Block of an object structure, if it has one.
pub fn key_block(object: &Item) -> Option<&Item> {
    object.child(Tag::KEY_BLOCK)
}

/// A Key Block's Key Format Type.
pub fn format_of(block: &Item) -> Option<KeyFormatType> {
    match block.child(Tag::KEY_FORMAT_TYPE).map(|v| &v.value) {
        Some(Value::Enumeration(v)) => Some(KeyFormatType::from_u32(*v)),
        _ => None,
    }
}

/// `object` without the Attribute items inside its Key Value, and those attributes.
pub fn without_embedded_attributes(
    object: &Item,
) -> Result<(Item, Vec<super::attributes::Attribute>), Error> {
    let has_embedded = key_block(object)
        .and_then(|b| b.child(Tag::KEY_VALUE))
        .is_some_and(|v| v.child(Tag::ATTRIBUTE).is_some());
    if !has_embedded {
        return Ok((object.clone(), Vec::new()));
    }
    let mut embedded = Vec::new();
    let mut strip_value = |value: &Item| -> Result<Item, Error> {
        let mut kept = Vec::new();
        for c in value.children() {
            if c.tag == Tag::ATTRIBUTE {
                embedded.push(super::attributes::parse(c)?);
            } else {
                kept.push(c.clone());
            }
        }
        Ok(Item::structure(Tag::KEY_VALUE, kept))
    };
    let mut children = Vec::new();
    for c in object.children() {
        if c.tag != Tag::KEY_BLOCK {
            children.push(c.clone());
            continue;
        }
        let mut block = Vec::new();
        for b in c.children() {
            block.push(if b.tag == Tag::KEY_VALUE {
                strip_value(b)?
            } else {
                b.clone()
            });
        }
        children.push(Item::structure(Tag::KEY_BLOCK, block));
    }
    Ok((Item::structure(object.tag, children), embedded))
}

/// The Key Material item of a Key Block (absent when the key value is wrapped).
pub fn key_material(block: &Item) -> Option<&Item> {
    block
        .child(Tag::KEY_VALUE)
        .and_then(|v| v.child(Tag::KEY_MATERIAL))
}

fn bytes_of(item: Option<&Item>) -> Option<Vec<u8>> {
    match item.map(|i| &i.value) {
        Some(Value::ByteString(b)) => Some(b.clone()),
        Some(Value::BigInteger(b)) => Some(unsigned(b)),
        _ => None,
    }
}

/// A BigInteger's magnitude without sign-extension bytes.
fn unsigned(b: &[u8]) -> Vec<u8> {
    let skip = b.iter().take_while(|x| **x == 0).count();
    b[skip.min(b.len().saturating_sub(1))..].to_vec()
}

/// A positive big-endian number as a KMIP Big Integer (two's complement, 8-byte multiple).
fn big(tag: Tag, magnitude: &[u8]) -> Item {
    let mut v = magnitude.to_vec();
    if v.first().is_some_and(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    Item::new(
        tag,
        Value::BigInteger(crate::ttlv::canonical_big_integer(v)),
    )
}

fn unsupported_format(f: KeyFormatType) -> Error {
    Error::KeyFormatTypeNotSupported(format!("{f:?}"))
}

/// The key material of a stored or registered object, for the token.
pub fn material(object: &Item) -> Result<Material, Error> {
    let block = key_block(object).ok_or_else(|| Error::InvalidField("no Key Block".into()))?;
    if block.child(Tag::KEY_WRAPPING_DATA).is_some() {
        return Err(Error::FeatureNotSupported(
            "using a key registered in wrapped form".into(),
        ));
    }
    let format = format_of(block).ok_or_else(|| Error::InvalidField("Key Format Type".into()))?;
    let km = key_material(block).ok_or_else(|| Error::InvalidField("Key Material".into()))?;
    let bytes = || bytes_of(Some(km)).ok_or_else(|| Error::InvalidField("Key Material".into()));
    let is_private = object.tag == Tag::PRIVATE_KEY;
    Ok(match format {
        KeyFormatType::Raw | KeyFormatType::Opaque
            if !is_private && object.tag != Tag::PUBLIC_KEY =>
        {
            Material::Secret(bytes()?)
        }
        KeyFormatType::TransparentSymmetricKey => Material::Secret(
            bytes_of(km.child(Tag::KEY)).ok_or_else(|| Error::InvalidField("Key".into()))?,
        ),
        KeyFormatType::PKCS_8 if is_private => {
            let der = bytes()?;
            if rsa_from_pkcs8(&der).is_ok() {
                Material::RsaPrivate(der)
            } else if let Some((curve, d)) = pkcs8_ec_private(&der) {
                Material::EcPrivate { curve, d }
            } else {
                return Err(Error::InvalidField(
                    "not a PKCS#8 RSA or EC private key".into(),
                ));
            }
        }
        KeyFormatType::ECPrivateKey if is_private => {
            let (curve, d) = sec1_private(&bytes()?, None)
                .ok_or_else(|| Error::InvalidField("not a SEC1 EC private key".into()))?;
            Material::EcPrivate { curve, d }
        }
        KeyFormatType::PKCS_1 if is_private => Material::RsaPrivate(pkcs1_to_pkcs8(&bytes()?)?),
        KeyFormatType::PKCS_1 => {
            use rsa::pkcs1::DecodeRsaPublicKey;
            use rsa::traits::PublicKeyParts;
            let k = rsa::PublicKey::from_pkcs1_der(&bytes()?)
                .map_err(|_| Error::InvalidField("not a PKCS#1 RSA public key".into()))?;
            Material::RsaPublic {
                n: k.n_bytes().to_vec(),
                e: k.e_bytes().to_vec(),
            }
        }
        KeyFormatType::X_509 if object.tag == Tag::PUBLIC_KEY => spki_material(&bytes()?)
            .ok_or_else(|| Error::InvalidField("not an X.509 RSA or EC public key".into()))?,
        KeyFormatType::TransparentRSAPublicKey => Material::RsaPublic {
            n: bytes_of(km.child(Tag::MODULUS))
                .ok_or_else(|| Error::InvalidField("Modulus".into()))?,
            e: bytes_of(km.child(Tag::PUBLIC_EXPONENT))
                .ok_or_else(|| Error::InvalidField("Public Exponent".into()))?,
        },
        KeyFormatType::TransparentRSAPrivateKey => {
            Material::RsaPrivate(transparent_rsa_to_pkcs8(km)?)
        }
        KeyFormatType::TransparentECDSAPrivateKey | KeyFormatType::TransparentECPrivateKey => {
            Material::EcPrivate {
                curve: curve_of(km)?,
                d: bytes_of(km.child(Tag::D)).ok_or_else(|| Error::InvalidField("D".into()))?,
            }
        }
        KeyFormatType::TransparentECDSAPublicKey | KeyFormatType::TransparentECPublicKey => {
            Material::EcPublic {
                curve: curve_of(km)?,
                q: bytes_of(km.child(Tag::Q_STRING))
                    .ok_or_else(|| Error::InvalidField("Q String".into()))?,
            }
        }
        other => return Err(unsupported_format(other)),
    })
}

/// id-ecPublicKey (1.2.840.10045.2.1), the algorithm of EC keys in PKCS#8 and X.509.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];

/// The curve named by an AlgorithmIdentifier { id-ecPublicKey, curve OID } (its contents).
fn ec_algorithm(contents: &[u8]) -> Option<u32> {
    let mut r = Der(contents);
    if r.expect(0x06)? != OID_EC_PUBLIC_KEY {
        return None;
    }
    curve_of_params(r.read_raw()?)
}

/// A SEC1 ECPrivateKey: (curve, private scalar); the curve from its parameters or `curve`.
fn sec1_private(der: &[u8], curve: Option<u32>) -> Option<(u32, Vec<u8>)> {
    let mut r = Der(Der(der).expect(0x30)?);
    r.expect(0x02)?;
    let d = r.expect(0x04)?;
    let mut curve = curve;
    while let Some((tag, contents)) = r.read() {
        if tag == 0xA0 {
            curve = Some(curve_of_params(Der(contents).read_raw()?)?);
        }
    }
    Some((curve?, d.to_vec()))
}

/// A PKCS#8 EC private key: (curve, private scalar).
fn pkcs8_ec_private(der: &[u8]) -> Option<(u32, Vec<u8>)> {
    let mut r = Der(Der(der).expect(0x30)?);
    r.expect(0x02)?;
    let curve = ec_algorithm(r.expect(0x30)?)?;
    sec1_private(r.expect(0x04)?, Some(curve))
}

fn ec_params_der(curve: u32) -> Result<Vec<u8>, Error> {
    crate::token::template::ec_params(curve)
        .map_err(|_| Error::KeyFormatTypeNotSupported(format!("curve {curve}")))
}

/// A SEC1 ECPrivateKey for `curve` (with its parameters when `with_params`), the scalar
/// left-padded to the curve's size as SEC1 requires.
fn ec_private_sec1(curve: u32, d: &[u8], with_params: bool) -> Result<Vec<u8>, Error> {
    let params = ec_params_der(curve)?;
    // The field size in bytes: P-521's OID ends in 0x23, the others name 256- or 384-bit curves.
    let size: usize = match params.last() {
        Some(0x22) => 48,
        Some(0x23) => 66,
        _ => 32,
    };
    let d = unsigned(d);
    let mut scalar = vec![0; size.saturating_sub(d.len())];
    scalar.extend_from_slice(&d);
    let params_part = if with_params {
        der::tlv(0xA0, &params)
    } else {
        Vec::new()
    };
    Ok(der::seq(&[
        &der::uint(1),
        &der::tlv(0x04, &scalar),
        &params_part,
    ]))
}

/// A PKCS#8 PrivateKeyInfo holding an EC private key.
fn ec_private_pkcs8(curve: u32, d: &[u8]) -> Result<Vec<u8>, Error> {
    let algorithm = der::seq(&[&der::tlv(0x06, OID_EC_PUBLIC_KEY), &ec_params_der(curve)?]);
    Ok(der::seq(&[
        &der::uint(0),
        &algorithm,
        &der::tlv(0x04, &ec_private_sec1(curve, d, false)?),
    ]))
}

/// A Private Key object in PKCS#8 (what a PKCS#12 file's key becomes when registered).
pub fn pkcs8_private_key(der: Vec<u8>, alg: u32, bits: i32) -> Item {
    Item::structure(
        Tag::PRIVATE_KEY,
        vec![block(
            KeyFormatType::PKCS_8,
            Item::new(Tag::KEY_MATERIAL, Value::ByteString(der)),
            Some(alg),
            Some(bits),
        )],
    )
}

/// A private key as an HSM exports it: PKCS#8 DER, RSA or EC. Only the DER is read: tokens
/// such as SoftHSM2 pad what they wrap with zeros, which the unwrap leaves at the end.
pub fn private_from_pkcs8(exported: &[u8], rsa: bool) -> Result<Material, Error> {
    let der = Der(exported)
        .read_raw()
        .ok_or_else(|| Error::Internal("the HSM exported a private key that is not DER".into()))?;
    if rsa {
        rsa_from_pkcs8(der)?;
        return Ok(Material::RsaPrivate(der.to_vec()));
    }
    let (curve, d) = pkcs8_ec_private(der)
        .ok_or_else(|| Error::Internal("the HSM exported an EC key ksg cannot read".into()))?;
    Ok(Material::EcPrivate { curve, d })
}

/// A public key from the token's attributes (CKA_MODULUS and CKA_PUBLIC_EXPONENT, or
/// CKA_EC_PARAMS and CKA_EC_POINT).
pub fn public_from_token(attrs: &[crate::token::Attr]) -> Result<Material, Error> {
    use crate::token::Attr;
    let find = |f: fn(&Attr) -> Option<&Vec<u8>>| attrs.iter().find_map(f).cloned();
    let n = find(|a| {
        if let Attr::Modulus(v) = a {
            Some(v)
        } else {
            None
        }
    });
    let e = find(|a| {
        if let Attr::PublicExponent(v) = a {
            Some(v)
        } else {
            None
        }
    });
    if let (Some(n), Some(e)) = (n, e) {
        return Ok(Material::RsaPublic { n, e });
    }
    let params = find(|a| {
        if let Attr::EcParams(v) = a {
            Some(v)
        } else {
            None
        }
    });
    let point = find(|a| {
        if let Attr::EcPoint(v) = a {
            Some(v)
        } else {
            None
        }
    });
    let (Some(params), Some(point)) = (params, point) else {
        return Err(Error::Internal(
            "the token did not give the public key".into(),
        ));
    };
    let curve = curve_of_params(&params)
        .ok_or_else(|| Error::FeatureNotSupported("the key's curve".into()))?;
    // CKA_EC_POINT is the point in a DER OCTET STRING.
    let q = Der(&point).expect(0x04).unwrap_or(&point).to_vec();
    Ok(Material::EcPublic { curve, q })
}

/// An X.509 SubjectPublicKeyInfo of an EC key: (curve, uncompressed point).
fn spki_ec_public(der: &[u8]) -> Option<(u32, Vec<u8>)> {
    let mut r = Der(Der(der).expect(0x30)?);
    let curve = ec_algorithm(r.expect(0x30)?)?;
    let (&unused, point) = r.expect(0x03)?.split_first()?;
    (unused == 0).then(|| (curve, point.to_vec()))
}

/// The algorithm and length (bits) a key's material states, for a Register that does not say.
pub fn implied_algorithm(object: &Item, v: crate::ttlv::Version) -> Option<(u32, i32)> {
    material_algorithm(&material(object).ok()?, v)
}

/// An X.509 SubjectPublicKeyInfo's key: RSA or EC.
pub fn spki_material(der: &[u8]) -> Option<Material> {
    use rsa::pkcs8::DecodePublicKey;
    use rsa::traits::PublicKeyParts;
    if let Ok(k) = rsa::PublicKey::from_public_key_der(der) {
        return Some(Material::RsaPublic {
            n: k.n_bytes().to_vec(),
            e: k.e_bytes().to_vec(),
        });
    }
    spki_ec_public(der).map(|(curve, q)| Material::EcPublic { curve, q })
}

/// The algorithm and length (bits) of key material, as version `v` names them.
pub fn material_algorithm(m: &Material, v: crate::ttlv::Version) -> Option<(u32, i32)> {
    use rsa::traits::PublicKeyParts;
    let ec = if v >= crate::ttlv::Version::new(1, 2) {
        CryptographicAlgorithm::EC
    } else {
        CryptographicAlgorithm::ECDSA
    };
    let curve_bits = |c: u32| -> Option<i32> {
        use crate::ttlv::tables::enums::RecommendedCurve as R;
        Some(match R::from_u32(c) {
            R::P_256 | R::SECP256K1 => 256,
            R::P_384 => 384,
            R::P_521 => 521,
            _ => return None,
        })
    };
    match m {
        Material::RsaPrivate(der) => {
            let bits = rsa_from_pkcs8(der).ok()?.n_bytes().len() as i32 * 8;
            Some((CryptographicAlgorithm::RSA.to_u32(), bits))
        }
        Material::RsaPublic { n, .. } => Some((
            CryptographicAlgorithm::RSA.to_u32(),
            unsigned(n).len() as i32 * 8,
        )),
        Material::EcPrivate { curve, .. } | Material::EcPublic { curve, .. } => {
            Some((ec.to_u32(), curve_bits(*curve)?))
        }
        Material::Secret(_) => None,
    }
}

fn curve_of(km: &Item) -> Result<u32, Error> {
    match km.child(Tag::RECOMMENDED_CURVE).map(|v| &v.value) {
        Some(Value::Enumeration(c)) => Ok(*c),
        _ => Err(Error::InvalidField("Recommended Curve".into())),
    }
}

fn rsa_from_pkcs8(der: &[u8]) -> Result<rsa::PrivateKey, Error> {
    use rsa::pkcs8::DecodePrivateKey;
    rsa::PrivateKey::from_pkcs8_der(der)
        .map_err(|_| Error::InvalidField("not a PKCS#8 RSA private key".into()))
}

fn pkcs1_to_pkcs8(der: &[u8]) -> Result<Vec<u8>, Error> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::EncodePrivateKey;
    let k = rsa::PrivateKey::from_pkcs1_der(der)
        .map_err(|_| Error::InvalidField("not a PKCS#1 RSA private key".into()))?;
    Ok(k.to_pkcs8_der()
        .map_err(|_| Error::Internal("PKCS#8 encoding".into()))?
        .as_bytes()
        .to_vec())
}

fn transparent_rsa_to_pkcs8(km: &Item) -> Result<Vec<u8>, Error> {
    use rsa::pkcs8::EncodePrivateKey;
    let get = |tag: Tag, what: &str| {
        bytes_of(km.child(tag)).ok_or_else(|| Error::InvalidField(what.to_string()))
    };
    let n = get(Tag::MODULUS, "Modulus")?;
    let e = get(Tag::PUBLIC_EXPONENT, "Public Exponent")?;
    let d = get(Tag::PRIVATE_EXPONENT, "Private Exponent")?;
    let p = get(Tag::P, "P")?;
    let q = get(Tag::Q, "Q")?;
    let key = rsa::PrivateKey::from_components(
        rsa_uint(&n)?,
        rsa_uint(&e)?,
        rsa_uint(&d)?,
        vec![rsa_uint(&p)?, rsa_uint(&q)?],
    )
    .map_err(|_| Error::InvalidField("inconsistent RSA components".into()))?;
    Ok(key
        .to_pkcs8_der()
        .map_err(|_| Error::Internal("PKCS#8 encoding".into()))?
        .as_bytes()
        .to_vec())
}

/// A Key Block holding `material` in format `format`.
fn block(format: KeyFormatType, km: Item, alg: Option<u32>, len: Option<i32>) -> Item {
    let mut children = vec![
        Item::new(Tag::KEY_FORMAT_TYPE, Value::Enumeration(format.to_u32())),
        Item::structure(Tag::KEY_VALUE, vec![km]),
    ];
    if let Some(a) = alg {
        children.push(Item::new(
            Tag::CRYPTOGRAPHIC_ALGORITHM,
            Value::Enumeration(a),
        ));
    }
    if let Some(l) = len {
        children.push(Item::new(Tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(l)));
    }
    Item::structure(Tag::KEY_BLOCK, children)
}

/// The object structure of a newly generated secret key (Raw).
pub fn symmetric_key(value: &[u8], alg: u32, bits: i32) -> Item {
    Item::structure(
        Tag::SYMMETRIC_KEY,
        vec![block(
            KeyFormatType::Raw,
            Item::new(Tag::KEY_MATERIAL, Value::ByteString(value.to_vec())),
            Some(alg),
            Some(bits),
        )],
    )
}

/// The object structure of Secret Data (Opaque key format).
pub fn secret_data(value: &[u8], data_type: u32) -> Item {
    Item::structure(
        Tag::SECRET_DATA,
        vec![
            Item::new(Tag::SECRET_DATA_TYPE, Value::Enumeration(data_type)),
            block(
                KeyFormatType::Opaque,
                Item::new(Tag::KEY_MATERIAL, Value::ByteString(value.to_vec())),
                None,
                None,
            ),
        ],
    )
}

/// The object structure of a generated key-pair half, in the format the material suggests
/// (PKCS#1 for RSA, Transparent EC for EC).
pub fn key_pair_half(m: &Material, bits: i32) -> Result<Item, Error> {
    let (tag, b) = match m {
        Material::RsaPrivate(pkcs8) => (
            Tag::PRIVATE_KEY,
            block(
                KeyFormatType::PKCS_1,
                Item::new(Tag::KEY_MATERIAL, Value::ByteString(pkcs8_to_pkcs1(pkcs8)?)),
                Some(CryptographicAlgorithm::RSA.to_u32()),
                Some(bits),
            ),
        ),
        Material::RsaPublic { .. } => (
            Tag::PUBLIC_KEY,
            block(
                KeyFormatType::PKCS_1,
                Item::new(Tag::KEY_MATERIAL, Value::ByteString(rsa_public_pkcs1(m)?)),
                Some(CryptographicAlgorithm::RSA.to_u32()),
                Some(bits),
            ),
        ),
        Material::EcPrivate { curve, d } => (
            Tag::PRIVATE_KEY,
            block(
                KeyFormatType::TransparentECPrivateKey,
                Item::structure(
                    Tag::KEY_MATERIAL,
                    vec![
                        Item::new(Tag::RECOMMENDED_CURVE, Value::Enumeration(*curve)),
                        big(Tag::D, d),
                    ],
                ),
                Some(CryptographicAlgorithm::EC.to_u32()),
                Some(bits),
            ),
        ),
        Material::EcPublic { curve, q } => (
            Tag::PUBLIC_KEY,
            block(
                KeyFormatType::TransparentECPublicKey,
                Item::structure(
                    Tag::KEY_MATERIAL,
                    vec![
                        Item::new(Tag::RECOMMENDED_CURVE, Value::Enumeration(*curve)),
                        Item::new(Tag::Q_STRING, Value::ByteString(q.clone())),
                    ],
                ),
                Some(CryptographicAlgorithm::EC.to_u32()),
                Some(bits),
            ),
        ),
        Material::Secret(_) => return Err(Error::Internal("not a key pair half".into())),
    };
    Ok(Item::structure(tag, vec![b]))
}

/// A big-endian RSA component as the rsa crate's integer.
fn rsa_uint(b: &[u8]) -> Result<rsa::BoxedUint, Error> {
    rsa::BoxedUint::from_be_slice(b, (b.len() as u32 * 8).max(64))
        .map_err(|_| Error::InvalidField("RSA component".into()))
}

/// An RSA public key from its modulus and public exponent.
fn rsa_public_key(n: &[u8], e: &[u8]) -> Result<rsa::PublicKey, Error> {
    rsa::PublicKey::new(rsa_uint(n)?, rsa_uint(e)?)
        .map_err(|_| Error::InvalidField("RSA public key".into()))
}

/// PKCS#8 RSA private key DER → PKCS#1 RSAPrivateKey DER.
fn pkcs8_to_pkcs1(der: &[u8]) -> Result<Vec<u8>, Error> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    Ok(rsa_from_pkcs8(der)?
        .to_pkcs1_der()
        .map_err(|_| Error::Internal("PKCS#1 encoding".into()))?
        .as_bytes()
        .to_vec())
}

fn rsa_public_pkcs1(m: &Material) -> Result<Vec<u8>, Error> {
    use rsa::pkcs1::EncodeRsaPublicKey;
    let Material::RsaPublic { n, e } = m else {
        return Err(Error::Internal("not an RSA public key".into()));
    };
    Ok(rsa_public_key(n, e)?
        .to_pkcs1_der()
        .map_err(|_| Error::Internal("PKCS#1 encoding".into()))?
        .as_bytes()
        .to_vec())
}

/// The object in Key Format Type `want` (None: as stored). Conversions: Raw ↔ Transparent
/// Symmetric Key; RSA private PKCS#1 ↔ PKCS#8 ↔ Transparent; RSA public PKCS#1 ↔ X.509 ↔
/// Transparent; EC private PKCS#8 ↔ ECPrivateKey (SEC1) ↔ Transparent; EC public X.509 ↔
/// Transparent. (PKCS#12 needs the key's links: see `pkcs12_objects`.)
pub fn convert(object: Item, want: Option<KeyFormatType>) -> Result<Item, Error> {
    let Some(want) = want else { return Ok(object) };
    let Some(b) = key_block(&object) else {
        return Err(unsupported_format(want));
    };
    let have = format_of(b);
    if have == Some(want) {
        return Ok(object);
    }
    if b.child(Tag::KEY_WRAPPING_DATA).is_some() {
        return Err(unsupported_format(want));
    }
    let m = material(&object)?;
    let alg = match b.child(Tag::CRYPTOGRAPHIC_ALGORITHM).map(|v| &v.value) {
        Some(Value::Enumeration(a)) => Some(*a),
        _ => None,
    };
    let len = match b.child(Tag::CRYPTOGRAPHIC_LENGTH).map(|v| &v.value) {
        Some(Value::Integer(l)) => Some(*l),
        _ => None,
    };
    let km = match (&m, want) {
        (Material::Secret(k), KeyFormatType::Raw) if object.tag != Tag::SECRET_DATA => {
            Item::new(Tag::KEY_MATERIAL, Value::ByteString(k.clone()))
        }
        (Material::Secret(k), KeyFormatType::Opaque) if object.tag == Tag::SECRET_DATA => {
            Item::new(Tag::KEY_MATERIAL, Value::ByteString(k.clone()))
        }
        (Material::Secret(k), KeyFormatType::TransparentSymmetricKey)
            if object.tag == Tag::SYMMETRIC_KEY =>
        {
            Item::structure(
                Tag::KEY_MATERIAL,
                vec![Item::new(Tag::KEY, Value::ByteString(k.clone()))],
            )
        }
        (Material::RsaPrivate(der), KeyFormatType::PKCS_8) => {
            Item::new(Tag::KEY_MATERIAL, Value::ByteString(der.clone()))
        }
        (Material::RsaPrivate(der), KeyFormatType::PKCS_1) => {
            Item::new(Tag::KEY_MATERIAL, Value::ByteString(pkcs8_to_pkcs1(der)?))
        }
        (Material::RsaPrivate(der), KeyFormatType::TransparentRSAPrivateKey) => {
            use rsa::traits::{PrivateKeyParts, PublicKeyParts};
            let k = rsa_from_pkcs8(der)?;
            let primes = k.primes();
            if primes.len() != 2 {
                return Err(unsupported_format(want));
            }
            let be = |x: &rsa::BoxedUint| unsigned(&x.to_be_bytes());
            let mut children = vec![
                big(Tag::MODULUS, &k.n_bytes()),
                big(Tag::PRIVATE_EXPONENT, &be(k.d())),
                big(Tag::PUBLIC_EXPONENT, &k.e_bytes()),
                big(Tag::P, &be(&primes[0])),
                big(Tag::Q, &be(&primes[1])),
            ];
            if let (Some(dp), Some(dq)) = (k.dp(), k.dq()) {
                children.push(big(Tag::PRIME_EXPONENT_P, &be(dp)));
                children.push(big(Tag::PRIME_EXPONENT_Q, &be(dq)));
            }
            if let Some(c) = k.crt_coefficient() {
                children.push(big(Tag::CRT_COEFFICIENT, &be(&c)));
            }
            Item::structure(Tag::KEY_MATERIAL, children)
        }
        (Material::RsaPublic { .. }, KeyFormatType::PKCS_1) => {
            Item::new(Tag::KEY_MATERIAL, Value::ByteString(rsa_public_pkcs1(&m)?))
        }
        (Material::RsaPublic { n, e }, KeyFormatType::X_509) => {
            use rsa::pkcs8::EncodePublicKey;
            let der = rsa_public_key(n, e)?
                .to_public_key_der()
                .map_err(|_| Error::Internal("SPKI encoding".into()))?;
            Item::new(
                Tag::KEY_MATERIAL,
                Value::ByteString(der.as_bytes().to_vec()),
            )
        }
        (Material::RsaPublic { n, e }, KeyFormatType::TransparentRSAPublicKey) => Item::structure(
            Tag::KEY_MATERIAL,
            vec![big(Tag::MODULUS, n), big(Tag::PUBLIC_EXPONENT, e)],
        ),
        (Material::EcPrivate { curve, d }, KeyFormatType::PKCS_8) => Item::new(
            Tag::KEY_MATERIAL,
            Value::ByteString(ec_private_pkcs8(*curve, d)?),
        ),
        (Material::EcPrivate { curve, d }, KeyFormatType::ECPrivateKey) => Item::new(
            Tag::KEY_MATERIAL,
            Value::ByteString(ec_private_sec1(*curve, d, true)?),
        ),
        (Material::EcPrivate { curve, d }, KeyFormatType::TransparentECPrivateKey) => {
            Item::structure(
                Tag::KEY_MATERIAL,
                vec![
                    Item::new(Tag::RECOMMENDED_CURVE, Value::Enumeration(*curve)),
                    big(Tag::D, d),
                ],
            )
        }
        (Material::EcPublic { curve, q }, KeyFormatType::X_509) => {
            let params = ec_params_der(*curve)?;
            let algorithm = der::seq(&[&der::tlv(0x06, OID_EC_PUBLIC_KEY), &params]);
            let point = der::tlv(0x03, &[&[0u8][..], q].concat());
            Item::new(
                Tag::KEY_MATERIAL,
                Value::ByteString(der::seq(&[&algorithm, &point])),
            )
        }
        (Material::EcPublic { curve, q }, KeyFormatType::TransparentECPublicKey) => {
            Item::structure(
                Tag::KEY_MATERIAL,
                vec![
                    Item::new(Tag::RECOMMENDED_CURVE, Value::Enumeration(*curve)),
                    Item::new(Tag::Q_STRING, Value::ByteString(q.clone())),
                ],
            )
        }
        _ => return Err(unsupported_format(want)),
    };
    let mut children: Vec<Item> = object
        .children()
        .iter()
        .filter(|c| c.tag != Tag::KEY_BLOCK)
        .cloned()
        .collect();
    children.push(block(want, km, alg, len));
    Ok(Item::structure(object.tag, children))
}

/// Bytes for the Digest attribute: the key material (or certificate / opaque value) as stored.
pub fn digest_input(object: &Item) -> Option<Vec<u8>> {
    if let Some(b) = key_block(object) {
        return bytes_of(key_material(b))
            .or_else(|| key_material(b).and_then(|km| bytes_of(km.child(Tag::KEY))));
    }
    bytes_of(object.child(Tag::CERTIFICATE_VALUE))
        .or_else(|| bytes_of(object.child(Tag::OPAQUE_DATA_VALUE)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ttlv::tables::enums::RecommendedCurve;

    fn material_in(object: Item, f: KeyFormatType) -> Material {
        let converted = convert(object, Some(f)).expect("converts");
        assert_eq!(key_block(&converted).and_then(format_of), Some(f));
        material(&converted).expect("reads back")
    }

    #[test]
    fn ec_private_keys_convert_to_pkcs8_and_sec1_and_back() {
        let curve = RecommendedCurve::P_256.to_u32();
        // A short scalar (leading zero bytes) must come back left-padded to 32 bytes.
        let d: Vec<u8> = std::iter::repeat_n(0, 2).chain(3..33).collect();
        let half = key_pair_half(
            &Material::EcPrivate {
                curve,
                d: d.clone(),
            },
            256,
        )
        .expect("half");
        for f in [
            KeyFormatType::PKCS_8,
            KeyFormatType::ECPrivateKey,
            KeyFormatType::TransparentECPrivateKey,
        ] {
            match material_in(half.clone(), f) {
                Material::EcPrivate { curve: c, d: got } => {
                    assert_eq!(c, curve, "{f:?}");
                    assert_eq!(unsigned(&got), unsigned(&d), "{f:?}");
                    if f != KeyFormatType::TransparentECPrivateKey {
                        assert_eq!(got.len(), 32, "{f:?} pads the scalar");
                    }
                }
                other => panic!("{f:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn ec_public_keys_convert_to_x509_and_back() {
        let curve = RecommendedCurve::P_384.to_u32();
        let q: Vec<u8> = std::iter::once(4).chain((0..96).map(|i| i as u8)).collect();
        let half = key_pair_half(
            &Material::EcPublic {
                curve,
                q: q.clone(),
            },
            384,
        )
        .expect("half");
        match material_in(half, KeyFormatType::X_509) {
            Material::EcPublic { curve: c, q: got } => assert_eq!((c, got), (curve, q)),
            other => panic!("X.509 gave {other:?}"),
        }
    }
}
