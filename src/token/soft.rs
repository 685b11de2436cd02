//! The built-in software token (gateFlags 0x0002): the same interface, in process, with
//! RustCrypto's well-kept implementations (no cryptography of our own). It keeps objects in
//! memory only; the operations keep each value sealed in the keystore and load it here when
//! needed, so nothing is lost on restart.
//!
//! It answers like a PKCS#11 token, with the same return values, so the operations and their
//! error mapping do not care which backend they talk to. This build covers secret keys (AES and
//! HMAC: generation, import, ECB/CBC/CBC-PAD/GCM, key wrap, HMAC, digests of keys) and EC key
//! pairs on P-256 and P-384 (raw ECDSA over a digest, as CKM_ECDSA) and RSA key pairs (PKCS#1
//! v1.5 and PSS signatures over a digest, PKCS#1 v1.5 and OAEP encryption). An RSA private
//! key's value is its PKCS#8 DER; an EC private key's, its scalar.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256};
use aes_gcm::AesGcm;
use aes_gcm::aead::array::ArraySize;
use aes_gcm::aead::consts::{U8, U12, U16, U60};
use aes_gcm::aead::{AeadInOut, Nonce};
use aes_kw::{AesKw, AesKwp};
use cbc::cipher::KeyIvInit;
use cbc::cipher::block_padding::{NoPadding, Pkcs7};
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt};
use sha2::Digest;

use super::mechanism::{digest, hmac};
use super::{
    Attr, AttrType, Class, Handle, Hash, KeyType, Mech, Result, Stream, StreamKind, Token,
    TokenError,
};
use crate::store::SecretBytes;
use crate::token::RvError;

/// A software stream (buffers zeroed when dropped). Block modes give their output part by part:
/// `data` holds the input not yet turned into output, and `mech` carries the chaining value
/// (the CBC IV moves along). GCM encryption gives its ciphertext part by part too, from the
/// keystream, and keeps the whole plaintext in `whole` for the tag; everything else (GCM
/// decryption, which must not release unauthenticated plaintext, signatures, MACs) works on all
/// of `data` at the end.
struct Buffered {
    key: Handle,
    mech: Mech,
    data: Vec<u8>,
    whole: Vec<u8>,
    /// Bytes of output already given.
    emitted: usize,
}

impl Drop for Buffered {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.data);
        zeroize::Zeroize::zeroize(&mut self.whole);
    }
}

struct Object {
    attrs: Vec<Attr>,
    value: SecretBytes,
}

/// The software token.
#[derive(Default)]
pub struct SoftToken {
    objects: Mutex<HashMap<u64, Object>>,
    next: AtomicU64,
}

impl std::fmt::Debug for SoftToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SoftToken({} objects)",
            self.objects.lock().map_or(0, |o| o.len())
        )
    }
}

fn fail<T>(function: &str, rv: RvError) -> Result<T> {
    Err(TokenError::Call {
        function: function.to_string(),
        rv,
    })
}

/// Readers of the boolean attributes, for [`flag`].
fn may_encrypt(a: &Attr) -> Option<bool> {
    if let Attr::Encrypt(b) = a {
        Some(*b)
    } else {
        None
    }
}

fn may_decrypt(a: &Attr) -> Option<bool> {
    if let Attr::Decrypt(b) = a {
        Some(*b)
    } else {
        None
    }
}

fn may_sign(a: &Attr) -> Option<bool> {
    if let Attr::Sign(b) = a {
        Some(*b)
    } else {
        None
    }
}

fn may_verify(a: &Attr) -> Option<bool> {
    if let Attr::Verify(b) = a {
        Some(*b)
    } else {
        None
    }
}

fn may_wrap(a: &Attr) -> Option<bool> {
    if let Attr::Wrap(b) = a {
        Some(*b)
    } else {
        None
    }
}

fn may_unwrap(a: &Attr) -> Option<bool> {
    if let Attr::Unwrap(b) = a {
        Some(*b)
    } else {
        None
    }
}

fn may_extractable(a: &Attr) -> Option<bool> {
    if let Attr::Extractable(b) = a {
        Some(*b)
    } else {
        None
    }
}

fn may_sensitive(a: &Attr) -> Option<bool> {
    if let Attr::Sensitive(b) = a {
        Some(*b)
    } else {
        None
    }
}

fn same_kind(a: &Attr, b: &Attr) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

fn flag(attrs: &[Attr], want: fn(&Attr) -> Option<bool>) -> bool {
    attrs.iter().find_map(want).unwrap_or(false)
}

/// Runs `f` with the AES cipher for `key` (128, 192 or 256 bits).
macro_rules! with_aes {
    ($key:expr, $function:expr, |$c:ident: $t:ident| $body:expr) => {
        match $key.len() {
            16 => {
                type $t = Aes128;
                let $c = $t::new_from_slice($key).expect("16 bytes");
                $body
            }
            24 => {
                type $t = Aes192;
                let $c = $t::new_from_slice($key).expect("24 bytes");
                $body
            }
            32 => {
                type $t = Aes256;
                let $c = $t::new_from_slice($key).expect("32 bytes");
                $body
            }
            _ => return fail($function, RvError::KeyTypeInconsistent),
        }
    };
}

/// ECB over any block cipher (no padding: the data must be whole blocks).
fn ecb<C>(c: &C, data: &[u8], encrypt: bool, function: &str) -> Result<Vec<u8>>
where
    C: BlockCipherEncrypt + BlockCipherDecrypt,
{
    let size = C::block_size();
    if !data.len().is_multiple_of(size) {
        return fail(
            function,
            if encrypt {
                RvError::DataLenRange
            } else {
                RvError::EncryptedDataLenRange
            },
        );
    }
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks(size) {
        let mut block = aes::cipher::Block::<C>::try_from(chunk).expect("whole blocks");
        if encrypt {
            c.encrypt_block(&mut block);
        } else {
            c.decrypt_block(&mut block);
        }
        out.extend_from_slice(&block);
    }
    Ok(out)
}

/// CBC over any block cipher, with or without PKCS#7 padding.
fn cbc_crypt<C>(
    key: &[u8],
    iv: &[u8],
    data: &[u8],
    encrypt: bool,
    pad: bool,
    function: &str,
) -> Result<Vec<u8>>
where
    C: BlockCipherEncrypt + BlockCipherDecrypt + KeyInit,
{
    let size = C::block_size();
    let bad_len = if encrypt {
        RvError::DataLenRange
    } else {
        RvError::EncryptedDataLenRange
    };
    if !pad && !data.len().is_multiple_of(size) {
        return fail(function, bad_len);
    }
    let mut buf = data.to_vec();
    if encrypt {
        let e = cbc::Encryptor::<C>::new_from_slices(key, iv).expect("sizes checked");
        buf.resize(data.len() + size, 0);
        let n = if pad {
            e.encrypt_padded::<Pkcs7>(&mut buf, data.len())
        } else {
            e.encrypt_padded::<NoPadding>(&mut buf, data.len())
        }
        .map(<[u8]>::len)
        .or_else(|_| fail(function, bad_len))?;
        buf.truncate(n);
        Ok(buf)
    } else {
        let d = cbc::Decryptor::<C>::new_from_slices(key, iv).expect("sizes checked");
        let r = if pad {
            d.decrypt_padded::<Pkcs7>(&mut buf)
        } else {
            d.decrypt_padded::<NoPadding>(&mut buf)
        };
        match r.map(<[u8]>::len) {
            Ok(n) => {
                buf.truncate(n);
                Ok(buf)
            }
            Err(_) => fail(function, RvError::EncryptedDataInvalid),
        }
    }
}

/// How a block mode streams: its block size, and whether its last block is padded (so padded
/// decryption holds the last block back until the end).
fn block_stream(mech: &Mech) -> Option<(usize, bool)> {
    match mech {
        Mech::AesEcb | Mech::AesCbc(_) => Some((16, false)),
        Mech::AesCbcPad(_) => Some((16, true)),
        Mech::Des3Ecb | Mech::Des3Cbc(_) => Some((8, false)),
        Mech::Des3CbcPad(_) => Some((8, true)),
        _ => None,
    }
}

/// `mech` for a run of whole blocks (no padding).
fn unpadded(mech: &Mech) -> Mech {
    match mech {
        Mech::AesCbcPad(iv) => Mech::AesCbc(*iv),
        Mech::Des3CbcPad(iv) => Mech::Des3Cbc(*iv),
        other => other.clone(),
    }
}

/// `mech` with its CBC IV replaced by the last block of `chain_from` (what CBC chains on).
fn chained(mech: &Mech, chain_from: &[u8]) -> Mech {
    let last = |n: usize| &chain_from[chain_from.len() - n..];
    match mech {
        Mech::AesCbc(_) => Mech::AesCbc(last(16).try_into().expect("16 bytes")),
        Mech::AesCbcPad(_) => Mech::AesCbcPad(last(16).try_into().expect("16 bytes")),
        Mech::Des3Cbc(_) => Mech::Des3Cbc(last(8).try_into().expect("8 bytes")),
        Mech::Des3CbcPad(_) => Mech::Des3CbcPad(last(8).try_into().expect("8 bytes")),
        other => other.clone(),
    }
}

/// GCM keystream bytes `offset..offset + len` for `key` and `iv`. The first keystream block is
/// the encryption of zeros; decrypting it gives GCM's first counter block, from which CTR mode
/// (32-bit counter) yields the keystream at any offset.
fn gcm_keystream(key: &[u8], iv: &[u8], offset: usize, len: usize) -> Result<Vec<u8>> {
    let probe = Mech::AesGcm {
        iv: iv.to_vec(),
        aad: Vec::new(),
        tag_bits: 128,
    };
    let first = cipher(key, &probe, &[0u8; 16], true)?;
    with_aes!(key, "C_EncryptUpdate", |c: C| {
        use ctr::cipher::{StreamCipher, StreamCipherSeek};
        let mut block = aes::Block::try_from(&first[..16]).expect("16 bytes");
        c.decrypt_block(&mut block);
        let mut ks = ctr::Ctr32BE::<C>::new_from_slices(key, &block).expect("sizes checked");
        ks.try_seek(offset as u64)
            .or_else(|_| fail("C_EncryptUpdate", RvError::DataLenRange))?;
        let mut out = vec![0u8; len];
        ks.try_apply_keystream(&mut out)
            .or_else(|_| fail("C_EncryptUpdate", RvError::DataLenRange))?;
        Ok(out)
    })
}

fn cipher(key: &[u8], mech: &Mech, data: &[u8], encrypt: bool) -> Result<Vec<u8>> {
    let function = if encrypt { "C_Encrypt" } else { "C_Decrypt" };
    let bad_len = if encrypt {
        RvError::DataLenRange
    } else {
        RvError::EncryptedDataLenRange
    };
    match mech {
        Mech::Des3Ecb | Mech::Des3Cbc(_) | Mech::Des3CbcPad(_) => {
            des3(key, mech, data, encrypt, function)
        }
        Mech::AesEcb => with_aes!(key, function, |c: C| ecb(&c, data, encrypt, function)),
        Mech::AesCbc(iv) | Mech::AesCbcPad(iv) => {
            let pad = matches!(mech, Mech::AesCbcPad(_));
            with_aes!(key, function, |_c: C| cbc_crypt::<C>(
                key, iv, data, encrypt, pad, function
            ))
        }
        Mech::AesCtr(cb) => with_aes!(key, function, |_c: C| {
            use ctr::cipher::StreamCipher;
            let mut c = ctr::Ctr128BE::<C>::new_from_slices(key, cb).expect("sizes checked");
            let mut buf = data.to_vec();
            c.try_apply_keystream(&mut buf)
                .or_else(|_| fail(function, bad_len))?;
            Ok(buf)
        }),
        Mech::AesGcm { iv, aad, tag_bits } => {
            let tag_len = (*tag_bits / 8) as usize;
            if !tag_bits.is_multiple_of(8) || !(4..=16).contains(&tag_len) {
                return fail(function, RvError::MechanismParamInvalid);
            }
            match iv.len() {
                8 => gcm::<U8>(key, iv, aad, data, tag_len, encrypt, function),
                12 => gcm::<U12>(key, iv, aad, data, tag_len, encrypt, function),
                16 => gcm::<U16>(key, iv, aad, data, tag_len, encrypt, function),
                60 => gcm::<U60>(key, iv, aad, data, tag_len, encrypt, function),
                _ => fail(function, RvError::MechanismParamInvalid),
            }
        }
        // Key wrap over data (C_Encrypt with CKM_AES_KEY_WRAP), e.g. a TTLV-encoded Key Value.
        Mech::AesKeyWrap | Mech::AesKeyWrapPad => key_wrap(key, mech, data, encrypt),
        _ => fail(function, RvError::MechanismInvalid),
    }
}

/// AES-GCM with a nonce of `N` bytes and a tag of `tag_len` bytes (the ciphertext carries the
/// tag at its end, as PKCS#11 does). A truncated tag is checked by recomputing the full tag over
/// the recovered plaintext: GCM's keystream is the encryption of zeros under the same nonce.
fn gcm<N: ArraySize>(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    data: &[u8],
    tag_len: usize,
    encrypt: bool,
    function: &str,
) -> Result<Vec<u8>> {
    let nonce = Nonce::<AesGcm<Aes256, N>>::try_from(iv).expect("length matched");
    with_aes!(key, function, |_c: C| {
        let gcm = AesGcm::<C, N>::new_from_slice(key).expect("size checked");
        let seal = |plain: &[u8]| {
            let mut buf = plain.to_vec();
            let tag = gcm
                .encrypt_inout_detached(&nonce, aad, buf.as_mut_slice().into())
                .expect("any length");
            (buf, tag)
        };
        if encrypt {
            let (mut buf, tag) = seal(data);
            buf.extend_from_slice(&tag[..tag_len]);
            return Ok(buf);
        }
        if data.len() < tag_len {
            return fail(function, RvError::EncryptedDataLenRange);
        }
        let (ct, tag) = data.split_at(data.len() - tag_len);
        let (keystream, _) = seal(&vec![0u8; ct.len()]);
        let mut plain: Vec<u8> = ct.iter().zip(&keystream).map(|(c, k)| c ^ k).collect();
        let (_, full) = seal(&plain);
        let diff = full[..tag_len]
            .iter()
            .zip(tag)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            zeroize::Zeroize::zeroize(&mut plain);
            return fail(function, RvError::EncryptedDataInvalid);
        }
        Ok(plain)
    })
}

/// Triple-DES (three-key, 24-byte keys) in ECB, CBC or CBC with PKCS#7 padding.
fn des3(key: &[u8], mech: &Mech, data: &[u8], encrypt: bool, function: &str) -> Result<Vec<u8>> {
    use des::TdesEde3;
    let Ok(c) = TdesEde3::new_from_slice(key) else {
        return fail(function, RvError::KeyTypeInconsistent);
    };
    match mech {
        Mech::Des3Cbc(iv) => cbc_crypt::<TdesEde3>(key, iv, data, encrypt, false, function),
        Mech::Des3CbcPad(iv) => cbc_crypt::<TdesEde3>(key, iv, data, encrypt, true, function),
        _ => ecb(&c, data, encrypt, function),
    }
}

fn key_wrap(kek: &[u8], mech: &Mech, data: &[u8], wrap: bool) -> Result<Vec<u8>> {
    let function = if wrap { "C_WrapKey" } else { "C_UnwrapKey" };
    let mut out = vec![0u8; data.len() + 16];
    let len = match mech {
        Mech::AesKeyWrapPad => with_aes!(kek, function, |_c: C| {
            let k = AesKwp::<C>::new_from_slice(kek).expect("size checked");
            if wrap {
                k.wrap_key(data, &mut out).map(|s| s.len())
            } else {
                k.unwrap_key(data, &mut out).map(|s| s.len())
            }
        }),
        Mech::AesKeyWrap => with_aes!(kek, function, |_c: C| {
            let k = AesKw::<C>::new_from_slice(kek).expect("size checked");
            if wrap {
                k.wrap_key(data, &mut out).map(|s| s.len())
            } else {
                k.unwrap_key(data, &mut out).map(|s| s.len())
            }
        }),
        _ => return fail(function, RvError::MechanismInvalid),
    };
    match len {
        Ok(n) => {
            out.truncate(n);
            Ok(out)
        }
        Err(_) if wrap => fail(function, RvError::KeySizeRange),
        Err(_) => fail(function, RvError::WrappedKeyInvalid),
    }
}

/// The curves the software token signs with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
    K256,
}

fn curve_of(params: &[u8]) -> Option<Curve> {
    use crate::ttlv::tables::enums::RecommendedCurve as R;
    match R::from_u32(super::template::curve_of_params(params)?) {
        R::P_256 => Some(Curve::P256),
        R::P_384 => Some(Curve::P384),
        R::SECP256K1 => Some(Curve::K256),
        _ => None,
    }
}

/// A new key pair: (private scalar, uncompressed SEC1 point).
fn ec_generate(curve: Curve) -> Result<(Vec<u8>, Vec<u8>)> {
    let len = if curve == Curve::P384 { 48 } else { 32 };
    for _ in 0..64 {
        let mut scalar = vec![0u8; len];
        getrandom::fill(&mut scalar)
            .or_else(|_| fail("C_GenerateKeyPair", RvError::RandomNoRng))?;
        let point = match curve {
            Curve::P256 => p256::ecdsa::SigningKey::from_slice(&scalar)
                .ok()
                .map(|k| k.verifying_key().to_sec1_point(false).as_bytes().to_vec()),
            Curve::P384 => p384::ecdsa::SigningKey::from_slice(&scalar)
                .ok()
                .map(|k| k.verifying_key().to_sec1_point(false).as_bytes().to_vec()),
            Curve::K256 => k256::ecdsa::SigningKey::from_slice(&scalar)
                .ok()
                .map(|k| k.verifying_key().to_sec1_point(false).as_bytes().to_vec()),
        };
        if let Some(point) = point {
            return Ok((scalar, point));
        }
    }
    fail("C_GenerateKeyPair", RvError::FunctionFailed)
}

fn ec_sign(curve: Curve, scalar: &[u8], digest: &[u8]) -> Result<Vec<u8>> {
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    let sig = match curve {
        Curve::P256 => p256::ecdsa::SigningKey::from_slice(scalar)
            .ok()
            .and_then(|k| PrehashSigner::<p256::ecdsa::Signature>::sign_prehash(&k, digest).ok())
            .map(|s| s.to_bytes().to_vec()),
        Curve::P384 => p384::ecdsa::SigningKey::from_slice(scalar)
            .ok()
            .and_then(|k| PrehashSigner::<p384::ecdsa::Signature>::sign_prehash(&k, digest).ok())
            .map(|s| s.to_bytes().to_vec()),
        Curve::K256 => k256::ecdsa::SigningKey::from_slice(scalar)
            .ok()
            .and_then(|k| PrehashSigner::<k256::ecdsa::Signature>::sign_prehash(&k, digest).ok())
            .map(|s| s.to_bytes().to_vec()),
    };
    sig.map_or_else(|| fail("C_Sign", RvError::DataInvalid), Ok)
}

fn ec_verify(curve: Curve, point: &[u8], digest: &[u8], signature: &[u8]) -> bool {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    match curve {
        Curve::P256 => {
            let (Ok(k), Ok(s)) = (
                p256::ecdsa::VerifyingKey::from_sec1_bytes(point),
                p256::ecdsa::Signature::from_slice(signature),
            ) else {
                return false;
            };
            k.verify_prehash(digest, &s).is_ok()
        }
        Curve::P384 => {
            let (Ok(k), Ok(s)) = (
                p384::ecdsa::VerifyingKey::from_sec1_bytes(point),
                p384::ecdsa::Signature::from_slice(signature),
            ) else {
                return false;
            };
            k.verify_prehash(digest, &s).is_ok()
        }
        Curve::K256 => {
            let (Ok(k), Ok(s)) = (
                k256::ecdsa::VerifyingKey::from_sec1_bytes(point),
                k256::ecdsa::Signature::from_slice(signature),
            ) else {
                return false;
            };
            k.verify_prehash(digest, &s).is_ok()
        }
    }
}

fn rsa_private(value: &[u8]) -> Option<rsa::PrivateKey> {
    use rsa::pkcs8::DecodePrivateKey;
    rsa::PrivateKey::from_pkcs8_der(value).ok()
}

fn rsa_public(attrs: &[Attr]) -> Option<rsa::PublicKey> {
    let n = attrs.iter().find_map(|a| {
        if let Attr::Modulus(n) = a {
            Some(n)
        } else {
            None
        }
    })?;
    let e = attrs.iter().find_map(|a| {
        if let Attr::PublicExponent(e) = a {
            Some(e)
        } else {
            None
        }
    })?;
    let bits = |b: &[u8]| (b.len() as u32 * 8).div_ceil(64) * 64;
    let n = rsa::BoxedUint::from_be_slice(n, bits(n)).ok()?;
    let e = rsa::BoxedUint::from_be_slice(e, bits(e).max(64)).ok()?;
    rsa::PublicKey::new(n, e).ok()
}

fn rsa_generate(bits: u64, exponent: &[u8]) -> Result<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    use rsa::pkcs8::EncodePrivateKey;
    use rsa::traits::PublicKeyParts;
    if exponent != [0x01, 0x00, 0x01] {
        return fail("C_GenerateKeyPair", RvError::TemplateInconsistent);
    }
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, bits as usize)
        .or_else(|_| fail("C_GenerateKeyPair", RvError::KeySizeRange))?;
    let der = key
        .to_pkcs8_der()
        .or_else(|_| fail("C_GenerateKeyPair", RvError::FunctionFailed))?;
    Ok((
        der.as_bytes().to_vec(),
        key.n_bytes().to_vec(),
        key.e_bytes().to_vec(),
    ))
}

fn rsa_sign(value: &[u8], mech: &Mech, input: &[u8]) -> Result<Vec<u8>> {
    let key = rsa_private(value)
        .ok_or(())
        .or_else(|()| fail("C_Sign", RvError::KeyTypeInconsistent))?;
    let r = match mech {
        Mech::RsaPkcs => key.sign(rsa::Pkcs1v15Sign::new_unprefixed(), input),
        Mech::RsaPss { hash, salt } => {
            let salt = *salt as usize;
            let rng = &mut getrandom::SysRng;
            match hash {
                Hash::Sha1 => {
                    key.sign_with_rng(rng, rsa::Pss::<sha1::Sha1>::new_with_salt(salt), input)
                }
                Hash::Sha224 => {
                    key.sign_with_rng(rng, rsa::Pss::<sha2::Sha224>::new_with_salt(salt), input)
                }
                Hash::Sha256 => {
                    key.sign_with_rng(rng, rsa::Pss::<sha2::Sha256>::new_with_salt(salt), input)
                }
                Hash::Sha384 => {
                    key.sign_with_rng(rng, rsa::Pss::<sha2::Sha384>::new_with_salt(salt), input)
                }
                Hash::Sha512 => {
                    key.sign_with_rng(rng, rsa::Pss::<sha2::Sha512>::new_with_salt(salt), input)
                }
            }
        }
        _ => return fail("C_Sign", RvError::MechanismInvalid),
    };
    r.or_else(|_| fail("C_Sign", RvError::DataLenRange))
}

fn rsa_verify(key: &rsa::PublicKey, mech: &Mech, input: &[u8], signature: &[u8]) -> Result<bool> {
    let ok = match mech {
        Mech::RsaPkcs => key
            .verify(rsa::Pkcs1v15Sign::new_unprefixed(), input, signature)
            .is_ok(),
        Mech::RsaPss { hash, salt } => {
            let salt = *salt as usize;
            match hash {
                Hash::Sha1 => key
                    .verify(
                        rsa::Pss::<sha1::Sha1>::new_with_salt(salt),
                        input,
                        signature,
                    )
                    .is_ok(),
                Hash::Sha224 => key
                    .verify(
                        rsa::Pss::<sha2::Sha224>::new_with_salt(salt),
                        input,
                        signature,
                    )
                    .is_ok(),
                Hash::Sha256 => key
                    .verify(
                        rsa::Pss::<sha2::Sha256>::new_with_salt(salt),
                        input,
                        signature,
                    )
                    .is_ok(),
                Hash::Sha384 => key
                    .verify(
                        rsa::Pss::<sha2::Sha384>::new_with_salt(salt),
                        input,
                        signature,
                    )
                    .is_ok(),
                Hash::Sha512 => key
                    .verify(
                        rsa::Pss::<sha2::Sha512>::new_with_salt(salt),
                        input,
                        signature,
                    )
                    .is_ok(),
            }
        }
        _ => return fail("C_Verify", RvError::MechanismInvalid),
    };
    Ok(ok)
}

/// Calls `$f::<D, M>(args)` for the OAEP hash `D` and MGF1 hash `M` named at run time.
macro_rules! oaep_dispatch {
    ($f:ident, $hash:expr, $mgf:expr, $($arg:expr),*) => {
        match ($hash, $mgf) {
            (Hash::Sha1, Hash::Sha1) => $f::<sha1::Sha1, sha1::Sha1>($($arg),*),
            (Hash::Sha1, Hash::Sha224) => $f::<sha1::Sha1, sha2::Sha224>($($arg),*),
            (Hash::Sha1, Hash::Sha256) => $f::<sha1::Sha1, sha2::Sha256>($($arg),*),
            (Hash::Sha1, Hash::Sha384) => $f::<sha1::Sha1, sha2::Sha384>($($arg),*),
            (Hash::Sha1, Hash::Sha512) => $f::<sha1::Sha1, sha2::Sha512>($($arg),*),
            (Hash::Sha224, Hash::Sha1) => $f::<sha2::Sha224, sha1::Sha1>($($arg),*),
            (Hash::Sha224, Hash::Sha224) => $f::<sha2::Sha224, sha2::Sha224>($($arg),*),
            (Hash::Sha224, Hash::Sha256) => $f::<sha2::Sha224, sha2::Sha256>($($arg),*),
            (Hash::Sha224, Hash::Sha384) => $f::<sha2::Sha224, sha2::Sha384>($($arg),*),
            (Hash::Sha224, Hash::Sha512) => $f::<sha2::Sha224, sha2::Sha512>($($arg),*),
            (Hash::Sha256, Hash::Sha1) => $f::<sha2::Sha256, sha1::Sha1>($($arg),*),
            (Hash::Sha256, Hash::Sha224) => $f::<sha2::Sha256, sha2::Sha224>($($arg),*),
            (Hash::Sha256, Hash::Sha256) => $f::<sha2::Sha256, sha2::Sha256>($($arg),*),
            (Hash::Sha256, Hash::Sha384) => $f::<sha2::Sha256, sha2::Sha384>($($arg),*),
            (Hash::Sha256, Hash::Sha512) => $f::<sha2::Sha256, sha2::Sha512>($($arg),*),
            (Hash::Sha384, Hash::Sha1) => $f::<sha2::Sha384, sha1::Sha1>($($arg),*),
            (Hash::Sha384, Hash::Sha224) => $f::<sha2::Sha384, sha2::Sha224>($($arg),*),
            (Hash::Sha384, Hash::Sha256) => $f::<sha2::Sha384, sha2::Sha256>($($arg),*),
            (Hash::Sha384, Hash::Sha384) => $f::<sha2::Sha384, sha2::Sha384>($($arg),*),
            (Hash::Sha384, Hash::Sha512) => $f::<sha2::Sha384, sha2::Sha512>($($arg),*),
            (Hash::Sha512, Hash::Sha1) => $f::<sha2::Sha512, sha1::Sha1>($($arg),*),
            (Hash::Sha512, Hash::Sha224) => $f::<sha2::Sha512, sha2::Sha224>($($arg),*),
            (Hash::Sha512, Hash::Sha256) => $f::<sha2::Sha512, sha2::Sha256>($($arg),*),
            (Hash::Sha512, Hash::Sha384) => $f::<sha2::Sha512, sha2::Sha384>($($arg),*),
            (Hash::Sha512, Hash::Sha512) => $f::<sha2::Sha512, sha2::Sha512>($($arg),*),
        }
    };
}

fn oaep_padding<D, M>(label: &[u8]) -> rsa::Oaep<D, M>
where
    D: Digest + sha2::digest::FixedOutputReset,
    M: Digest + sha2::digest::FixedOutputReset,
{
    if label.is_empty() {
        rsa::Oaep::<D, M>::new_with_mgf_hash()
    } else {
        rsa::Oaep::<D, M>::new_with_mgf_hash_and_label(label.to_vec())
    }
}

fn oaep_encrypt<D, M>(key: &rsa::PublicKey, data: &[u8], label: &[u8]) -> rsa::Result<Vec<u8>>
where
    D: Digest + sha2::digest::FixedOutputReset,
    M: Digest + sha2::digest::FixedOutputReset,
{
    key.encrypt(&mut getrandom::SysRng, oaep_padding::<D, M>(label), data)
}

fn oaep_decrypt<D, M>(key: &rsa::PrivateKey, data: &[u8], label: &[u8]) -> rsa::Result<Vec<u8>>
where
    D: Digest + sha2::digest::FixedOutputReset,
    M: Digest + sha2::digest::FixedOutputReset,
{
    key.decrypt(oaep_padding::<D, M>(label), data)
}

fn rsa_encrypt(key: &rsa::PublicKey, mech: &Mech, data: &[u8]) -> Result<Vec<u8>> {
    let rng = &mut getrandom::SysRng;
    let r = match mech {
        Mech::RsaPkcs => key.encrypt(rng, rsa::Pkcs1v15Encrypt, data),
        Mech::RsaOaep(h, m, l) => oaep_dispatch!(oaep_encrypt, h, m, key, data, l),
        _ => return fail("C_Encrypt", RvError::MechanismInvalid),
    };
    r.or_else(|_| fail("C_Encrypt", RvError::DataLenRange))
}

fn rsa_decrypt(value: &[u8], mech: &Mech, data: &[u8]) -> Result<Vec<u8>> {
    let key = rsa_private(value)
        .ok_or(())
        .or_else(|()| fail("C_Decrypt", RvError::KeyTypeInconsistent))?;
    let r = match mech {
        Mech::RsaPkcs => key.decrypt(rsa::Pkcs1v15Encrypt, data),
        Mech::RsaOaep(h, m, l) => oaep_dispatch!(oaep_decrypt, h, m, &key, data, l),
        _ => return fail("C_Decrypt", RvError::MechanismInvalid),
    };
    r.or_else(|_| fail("C_Decrypt", RvError::EncryptedDataInvalid))
}

/// The point inside CKA_EC_POINT (a DER OCTET STRING).
fn point_from_der(der: &[u8]) -> Option<&[u8]> {
    match der {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => Some(rest),
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => Some(rest),
        _ => None,
    }
}

fn ec_params_of(attrs: &[Attr]) -> Option<Curve> {
    attrs.iter().find_map(|a| {
        if let Attr::EcParams(p) = a {
            curve_of(p)
        } else {
            None
        }
    })
}

impl SoftToken {
    /// An empty token.
    pub fn new() -> SoftToken {
        SoftToken::default()
    }

    fn insert(&self, mut attrs: Vec<Attr>, value: Vec<u8>) -> Handle {
        attrs.retain(|a| !matches!(a, Attr::Value(_)));
        if !attrs.iter().any(|a| matches!(a, Attr::ValueLen(_))) {
            attrs.push(Attr::ValueLen(value.len() as u64));
        }
        let h = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let obj = Object {
            attrs,
            value: SecretBytes::new(value),
        };
        self.objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(h, obj);
        Handle(h)
    }

    /// Calls `f` with an object's attributes and value.
    fn with<T>(
        &self,
        h: Handle,
        function: &str,
        f: impl FnOnce(&[Attr], &[u8]) -> Result<T>,
    ) -> Result<T> {
        let objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        match objects.get(&h.0) {
            Some(o) => f(&o.attrs, o.value.expose()),
            None => fail(function, RvError::ObjectHandleInvalid),
        }
    }

    fn check_key(
        attrs: &[Attr],
        function: &str,
        class: Class,
        allowed: fn(&Attr) -> Option<bool>,
    ) -> Result<()> {
        if !attrs.contains(&Attr::Class(class)) {
            return fail(function, RvError::KeyTypeInconsistent);
        }
        if !flag(attrs, allowed) {
            return fail(function, RvError::KeyFunctionNotPermitted);
        }
        Ok(())
    }

    fn check_secret(
        attrs: &[Attr],
        function: &str,
        allowed: fn(&Attr) -> Option<bool>,
    ) -> Result<()> {
        if !attrs.contains(&Attr::Class(Class::SecretKey)) {
            return fail(function, RvError::KeyTypeInconsistent);
        }
        if !flag(attrs, allowed) {
            return fail(function, RvError::KeyFunctionNotPermitted);
        }
        Ok(())
    }
}

impl Token for SoftToken {
    fn generate_key(&self, mech: &Mech, template: &[Attr]) -> Result<Handle> {
        let len = template.iter().find_map(|a| {
            if let Attr::ValueLen(n) = a {
                Some(*n as usize)
            } else {
                None
            }
        });
        // CKM_DES3_KEY_GEN has a fixed length and takes no CKA_VALUE_LEN.
        let len = if *mech == Mech::Des3KeyGen {
            Some(24)
        } else {
            len
        };
        let Some(len) = len else {
            return fail("C_GenerateKey", RvError::TemplateIncomplete);
        };
        match mech {
            Mech::Des3KeyGen => {}
            Mech::AesKeyGen if matches!(len, 16 | 24 | 32) => {}
            Mech::GenericSecretKeyGen if (1..=512).contains(&len) => {}
            Mech::AesKeyGen | Mech::GenericSecretKeyGen => {
                return fail("C_GenerateKey", RvError::KeySizeRange);
            }
            _ => return fail("C_GenerateKey", RvError::MechanismInvalid),
        }
        let value = self.random(len)?;
        Ok(self.insert(template.to_vec(), value))
    }

    fn generate_key_pair(
        &self,
        mech: &Mech,
        public: &[Attr],
        private: &[Attr],
    ) -> Result<(Handle, Handle)> {
        if *mech == Mech::RsaKeyPairGen {
            let bits = public.iter().find_map(|a| {
                if let Attr::ModulusBits(b) = a {
                    Some(*b)
                } else {
                    None
                }
            });
            let exponent = public.iter().find_map(|a| {
                if let Attr::PublicExponent(e) = a {
                    Some(e.clone())
                } else {
                    None
                }
            });
            let (Some(bits), Some(exponent)) = (bits, exponent) else {
                return fail("C_GenerateKeyPair", RvError::TemplateIncomplete);
            };
            let (der, n, e) = rsa_generate(bits, &exponent)?;
            let mut public = public.to_vec();
            public.retain(|a| !matches!(a, Attr::PublicExponent(_)));
            public.extend([Attr::Modulus(n.clone()), Attr::PublicExponent(e.clone())]);
            let mut private = private.to_vec();
            private.extend([Attr::Modulus(n.clone()), Attr::PublicExponent(e)]);
            return Ok((self.insert(public, n), self.insert(private, der)));
        }
        if *mech != Mech::EcKeyPairGen {
            return fail("C_GenerateKeyPair", RvError::MechanismInvalid);
        }
        let Some(curve) = ec_params_of(public) else {
            return fail("C_GenerateKeyPair", RvError::CurveNotSupported);
        };
        let (scalar, point) = ec_generate(curve)?;
        let mut public = public.to_vec();
        public.push(Attr::EcPoint(super::template::ec_point_der(&point)));
        let mut private = private.to_vec();
        private.extend(
            public
                .iter()
                .filter(|a| matches!(a, Attr::EcParams(_)))
                .cloned(),
        );
        Ok((self.insert(public, point), self.insert(private, scalar)))
    }

    fn create_object(&self, template: &[Attr]) -> Result<Handle> {
        // An EC public key's value is its point.
        let point = template.iter().find_map(|a| {
            if let Attr::EcPoint(p) = a {
                point_from_der(p)
            } else {
                None
            }
        });
        let value = template
            .iter()
            .find_map(|a| {
                if let Attr::Value(v) = a {
                    Some(v.clone())
                } else {
                    None
                }
            })
            .or_else(|| point.map(<[u8]>::to_vec))
            .or_else(|| {
                template.iter().find_map(|a| {
                    if let Attr::Modulus(n) = a {
                        Some(n.clone())
                    } else {
                        None
                    }
                })
            });
        let Some(value) = value else {
            return fail("C_CreateObject", RvError::TemplateIncomplete);
        };
        if template.contains(&Attr::KeyType(KeyType::Aes)) && !matches!(value.len(), 16 | 24 | 32) {
            return fail("C_CreateObject", RvError::AttributeValueInvalid);
        }
        Ok(self.insert(template.to_vec(), value))
    }

    fn find(&self, template: &[Attr]) -> Result<Vec<Handle>> {
        let objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        let mut found: Vec<u64> = objects
            .iter()
            .filter(|(_, o)| template.iter().all(|t| o.attrs.contains(t)))
            .map(|(h, _)| *h)
            .collect();
        found.sort_unstable();
        Ok(found.into_iter().map(Handle).collect())
    }

    fn get_attributes(&self, object: Handle, wanted: &[AttrType]) -> Result<Vec<Attr>> {
        self.with(object, "C_GetAttributeValue", |attrs, value| {
            let sensitive = flag(attrs, may_sensitive);
            let mut out = Vec::new();
            for w in wanted {
                let hit = match w {
                    AttrType::Value if !sensitive => Some(Attr::Value(value.to_vec())),
                    AttrType::Value => None,
                    AttrType::Class => attrs.iter().find(|a| matches!(a, Attr::Class(_))).cloned(),
                    AttrType::KeyType => attrs
                        .iter()
                        .find(|a| matches!(a, Attr::KeyType(_)))
                        .cloned(),
                    AttrType::Label => attrs.iter().find(|a| matches!(a, Attr::Label(_))).cloned(),
                    AttrType::Id => attrs.iter().find(|a| matches!(a, Attr::Id(_))).cloned(),
                    AttrType::ValueLen => attrs
                        .iter()
                        .find(|a| matches!(a, Attr::ValueLen(_)))
                        .cloned(),
                    AttrType::Sensitive => Some(Attr::Sensitive(sensitive)),
                    AttrType::Extractable => Some(Attr::Extractable(flag(attrs, may_extractable))),
                    AttrType::EcPoint => attrs
                        .iter()
                        .find(|a| matches!(a, Attr::EcPoint(_)))
                        .cloned(),
                    AttrType::EcParams => attrs
                        .iter()
                        .find(|a| matches!(a, Attr::EcParams(_)))
                        .cloned(),
                    AttrType::Modulus => attrs
                        .iter()
                        .find(|a| matches!(a, Attr::Modulus(_)))
                        .cloned(),
                    AttrType::PublicExponent => attrs
                        .iter()
                        .find(|a| matches!(a, Attr::PublicExponent(_)))
                        .cloned(),
                };
                out.extend(hit);
            }
            Ok(out)
        })
    }

    fn set_attributes(&self, object: Handle, template: &[Attr]) -> Result<()> {
        let mut objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        let Some(o) = objects.get_mut(&object.0) else {
            return fail("C_SetAttributeValue", RvError::ObjectHandleInvalid);
        };
        for t in template {
            if matches!(
                t,
                Attr::Value(_) | Attr::Class(_) | Attr::KeyType(_) | Attr::ValueLen(_)
            ) {
                return fail("C_SetAttributeValue", RvError::AttributeReadOnly);
            }
            o.attrs.retain(|a| !same_kind(a, t));
            o.attrs.push(t.clone());
        }
        Ok(())
    }

    fn copy_object(&self, object: Handle, template: &[Attr]) -> Result<Handle> {
        let (mut attrs, value) = self.with(object, "C_CopyObject", |attrs, value| {
            Ok((attrs.to_vec(), value.to_vec()))
        })?;
        for t in template {
            // What C_CopyObject may change; a key's value and kind stay.
            if !matches!(t, Attr::Token(_) | Attr::Private(_) | Attr::Label(_)) {
                return fail("C_CopyObject", RvError::AttributeReadOnly);
            }
            attrs.retain(|a| !same_kind(a, t));
            attrs.push(t.clone());
        }
        Ok(self.insert(attrs, value))
    }

    fn destroy(&self, object: Handle) -> Result<()> {
        match self
            .objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&object.0)
        {
            Some(_) => Ok(()),
            None => fail("C_DestroyObject", RvError::ObjectHandleInvalid),
        }
    }

    fn encrypt(&self, key: Handle, mech: &Mech, data: &[u8]) -> Result<Vec<u8>> {
        if matches!(mech, Mech::RsaPkcs | Mech::RsaOaep(..)) {
            return self.with(key, "C_Encrypt", |attrs, _| {
                Self::check_key(attrs, "C_Encrypt", Class::PublicKey, may_encrypt)?;
                let k = rsa_public(attrs)
                    .ok_or(())
                    .or_else(|()| fail("C_Encrypt", RvError::KeyTypeInconsistent))?;
                rsa_encrypt(&k, mech, data)
            });
        }
        self.with(key, "C_Encrypt", |attrs, value| {
            Self::check_secret(attrs, "C_Encrypt", may_encrypt)?;
            cipher(value, mech, data, true)
        })
    }

    fn decrypt(&self, key: Handle, mech: &Mech, data: &[u8]) -> Result<Vec<u8>> {
        if matches!(mech, Mech::RsaPkcs | Mech::RsaOaep(..)) {
            return self.with(key, "C_Decrypt", |attrs, value| {
                Self::check_key(attrs, "C_Decrypt", Class::PrivateKey, may_decrypt)?;
                rsa_decrypt(value, mech, data)
            });
        }
        self.with(key, "C_Decrypt", |attrs, value| {
            Self::check_secret(attrs, "C_Decrypt", may_decrypt)?;
            cipher(value, mech, data, false)
        })
    }

    fn sign(&self, key: Handle, mech: &Mech, data: &[u8]) -> Result<Vec<u8>> {
        if matches!(mech, Mech::RsaPkcs | Mech::RsaPss { .. }) {
            return self.with(key, "C_Sign", |attrs, value| {
                Self::check_key(attrs, "C_Sign", Class::PrivateKey, may_sign)?;
                rsa_sign(value, mech, data)
            });
        }
        if *mech == Mech::Ecdsa {
            return self.with(key, "C_Sign", |attrs, value| {
                Self::check_key(attrs, "C_Sign", Class::PrivateKey, may_sign)?;
                let Some(curve) = ec_params_of(attrs) else {
                    return fail("C_Sign", RvError::KeyTypeInconsistent);
                };
                ec_sign(curve, value, data)
            });
        }
        self.with(key, "C_Sign", |attrs, value| {
            Self::check_secret(attrs, "C_Sign", may_sign)?;
            match mech {
                Mech::Hmac(h) => Ok(hmac(*h, value, data)),
                _ => fail("C_Sign", RvError::MechanismInvalid),
            }
        })
    }

    fn verify(&self, key: Handle, mech: &Mech, data: &[u8], signature: &[u8]) -> Result<bool> {
        if matches!(mech, Mech::RsaPkcs | Mech::RsaPss { .. }) {
            return self.with(key, "C_Verify", |attrs, _| {
                Self::check_key(attrs, "C_Verify", Class::PublicKey, may_verify)?;
                let k = rsa_public(attrs)
                    .ok_or(())
                    .or_else(|()| fail("C_Verify", RvError::KeyTypeInconsistent))?;
                rsa_verify(&k, mech, data, signature)
            });
        }
        if *mech == Mech::Ecdsa {
            return self.with(key, "C_Verify", |attrs, value| {
                Self::check_key(attrs, "C_Verify", Class::PublicKey, may_verify)?;
                let Some(curve) = ec_params_of(attrs) else {
                    return fail("C_Verify", RvError::KeyTypeInconsistent);
                };
                Ok(ec_verify(curve, value, data, signature))
            });
        }
        self.with(key, "C_Verify", |attrs, value| {
            Self::check_secret(attrs, "C_Verify", may_verify)?;
            match mech {
                Mech::Hmac(h) => {
                    let expected = hmac(*h, value, data);
                    // Constant time: every byte is compared.
                    let same = expected.len() == signature.len()
                        && expected
                            .iter()
                            .zip(signature)
                            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                            == 0;
                    Ok(same)
                }
                _ => fail("C_Verify", RvError::MechanismInvalid),
            }
        })
    }

    fn digest_key(&self, key: Handle, hash: Hash) -> Result<Vec<u8>> {
        self.with(key, "C_DigestKey", |_, value| Ok(digest(hash, value)))
    }

    fn wrap_key(&self, wrapping: Handle, key: Handle, mech: &Mech) -> Result<Vec<u8>> {
        let objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        let (Some(w), Some(k)) = (objects.get(&wrapping.0), objects.get(&key.0)) else {
            return fail("C_WrapKey", RvError::KeyHandleInvalid);
        };
        if !flag(&w.attrs, may_wrap) {
            return fail("C_WrapKey", RvError::KeyFunctionNotPermitted);
        }
        if !flag(&k.attrs, may_extractable) {
            return fail("C_WrapKey", RvError::KeyUnextractable);
        }
        key_wrap(w.value.expose(), mech, k.value.expose(), true)
    }

    fn unwrap_key(
        &self,
        unwrapping: Handle,
        mech: &Mech,
        wrapped: &[u8],
        template: &[Attr],
    ) -> Result<Handle> {
        let value = self.with(unwrapping, "C_UnwrapKey", |attrs, kek| {
            if !flag(attrs, may_unwrap) {
                return fail("C_UnwrapKey", RvError::KeyFunctionNotPermitted);
            }
            key_wrap(kek, mech, wrapped, false)
        })?;
        Ok(self.insert(template.to_vec(), value))
    }

    fn begin(&self, kind: StreamKind, key: Handle, mech: &Mech) -> Result<Stream> {
        let function = match kind {
            StreamKind::Encrypt => "C_EncryptInit",
            StreamKind::Decrypt => "C_DecryptInit",
            StreamKind::Sign => "C_SignInit",
            StreamKind::Verify => "C_VerifyInit",
        };
        self.with(key, function, |_, _| Ok(()))?;
        let state = Buffered {
            key,
            mech: mech.clone(),
            data: Vec::new(),
            whole: Vec::new(),
            emitted: 0,
        };
        Ok(Stream {
            kind,
            fed: 0,
            state: Box::new(state),
        })
    }

    fn update(&self, stream: &mut Stream, data: &[u8]) -> Result<Vec<u8>> {
        let kind = stream.kind;
        let Some(b) = stream.state.downcast_mut::<Buffered>() else {
            return Err(TokenError::Unsupported("a stream of another token".into()));
        };
        stream.fed += data.len() as u64;
        let encrypt = kind == StreamKind::Encrypt;
        if let (Some((block, hold_last)), StreamKind::Encrypt | StreamKind::Decrypt) =
            (block_stream(&b.mech), kind)
        {
            b.data.extend_from_slice(data);
            let mut ready = b.data.len() - b.data.len() % block;
            if hold_last && !encrypt && ready == b.data.len() {
                ready = ready.saturating_sub(block);
            }
            if ready == 0 {
                return Ok(Vec::new());
            }
            let run: Vec<u8> = b.data.drain(..ready).collect();
            let out = self.with(b.key, "C_EncryptUpdate", |_, value| {
                cipher(value, &unpadded(&b.mech), &run, encrypt)
            })?;
            b.mech = chained(&b.mech, if encrypt { &out } else { &run });
            return Ok(out);
        }
        if let (Mech::AesGcm { iv, .. }, StreamKind::Encrypt) = (&b.mech, kind) {
            let ks = self.with(b.key, "C_EncryptUpdate", |_, value| {
                gcm_keystream(value, iv, b.emitted, data.len())
            })?;
            b.whole.extend_from_slice(data);
            b.emitted += data.len();
            return Ok(data.iter().zip(&ks).map(|(d, k)| d ^ k).collect());
        }
        // The rest computes at the end; the caller bounds what a stream may hold.
        b.data.extend_from_slice(data);
        Ok(Vec::new())
    }

    fn finish(&self, stream: Stream, signature: Option<&[u8]>) -> Result<Vec<u8>> {
        let kind = stream.kind;
        let Ok(b) = stream.state.downcast::<Buffered>() else {
            return Err(TokenError::Unsupported("a stream of another token".into()));
        };
        match kind {
            StreamKind::Encrypt if matches!(b.mech, Mech::AesGcm { .. }) => {
                // The ciphertext not yet given, and the tag over all of it.
                let all = self.encrypt(b.key, &b.mech, &b.whole)?;
                Ok(all[b.emitted..].to_vec())
            }
            StreamKind::Encrypt => self.encrypt(b.key, &b.mech, &b.data),
            StreamKind::Decrypt => self.decrypt(b.key, &b.mech, &b.data),
            StreamKind::Sign => self.sign(b.key, &b.mech, &b.data),
            StreamKind::Verify => {
                let ok = self.verify(b.key, &b.mech, &b.data, signature.unwrap_or_default())?;
                Ok(vec![u8::from(ok)])
            }
        }
    }

    fn random(&self, len: usize) -> Result<Vec<u8>> {
        let mut out = vec![0u8; len];
        match getrandom::fill(&mut out) {
            Ok(()) => Ok(out),
            Err(_) => fail("C_GenerateRandom", RvError::RandomNoRng),
        }
    }

    fn seed_random(&self, _seed: &[u8]) -> Result<usize> {
        // The operating system's generator takes no seed from here: none of it is used, which
        // KMIP's RNG Seed allows (its Data Length says how much the server accepted).
        Ok(0)
    }
}

/// The ECDH shared secret (the x coordinate) of private scalar `d` and uncompressed point `q` on
/// KMIP Recommended Curve `curve`, for Derive Key with an asymmetric key pair.
pub fn ecdh_shared_secret(curve: u32, d: &[u8], q: &[u8]) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    use crate::ttlv::tables::enums::RecommendedCurve as R;
    macro_rules! dh {
        ($c:ident) => {{
            let sk = $c::SecretKey::from_slice(d).ok()?;
            let pk = $c::PublicKey::from_sec1_bytes(q).ok()?;
            let shared = $c::ecdh::diffie_hellman(sk.to_nonzero_scalar(), pk.as_affine());
            Some(zeroize::Zeroizing::new(shared.raw_secret_bytes().to_vec()))
        }};
    }
    match R::from_u32(curve) {
        R::P_256 => dh!(p256),
        R::P_384 => dh!(p384),
        R::SECP256K1 => dh!(k256),
        _ => None,
    }
}

#[cfg(test)]
mod ecdh_tests {
    use super::*;

    #[test]
    fn both_sides_of_ecdh_agree() {
        use crate::ttlv::tables::enums::RecommendedCurve as R;
        for (curve, kmip) in [
            (Curve::P256, R::P_256),
            (Curve::P384, R::P_384),
            (Curve::K256, R::SECP256K1),
        ] {
            let (d1, q1) = ec_generate(curve).expect("pair 1");
            let (d2, q2) = ec_generate(curve).expect("pair 2");
            let a = ecdh_shared_secret(kmip.to_u32(), &d1, &q2).expect("one side");
            let b = ecdh_shared_secret(kmip.to_u32(), &d2, &q1).expect("other side");
            assert_eq!(*a, *b);
            assert!(ecdh_shared_secret(kmip.to_u32(), &d1, b"not a point").is_none());
        }
    }
}
