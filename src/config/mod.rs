//! The gateway's configuration: the seed's three files in the confs directory, typed, with every
//! key and default the KSG guide documents, plus ksg's own keys (built-in TLS).
//!
//! Relative paths in the files are relative to the data directory.

pub mod credentials;
pub mod ini;
pub mod policies;
mod values;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use ini::ConfError;
use ini::Ini;
use values::Reader;

/// `ksg.conf`.
pub const KSG_CONF: &str = "ksg.conf";
/// `p6kmipserver.conf`.
pub const SERVER_CONF: &str = "p6kmipserver.conf";
/// `p6kmip_auxiliary_ksg.conf`.
pub const AUX_CONF: &str = "p6kmip_auxiliary_ksg.conf";

/// A secret string (a PIN): never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret string.
    pub fn new(s: String) -> Self {
        Secret(s)
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// serverLogFlags bits (the seed's P6KMIPFLG_* values).
pub mod log_flags {
    /// No tracing to file.
    pub const TRACE_OFF: u32 = 0x0000_0002;
    /// High-level trace of KMIP actions.
    pub const TRACE_BASIC: u32 = 0x0000_0004;
    /// Log every incoming and outgoing message, in the format(s) chosen below.
    pub const TRACE_MSGS: u32 = 0x0000_0008;
    /// Messages as KMIP JSON.
    pub const TRACE_FORMATJSON: u32 = 0x0000_0020;
    /// Extensive internal logging.
    pub const TRACE_VERBOSE: u32 = 0x0000_0100;
    /// Messages as KMIP XML.
    pub const TRACE_FORMATKMIPXML: u32 = 0x0000_0400;
    /// HTTP headers in a separate file.
    pub const TRACE_HTTPHEADERS: u32 = 0x0000_0800;
    /// Messages as an annotated TTLV dump.
    pub const TRACE_FORMATTTLV: u32 = 0x0000_2000;

    /// Every flag name, with and without the `P6KMIPFLG_` prefix.
    pub const NAMES: [(&str, u32); 10] = [
        ("NOFLAGS", 0),
        ("TRACE_OFF", TRACE_OFF),
        ("TRACE_BASIC", TRACE_BASIC),
        ("TRACE_MSGS", TRACE_MSGS),
        ("TRACE_FORMATJSON", TRACE_FORMATJSON),
        ("TRACE_VERBOSE", TRACE_VERBOSE),
        ("TRACE_FORMATKMIPXML", TRACE_FORMATKMIPXML),
        ("TRACE_FORMATXML", TRACE_FORMATKMIPXML),
        ("TRACE_HTTPHEADERS", TRACE_HTTPHEADERS),
        ("TRACE_FORMATTTLV", TRACE_FORMATTTLV),
    ];
}

/// gateFlags bits.
pub mod gate_flags {
    /// Open a keystore (or PKCS11 file) whose signature fails.
    pub const RECOVER_SIGNATURE: u32 = 0x0001;
    /// Use the built-in software token instead of an HSM.
    pub const SOFTWARE_TOKEN: u32 = 0x0002;
    /// Never call C_DigestKey.
    pub const NO_DIGEST_KEY: u32 = 0x0004;
}

/// `ksg.conf`, section `[p6ksg-gen]`.
#[derive(Clone, Debug)]
pub struct KsgConf {
    /// baseKeyPath: the generated store key, kept in the clear.
    pub base_key_path: PathBuf,
    /// customerKeyPath: the customer's AES-256 key (PEM); wins over baseKeyPath.
    pub customer_key_path: Option<PathBuf>,
    /// serverLogFlags.
    pub server_log_flags: u32,
    /// HSM_pin.
    pub hsm_pin: Option<Secret>,
    /// HSM_slotid.
    pub hsm_slot_id: u64,
    /// HSM_name: segregates object metadata in the keystore.
    pub hsm_name: String,
    /// HSM_addr: network address of a network-attached HSM.
    pub hsm_addr: Option<String>,
    /// HSMType (HSM_type): 0 generic, 1 AWS CloudHSM, 2 Cavium LiquidSecurity.
    pub hsm_type: u32,
    /// gateFlags.
    pub gate_flags: u32,
    /// AWSCloudHSM_KEKHandle.
    pub aws_kek_handle: Option<u64>,
    /// CaviumLiquidSec_KEKHandle.
    pub cavium_kek_handle: Option<u64>,
    /// KEKKeyPath: the customer's 32-byte KEK, raw.
    pub kek_key_path: Option<PathBuf>,
    /// pkcs11Trace (ksg): PKCS#11 call tracing, off / error / info / debug.
    pub pkcs11_trace: crate::token::pkcs11::Trace,
    /// secretDataOnToken (ksg): keep Secret Data on the HSM as CKO_DATA instead of in the
    /// keystore (the seed's limitation 4 lifted; default 0).
    pub secret_data_on_token: bool,
    /// sessionKeyCopies (ksg): at most this many HSM keys used through session copies
    /// (C_CopyObject, CKA_TOKEN false) rather than as token objects; default 0: none.
    pub session_key_copies: usize,
    /// auditLog (ksg): the append-only audit file (default `audit.log` in the data directory;
    /// empty: no audit log).
    pub audit_log: Option<PathBuf>,
}

/// `p6kmipserver.conf`.
#[derive(Clone, Debug)]
pub struct ServerConf {
    /// logDir (`[p6kmip-gen]`): where traces go; none disables file logging.
    pub log_dir: Option<PathBuf>,
    /// errorStream (`[p6kmip-gen]`): file in logDir for decode errors and warnings.
    pub error_stream: Option<String>,
    /// listenPort.
    pub listen_port: u16,
    /// maxBufSize: the largest request accepted, in bytes.
    pub max_buf_size: usize,
    /// initialBufCount: buffers allocated at start.
    pub initial_buf_count: usize,
    /// growBufBy: buffers added when the pool runs dry.
    pub grow_buf_by: usize,
    /// threadCount: worker threads, one connection each at a time.
    pub thread_count: usize,
    /// listenIPAddr.
    pub listen_ip: IpAddr,
    /// receiveTimeout: idle time before a connection (or an unfinished handshake) is closed.
    pub receive_timeout: Duration,
    /// sendTimeout.
    pub send_timeout: Duration,
    /// acceptTimeout: a warning is logged when no connection arrives for this long.
    pub accept_timeout: Duration,
    /// tlsEnabled (ksg).
    pub tls_enabled: bool,
    /// tlsCertFile (ksg): server certificate chain, PEM.
    pub tls_cert_file: Option<PathBuf>,
    /// tlsKeyFile (ksg): server private key, PEM.
    pub tls_key_file: Option<PathBuf>,
    /// tlsCAFile (ksg): CA certificates client certificates must chain to, PEM.
    pub tls_ca_file: Option<PathBuf>,
    /// tlsRequireClientCert (ksg): mutual TLS.
    pub tls_require_client_cert: bool,
    /// clientIdentity (ksg): what of a verified client certificate is the client's identity.
    pub client_identity: IdentitySource,
    /// plainIdentity (ksg): the identity of clients on a plain (non-TLS) connection, which
    /// has no certificate (behind stunnel: every client); none when unset.
    pub plain_identity: Option<String>,
    /// requireCredential (ksg): every request must carry a KMIP Credential (Username and
    /// Password) listed in p6kmip_credentials.conf, on top of the certificate.
    pub require_credential: bool,
    /// The bounds on what a client may make the gateway hold.
    pub bounds: Bounds,
}

/// What a client may make the gateway hold, each bounded (ksg keys of `[p6kmip-server-gen]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// connectionQueue: accepted connections waiting for a free worker; more are closed.
    pub connection_queue: usize,
    /// tlsHandshakeTimeout: the longest a TLS handshake may take.
    pub tls_handshake_timeout: Duration,
    /// maxDepth: structure nesting in a message.
    pub max_depth: usize,
    /// maxItems: items (of any kind) in a message.
    pub max_items: usize,
    /// maxBatchItems: batch items in a request.
    pub max_batch_items: usize,
    /// maxStreams: streaming operations open at once, in total.
    pub max_streams: usize,
    /// maxStreamsPerConnection: streaming operations one connection may have open.
    pub max_streams_per_connection: usize,
    /// maxLocateResults: identifiers one Locate returns at most.
    pub max_locate_results: usize,
    /// maxHttpHeaderBytes: the size of an HTTP request head.
    pub max_http_header_bytes: usize,
    /// maxHttpHeaders: header fields in an HTTP request.
    pub max_http_headers: usize,
}

/// What of a verified client certificate names the client (`clientIdentity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentitySource {
    /// The subject Common Name (`cn`, the default).
    CommonName,
    /// The whole subject Distinguished Name, RFC 4514 text (`dn`).
    SubjectDn,
    /// The first subject alternative name: DNS name, email or URI (`san`).
    SubjectAltName,
    /// Common Name and Organizational Unit, as `CN/OU` (`cn+ou`).
    CommonNameAndOu,
}

/// `p6kmip_auxiliary_ksg.conf`, section `[p6kmip-server-auxiliary]`: what Query reports.
#[derive(Clone, Debug)]
pub struct AuxConf {
    /// vendorId: returned for Query Server Information.
    pub vendor_id: Option<String>,
    /// operations: Operation enumeration values offered (`None`: all that are implemented).
    pub operations: Option<Vec<u32>>,
    /// objects: Object Type values offered (`None`: all supported).
    pub objects: Option<Vec<u32>>,
    /// profiles: Profile Name values claimed.
    pub profiles: Vec<u32>,
    /// shreddingAlgorithm (also the seed's shreadingAlgorithm).
    pub shredding_algorithm: u32,
    /// destroyAction.
    pub destroy_action: u32,
    /// unwrapMode (also the seed's unrapMode).
    pub unwrap_mode: u32,
    /// RNGMode.
    pub rng_mode: u32,
    /// streamingEnabled.
    pub streaming_enabled: bool,
}

/// All of the configuration, with the warnings loading produced.
#[derive(Clone, Debug)]
pub struct Config {
    /// The confs directory.
    pub confs_dir: PathBuf,
    /// The data directory (relative paths in the files resolve against it).
    pub data_dir: PathBuf,
    /// ksg.conf.
    pub ksg: KsgConf,
    /// p6kmipserver.conf.
    pub server: ServerConf,
    /// p6kmip_auxiliary_ksg.conf.
    pub aux: AuxConf,
    /// p6kmip_policies.conf (optional): site operation policies.
    pub policies: Vec<policies::SitePolicy>,
    /// p6kmip_credentials.conf (needed with requireCredential): users and password hashes.
    pub credentials: Vec<credentials::StoredCredential>,
    /// Unknown keys and sections, as `file:line: …`.
    pub warnings: Vec<String>,
}

const KSG_KEYS: &[&str] = &[
    "baseKeyPath",
    "customerKeyPath",
    "serverLogFlags",
    "HSM_pin",
    "HSM_slotid",
    "HSM_name",
    "HSM_addr",
    "HSMType",
    "HSM_type",
    "gateFlags",
    "AWSCloudHSM_KEKHandle",
    "CaviumLiquidSec_KEKHandle",
    "KEKKeyPath",
    "pkcs11Trace",
    "secretDataOnToken",
    "sessionKeyCopies",
    "auditLog",
];
const GEN_KEYS: &[&str] = &["logDir", "errorStream"];
const SERVER_KEYS: &[&str] = &[
    "listenPort",
    "maxBufSize",
    "initialBufCount",
    "growBufBy",
    "threadCount",
    "listenIPAddr",
    "receiveTimeout",
    "sendTimeout",
    "acceptTimeout",
    "tlsEnabled",
    "tlsCertFile",
    "tlsKeyFile",
    "tlsCAFile",
    "tlsRequireClientCert",
    "clientIdentity",
    "plainIdentity",
    "requireCredential",
    "connectionQueue",
    "tlsHandshakeTimeout",
    "maxDepth",
    "maxItems",
    "maxBatchItems",
    "maxStreams",
    "maxStreamsPerConnection",
    "maxLocateResults",
    "maxHttpHeaderBytes",
    "maxHttpHeaders",
];
const AUX_KEYS: &[&str] = &[
    "vendorId",
    "operations",
    "objects",
    "profiles",
    "shreddingAlgorithm",
    "shreadingAlgorithm",
    "destroyAction",
    "unwrapMode",
    "unrapMode",
    "RNGMode",
    "streamingEnabled",
];

/// Largest maxBufSize accepted (a KMIP message larger than this is not a key-management request).
const MAX_BUF_LIMIT: u64 = 64 << 20;
/// `sessionKeyCopies` at most: each copy is an object in the HSM's memory.
const MAX_SESSION_KEY_COPIES: u64 = 1 << 20;

impl Config {
    /// Loads the three files from `confs_dir`; relative paths resolve against `data_dir`.
    pub fn load(confs_dir: &Path, data_dir: &Path) -> Result<Config, ConfError> {
        let mut warnings = Vec::new();
        let ksg = Ini::load(&confs_dir.join(KSG_CONF))?;
        let server = Ini::load(&confs_dir.join(SERVER_CONF))?;
        let aux = Ini::load(&confs_dir.join(AUX_CONF))?;
        let ksg = read_ksg(
            &Reader::new(&ksg, &[("p6ksg-gen", KSG_KEYS)], &mut warnings),
            data_dir,
        )?;
        let server = read_server(
            &Reader::new(
                &server,
                &[("p6kmip-gen", GEN_KEYS), ("p6kmip-server-gen", SERVER_KEYS)],
                &mut warnings,
            ),
            data_dir,
        )?;
        let aux = read_aux(&Reader::new(
            &aux,
            &[("p6kmip-server-auxiliary", AUX_KEYS)],
            &mut warnings,
        ))?;
        let credentials = credentials::load(confs_dir)?.unwrap_or_default();
        if server.require_credential && credentials.is_empty() {
            return Err(ConfError {
                path: confs_dir.join(SERVER_CONF),
                line: 0,
                message: format!(
                    "requireCredential = 1 needs users in {} (see `ksg credential hash`)",
                    credentials::CREDENTIAL_CONF
                ),
            });
        }
        Ok(Config {
            confs_dir: confs_dir.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            ksg,
            server,
            aux,
            policies: policies::load(confs_dir)?,
            credentials,
            warnings,
        })
    }
}

fn resolve(data_dir: &Path, p: String) -> PathBuf {
    let p = PathBuf::from(p);
    if p.is_absolute() { p } else { data_dir.join(p) }
}

fn read_ksg(r: &Reader<'_>, data: &Path) -> Result<KsgConf, ConfError> {
    const S: &str = "p6ksg-gen";
    let u32max = u64::from(u32::MAX);
    let hsm_type = r.number(S, &["HSMType", "HSM_type"], 0, u32max)? as u32;
    if hsm_type > 2 {
        let e = r
            .entry(S, &["HSMType", "HSM_type"])
            .expect("value came from an entry");
        return Err(r.error(
            e,
            format!(
                "`{}` must be 0 (generic), 1 (AWS CloudHSM) or 2 (Cavium)",
                e.key
            ),
        ));
    }
    let gate_flags = r.number(S, &["gateFlags"], 0, u32max)? as u32;
    if let Some(e) = r
        .entry(S, &["gateFlags"])
        .filter(|_| gate_flags & !0x7 != 0)
    {
        return Err(r.error(
            e,
            format!("`gateFlags` = 0x{gate_flags:X} has bits other than 0x1, 0x2, 0x4"),
        ));
    }
    let optional_handle = |key: &str| -> Result<Option<u64>, ConfError> {
        r.entry(S, &[key])
            .map(|_| r.number(S, &[key], 0, u64::MAX))
            .transpose()
    };
    Ok(KsgConf {
        base_key_path: resolve(
            data,
            r.string(S, &["baseKeyPath"])
                .unwrap_or_else(|| "ksgbaseKey.txt".into()),
        ),
        customer_key_path: r.string(S, &["customerKeyPath"]).map(|p| resolve(data, p)),
        server_log_flags: log_flags_value(r, S)?,
        hsm_pin: r.string(S, &["HSM_pin"]).map(Secret),
        hsm_slot_id: r.number(S, &["HSM_slotid"], 0, u64::MAX)?,
        hsm_name: r
            .string(S, &["HSM_name"])
            .unwrap_or_else(|| "default".into()),
        hsm_addr: r.string(S, &["HSM_addr"]),
        hsm_type,
        gate_flags,
        aws_kek_handle: optional_handle("AWSCloudHSM_KEKHandle")?,
        cavium_kek_handle: optional_handle("CaviumLiquidSec_KEKHandle")?,
        kek_key_path: r.string(S, &["KEKKeyPath"]).map(|p| resolve(data, p)),
        pkcs11_trace: match r.entry(S, &["pkcs11Trace"]) {
            None => crate::token::pkcs11::Trace::Off,
            Some(e) => crate::token::pkcs11::Trace::parse(&e.value.to_ascii_lowercase())
                .ok_or_else(|| {
                    r.error(
                        e,
                        format!(
                            "`pkcs11Trace` must be off, error, info or debug, not {:?}",
                            e.value
                        ),
                    )
                })?,
        },
        secret_data_on_token: r.boolean(S, &["secretDataOnToken"], false)?,
        session_key_copies: r.number(S, &["sessionKeyCopies"], 0, MAX_SESSION_KEY_COPIES)? as usize,
        audit_log: match r.entry(S, &["auditLog"]) {
            Some(e) if e.value.is_empty() => None,
            Some(e) => Some(resolve(data, e.value.clone())),
            None => Some(data.join("audit.log")),
        },
    })
}

/// serverLogFlags: a number, or flag names joined by `|`, `+` or `,` (with or without the
/// `P6KMIPFLG_` prefix), or a mix.
fn log_flags_value(r: &Reader<'_>, section: &str) -> Result<u32, ConfError> {
    let Some(e) = r.entry(section, &["serverLogFlags"]) else {
        return Ok(0);
    };
    let mut flags = 0u32;
    for word in e
        .value
        .split(['|', '+', ','])
        .map(str::trim)
        .filter(|w| !w.is_empty())
    {
        if let Some(v) = values::parse_number(word) {
            flags |= u32::try_from(v)
                .map_err(|_| r.error(e, format!("serverLogFlags: {word} is too large")))?;
            continue;
        }
        let name = word.strip_prefix("P6KMIPFLG_").unwrap_or(word);
        let bit = log_flags::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| r.error(e, format!("serverLogFlags: unknown flag {word:?}")))?;
        flags |= bit.1;
    }
    Ok(flags)
}

fn seconds(r: &Reader<'_>, s: &str, key: &str, default: u64) -> Result<Duration, ConfError> {
    Ok(Duration::from_secs(r.positive(
        s,
        &[key],
        default,
        86_400 * 365,
    )?))
}

fn read_server(r: &Reader<'_>, data: &Path) -> Result<ServerConf, ConfError> {
    const G: &str = "p6kmip-gen";
    const S: &str = "p6kmip-server-gen";
    let listen_ip = match r.entry(S, &["listenIPAddr"]) {
        None => IpAddr::from([0, 0, 0, 0]),
        Some(e) => e.value.parse().map_err(|_| {
            r.error(
                e,
                format!("`listenIPAddr` must be an IP address, not {:?}", e.value),
            )
        })?,
    };
    let file = |key: &str| r.string(S, &[key]).map(|p| resolve(data, p));
    let thread_count = r.positive(S, &["threadCount"], 10, 4096)? as usize;
    let receive_timeout = seconds(r, S, "receiveTimeout", 300)?;
    Ok(ServerConf {
        log_dir: r.string(G, &["logDir"]).map(|p| resolve(data, p)),
        error_stream: r.string(G, &["errorStream"]),
        listen_port: r.number(S, &["listenPort"], 65524, 65535)? as u16,
        max_buf_size: r.positive(S, &["maxBufSize"], 40_000, MAX_BUF_LIMIT)? as usize,
        initial_buf_count: r.number(S, &["initialBufCount"], 10, 100_000)? as usize,
        grow_buf_by: r.positive(S, &["growBufBy"], 10, 100_000)? as usize,
        thread_count,
        listen_ip,
        receive_timeout,
        send_timeout: seconds(r, S, "sendTimeout", 300)?,
        accept_timeout: seconds(r, S, "acceptTimeout", 10)?,
        tls_enabled: r.boolean(S, &["tlsEnabled"], false)?,
        tls_cert_file: file("tlsCertFile"),
        tls_key_file: file("tlsKeyFile"),
        tls_ca_file: file("tlsCAFile"),
        tls_require_client_cert: r.boolean(S, &["tlsRequireClientCert"], true)?,
        client_identity: match r.entry(S, &["clientIdentity"]) {
            None => IdentitySource::CommonName,
            Some(e) => match e.value.to_ascii_lowercase().as_str() {
                "cn" => IdentitySource::CommonName,
                "dn" => IdentitySource::SubjectDn,
                "san" => IdentitySource::SubjectAltName,
                "cn+ou" => IdentitySource::CommonNameAndOu,
                _ => {
                    return Err(r.error(
                        e,
                        format!(
                            "`clientIdentity` must be cn, dn, san or cn+ou, not {:?}",
                            e.value
                        ),
                    ));
                }
            },
        },
        plain_identity: r.string(S, &["plainIdentity"]),
        require_credential: r.boolean(S, &["requireCredential"], false)?,
        bounds: Bounds {
            connection_queue: r.positive(
                S,
                &["connectionQueue"],
                4 * thread_count as u64,
                1 << 20,
            )? as usize,
            // Never longer than receiveTimeout unless asked: the handshake used to share it.
            tls_handshake_timeout: seconds(
                r,
                S,
                "tlsHandshakeTimeout",
                receive_timeout.as_secs().min(10),
            )?,
            max_depth: r.positive(S, &["maxDepth"], 32, 1024)? as usize,
            max_items: r.positive(S, &["maxItems"], 1 << 20, 1 << 26)? as usize,
            max_batch_items: r.positive(S, &["maxBatchItems"], 1000, 1 << 20)? as usize,
            max_streams: r.positive(S, &["maxStreams"], 1024, 1 << 20)? as usize,
            max_streams_per_connection: r.positive(S, &["maxStreamsPerConnection"], 64, 1 << 20)?
                as usize,
            max_locate_results: r.positive(S, &["maxLocateResults"], 10_000, 1 << 24)? as usize,
            max_http_header_bytes: r.positive(S, &["maxHttpHeaderBytes"], 8192, 1 << 20)? as usize,
            max_http_headers: r.positive(S, &["maxHttpHeaders"], 64, 10_000)? as usize,
        },
    })
}

fn read_aux(r: &Reader<'_>) -> Result<AuxConf, ConfError> {
    const S: &str = "p6kmip-server-auxiliary";
    let small = |keys: &[&str]| -> Result<u32, ConfError> {
        Ok(r.positive(S, keys, 1, u64::from(u32::MAX))? as u32)
    };
    Ok(AuxConf {
        vendor_id: r.string(S, &["vendorId"]),
        operations: r.number_list(S, &["operations"])?,
        objects: r.number_list(S, &["objects"])?,
        profiles: r.number_list(S, &["profiles"])?.unwrap_or_default(),
        shredding_algorithm: small(&["shreddingAlgorithm", "shreadingAlgorithm"])?,
        destroy_action: small(&["destroyAction"])?,
        unwrap_mode: small(&["unwrapMode", "unrapMode"])?,
        rng_mode: small(&["RNGMode"])?,
        streaming_enabled: r.boolean(S, &["streamingEnabled"], true)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_confs(dir: &Path, ksg: &str, server: &str, aux: &str) {
        std::fs::write(dir.join(KSG_CONF), ksg).expect("write");
        std::fs::write(dir.join(SERVER_CONF), server).expect("write");
        std::fs::write(dir.join(AUX_CONF), aux).expect("write");
    }

    fn temp_dir(name: &str) -> crate::test_dir::TempDir {
        crate::test_dir::TempDir::new(&format!("config-{name}"))
    }

    #[test]
    fn seed_example_values_and_defaults() {
        let d = temp_dir("seed");
        write_confs(
            &d,
            "[p6ksg-gen]\nbaseKeyPath=\"ksgbaseKey.txt\"\nserverLogFlags=1036\nHSM_pin=\"12345678\"\nHSM_slotid=0\n\
             HSM_name=\"AWSCloudHSM\"\nHSM_addr=123.10.3.45\nHSMType=1\ngateFlags=1\nAWSCloudHSM_KEKHandle=262155\n\
             KEKKeyPath=\"aes256.key\"\nCaviumLiquidSec_KEKHandle=0x10\n",
            "[p6kmip-gen]\nlogDir = \"/var/log/kmip\"\nerrorStream = \"kmipclient-errors.txt\"\n[p6kmip-server-gen]\n\
             listenPort = 65524\nmaxBufSize = 20000\ninitialBufCount = 10\ngrowBufBy = 5\nthreadCount = 15\n\
             listenIPAddr = 0.0.0.0\nreceiveTimeout=500\nsendTimeout=500\nacceptTimeout=10\n",
            "[p6kmip-server-auxiliary]\nvendorId = \"www.p6r.com; KSG 2018.1\"\n\
             operations = 1,2,3,4,8,10,11,12,13,14,15,17,18,19,20,24,30,31,32,37,38\nobjects = 1,2,3,4,7\nprofiles =\n\
             shreadingAlgorithm = 1\ndestroyAction = 1\nunrapMode = 2\n",
        );
        let c = Config::load(&d, Path::new("/data")).expect("loads");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.ksg.base_key_path, Path::new("/data/ksgbaseKey.txt"));
        assert_eq!(c.ksg.server_log_flags, 1036);
        assert_eq!(c.ksg.hsm_pin.as_ref().map(Secret::expose), Some("12345678"));
        assert!(!format!("{:?}", c.ksg).contains("12345678"));
        assert_eq!(
            (c.ksg.hsm_type, c.ksg.gate_flags, c.ksg.aws_kek_handle),
            (1, 1, Some(262_155))
        );
        assert_eq!(c.ksg.cavium_kek_handle, Some(16));
        assert_eq!(
            c.ksg.kek_key_path.as_deref(),
            Some(Path::new("/data/aes256.key"))
        );
        assert_eq!(
            c.server.log_dir.as_deref(),
            Some(Path::new("/var/log/kmip"))
        );
        assert_eq!(
            (
                c.server.listen_port,
                c.server.max_buf_size,
                c.server.thread_count
            ),
            (65524, 20_000, 15)
        );
        assert_eq!(c.server.receive_timeout, Duration::from_secs(500));
        assert!(!c.server.tls_enabled && c.server.tls_require_client_cert);
        assert_eq!(c.aux.operations.as_ref().map(Vec::len), Some(21));
        assert_eq!(c.aux.objects, Some(vec![1, 2, 3, 4, 7]));
        assert!(c.aux.profiles.is_empty());
        assert_eq!(
            (c.aux.unwrap_mode, c.aux.rng_mode, c.aux.streaming_enabled),
            (2, 1, true)
        );

        write_confs(
            &d,
            "[p6ksg-gen]\n",
            "[p6kmip-server-gen]\n",
            "[p6kmip-server-auxiliary]\n",
        );
        let c = Config::load(&d, Path::new("/data")).expect("loads");
        assert_eq!(
            (
                c.server.listen_port,
                c.server.max_buf_size,
                c.server.thread_count
            ),
            (65524, 40_000, 10)
        );
        assert_eq!((c.server.initial_buf_count, c.server.grow_buf_by), (10, 10));
        assert_eq!(c.server.accept_timeout, Duration::from_secs(10));
        assert_eq!(c.server.receive_timeout, Duration::from_secs(300));
        assert_eq!(c.aux.operations, None);
    }

    #[test]
    fn log_flags_by_name_unknown_keys_warn_and_bad_values_name_file_and_line() {
        let d = temp_dir("errors");
        write_confs(
            &d,
            "[p6ksg-gen]\nserverLogFlags = P6KMIPFLG_TRACE_BASIC | P6KMIPFLG_TRACE_MSGS | TRACE_FORMATTTLV\nbogus = 1\nsecretDataOnToken = 1\npkcs11Trace = info\nsessionKeyCopies = 0x100\n",
            "[p6kmip-server-gen]\n",
            "[p6kmip-server-auxiliary]\n",
        );
        let c = Config::load(&d, Path::new("/data")).expect("loads");
        assert_eq!(c.ksg.server_log_flags, 0x200C);
        assert!(c.ksg.secret_data_on_token);
        assert_eq!(c.ksg.session_key_copies, 256);
        assert_eq!(c.ksg.pkcs11_trace, crate::token::pkcs11::Trace::Info);
        assert_eq!(c.warnings.len(), 1);
        assert!(
            c.warnings[0].ends_with("ksg.conf:3: unknown key `bogus` in [p6ksg-gen] ignored"),
            "{:?}",
            c.warnings
        );

        for (server, line) in [
            ("[p6kmip-server-gen]\nlistenPort = 70000\n", 2),
            ("[p6kmip-server-gen]\n\nthreadCount = 0\n", 3),
            ("[p6kmip-server-gen]\nlistenIPAddr = localhost\n", 2),
            ("[p6kmip-server-gen]\ntlsEnabled = maybe\n", 2),
            ("[p6kmip-server-gen]\nmaxBufSize = 12k\n", 2),
        ] {
            write_confs(&d, "[p6ksg-gen]\n", server, "[p6kmip-server-auxiliary]\n");
            let e = Config::load(&d, Path::new("/data")).expect_err(server);
            assert!(
                e.to_string()
                    .contains(&format!("p6kmipserver.conf:{line}: ")),
                "{e}"
            );
        }
    }
}
