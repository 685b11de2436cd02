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
use crate::token::vendor::Vendor;
use crate::token::{Attr, Class, Handle, KeyType, Mech, Stream, Token};
use crate::ttlv::tables::enums::CryptographicAlgorithm;
use zeroize::Zeroizing;

/// Streams open at once, across all connections.
pub const MAX_STREAMS: usize = 1024;
/// Streams one connection may have open at once, unless configured (`maxStreamsPerConnection`).
pub const MAX_STREAMS_PER_CONNECTION: usize = 64;
/// A stream not continued for this long (seconds) is dropped.
pub const STREAM_IDLE_SECONDS: i64 = 300;

/// One multi-part operation in progress.
#[derive(Debug)]
pub struct OpenStream {
    /// The connection that opened it (its streams end with it).
    pub connection: u64,
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

/// What HSM mode needs besides the token: the customer KEK, to take keys out wrapped under it and
/// unwrap them here (the seed's export path), and whether C_DigestKey may compute Digests.
pub struct HsmOptions {
    /// The HSM family (its wrap mechanism).
    pub vendor: Vendor,
    /// The customer KEK (`KEKKeyPath`), if configured.
    pub kek: Option<Zeroizing<[u8; 32]>>,
    /// The KEK's handle on the token, if configured (else it is found by label).
    pub kek_handle: Option<u64>,
    /// C_DigestKey may be used (gateFlags 0x0004 not set).
    pub digest_key: bool,
    /// At most this many HSM keys are used through session copies (`sessionKeyCopies`; 0:
    /// none). Some tokens (SoftHSM2) re-read a token object from disk on every use, a session
    /// copy from memory: three times the encryptions per second there.
    pub session_key_copies: usize,
}

impl std::fmt::Debug for HsmOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HsmOptions({:?}, KEK {}, digest_key {}, session_key_copies {})",
            self.vendor,
            if self.kek.is_some() {
                "configured"
            } else {
                "none"
            },
            self.digest_key,
            self.session_key_copies
        )
    }
}

/// A handle the vault keeps for a Unique Identifier.
#[derive(Clone, Copy, Debug)]
struct Cached {
    handle: Handle,
    /// The token generation it belongs to (a re-initialised token invalidates it).
    generation: u64,
    /// A session object the vault made (from a value the keystore holds, or a session copy
    /// of an HSM key): destroyed when forgotten.
    session: bool,
    /// A session copy of an HSM key (counted against `sessionKeyCopies`).
    copy: bool,
}

/// Handles by Unique Identifier, and how many are session copies of HSM keys.
#[derive(Debug, Default)]
struct Handles {
    by_uid: HashMap<String, Cached>,
    /// Lookups running per Unique Identifier, and whether it was forgotten meanwhile.
    lookups: HashMap<String, Lookup>,
    copies: usize,
    /// The token generation `copies` counts in (copies vanish with a re-initialisation).
    copies_generation: u64,
}

/// Lookups of one object running at once.
#[derive(Debug, Default)]
struct Lookup {
    running: usize,
    forgotten: bool,
}

impl Handles {
    /// Gives back the place a copy of token generation `generation` held (copies of older
    /// generations are gone, and counted no more).
    fn release_copy(&mut self, generation: u64) {
        if self.copies_generation == generation {
            self.copies = self.copies.saturating_sub(1);
        }
    }

    /// Ends a lookup of `uid`: whether the object was forgotten while it ran.
    fn end_lookup(&mut self, uid: &str) -> bool {
        let Some(l) = self.lookups.get_mut(uid) else {
            return false;
        };
        let forgotten = l.forgotten;
        l.running -= 1;
        if l.running == 0 {
            self.lookups.remove(uid);
        }
        forgotten
    }
}

/// Token handles and streams.
pub struct Vault {
    token: Arc<dyn Token>,
    software: bool,
    hsm: Option<HsmOptions>,
    handles: Mutex<Handles>,
    streams: Mutex<HashMap<Vec<u8>, OpenStream>>,
    /// At most this many streams open in total, and per connection.
    stream_limits: (usize, usize),
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
            hsm: None,
            handles: Mutex::new(Handles::default()),
            streams: Mutex::new(HashMap::new()),
            stream_limits: (MAX_STREAMS, MAX_STREAMS_PER_CONNECTION),
        }
    }

    /// This vault with other stream limits: in total, and per connection.
    pub fn with_stream_limits(mut self, total: usize, per_connection: usize) -> Vault {
        self.stream_limits = (total, per_connection);
        self
    }

    /// Drops the streams a closed connection left open.
    pub fn end_connection(&self, connection: u64) {
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, s| s.connection != connection);
    }

    /// This vault with HSM options.
    pub fn with_hsm(mut self, hsm: HsmOptions) -> Vault {
        self.hsm = Some(hsm);
        self
    }

    /// Whether Digests of HSM-resident keys may be computed on the token (C_DigestKey).
    pub fn digest_key(&self) -> bool {
        self.hsm.as_ref().is_some_and(|h| h.digest_key)
    }

    /// The plaintext of a key that lives on the HSM: wrapped under the customer KEK on the token
    /// (C_WrapKey), unwrapped here, as the seed's KEK set-up intends.
    pub fn export(&self, obj: &StoredObject) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.again_after_reset(|| self.export_handle(self.handle(obj)?))
    }

    /// Runs `f`, and once more if it failed at the token while the token was re-initialised
    /// under it (an HSM that went away and came back): `f` looks its handles up again, since
    /// those of the earlier generation went stale.
    pub fn again_after_reset<T>(
        &self,
        mut f: impl FnMut() -> Result<T, Error>,
    ) -> Result<T, Error> {
        let generation = self.token.generation();
        match f() {
            Err(Error::Token(_)) if self.token.generation() != generation => f(),
            done => done,
        }
    }

    /// The plaintext of the HSM key `h` (see [`Vault::export`]).
    pub fn export_handle(&self, h: Handle) -> Result<Zeroizing<Vec<u8>>, Error> {
        let Some(hsm) = &self.hsm else {
            return Err(Error::NotExtractable("the key is not on an HSM".into()));
        };
        let Some(kek) = &hsm.kek else {
            return Err(Error::NotExtractable(
                "no customer KEK is configured (KEKKeyPath), so keys cannot leave the HSM".into(),
            ));
        };
        let kek_handle =
            crate::token::vendor::find_kek(&*self.token, hsm.kek_handle).map_err(Error::Token)?;
        let wrapped = self
            .token
            .wrap_key(kek_handle, h, &hsm.vendor.kek_wrap_mechanism())
            .map_err(Error::Token)?;
        hsm.vendor
            .unwrap_locally(kek, &wrapped)
            .map(Zeroizing::new)
            .ok_or_else(|| Error::CryptographicFailure("the KEK does not unwrap the key".into()))
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
    /// session object the vault made for it.
    pub fn forget(&self, uid: &str) {
        let gone = {
            let mut handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(l) = handles.lookups.get_mut(uid) {
                l.forgotten = true;
            }
            let gone = handles.by_uid.remove(uid);
            if let Some(c) = gone
                && c.copy
            {
                handles.release_copy(c.generation);
            }
            gone
        };
        if let Some(c) = gone
            && c.session
            && c.generation == self.token.generation()
        {
            let _ = self.token.destroy(c.handle);
        }
    }

    /// Takes one of the `sessionKeyCopies` places for a copy in token generation
    /// `generation`, if one is free.
    fn reserve_copy(&self, generation: u64) -> bool {
        let limit = self.hsm.as_ref().map_or(0, |h| h.session_key_copies);
        let mut handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        if generation < handles.copies_generation {
            // Read before a re-initialisation that has happened since: the handle is stale.
            return false;
        }
        if generation > handles.copies_generation {
            handles.copies_generation = generation;
            handles.copies = 0;
        }
        let free = handles.copies < limit;
        if free {
            handles.copies += 1;
        }
        free
    }

    /// A session copy of the HSM key `key` when `sessionKeyCopies` allows one more and the
    /// token makes it; else `key` itself.
    fn maybe_copy(&self, key: Handle, class: u64, generation: u64) -> (Handle, bool) {
        let is_key = class == Class::SecretKey.value() || class == Class::PrivateKey.value();
        if !is_key || !self.reserve_copy(generation) {
            return (key, false);
        }
        match self.token.copy_object(key, &[Attr::Token(false)]) {
            Ok(copy) => (copy, true),
            Err(e) => {
                // Tokens may refuse (CKA_COPYABLE false, no C_CopyObject): the key serves as is.
                self.handles
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .release_copy(generation);
                crate::log::debug(&format!("no session copy of an HSM key: {e}"));
                (key, false)
            }
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
        let generation = self.token.generation();
        {
            let mut handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = handles.by_uid.get(&obj.uid)
                && c.generation == generation
            {
                return Ok(c.handle);
            }
            handles.lookups.entry(obj.uid.clone()).or_default().running += 1;
        }
        let made = self.make_handle(obj, prepare, generation);
        let mut handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        let forgotten = handles.end_lookup(&obj.uid);
        let (h, copy) = made?;
        let mine = Cached {
            handle: h,
            generation,
            session: copy || obj.token_ref.is_none(),
            copy,
        };
        let kept = match handles.by_uid.get(&obj.uid) {
            // Forgotten (destroyed, or its value changed) while this lookup ran: what it made
            // must not outlive it, nor be used.
            _ if forgotten => None,
            // Another request made one meanwhile (or one of a newer generation): it is kept,
            // and this one goes.
            Some(c) if c.generation >= generation => Some(c.handle),
            _ => {
                if let Some(old) = handles.by_uid.insert(obj.uid.clone(), mine)
                    && old.copy
                {
                    handles.release_copy(old.generation);
                }
                return Ok(h);
            }
        };
        if copy {
            handles.release_copy(generation);
        }
        drop(handles);
        if mine.session {
            let _ = self.token.destroy(h);
        }
        kept.ok_or_else(|| {
            Error::ItemNotFound(format!(
                "{} changed while it was being made ready on the token; try again",
                obj.uid
            ))
        })
    }

    /// Finds `obj`'s key on the token (or a session copy of it), or makes a session object
    /// from the value the keystore holds: the handle, and whether it is a copy.
    fn make_handle(
        &self,
        obj: &StoredObject,
        prepare: impl FnOnce(crate::ttlv::Item) -> Result<crate::ttlv::Item, Error>,
        generation: u64,
    ) -> Result<(Handle, bool), Error> {
        Ok(if let Some(r) = &obj.token_ref {
            // The token object only: a session copy has the same CKA_ID.
            let found = self
                .token
                .find(&[Attr::Id(r.id.clone()), Attr::Token(true)])
                .map_err(Error::Token)?;
            let key = *found
                .first()
                .ok_or_else(|| Error::ItemNotFound(format!("{} is not on the token", obj.uid)))?;
            self.maybe_copy(key, r.class, generation)
        } else {
            let value = obj
                .value
                .as_ref()
                .ok_or_else(|| Error::ItemNotFound(format!("{} has no value", obj.uid)))?;
            let object = prepare(keyblock::unseal(value.expose())?)?;
            let material = keyblock::material(&object)?;
            let h = match (&material, &self.hsm) {
                // A PKCS#11 token takes a private key only as its parts or unwrapped inside it:
                // ksg wraps the PKCS#8 here under the customer KEK and unwraps it there.
                (Material::RsaPrivate(pkcs8), Some(hsm)) => self.import_private(hsm, pkcs8)?,
                _ => {
                    let template = session_template(&material, use_algorithm(obj))?;
                    self.token.create_object(&template).map_err(Error::Token)?
                }
            };
            (h, false)
        })
    }

    /// A session copy of an RSA private key on the HSM, through the customer KEK.
    fn import_private(&self, hsm: &HsmOptions, pkcs8: &[u8]) -> Result<Handle, Error> {
        let Some(kek) = &hsm.kek else {
            return Err(Error::FeatureNotSupported(
                "private keys reach the HSM through the customer KEK (KEKKeyPath), which is not configured"
                    .into(),
            ));
        };
        let kek_handle =
            crate::token::vendor::find_kek(&*self.token, hsm.kek_handle).map_err(Error::Token)?;
        let kwp = <aes_kw::KwpAes256 as aes_kw::cipher::KeyInit>::new_from_slice(&kek[..])
            .map_err(|_| Error::Internal("KEK".into()))?;
        let mut wrapped = vec![0u8; pkcs8.len() + 16];
        let n = kwp
            .wrap_key(pkcs8, &mut wrapped)
            .map_err(|_| Error::Internal("wrapping a private key".into()))?
            .len();
        wrapped.truncate(n);
        let mut template = vec![
            Attr::Token(false),
            Attr::Class(Class::PrivateKey),
            Attr::KeyType(KeyType::Rsa),
            Attr::Sensitive(true),
            Attr::Extractable(true),
        ];
        template.extend(private_functions(KeyType::Rsa));
        self.token
            .unwrap_key(kek_handle, &Mech::AesKeyWrapPad, &wrapped, &template)
            .map_err(Error::Token)
    }

    /// Stores a stream under `id`, dropping expired ones; refuses when too many are open.
    pub fn put_stream(&self, id: Vec<u8>, s: OpenStream, now: i64) -> Result<(), Error> {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        streams.retain(|_, v| now - v.touched < STREAM_IDLE_SECONDS);
        let (total, per_connection) = self.stream_limits;
        if streams.len() >= total {
            return Err(Error::FeatureNotSupported(
                "too many streaming operations in progress".into(),
            ));
        }
        let mine = streams
            .values()
            .filter(|v| v.connection == s.connection)
            .count();
        if mine >= per_connection {
            return Err(Error::FeatureNotSupported(format!(
                "this connection has {per_connection} streaming operations in progress, the most allowed"
            )));
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

/// A session-object template for material the keystore holds: every function of its class
/// allowed (the operations check the KMIP usage mask and state themselves), not a token object.
/// `alg` is the algorithm the key is used with: an AES key registered for HMAC (Cryptographic
/// Parameters say HMAC) goes in as a generic secret, which is what tokens MAC with.
fn session_template(m: &Material, alg: Option<u32>) -> Result<Vec<Attr>, Error> {
    let mut t = vec![Attr::Token(false)];
    let secret = [Attr::Sensitive(false), Attr::Extractable(true)];
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
            t.extend(secret);
            t.extend([
                Attr::Class(Class::SecretKey),
                Attr::KeyType(kt),
                Attr::Value(v.clone()),
                Attr::Sign(true),
                Attr::Verify(true),
            ]);
            if kt != KeyType::GenericSecret {
                t.extend([
                    Attr::Encrypt(true),
                    Attr::Decrypt(true),
                    Attr::Wrap(true),
                    Attr::Unwrap(true),
                ]);
            }
        }
        Material::RsaPrivate(der) => {
            t.extend(secret);
            t.extend([
                Attr::Class(Class::PrivateKey),
                Attr::KeyType(KeyType::Rsa),
                Attr::Value(der.clone()),
            ]);
            t.extend(private_functions(KeyType::Rsa));
        }
        Material::RsaPublic { n, e } => t.extend([
            Attr::Class(Class::PublicKey),
            Attr::KeyType(KeyType::Rsa),
            Attr::Modulus(n.clone()),
            Attr::PublicExponent(e.clone()),
            Attr::Verify(true),
            Attr::Encrypt(true),
            Attr::Wrap(true),
        ]),
        Material::EcPrivate { curve, d } => {
            t.extend(secret);
            t.extend([
                Attr::Class(Class::PrivateKey),
                Attr::KeyType(KeyType::Ec),
                ec_params(*curve)?,
                Attr::Value(d.clone()),
            ]);
            t.extend(private_functions(KeyType::Ec));
        }
        Material::EcPublic { curve, q } => t.extend([
            Attr::Class(Class::PublicKey),
            Attr::KeyType(KeyType::Ec),
            ec_params(*curve)?,
            Attr::EcPoint(crate::token::template::ec_point_der(q)),
            Attr::Verify(true),
        ]),
    }
    Ok(t)
}

/// The algorithm a key is used with: its Cryptographic Parameters' algorithm when that is an HMAC
/// (an AES key registered for MAC), else its Cryptographic Algorithm.
fn use_algorithm(obj: &StoredObject) -> Option<u32> {
    let params = super::attributes::first(obj, "Cryptographic Parameters")
        .as_ref()
        .and_then(|p| p.child(crate::ttlv::Tag::CRYPTOGRAPHIC_ALGORITHM))
        .and_then(|a| match a.value {
            crate::ttlv::Value::Enumeration(v) => Some(v),
            _ => None,
        })
        .filter(|a| crate::token::mechanism::mac(*a).is_ok());
    params.or_else(|| super::attributes::enum_of(obj, "Cryptographic Algorithm"))
}

/// The functions a private key of `kt` may have on a token.
fn private_functions(kt: KeyType) -> Vec<Attr> {
    let mut f = vec![Attr::Sign(true)];
    if kt == KeyType::Rsa {
        f.extend([Attr::Decrypt(true), Attr::Unwrap(true)]);
    }
    f
}

/// CKA_EC_PARAMS of a curve ksg can use.
fn ec_params(curve: u32) -> Result<Attr, Error> {
    crate::token::template::ec_params(curve)
        .map(Attr::EcParams)
        .map_err(|e| Error::FeatureNotSupported(e.to_string()))
}
