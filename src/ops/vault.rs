//! Where the operations get token handles for stored objects. With the software token the
//! keystore holds every value and the token gets a session copy on first use; with an HSM the
//! key lives on the token (found by CKA_ID = Unique Identifier).
//!
//! Also the table of multi-part (streaming) operations in progress, bounded in number and
//! expiring when abandoned.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::keyblock::{self, Material};
use crate::kmip::Error;
use crate::store::StoredObject;
use crate::token::{Attr, Class, Handle, KeyType, Stream, Token};
use crate::ttlv::tables::enums::CryptographicAlgorithm;

/// Streams open at once, across all connections.
pub const MAX_STREAMS: usize = 1024;
/// A stream not continued for this long (seconds) is dropped.
pub const STREAM_IDLE_SECONDS: i64 = 300;

/// One multi-part operation in progress.
#[derive(Debug)]
pub struct OpenStream {
    /// The object it uses (empty for Hash, which uses none).
    pub uid: String,
    /// The hash of a Hash stream.
    pub hash: Option<crate::token::Hash>,
    /// Length of the authentication tag at the end of an AEAD encryption's output.
    pub tag_len: usize,
    /// The Init request's payload without its Data: the Cryptographic Parameters and any
    /// signature or MAC to check, which later parts need not repeat.
    pub request: Option<crate::ttlv::Item>,
    /// The token's state (none for streams ksg buffers itself: sign, verify).
    pub stream: Option<Stream>,
    /// When it was last fed.
    pub touched: i64,
    /// Algorithm-specific extra (e.g. the hash of a sign-by-digest stream).
    pub extra: Vec<u8>,
}

/// Token handles and streams.
pub struct Vault {
    token: Arc<dyn Token>,
    software: bool,
    handles: Mutex<HashMap<String, Handle>>,
    streams: Mutex<HashMap<Vec<u8>, OpenStream>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault({:?}, software: {})", self.token, self.software)
    }
}

impl Vault {
    /// A vault over `token`; `software` when the keystore keeps every value.
    pub fn new(token: Arc<dyn Token>, software: bool) -> Vault {
        Vault {
            token,
            software,
            handles: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
        }
    }

    /// The token.
    pub fn token(&self) -> &dyn Token {
        &*self.token
    }

    /// Whether values are kept in the keystore (software token).
    pub fn software(&self) -> bool {
        self.software
    }

    /// Forgets the cached handle of `uid` (after Destroy or a value change), destroying a
    /// session copy.
    pub fn forget(&self, uid: &str) {
        let h = self
            .handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid);
        if let Some(h) = h
            && self.software
        {
            let _ = self.token.destroy(h);
        }
    }

    /// The token handle for `obj`'s key.
    pub fn handle(&self, obj: &StoredObject) -> Result<Handle, Error> {
        self.handle_with(obj, Ok)
    }

    /// The token handle for `obj`'s key; a value the keystore holds goes through `prepare`
    /// (which unwraps a key registered wrapped) on its way to the token.
    pub fn handle_with(
        &self,
        obj: &StoredObject,
        prepare: impl FnOnce(crate::ttlv::Item) -> Result<crate::ttlv::Item, Error>,
    ) -> Result<Handle, Error> {
        if let Some(h) = self
            .handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&obj.uid)
        {
            return Ok(*h);
        }
        let h = if let Some(r) = &obj.token_ref {
            let found = self
                .token
                .find(&[Attr::Id(r.id.clone())])
                .map_err(Error::Token)?;
            *found
                .first()
                .ok_or_else(|| Error::ItemNotFound(format!("{} is not on the token", obj.uid)))?
        } else {
            let value = obj
                .value
                .as_ref()
                .ok_or_else(|| Error::ItemNotFound(format!("{} has no value", obj.uid)))?;
            let object = prepare(keyblock::unseal(value.expose())?)?;
            let alg = super::attributes::enum_of(obj, "Cryptographic Algorithm");
            let template = session_template(&keyblock::material(&object)?, alg)?;
            self.token.create_object(&template).map_err(Error::Token)?
        };
        self.handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(obj.uid.clone(), h);
        Ok(h)
    }

    /// Stores a stream under `id`, dropping expired ones; refuses when too many are open.
    pub fn put_stream(&self, id: Vec<u8>, s: OpenStream, now: i64) -> Result<(), Error> {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        streams.retain(|_, v| now - v.touched < STREAM_IDLE_SECONDS);
        if streams.len() >= MAX_STREAMS {
            return Err(Error::FeatureNotSupported(
                "too many streaming operations in progress".into(),
            ));
        }
        streams.insert(id, s);
        Ok(())
    }

    /// Takes the stream `id` out of the table.
    pub fn take_stream(&self, id: &[u8]) -> Option<OpenStream> {
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
    }
}

/// A session-object template for material the keystore holds: every function allowed (the
/// operations check the KMIP usage mask and state themselves), not a token object.
fn session_template(m: &Material, alg: Option<u32>) -> Result<Vec<Attr>, Error> {
    let all = [
        Attr::Encrypt(true),
        Attr::Decrypt(true),
        Attr::Sign(true),
        Attr::Verify(true),
        Attr::Wrap(true),
        Attr::Unwrap(true),
    ];
    let mut t = vec![
        Attr::Token(false),
        Attr::Sensitive(false),
        Attr::Extractable(true),
    ];
    match m {
        Material::Secret(v) => {
            let kt = match alg.map(CryptographicAlgorithm::from_u32) {
                Some(CryptographicAlgorithm::AES) | None => KeyType::Aes,
                Some(CryptographicAlgorithm::DES3) => KeyType::Des3,
                Some(
                    CryptographicAlgorithm::HMAC_SHA1
                    | CryptographicAlgorithm::HMAC_SHA224
                    | CryptographicAlgorithm::HMAC_SHA256
                    | CryptographicAlgorithm::HMAC_SHA384
                    | CryptographicAlgorithm::HMAC_SHA512,
                ) => KeyType::GenericSecret,
                Some(other) => {
                    return Err(Error::FeatureNotSupported(format!(
                        "{other:?} keys on this token"
                    )));
                }
            };
            t.extend([
                Attr::Class(Class::SecretKey),
                Attr::KeyType(kt),
                Attr::Value(v.clone()),
            ]);
        }
        Material::RsaPrivate(der) => t.extend([
            Attr::Class(Class::PrivateKey),
            Attr::KeyType(KeyType::Rsa),
            Attr::Value(der.clone()),
        ]),
        Material::RsaPublic { n, e } => t.extend([
            Attr::Class(Class::PublicKey),
            Attr::KeyType(KeyType::Rsa),
            Attr::Modulus(n.clone()),
            Attr::PublicExponent(e.clone()),
        ]),
        Material::EcPrivate { curve, d } => t.extend([
            Attr::Class(Class::PrivateKey),
            Attr::KeyType(KeyType::Ec),
            ec_params(*curve)?,
            Attr::Value(d.clone()),
        ]),
        Material::EcPublic { curve, q } => t.extend([
            Attr::Class(Class::PublicKey),
            Attr::KeyType(KeyType::Ec),
            ec_params(*curve)?,
            Attr::EcPoint(crate::token::template::ec_point_der(q)),
        ]),
    }
    t.extend(all);
    Ok(t)
}

/// CKA_EC_PARAMS of a curve ksg can use.
fn ec_params(curve: u32) -> Result<Attr, Error> {
    crate::token::template::ec_params(curve)
        .map(Attr::EcParams)
        .map_err(|e| Error::FeatureNotSupported(e.to_string()))
}
