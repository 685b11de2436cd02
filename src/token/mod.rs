//! The token layer: one interface shaped after PKCS#11, implemented by a real PKCS#11 module
//! through cryptoki (`pkcs11.rs`). The KMIP operations use only this interface.
//!
//! Templates and mechanisms are built by pure functions from KMIP attributes
//! (`template.rs`, `mechanism.rs`); HSM quirks live in one place per vendor (`vendor.rs`).

pub mod import;
pub mod mechanism;
pub mod pkcs11;
pub mod setup;
pub mod soft;
pub mod template;
pub mod vendor;

use std::fmt;

pub use cryptoki::error::RvError;

/// An object on a token, as the backend names it (a PKCS#11 object handle).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle(pub u64);

/// PKCS#11 object classes ksg uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// CKO_DATA.
    Data,
    /// CKO_CERTIFICATE.
    Certificate,
    /// CKO_PUBLIC_KEY.
    PublicKey,
    /// CKO_PRIVATE_KEY.
    PrivateKey,
    /// CKO_SECRET_KEY.
    SecretKey,
}

impl Class {
    /// The CKO_* value.
    pub fn value(self) -> u64 {
        match self {
            Class::Data => 0,
            Class::Certificate => 1,
            Class::PublicKey => 2,
            Class::PrivateKey => 3,
            Class::SecretKey => 4,
        }
    }
}

/// PKCS#11 key types ksg uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// CKK_AES.
    Aes,
    /// CKK_DES3 (three-key Triple-DES).
    Des3,
    /// CKK_GENERIC_SECRET (HMAC keys).
    GenericSecret,
    /// CKK_RSA.
    Rsa,
    /// CKK_EC.
    Ec,
}

/// One attribute of a template, backend-neutral (a subset of CKA_*).
#[derive(Clone, PartialEq, Eq)]
pub enum Attr {
    /// CKA_CLASS.
    Class(Class),
    /// CKA_KEY_TYPE.
    KeyType(KeyType),
    /// CKA_TOKEN.
    Token(bool),
    /// CKA_PRIVATE.
    Private(bool),
    /// CKA_LABEL.
    Label(String),
    /// CKA_ID.
    Id(Vec<u8>),
    /// CKA_SENSITIVE.
    Sensitive(bool),
    /// CKA_EXTRACTABLE.
    Extractable(bool),
    /// CKA_ENCRYPT.
    Encrypt(bool),
    /// CKA_DECRYPT.
    Decrypt(bool),
    /// CKA_SIGN.
    Sign(bool),
    /// CKA_VERIFY.
    Verify(bool),
    /// CKA_WRAP.
    Wrap(bool),
    /// CKA_UNWRAP.
    Unwrap(bool),
    /// CKA_DERIVE.
    Derive(bool),
    /// CKA_VALUE_LEN, in bytes.
    ValueLen(u64),
    /// CKA_VALUE (secret: `Debug` shows only the length).
    Value(Vec<u8>),
    /// CKA_MODULUS_BITS.
    ModulusBits(u64),
    /// CKA_PUBLIC_EXPONENT.
    PublicExponent(Vec<u8>),
    /// CKA_MODULUS.
    Modulus(Vec<u8>),
    /// CKA_EC_PARAMS (DER OID of the curve).
    EcParams(Vec<u8>),
    /// CKA_EC_POINT (DER OCTET STRING).
    EcPoint(Vec<u8>),
    /// CKA_SUBJECT.
    Subject(Vec<u8>),
    /// CKA_ISSUER.
    Issuer(Vec<u8>),
    /// CKA_SERIAL_NUMBER.
    SerialNumber(Vec<u8>),
    /// CKA_CERTIFICATE_TYPE = CKC_X_509.
    CertificateX509,
    /// CKA_APPLICATION (data objects).
    Application(String),
}

impl fmt::Debug for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attr::Value(v) => write!(f, "Value({} bytes)", v.len()),
            Attr::Class(c) => write!(f, "Class({c:?})"),
            Attr::KeyType(k) => write!(f, "KeyType({k:?})"),
            Attr::Label(l) => write!(f, "Label({l:?})"),
            Attr::Id(i) => write!(
                f,
                "Id({})",
                i.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ),
            Attr::ValueLen(n) => write!(f, "ValueLen({n})"),
            Attr::ModulusBits(n) => write!(f, "ModulusBits({n})"),
            Attr::Token(b) => write!(f, "Token({b})"),
            Attr::Private(b) => write!(f, "Private({b})"),
            Attr::Sensitive(b) => write!(f, "Sensitive({b})"),
            Attr::Extractable(b) => write!(f, "Extractable({b})"),
            Attr::Encrypt(b) => write!(f, "Encrypt({b})"),
            Attr::Decrypt(b) => write!(f, "Decrypt({b})"),
            Attr::Sign(b) => write!(f, "Sign({b})"),
            Attr::Verify(b) => write!(f, "Verify({b})"),
            Attr::Wrap(b) => write!(f, "Wrap({b})"),
            Attr::Unwrap(b) => write!(f, "Unwrap({b})"),
            Attr::Derive(b) => write!(f, "Derive({b})"),
            Attr::CertificateX509 => f.write_str("CertificateX509"),
            Attr::Application(a) => write!(f, "Application({a:?})"),
            Attr::PublicExponent(v)
            | Attr::Modulus(v)
            | Attr::EcParams(v)
            | Attr::EcPoint(v)
            | Attr::Subject(v)
            | Attr::Issuer(v)
            | Attr::SerialNumber(v) => write!(f, "Bytes({} bytes)", v.len()),
        }
    }
}

/// A hash function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// SHA-1.
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// A mechanism with its parameters (IVs are always supplied by the caller).
#[derive(Clone, PartialEq, Eq)]
pub enum Mech {
    /// CKM_AES_KEY_GEN.
    AesKeyGen,
    /// CKM_DES3_KEY_GEN.
    Des3KeyGen,
    /// CKM_DES3_ECB.
    Des3Ecb,
    /// CKM_DES3_CBC with an IV.
    Des3Cbc([u8; 8]),
    /// CKM_DES3_CBC_PAD with an IV.
    Des3CbcPad([u8; 8]),
    /// CKM_GENERIC_SECRET_KEY_GEN.
    GenericSecretKeyGen,
    /// CKM_RSA_PKCS_KEY_PAIR_GEN.
    RsaKeyPairGen,
    /// CKM_EC_KEY_PAIR_GEN.
    EcKeyPairGen,
    /// CKM_AES_ECB.
    AesEcb,
    /// CKM_AES_CBC with an IV.
    AesCbc([u8; 16]),
    /// CKM_AES_CBC_PAD with an IV.
    AesCbcPad([u8; 16]),
    /// CKM_AES_CTR with the initial counter block (the whole block counts: 128 counter bits).
    AesCtr([u8; 16]),
    /// CKM_AES_GCM: IV, additional data, tag length in bits.
    AesGcm {
        iv: Vec<u8>,
        aad: Vec<u8>,
        tag_bits: u64,
    },
    /// CKM_AES_KEY_WRAP (RFC 3394).
    AesKeyWrap,
    /// CKM_AES_KEY_WRAP_PAD (RFC 5649).
    AesKeyWrapPad,
    /// CKM_RSA_PKCS (PKCS#1 v1.5 encryption, or signing of a DigestInfo).
    RsaPkcs,
    /// CKM_RSA_PKCS_OAEP with its hash, the MGF1 hash and the label (PSource).
    RsaOaep(Hash, Hash, Vec<u8>),
    /// CKM_RSA_PKCS_PSS over a digest, with its hash and salt length.
    RsaPss { hash: Hash, salt: u64 },
    /// CKM_ECDSA over a digest.
    Ecdsa,
    /// CKM_SHA*_HMAC.
    Hmac(Hash),
    /// CKM_SHA* digest.
    Digest(Hash),
}

impl fmt::Debug for Mech {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mech::AesCbc(_) => f.write_str("AesCbc"),
            Mech::AesCbcPad(_) => f.write_str("AesCbcPad"),
            Mech::AesCtr(_) => f.write_str("AesCtr"),
            Mech::AesGcm { iv, tag_bits, .. } => {
                write!(f, "AesGcm(iv {} bytes, tag {tag_bits} bits)", iv.len())
            }
            Mech::AesKeyGen => f.write_str("AesKeyGen"),
            Mech::Des3KeyGen => f.write_str("Des3KeyGen"),
            Mech::Des3Ecb => f.write_str("Des3Ecb"),
            Mech::Des3Cbc(_) => f.write_str("Des3Cbc"),
            Mech::Des3CbcPad(_) => f.write_str("Des3CbcPad"),
            Mech::GenericSecretKeyGen => f.write_str("GenericSecretKeyGen"),
            Mech::RsaKeyPairGen => f.write_str("RsaKeyPairGen"),
            Mech::EcKeyPairGen => f.write_str("EcKeyPairGen"),
            Mech::AesEcb => f.write_str("AesEcb"),
            Mech::AesKeyWrap => f.write_str("AesKeyWrap"),
            Mech::AesKeyWrapPad => f.write_str("AesKeyWrapPad"),
            Mech::RsaPkcs => f.write_str("RsaPkcs"),
            Mech::RsaOaep(h, m, l) => {
                write!(f, "RsaOaep({h:?}, MGF1 {m:?}, label {} bytes)", l.len())
            }
            Mech::RsaPss { hash, salt } => write!(f, "RsaPss({hash:?}, salt {salt})"),
            Mech::Ecdsa => f.write_str("Ecdsa"),
            Mech::Hmac(h) => write!(f, "Hmac({h:?})"),
            Mech::Digest(h) => write!(f, "Digest({h:?})"),
        }
    }
}

/// A token failure: the PKCS#11 function and its return value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// A PKCS#11 function returned an error.
    Call {
        /// The C function, e.g. `C_Encrypt`.
        function: String,
        /// Its return value.
        rv: RvError,
    },
    /// The module could not be loaded or the token not found.
    Setup(String),
    /// The request cannot be expressed for this token.
    Unsupported(String),
    /// The token is unreachable (an HSM gone away, a token that stopped answering): the gateway
    /// re-initialises the library now and then until it answers again.
    Unavailable(String),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Call { function, rv } => write!(f, "{function} failed: {rv:?}"),
            TokenError::Setup(m) => write!(f, "token: {m}"),
            TokenError::Unsupported(m) => write!(f, "not supported by this token: {m}"),
            TokenError::Unavailable(m) => write!(f, "the token is unavailable: {m}"),
        }
    }
}

impl std::error::Error for TokenError {}

/// The result of a token call.
pub type Result<T> = std::result::Result<T, TokenError>;

/// The token interface the operations use.
pub trait Token: Send + Sync + fmt::Debug {
    /// Generates a secret key from a template.
    fn generate_key(&self, mech: &Mech, template: &[Attr]) -> Result<Handle>;
    /// Generates a key pair: (public, private).
    fn generate_key_pair(
        &self,
        mech: &Mech,
        public: &[Attr],
        private: &[Attr],
    ) -> Result<(Handle, Handle)>;
    /// Creates (imports) an object.
    fn create_object(&self, template: &[Attr]) -> Result<Handle>;
    /// Finds objects matching every attribute.
    fn find(&self, template: &[Attr]) -> Result<Vec<Handle>>;
    /// Reads attributes (those the token refuses to reveal are left out).
    fn get_attributes(&self, object: Handle, wanted: &[AttrType]) -> Result<Vec<Attr>>;
    /// Changes attributes.
    fn set_attributes(&self, object: Handle, template: &[Attr]) -> Result<()>;
    /// Copies an object with the attributes in `template` changed (C_CopyObject): a session
    /// copy of a token key stays inside the token, as the key does.
    fn copy_object(&self, object: Handle, template: &[Attr]) -> Result<Handle>;
    /// Destroys an object.
    fn destroy(&self, object: Handle) -> Result<()>;
    /// Encrypts in one part.
    fn encrypt(&self, key: Handle, mech: &Mech, data: &[u8]) -> Result<Vec<u8>>;
    /// Decrypts in one part.
    fn decrypt(&self, key: Handle, mech: &Mech, data: &[u8]) -> Result<Vec<u8>>;
    /// Signs (or MACs) in one part.
    fn sign(&self, key: Handle, mech: &Mech, data: &[u8]) -> Result<Vec<u8>>;
    /// Verifies a signature (or MAC): `Ok(false)` when it does not match.
    fn verify(&self, key: Handle, mech: &Mech, data: &[u8], signature: &[u8]) -> Result<bool>;
    /// Digests a key's value (C_DigestKey).
    fn digest_key(&self, key: Handle, hash: Hash) -> Result<Vec<u8>>;
    /// Wraps `key` with `wrapping`.
    fn wrap_key(&self, wrapping: Handle, key: Handle, mech: &Mech) -> Result<Vec<u8>>;
    /// Unwraps into a new object made from `template`.
    fn unwrap_key(
        &self,
        unwrapping: Handle,
        mech: &Mech,
        wrapped: &[u8],
        template: &[Attr],
    ) -> Result<Handle>;
    /// Starts a multi-part operation; the stream keeps what it needs (for PKCS#11, the session it
    /// runs on) until [`Token::finish`].
    fn begin(&self, kind: StreamKind, key: Handle, mech: &Mech) -> Result<Stream>;
    /// Feeds data; returns output produced so far (encrypt/decrypt).
    fn update(&self, stream: &mut Stream, data: &[u8]) -> Result<Vec<u8>>;
    /// Ends the operation: the last output (encrypt/decrypt), the signature (sign), or
    /// `[1]`/`[0]` for a verification that matched or not (verify, given `signature`).
    fn finish(&self, stream: Stream, signature: Option<&[u8]>) -> Result<Vec<u8>>;
    /// Random bytes.
    fn random(&self, len: usize) -> Result<Vec<u8>>;
    /// Mixes seed material into the token's generator.
    /// Returns how many of the bytes the generator took (KMIP's RNG Seed reports it).
    fn seed_random(&self, seed: &[u8]) -> Result<usize>;
    /// Counts the token's re-initialisations: a [`Handle`] obtained under an earlier count no
    /// longer names anything, so whoever caches handles looks the object up again.
    fn generation(&self) -> u64 {
        0
    }
    /// The number the token itself gives the object (a configured KEK handle is one of those).
    fn native_handle(&self, h: Handle) -> Option<u64> {
        Some(h.0)
    }
}

/// What a multi-part operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// Encrypt.
    Encrypt,
    /// Decrypt.
    Decrypt,
    /// Sign or MAC.
    Sign,
    /// Verify a signature or MAC.
    Verify,
}

/// A multi-part operation in progress, owned by the backend that began it.
pub struct Stream {
    /// What it does.
    pub kind: StreamKind,
    /// Bytes fed so far.
    pub fed: u64,
    pub(crate) state: Box<dyn std::any::Any + Send>,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Stream({:?}, {} bytes fed)", self.kind, self.fed)
    }
}

/// Attribute types for [`Token::get_attributes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrType {
    /// CKA_CLASS.
    Class,
    /// CKA_KEY_TYPE.
    KeyType,
    /// CKA_LABEL.
    Label,
    /// CKA_ID.
    Id,
    /// CKA_VALUE_LEN.
    ValueLen,
    /// CKA_VALUE.
    Value,
    /// CKA_MODULUS.
    Modulus,
    /// CKA_PUBLIC_EXPONENT.
    PublicExponent,
    /// CKA_EC_POINT.
    EcPoint,
    /// CKA_EC_PARAMS.
    EcParams,
    /// CKA_SENSITIVE.
    Sensitive,
    /// CKA_EXTRACTABLE.
    Extractable,
}

/// Opens the HSM the configuration names: the module from `<data>/PKCS11` (signature checked,
/// unless gateFlags 0x0001), the token by the label recorded there or `HSM_slotid`, `HSM_pin`.
/// Returns the token and a warning when the signature check was overridden.
pub fn open_configured(
    config: &crate::config::Config,
) -> std::result::Result<(pkcs11::Pkcs11Token, Option<String>), String> {
    let recover = config.ksg.gate_flags & crate::config::gate_flags::RECOVER_SIGNATURE != 0;
    let (file, signed) = setup::read(&config.data_dir, recover).map_err(|e| e.to_string())?;
    let warning = (!signed).then(|| {
        format!("PKCS#11 SET-UP SIGNATURE CHECK FAILED ({}); gateFlags 0x0001 is set, so ksg uses it anyway. Re-run `ksg pkcs11 setup`.", setup::SIG)
    });
    let slot = match file.token_label {
        Some(l) => pkcs11::SlotChoice::Label(l),
        None => pkcs11::SlotChoice::Id(config.ksg.hsm_slot_id),
    };
    let token = pkcs11::Pkcs11Token::open(&pkcs11::Config {
        module: file.module,
        slot,
        pin: config.ksg.hsm_pin.clone(),
        trace: config.ksg.pkcs11_trace,
    })
    .map_err(|e| e.to_string())?;
    Ok((token, warning))
}
