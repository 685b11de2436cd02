//! HSM vendor differences, kept in one place. `HSMType` 0: any PKCS#11 module (SoftHSM2 among
//! them), 1: AWS CloudHSM, 2: Cavium LiquidSecurity.
//!
//! Getting a sensitive key out for a KMIP Get (the seed's method): the token wraps it with the
//! customer KEK (C_WrapKey, AES key wrap with padding), and ksg unwraps it locally with the same
//! KEK from `KEKKeyPath`. All three types use CKM_AES_KEY_WRAP_PAD (RFC 5649) here; AWS and
//! Cavium client libraries that only offer their vendor-defined wrap mechanisms need that
//! mechanism added in this file (not verified on hardware: none is reachable from here).

use aes_kw::KwpAes256;
use aes_kw::cipher::KeyInit;

use super::Mech;

/// The label the customer KEK carries on the token (the seed's convention).
pub const KEK_LABEL: &str = "P6RKEK1";

/// The HSM family, from `HSMType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    /// Any PKCS#11 module.
    Generic,
    /// AWS CloudHSM.
    AwsCloudHsm,
    /// Cavium LiquidSecurity.
    CaviumLiquidSecurity,
}

impl Vendor {
    /// The vendor for an `HSMType` value.
    pub fn from_hsm_type(t: u32) -> Vendor {
        match t {
            1 => Vendor::AwsCloudHsm,
            2 => Vendor::CaviumLiquidSecurity,
            _ => Vendor::Generic,
        }
    }

    /// The mechanism that wraps a key under the KEK for export.
    pub fn kek_wrap_mechanism(self) -> Mech {
        match self {
            Vendor::Generic | Vendor::AwsCloudHsm | Vendor::CaviumLiquidSecurity => {
                Mech::AesKeyWrapPad
            }
        }
    }

    /// Unwraps, locally, what [`Vendor::kek_wrap_mechanism`] produced.
    pub fn unwrap_locally(self, kek: &[u8; 32], wrapped: &[u8]) -> Option<Vec<u8>> {
        match self {
            Vendor::Generic | Vendor::AwsCloudHsm | Vendor::CaviumLiquidSecurity => {
                let kwp = KwpAes256::new_from_slice(kek).ok()?;
                let mut out = vec![0u8; wrapped.len()];
                let len = kwp.unwrap_key(wrapped, &mut out).ok()?.len();
                out.truncate(len);
                Some(out)
            }
        }
    }
}

/// Finds the customer KEK on the token: the object with the configured handle
/// (`AWSCloudHSM_KEKHandle`, `CaviumLiquidSec_KEKHandle`) among the wrapping keys, else the one
/// labelled P6RKEK1. Without one, keys cannot be exported: Get of a sensitive key is refused.
pub fn find_kek(
    token: &dyn super::Token,
    configured: Option<u64>,
) -> Result<super::Handle, super::TokenError> {
    use super::{Attr, Class};
    if let Some(want) = configured {
        let wrappers = token.find(&[Attr::Class(Class::SecretKey), Attr::Wrap(true)])?;
        return wrappers
            .into_iter()
            .find(|h| token.native_handle(*h) == Some(want))
            .ok_or_else(|| {
                super::TokenError::Unsupported(format!(
                    "no wrapping key with the configured KEK handle {want}"
                ))
            });
    }
    let found = token.find(&[Attr::Class(Class::SecretKey), Attr::Label(KEK_LABEL.into())])?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(super::TokenError::Unsupported(format!(
            "no customer KEK labelled {KEK_LABEL} (see `ksg pkcs11 import-kek`)"
        ))),
        _ => Err(super::TokenError::Unsupported(format!(
            "more than one key labelled {KEK_LABEL}"
        ))),
    }
}

/// Whether the Digest attribute may be computed with C_DigestKey (gateFlags 0x0004 forbids it).
pub fn digest_key_allowed(gate_flags: u32) -> bool {
    gate_flags & crate::config::gate_flags::NO_DIGEST_KEY == 0
}

/// Reads the customer KEK from `KEKKeyPath`: 32 raw bytes, in a file others cannot read.
pub fn load_kek(path: &std::path::Path) -> Result<zeroize::Zeroizing<[u8; 32]>, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(path).map_err(|e| format!("KEKKeyPath {}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "KEKKeyPath {}: readable by other users; run `chmod 600` on it",
            path.display()
        ));
    }
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(path).map_err(|e| format!("KEKKeyPath {}: {e}", path.display()))?,
    );
    let kek: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        format!(
            "KEKKeyPath {}: a KEK is 32 raw bytes (AES-256), found {}",
            path.display(),
            bytes.len()
        )
    })?;
    Ok(zeroize::Zeroizing::new(kek))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_kek_file_is_32_private_bytes() {
        let dir = crate::test_dir::TempDir::new("kek");
        let p = dir.join("aes256.key");
        std::fs::write(&p, [7u8; 32]).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(*load_kek(&p).expect("loads"), [7u8; 32]);
        std::fs::write(&p, [7u8; 31]).expect("write");
        assert!(load_kek(&p).expect_err("short").contains("32 raw bytes"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(
            load_kek(&p)
                .expect_err("world-readable")
                .contains("chmod 600")
        );
        assert!(digest_key_allowed(0x0002) && !digest_key_allowed(0x0004));
        let kek = [9u8; 32];
        let kwp = KwpAes256::new_from_slice(&kek).expect("key");
        let mut wrapped = [0u8; 40];
        kwp.wrap_key(&[1u8; 32], &mut wrapped).expect("wrap");
        assert_eq!(
            Vendor::from_hsm_type(1).unwrap_locally(&kek, &wrapped),
            Some(vec![1u8; 32])
        );
    }
}
