//! What this build supports, as data: every implemented operation with the object types it
//! takes and how each backend does it. `ksg features` prints it and `docs/features.md` holds
//! it; a test keeps both equal to this table, and this table equal to [`super::IMPLEMENTED`].

use crate::ttlv::tables::enums::{ObjectType as T, Operation as Op};
use crate::ttlv::{Version, tables};

/// One operation's support.
#[derive(Debug)]
pub struct Feature {
    /// The operation.
    pub operation: Op,
    /// The object types it works on (empty: it takes no object).
    pub objects: &'static [T],
    /// On the built-in software token.
    pub software: &'static str,
    /// On a PKCS#11 HSM (tested on SoftHSM2).
    pub hsm: &'static str,
}

const ALL: &[T] = &[
    T::Certificate,
    T::SymmetricKey,
    T::PublicKey,
    T::PrivateKey,
    T::SplitKey,
    T::Template,
    T::SecretData,
    T::OpaqueObject,
    T::PGPKey,
];
const KEYS: &[T] = &[
    T::SymmetricKey,
    T::PublicKey,
    T::PrivateKey,
    T::SplitKey,
    T::SecretData,
];
const YES: &str = "yes";
const KEK: &str =
    "yes; key values leave the HSM only wrapped under the customer KEK (`KEKKeyPath`)";

/// The table, in Operation value order.
pub const FEATURES: &[Feature] = &[
    Feature {
        operation: Op::Create,
        objects: &[T::SymmetricKey, T::SecretData],
        software: "AES, Triple-DES, HMAC keys; Secret Data",
        hsm: "token objects (CKA_TOKEN), what the HSM can generate",
    },
    Feature {
        operation: Op::CreateKeyPair,
        objects: &[T::PublicKey, T::PrivateKey],
        software: "RSA; EC on P-256, P-384, secp256k1",
        hsm: "RSA, EC on the curves the HSM offers",
    },
    Feature {
        operation: Op::Register,
        objects: ALL,
        software: "every type and key format, PKCS#12 and encrypted PKCS#8 included",
        hsm: "every type; RSA private keys go onto the token under the KEK, EC private keys stay sealed in the keystore",
    },
    Feature {
        operation: Op::ReKey,
        objects: &[T::SymmetricKey],
        software: YES,
        hsm: YES,
    },
    Feature {
        operation: Op::DeriveKey,
        objects: &[T::SymmetricKey, T::SecretData, T::PrivateKey],
        software: "PBKDF2, HASH, HMAC, ECDH",
        hsm: KEK,
    },
    Feature {
        operation: Op::Locate,
        objects: ALL,
        software: YES,
        hsm: YES,
    },
    Feature {
        operation: Op::Check,
        objects: KEYS,
        software: YES,
        hsm: YES,
    },
    Feature {
        operation: Op::Get,
        objects: ALL,
        software: "format conversion, key wrapping, PKCS#12",
        hsm: KEK,
    },
    Feature {
        operation: Op::GetAttributes,
        objects: ALL,
        software: YES,
        hsm: YES,
    },
    Feature {
        operation: Op::GetAttributeList,
        objects: ALL,
        software: YES,
        hsm: YES,
    },
    Feature {
        operation: Op::AddAttribute,
        objects: ALL,
        software: YES,
        hsm: YES,
    },
    Feature {
        operation: Op::ModifyAttribute,
        objects: ALL,
        software: YES,
        hsm: YES,
    },
    Feature {
        operation: Op::DeleteAttribute,
        objects: ALL,
        software: YES,
        hsm: YES,
    },
    Feature {
        operation: Op::ObtainLease,
        objects: KEYS,
        software: YES,
        hsm: YES,
    },
    Feature {
        operation: Op::GetUsageAllocation,
        objects: KEYS,
        software: YES,
        hsm: YES,
    },
    Feature {
        operation: Op::Activate,
        objects: ALL,
        software: YES,
        hsm: YES,
    },
    Feature {
        operation: Op::Revoke,
        objects: ALL,
        software: YES,
        hsm: YES,
    },
    Feature {
        operation: Op::Destroy,
        objects: ALL,
        software: YES,
        hsm: "the token object is destroyed too",
    },
    Feature {
        operation: Op::Archive,
        objects: ALL,
        software: YES,
        hsm: YES,
    },
    Feature {
        operation: Op::Recover,
        objects: ALL,
        software: YES,
        hsm: YES,
    },
    Feature {
        operation: Op::Query,
        objects: &[],
        software: YES,
        hsm: YES,
    },
    Feature {
        operation: Op::DiscoverVersions,
        objects: &[],
        software: YES,
        hsm: YES,
    },
    Feature {
        operation: Op::ReKeyKeyPair,
        objects: &[T::PublicKey, T::PrivateKey],
        software: YES,
        hsm: YES,
    },
    Feature {
        operation: Op::Encrypt,
        objects: &[T::SymmetricKey, T::PublicKey],
        software: "AES ECB/CBC/CTR/GCM/key wrap, Triple-DES, RSA PKCS#1 v1.5 and OAEP; streamed",
        hsm: "the HSM's mechanisms (SoftHSM2: OAEP with SHA-1 only); streamed",
    },
    Feature {
        operation: Op::Decrypt,
        objects: &[T::SymmetricKey, T::PrivateKey],
        software: "as Encrypt",
        hsm: "as Encrypt",
    },
    Feature {
        operation: Op::Sign,
        objects: &[T::PrivateKey],
        software: "RSA PKCS#1 v1.5 and PSS, ECDSA; streamed",
        hsm: "the HSM's mechanisms; streamed",
    },
    Feature {
        operation: Op::SignatureVerify,
        objects: &[T::PublicKey],
        software: "as Sign",
        hsm: "as Sign",
    },
    Feature {
        operation: Op::MAC,
        objects: &[T::SymmetricKey],
        software: "HMAC-SHA-1/224/256/384/512; streamed",
        hsm: "the HSM's HMAC (SoftHSM2: keys at least as long as the hash); streamed",
    },
    Feature {
        operation: Op::MACVerify,
        objects: &[T::SymmetricKey],
        software: "as MAC",
        hsm: "as MAC",
    },
    Feature {
        operation: Op::RNGRetrieve,
        objects: &[],
        software: "the operating system's generator",
        hsm: "C_GenerateRandom",
    },
    Feature {
        operation: Op::RNGSeed,
        objects: &[],
        software: "accepted, none taken (the OS generator needs no seed)",
        hsm: "C_SeedRandom",
    },
    Feature {
        operation: Op::Hash,
        objects: &[],
        software: "SHA-1, SHA-2; streamed",
        hsm: "in software (no key involved)",
    },
    Feature {
        operation: Op::CreateSplitKey,
        objects: &[T::SymmetricKey, T::SecretData, T::SplitKey],
        software: "XOR, Shamir over GF(2^8)",
        hsm: KEK,
    },
    Feature {
        operation: Op::JoinSplitKey,
        objects: &[T::SplitKey, T::SymmetricKey, T::SecretData],
        software: "XOR, Shamir over GF(2^8)",
        hsm: YES,
    },
];

fn name(table: &str, v: u32) -> &'static str {
    tables::enum_by_name(table)
        .and_then(|t| t.by_value(v))
        .map_or("?", |n| n.name)
}

/// The KMIP version that introduced an operation.
fn since(op: Op) -> Version {
    tables::enum_by_name("Operation")
        .and_then(|t| t.by_value(op.to_u32()))
        .map_or(Version::new(1, 0), |n| n.since)
}

/// The table as Markdown: operations × object types × versions × backends.
pub fn markdown() -> String {
    let mut out = String::from(
        "| Operation | KMIP | Object types | Software token | PKCS#11 HSM |\n|---|---|---|---|---|\n",
    );
    for f in FEATURES {
        let v = since(f.operation);
        let objects = if f.objects.is_empty() {
            "—".to_string()
        } else if f.objects.len() == ALL.len() {
            "all".to_string()
        } else {
            f.objects
                .iter()
                .map(|t| name("ObjectType", t.to_u32()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| {} | {}.{}+ | {} | {} | {} |\n",
            name("Operation", f.operation.to_u32()),
            v.major,
            v.minor,
            objects,
            f.software,
            f.hsm
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_exactly_the_implemented_operations_in_order() {
        let listed: Vec<Op> = FEATURES.iter().map(|f| f.operation).collect();
        assert_eq!(listed, super::super::IMPLEMENTED.to_vec());
        assert_eq!(ALL.len(), super::super::SUPPORTED_OBJECT_TYPES.len());
    }
}
