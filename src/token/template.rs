//! KMIP attributes → PKCS#11 templates, as pure functions.
//!
//! Policy (documented in the README): every key is a token object (CKA_TOKEN) and private
//! (CKA_PRIVATE); its CKA_ID is the KMIP Unique Identifier and its CKA_LABEL the KMIP Name (the
//! Unique Identifier when it has none). Secret and private keys are CKA_SENSITIVE, so their value
//! never leaves the HSM in the clear; they are CKA_EXTRACTABLE unless the client asked for
//! Extractable = false, so that Get can take them out wrapped under the customer KEK.

use super::{Attr, Class, KeyType, Mech};
use crate::ttlv::tables::enums::{CryptographicAlgorithm, RecommendedCurve};

/// KMIP Cryptographic Usage Mask bits.
pub mod usage {
    /// Sign.
    pub const SIGN: u32 = 0x0001;
    /// Verify.
    pub const VERIFY: u32 = 0x0002;
    /// Encrypt.
    pub const ENCRYPT: u32 = 0x0004;
    /// Decrypt.
    pub const DECRYPT: u32 = 0x0008;
    /// Wrap Key.
    pub const WRAP_KEY: u32 = 0x0010;
    /// Unwrap Key.
    pub const UNWRAP_KEY: u32 = 0x0020;
    /// MAC Generate.
    pub const MAC_GENERATE: u32 = 0x0080;
    /// MAC Verify.
    pub const MAC_VERIFY: u32 = 0x0100;
    /// Derive Key.
    pub const DERIVE_KEY: u32 = 0x0200;
}

/// Why a template cannot be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateError {
    /// The algorithm (or its combination with the length or curve) is not supported.
    Unsupported(String),
    /// A required attribute is missing.
    Missing(&'static str),
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::Unsupported(m) => write!(f, "unsupported: {m}"),
            TemplateError::Missing(m) => write!(f, "missing {m}"),
        }
    }
}

/// Identity and policy shared by every template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity<'a> {
    /// The KMIP Unique Identifier (becomes CKA_ID).
    pub uid: &'a str,
    /// The KMIP Name (becomes CKA_LABEL).
    pub name: Option<&'a str>,
    /// KMIP Extractable (default true).
    pub extractable: bool,
}

/// CKA_TOKEN, CKA_ID and CKA_LABEL of an object.
pub(crate) fn common(id: &Identity<'_>) -> Vec<Attr> {
    vec![
        Attr::Token(true),
        Attr::Id(id.uid.as_bytes().to_vec()),
        Attr::Label(id.name.unwrap_or(id.uid).to_string()),
    ]
}

/// The attributes every sensitive key (secret or private) carries: class, type, identity,
/// private, sensitive, extractable as asked.
pub(crate) fn sensitive_key(class: Class, key_type: KeyType, id: &Identity<'_>) -> Vec<Attr> {
    let mut t = common(id);
    t.extend([
        Attr::Class(class),
        Attr::KeyType(key_type),
        Attr::Private(true),
        Attr::Sensitive(true),
        Attr::Extractable(id.extractable),
    ]);
    t
}

/// Generation mechanism and template of a secret key.
pub fn secret_key(
    alg: u32,
    bits: u32,
    mask: u32,
    id: &Identity<'_>,
) -> Result<(Mech, Vec<Attr>), TemplateError> {
    let mut t = common(id);
    t.push(Attr::Class(Class::SecretKey));
    t.extend([
        Attr::Private(true),
        Attr::Sensitive(true),
        Attr::Extractable(id.extractable),
    ]);
    let mech = match CryptographicAlgorithm::from_u32(alg) {
        CryptographicAlgorithm::AES => {
            if !matches!(bits, 128 | 192 | 256) {
                return Err(TemplateError::Unsupported(format!("AES-{bits}")));
            }
            t.push(Attr::KeyType(KeyType::Aes));
            t.extend([
                Attr::Encrypt(mask & usage::ENCRYPT != 0),
                Attr::Decrypt(mask & usage::DECRYPT != 0),
                Attr::Wrap(mask & usage::WRAP_KEY != 0),
                Attr::Unwrap(mask & usage::UNWRAP_KEY != 0),
                Attr::Derive(mask & usage::DERIVE_KEY != 0),
            ]);
            Mech::AesKeyGen
        }
        CryptographicAlgorithm::HMAC_SHA1
        | CryptographicAlgorithm::HMAC_SHA224
        | CryptographicAlgorithm::HMAC_SHA256
        | CryptographicAlgorithm::HMAC_SHA384
        | CryptographicAlgorithm::HMAC_SHA512 => {
            if bits == 0 || !bits.is_multiple_of(8) || bits > 4096 {
                return Err(TemplateError::Unsupported(format!(
                    "an HMAC key of {bits} bits"
                )));
            }
            t.push(Attr::KeyType(KeyType::GenericSecret));
            t.extend([
                Attr::Sign(mask & (usage::MAC_GENERATE | usage::SIGN) != 0),
                Attr::Verify(mask & (usage::MAC_VERIFY | usage::VERIFY) != 0),
                Attr::Derive(mask & usage::DERIVE_KEY != 0),
            ]);
            Mech::GenericSecretKeyGen
        }
        CryptographicAlgorithm::DES3 => {
            if !matches!(bits, 168 | 192) {
                return Err(TemplateError::Unsupported(format!("DES3-{bits}")));
            }
            t.push(Attr::KeyType(KeyType::Des3));
            t.extend([
                Attr::Encrypt(mask & usage::ENCRYPT != 0),
                Attr::Decrypt(mask & usage::DECRYPT != 0),
                Attr::Wrap(mask & usage::WRAP_KEY != 0),
                Attr::Unwrap(mask & usage::UNWRAP_KEY != 0),
            ]);
            // The length is fixed: tokens refuse CKA_VALUE_LEN with CKM_DES3_KEY_GEN.
            return Ok((Mech::Des3KeyGen, t));
        }
        other => {
            return Err(TemplateError::Unsupported(format!(
                "secret keys of algorithm {other:?}"
            )));
        }
    };
    t.push(Attr::ValueLen(u64::from(bits / 8)));
    Ok((mech, t))
}

/// CKA_EC_POINT: the uncompressed point in a DER OCTET STRING.
pub fn ec_point_der(point: &[u8]) -> Vec<u8> {
    crate::der::tlv(0x04, point)
}

/// DER-encoded OIDs (CKA_EC_PARAMS) of the NIST curves.
pub fn ec_params(curve: u32) -> Result<Vec<u8>, TemplateError> {
    Ok(match RecommendedCurve::from_u32(curve) {
        RecommendedCurve::P_256 => vec![0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07],
        RecommendedCurve::P_384 => vec![0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22],
        RecommendedCurve::P_521 => vec![0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x23],
        RecommendedCurve::SECP256K1 => vec![0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x0A],
        other => return Err(TemplateError::Unsupported(format!("curve {other:?}"))),
    })
}

/// The KMIP Recommended Curve whose CKA_EC_PARAMS (DER OID) are `params`.
pub fn curve_of_params(params: &[u8]) -> Option<u32> {
    [
        RecommendedCurve::P_256,
        RecommendedCurve::P_384,
        RecommendedCurve::P_521,
        RecommendedCurve::SECP256K1,
    ]
    .into_iter()
    .map(RecommendedCurve::to_u32)
    .find(|c| ec_params(*c).is_ok_and(|p| p == params))
}

/// What a key pair is to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairSpec<'a> {
    /// KMIP Cryptographic Algorithm (RSA, ECDSA or EC).
    pub alg: u32,
    /// RSA modulus length in bits.
    pub bits: u32,
    /// KMIP Recommended Curve (EC).
    pub curve: Option<u32>,
    /// Usage mask of the private key.
    pub private_mask: u32,
    /// Usage mask of the public key.
    pub public_mask: u32,
    /// The public key's identity.
    pub public: Identity<'a>,
    /// The private key's identity.
    pub private: Identity<'a>,
}

/// Generation mechanism and the (public, private) templates of a key pair.
pub fn key_pair(spec: &PairSpec<'_>) -> Result<(Mech, Vec<Attr>, Vec<Attr>), TemplateError> {
    let mut public = common(&spec.public);
    public.extend([Attr::Class(Class::PublicKey), Attr::Private(false)]);
    let mut private = common(&spec.private);
    private.extend([
        Attr::Class(Class::PrivateKey),
        Attr::Private(true),
        Attr::Sensitive(true),
        Attr::Extractable(spec.private.extractable),
    ]);
    let (pm, sm) = (spec.public_mask, spec.private_mask);
    let mech = match CryptographicAlgorithm::from_u32(spec.alg) {
        CryptographicAlgorithm::RSA => {
            if !(1024..=16384).contains(&spec.bits) || !spec.bits.is_multiple_of(8) {
                return Err(TemplateError::Unsupported(format!("RSA-{}", spec.bits)));
            }
            public.extend([
                Attr::KeyType(KeyType::Rsa),
                Attr::ModulusBits(u64::from(spec.bits)),
                Attr::PublicExponent(vec![0x01, 0x00, 0x01]),
                Attr::Verify(pm & usage::VERIFY != 0),
                Attr::Encrypt(pm & usage::ENCRYPT != 0),
                Attr::Wrap(pm & usage::WRAP_KEY != 0),
            ]);
            private.extend([
                Attr::KeyType(KeyType::Rsa),
                Attr::Sign(sm & usage::SIGN != 0),
                Attr::Decrypt(sm & usage::DECRYPT != 0),
                Attr::Unwrap(sm & usage::UNWRAP_KEY != 0),
            ]);
            Mech::RsaKeyPairGen
        }
        CryptographicAlgorithm::ECDSA | CryptographicAlgorithm::EC => {
            let curve = spec
                .curve
                .ok_or(TemplateError::Missing("Recommended Curve"))?;
            public.extend([
                Attr::KeyType(KeyType::Ec),
                Attr::EcParams(ec_params(curve)?),
                Attr::Verify(pm & usage::VERIFY != 0),
            ]);
            private.extend([
                Attr::KeyType(KeyType::Ec),
                Attr::Sign(sm & usage::SIGN != 0),
                Attr::Derive(sm & usage::DERIVE_KEY != 0),
            ]);
            Mech::EcKeyPairGen
        }
        other => {
            return Err(TemplateError::Unsupported(format!(
                "key pairs of algorithm {other:?}"
            )));
        }
    };
    Ok((mech, public, private))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(uid: &str) -> Identity<'_> {
        Identity {
            uid,
            name: Some("payroll"),
            extractable: true,
        }
    }

    #[test]
    fn aes_key_template_follows_the_usage_mask() {
        let (mech, t) =
            secret_key(3, 256, usage::ENCRYPT | usage::DECRYPT, &id("17")).expect("AES");
        assert_eq!(mech, Mech::AesKeyGen);
        for a in [
            Attr::Class(Class::SecretKey),
            Attr::KeyType(KeyType::Aes),
            Attr::ValueLen(32),
            Attr::Token(true),
            Attr::Sensitive(true),
            Attr::Extractable(true),
            Attr::Encrypt(true),
            Attr::Decrypt(true),
            Attr::Wrap(false),
            Attr::Id(b"17".to_vec()),
            Attr::Label("payroll".into()),
        ] {
            assert!(t.contains(&a), "{a:?} in {t:?}");
        }
        assert!(secret_key(3, 100, 0, &id("1")).is_err());
        assert!(
            secret_key(1, 64, 0, &id("1")).is_err(),
            "DES is not offered"
        );
    }

    #[test]
    fn hmac_keys_sign_and_verify_for_mac_generate_and_verify() {
        let (mech, t) = secret_key(9, 256, usage::MAC_GENERATE, &id("2")).expect("HMAC");
        assert_eq!(mech, Mech::GenericSecretKeyGen);
        assert!(t.contains(&Attr::Sign(true)) && t.contains(&Attr::Verify(false)));
        assert!(t.contains(&Attr::KeyType(KeyType::GenericSecret)));
    }

    #[test]
    fn key_pairs_for_rsa_and_nist_curves() {
        let spec = PairSpec {
            alg: 4,
            bits: 2048,
            curve: None,
            private_mask: usage::SIGN,
            public_mask: usage::VERIFY,
            public: Identity {
                uid: "5",
                name: None,
                extractable: true,
            },
            private: Identity {
                uid: "6",
                name: None,
                extractable: false,
            },
        };
        let (mech, public, private) = key_pair(&spec).expect("RSA");
        assert_eq!(mech, Mech::RsaKeyPairGen);
        assert!(public.contains(&Attr::ModulusBits(2048)) && public.contains(&Attr::Verify(true)));
        assert!(private.contains(&Attr::Sign(true)) && private.contains(&Attr::Extractable(false)));
        assert!(
            private.contains(&Attr::Label("6".into())),
            "no Name: the label is the identifier"
        );
        let ec = PairSpec {
            alg: 6,
            curve: Some(7),
            ..spec.clone()
        };
        let (mech, public, _) = key_pair(&ec).expect("P-256");
        assert_eq!(mech, Mech::EcKeyPairGen);
        assert!(public.contains(&Attr::EcParams(ec_params(7).expect("P-256"))));
        assert!(
            key_pair(&PairSpec {
                curve: None,
                ..ec.clone()
            })
            .is_err()
        );
        assert!(
            key_pair(&PairSpec {
                curve: Some(2),
                ..ec
            })
            .is_err(),
            "K-163 is not offered"
        );
    }
}
