//! KMIP Cryptographic Parameters → PKCS#11 mechanisms, as pure functions.

use super::{Hash, Mech};
use crate::ttlv::tables::enums::{
    BlockCipherMode, CryptographicAlgorithm, DigitalSignatureAlgorithm, HashingAlgorithm,
    PaddingMethod,
};

/// The parts of KMIP Cryptographic Parameters that choose a mechanism.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CryptoParams {
    /// Block Cipher Mode.
    pub block_cipher_mode: Option<u32>,
    /// Padding Method.
    pub padding_method: Option<u32>,
    /// Hashing Algorithm.
    pub hashing_algorithm: Option<u32>,
    /// Digital Signature Algorithm.
    pub digital_signature_algorithm: Option<u32>,
    /// Tag Length, in bytes (AEAD modes).
    pub tag_length: Option<u32>,
    /// Mask Generator Hashing Algorithm (OAEP).
    pub mask_generator_hash: Option<u32>,
    /// Salt length (PSS), in bytes.
    pub salt_length: Option<u32>,
    /// OAEP label (P Source).
    pub p_source: Option<Vec<u8>>,
}

/// Why no mechanism fits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MechError {
    /// The combination is not supported (KMIP: Cryptographic Failure / Invalid Field).
    Unsupported(String),
    /// An IV is required and was not given.
    MissingIv,
}

impl std::fmt::Display for MechError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MechError::Unsupported(m) => write!(f, "unsupported cryptographic parameters: {m}"),
            MechError::MissingIv => f.write_str("an IV/counter/nonce is required"),
        }
    }
}

/// The hash for a KMIP Hashing Algorithm.
pub fn hash(v: u32) -> Result<Hash, MechError> {
    Ok(match HashingAlgorithm::from_u32(v) {
        HashingAlgorithm::SHA_1 => Hash::Sha1,
        HashingAlgorithm::SHA_224 => Hash::Sha224,
        HashingAlgorithm::SHA_256 => Hash::Sha256,
        HashingAlgorithm::SHA_384 => Hash::Sha384,
        HashingAlgorithm::SHA_512 => Hash::Sha512,
        other => {
            return Err(MechError::Unsupported(format!(
                "hashing algorithm {other:?}"
            )));
        }
    })
}

/// The mechanism for Encrypt/Decrypt with a key of algorithm `key_alg`. The IV is always
/// supplied (the token is never asked to make one: some accept an empty GCM IV).
pub fn cipher(
    key_alg: u32,
    p: &CryptoParams,
    iv: Option<&[u8]>,
    aad: &[u8],
) -> Result<Mech, MechError> {
    match CryptographicAlgorithm::from_u32(key_alg) {
        CryptographicAlgorithm::AES => {
            let mode = BlockCipherMode::from_u32(p.block_cipher_mode.unwrap_or(1));
            let padding = PaddingMethod::from_u32(p.padding_method.unwrap_or(1));
            let iv16 = || -> Result<[u8; 16], MechError> {
                iv.ok_or(MechError::MissingIv)?
                    .try_into()
                    .map_err(|_| MechError::Unsupported("the IV must be 16 bytes".into()))
            };
            Ok(match (mode, padding) {
                (BlockCipherMode::ECB, PaddingMethod::None) => Mech::AesEcb,
                (BlockCipherMode::CBC, PaddingMethod::None) => Mech::AesCbc(iv16()?),
                (BlockCipherMode::CBC, PaddingMethod::PKCS5) => Mech::AesCbcPad(iv16()?),
                (BlockCipherMode::CTR, PaddingMethod::None) => Mech::AesCtr(iv16()?),
                (BlockCipherMode::GCM, _) => {
                    let iv = iv.ok_or(MechError::MissingIv)?;
                    if iv.is_empty() {
                        return Err(MechError::MissingIv);
                    }
                    let tag = p.tag_length.unwrap_or(16);
                    if !(4..=16).contains(&tag) {
                        return Err(MechError::Unsupported(format!("a GCM tag of {tag} bytes")));
                    }
                    Mech::AesGcm {
                        iv: iv.to_vec(),
                        aad: aad.to_vec(),
                        tag_bits: u64::from(tag) * 8,
                    }
                }
                (BlockCipherMode::AESKeyWrapPadding, _) => Mech::AesKeyWrapPad,
                (BlockCipherMode::NISTKeyWrap, _) => Mech::AesKeyWrap,
                (m, pad) => {
                    return Err(MechError::Unsupported(format!(
                        "AES {m:?} with padding {pad:?}"
                    )));
                }
            })
        }
        CryptographicAlgorithm::DES3 => {
            let mode = BlockCipherMode::from_u32(p.block_cipher_mode.unwrap_or(1));
            let padding = PaddingMethod::from_u32(p.padding_method.unwrap_or(1));
            let iv8 = || -> Result<[u8; 8], MechError> {
                iv.ok_or(MechError::MissingIv)?
                    .try_into()
                    .map_err(|_| MechError::Unsupported("the IV must be 8 bytes".into()))
            };
            Ok(match (mode, padding) {
                (BlockCipherMode::ECB, PaddingMethod::None) => Mech::Des3Ecb,
                (BlockCipherMode::CBC, PaddingMethod::None) => Mech::Des3Cbc(iv8()?),
                (BlockCipherMode::CBC, PaddingMethod::PKCS5) => Mech::Des3CbcPad(iv8()?),
                (m, pad) => {
                    return Err(MechError::Unsupported(format!(
                        "DES3 {m:?} with padding {pad:?}"
                    )));
                }
            })
        }
        CryptographicAlgorithm::RSA => match PaddingMethod::from_u32(p.padding_method.unwrap_or(8))
        {
            PaddingMethod::PKCS1V1_5 => Ok(Mech::RsaPkcs),
            PaddingMethod::OAEP => {
                let h = hash(p.hashing_algorithm.unwrap_or(4))?;
                let m = p.mask_generator_hash.map(hash).transpose()?.unwrap_or(h);
                Ok(Mech::RsaOaep(h, m, p.p_source.clone().unwrap_or_default()))
            }
            other => Err(MechError::Unsupported(format!(
                "RSA encryption with padding {other:?}"
            ))),
        },
        other => Err(MechError::Unsupported(format!(
            "encryption with {other:?} keys"
        ))),
    }
}

/// How to sign: the token mechanism, and the hash to apply in software first (PKCS#11 tokens
/// such as SoftHSM2 lack combined mechanisms like CKM_ECDSA_SHA256, so ksg hashes and then asks
/// for the raw mechanism). For RSA PKCS#1 v1.5 the caller wraps the digest in a DigestInfo.
pub fn signature(key_alg: u32, p: &CryptoParams) -> Result<(Mech, Option<Hash>), MechError> {
    let (alg, hash_alg, pss) = match p
        .digital_signature_algorithm
        .map(DigitalSignatureAlgorithm::from_u32)
    {
        Some(d) => match d {
            DigitalSignatureAlgorithm::SHA_1WithRSAEncryption => (4, Some(4), false),
            DigitalSignatureAlgorithm::SHA_224WithRSAEncryption => (4, Some(5), false),
            DigitalSignatureAlgorithm::SHA_256WithRSAEncryption => (4, Some(6), false),
            DigitalSignatureAlgorithm::SHA_384WithRSAEncryption => (4, Some(7), false),
            DigitalSignatureAlgorithm::SHA_512WithRSAEncryption => (4, Some(8), false),
            DigitalSignatureAlgorithm::RSASSA_PSS => (4, p.hashing_algorithm, true),
            DigitalSignatureAlgorithm::ECDSAWithSHA_1 => (6, Some(4), false),
            DigitalSignatureAlgorithm::ECDSAWithSHA224 => (6, Some(5), false),
            DigitalSignatureAlgorithm::ECDSAWithSHA256 => (6, Some(6), false),
            DigitalSignatureAlgorithm::ECDSAWithSHA384 => (6, Some(7), false),
            DigitalSignatureAlgorithm::ECDSAWithSHA512 => (6, Some(8), false),
            other => {
                return Err(MechError::Unsupported(format!(
                    "signature algorithm {other:?}"
                )));
            }
        },
        None => {
            let pss = p.padding_method.map(PaddingMethod::from_u32) == Some(PaddingMethod::PSS);
            (key_alg, p.hashing_algorithm, pss)
        }
    };
    let h = hash_alg.map(hash).transpose()?;
    match (
        CryptographicAlgorithm::from_u32(alg),
        CryptographicAlgorithm::from_u32(key_alg),
    ) {
        (CryptographicAlgorithm::RSA, CryptographicAlgorithm::RSA) => {
            let h = h.ok_or_else(|| {
                MechError::Unsupported("RSA signing needs a hashing algorithm".into())
            })?;
            if pss {
                let salt = p.salt_length.map_or(hash_len(h), u64::from);
                Ok((Mech::RsaPss { hash: h, salt }, Some(h)))
            } else {
                Ok((Mech::RsaPkcs, Some(h)))
            }
        }
        (
            CryptographicAlgorithm::ECDSA | CryptographicAlgorithm::EC,
            CryptographicAlgorithm::ECDSA | CryptographicAlgorithm::EC,
        ) => Ok((Mech::Ecdsa, Some(h.unwrap_or(Hash::Sha256)))),
        (a, k) => Err(MechError::Unsupported(format!(
            "{a:?} signatures with a {k:?} key"
        ))),
    }
}

/// The HMAC mechanism for a KMIP HMAC algorithm.
pub fn mac(key_alg: u32) -> Result<Mech, MechError> {
    Ok(Mech::Hmac(
        match CryptographicAlgorithm::from_u32(key_alg) {
            CryptographicAlgorithm::HMAC_SHA1 => Hash::Sha1,
            CryptographicAlgorithm::HMAC_SHA224 => Hash::Sha224,
            CryptographicAlgorithm::HMAC_SHA256 => Hash::Sha256,
            CryptographicAlgorithm::HMAC_SHA384 => Hash::Sha384,
            CryptographicAlgorithm::HMAC_SHA512 => Hash::Sha512,
            other => return Err(MechError::Unsupported(format!("MAC with {other:?}"))),
        },
    ))
}

/// Output length of a hash, in bytes.
pub fn hash_len(h: Hash) -> u64 {
    match h {
        Hash::Sha1 => 20,
        Hash::Sha224 => 28,
        Hash::Sha256 => 32,
        Hash::Sha384 => 48,
        Hash::Sha512 => 64,
    }
}

/// The DER DigestInfo prefix that PKCS#1 v1.5 signatures put before the digest.
pub fn digest_info_prefix(h: Hash) -> &'static [u8] {
    match h {
        Hash::Sha1 => &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ],
        Hash::Sha224 => &[
            0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x04, 0x05, 0x00, 0x04, 0x1c,
        ],
        Hash::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        Hash::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        Hash::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    }
}

/// HMAC of `data` under `key`, in software.
pub fn hmac(h: Hash, key: &[u8], data: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, KeyInit, Mac};
    fn run<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
    match h {
        Hash::Sha1 => run::<Hmac<sha1::Sha1>>(key, data),
        Hash::Sha224 => run::<Hmac<sha2::Sha224>>(key, data),
        Hash::Sha256 => run::<Hmac<sha2::Sha256>>(key, data),
        Hash::Sha384 => run::<Hmac<sha2::Sha384>>(key, data),
        Hash::Sha512 => run::<Hmac<sha2::Sha512>>(key, data),
    }
}

/// PBKDF2 (RFC 8018) with HMAC-`h`: `len` bytes from `password`, `salt` and `iterations`.
pub fn pbkdf2(h: Hash, password: &[u8], salt: &[u8], iterations: u32, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut block: u32 = 1;
    while out.len() < len {
        let mut u = hmac(h, password, &[salt, &block.to_be_bytes()].concat());
        let mut t = u.clone();
        for _ in 1..iterations {
            u = hmac(h, password, &u);
            t.iter_mut().zip(&u).for_each(|(a, b)| *a ^= b);
        }
        out.extend_from_slice(&t);
        block += 1;
    }
    out.truncate(len);
    out
}

/// A digest of `data`, in software (hashing needs no key, so nothing for a token to protect).
pub fn digest(h: Hash, data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    match h {
        Hash::Sha1 => sha1::Sha1::digest(data).to_vec(),
        Hash::Sha224 => sha2::Sha224::digest(data).to_vec(),
        Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
        Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
        Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(mode: u32, pad: u32) -> CryptoParams {
        CryptoParams {
            block_cipher_mode: Some(mode),
            padding_method: Some(pad),
            ..CryptoParams::default()
        }
    }

    #[test]
    fn aes_modes_always_get_the_iv_they_need() {
        let iv = [7u8; 16];
        assert_eq!(cipher(3, &params(2, 1), None, &[]), Ok(Mech::AesEcb));
        assert_eq!(
            cipher(3, &params(1, 3), Some(&iv), &[]),
            Ok(Mech::AesCbcPad(iv))
        );
        assert_eq!(
            cipher(3, &params(1, 1), None, &[]),
            Err(MechError::MissingIv)
        );
        assert_eq!(
            cipher(3, &params(9, 1), Some(&[]), &[]),
            Err(MechError::MissingIv),
            "never an empty GCM IV"
        );
        let gcm = cipher(3, &params(9, 1), Some(&[1; 12]), b"aad").expect("GCM");
        assert_eq!(
            gcm,
            Mech::AesGcm {
                iv: vec![1; 12],
                aad: b"aad".to_vec(),
                tag_bits: 128
            }
        );
        assert!(
            cipher(3, &params(3, 1), Some(&iv), &[]).is_err(),
            "PCBC is not offered"
        );
        assert!(
            cipher(3, &params(1, 3), Some(&[0; 8]), &[]).is_err(),
            "a short IV is refused"
        );
    }

    #[test]
    fn rsa_padding_and_signatures() {
        assert_eq!(cipher(4, &params(1, 8), None, &[]), Ok(Mech::RsaPkcs));
        let oaep = CryptoParams {
            padding_method: Some(2),
            hashing_algorithm: Some(6),
            ..CryptoParams::default()
        };
        assert_eq!(
            cipher(4, &oaep, None, &[]),
            Ok(Mech::RsaOaep(Hash::Sha256, Hash::Sha256, vec![]))
        );
        let dsa = CryptoParams {
            digital_signature_algorithm: Some(5),
            ..CryptoParams::default()
        };
        assert_eq!(signature(4, &dsa), Ok((Mech::RsaPkcs, Some(Hash::Sha256))));
        let pss = CryptoParams {
            padding_method: Some(10),
            hashing_algorithm: Some(7),
            ..CryptoParams::default()
        };
        assert_eq!(
            signature(4, &pss),
            Ok((
                Mech::RsaPss {
                    hash: Hash::Sha384,
                    salt: 48
                },
                Some(Hash::Sha384)
            ))
        );
        let ecdsa = CryptoParams {
            digital_signature_algorithm: Some(14),
            ..CryptoParams::default()
        };
        assert_eq!(
            signature(6, &ecdsa),
            Ok((Mech::Ecdsa, Some(Hash::Sha256))),
            "software hash + raw ECDSA"
        );
        assert!(signature(3, &ecdsa).is_err(), "an AES key cannot sign");
        assert_eq!(mac(9), Ok(Mech::Hmac(Hash::Sha256)));
        assert_eq!(digest_info_prefix(Hash::Sha256).len() + 32, 51);
    }

    #[test]
    fn pbkdf2_matches_rfc_6070() {
        let hex = |v: Vec<u8>| v.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(pbkdf2(Hash::Sha1, b"password", b"salt", 1, 20)),
            "0c60c80f961f0e71f3a9b524af6012062fe037a6"
        );
        assert_eq!(
            hex(pbkdf2(Hash::Sha1, b"password", b"salt", 4096, 20)),
            "4b007901b765489abead49d926f721d065a429c1"
        );
        assert_eq!(
            hex(pbkdf2(
                Hash::Sha1,
                b"passwordPASSWORDpassword",
                b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
                4096,
                25
            )),
            "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038"
        );
    }
}
