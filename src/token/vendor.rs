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
