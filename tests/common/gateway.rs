//! Starts `ksg serve` as a child process for integration tests: private confs and data in a
//! temporary directory, port 0, the process log printed when a test fails.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ksg::ttlv::{Item, Limits, Tag, Value, binary};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory named after `name`.
    pub fn new(name: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("ksg-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("make temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Settings for one gateway under test (written into its own conf files).
pub struct Settings {
    pub tls: bool,
    pub max_buf_size: usize,
    pub receive_timeout: u32,
    pub threads: usize,
    pub log_flags: &'static str,
    pub extra_aux: &'static str,
    /// Lines added to `[p6kmip-server-gen]` of p6kmipserver.conf.
    pub extra_server: &'static str,
    /// The text of p6kmip_policies.conf (none when empty).
    pub policies: &'static str,
    /// The text of p6kmip_credentials.conf (none when empty).
    pub credentials: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tls: true,
            max_buf_size: 65536,
            receive_timeout: 30,
            threads: 4,
            log_flags: "0",
            extra_aux: "",
            extra_server: "",
            policies: "",
            credentials: String::new(),
        }
    }
}

/// A running `ksg serve`.
pub struct Gateway {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: TempDir,
    pub log: Arc<Mutex<String>>,
}

impl Gateway {
    /// Writes confs for `s` and starts the gateway; waits for its "listening" line.
    pub fn start(name: &str, s: Settings) -> Gateway {
        let dir = TempDir::new(name);
        let confs = dir.0.join("confs");
        std::fs::create_dir_all(&confs).expect("mkdir confs");
        std::fs::write(
            confs.join("ksg.conf"),
            format!(
                "[p6ksg-gen]\ngateFlags = 0x0002\nserverLogFlags = {}\n",
                s.log_flags
            ),
        )
        .expect("write");
        std::fs::write(
            confs.join("p6kmipserver.conf"),
            format!(
                "[p6kmip-gen]\nlogDir = \"logs\"\nerrorStream = \"errors.txt\"\n[p6kmip-server-gen]\nlistenPort = 0\n\
                 listenIPAddr = 127.0.0.1\nmaxBufSize = {}\nthreadCount = {}\nreceiveTimeout = {}\nsendTimeout = 5\n\
                 acceptTimeout = 10\ntlsEnabled = {}\n{}",
                s.max_buf_size,
                s.threads,
                s.receive_timeout,
                u8::from(s.tls),
                s.extra_server
            ),
        )
        .expect("write");
        std::fs::write(
            confs.join("p6kmip_auxiliary_ksg.conf"),
            format!(
                "[p6kmip-server-auxiliary]\nvendorId = \"ksg under test\"\n{}",
                s.extra_aux
            ),
        )
        .expect("write");
        if !s.policies.is_empty() {
            std::fs::write(confs.join("p6kmip_policies.conf"), s.policies).expect("write");
        }
        if !s.credentials.is_empty() {
            std::fs::write(confs.join("p6kmip_credentials.conf"), &s.credentials).expect("write");
        }
        Gateway::spawn(&confs, dir)
    }

    /// Starts `ksg serve --confs CONFS --data DIR/data`.
    pub fn spawn(confs: &Path, dir: TempDir) -> Gateway {
        Gateway::spawn_with_env(confs, dir, &[])
    }

    /// Starts `ksg serve --confs CONFS --data DIR/data` with extra environment variables (e.g.
    /// SOFTHSM2_CONF for a private SoftHSM2 token directory).
    pub fn spawn_with_env(confs: &Path, dir: TempDir, env: &[(&str, &Path)]) -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ksg"))
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .arg("serve")
            .arg("--confs")
            .arg(confs)
            .arg("--data")
            .arg(dir.0.join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ksg serve");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("ksg listening on ") {
                    let addr = rest.split(' ').next().unwrap_or_default().to_string();
                    let _ = tx.send(addr);
                }
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a.parse().expect("listening address"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "ksg serve did not start:\n{}",
                    log.lock().map(|l| l.clone()).unwrap_or_default()
                );
            }
        };
        Gateway {
            child,
            addr,
            dir,
            log,
        }
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.0.join("data")
    }

    /// The gateway's log so far.
    pub fn log_text(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -TERM failed");
    }

    /// Waits for the process to exit (at most `limit`), returning its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- ksg serve log ----\n{}-----------------------",
                self.log_text()
            );
        }
    }
}

/// A rustls client configuration trusting `ca.pem`, presenting `cert`/`key` if given.
pub fn client_config(ca: &Path, cert_key: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("ca file") {
        roots.add(c.expect("ca cert")).expect("add root");
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match cert_key {
        Some((cert, key)) => {
            let chain: Vec<_> = CertificateDer::pem_file_iter(cert)
                .expect("cert")
                .map(|c| c.expect("cert"))
                .collect();
            builder
                .with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key).expect("key"))
                .expect("auth")
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// A TLS connection to the gateway with the development client certificate.
pub fn tls_connect(
    addr: SocketAddr,
    data: &Path,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let tls = data.join("tls");
    let config = client_config(
        &tls.join("ca.pem"),
        Some((&tls.join("client.pem"), &tls.join("client.key"))),
    );
    tls_connect_with(addr, config)
}

/// A TLS connection with a given client configuration.
pub fn tls_connect_with(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(config, name).expect("client connection");
    rustls::StreamOwned::new(conn, tcp)
}

fn version(major: i32, minor: i32) -> Item {
    Item::structure(
        Tag::PROTOCOL_VERSION,
        vec![
            Item::new(Tag::PROTOCOL_VERSION_MAJOR, Value::Integer(major)),
            Item::new(Tag::PROTOCOL_VERSION_MINOR, Value::Integer(minor)),
        ],
    )
}

/// A request message with one batch item.
pub fn request(minor: i32, operation: u32, payload: Vec<Item>) -> Item {
    Item::structure(
        Tag::REQUEST_MESSAGE,
        vec![
            Item::structure(
                Tag::REQUEST_HEADER,
                vec![
                    version(1, minor),
                    Item::new(Tag::BATCH_COUNT, Value::Integer(1)),
                ],
            ),
            Item::structure(
                Tag::BATCH_ITEM,
                vec![
                    Item::new(Tag::OPERATION, Value::Enumeration(operation)),
                    Item::structure(Tag::REQUEST_PAYLOAD, payload),
                ],
            ),
        ],
    )
}

/// A KMIP 1.4 Create of an AES-256 key for encryption and decryption.
pub fn create_aes_256() -> Item {
    request(
        4,
        0x01,
        vec![
            Item::new(Tag::OBJECT_TYPE, Value::Enumeration(2)),
            Item::structure(
                Tag::TEMPLATE_ATTRIBUTE,
                vec![
                    attribute("Cryptographic Algorithm", Value::Enumeration(3)),
                    attribute("Cryptographic Length", Value::Integer(256)),
                    attribute("Cryptographic Usage Mask", Value::Integer(12)),
                ],
            ),
        ],
    )
}

/// The Unique Identifier in the response payload of a response's first batch item.
pub fn unique_identifier(response: &Item) -> Option<String> {
    let payload = response
        .child(Tag::BATCH_ITEM)?
        .child(Tag::RESPONSE_PAYLOAD)?;
    match &payload.child(Tag::UNIQUE_IDENTIFIER)?.value {
        Value::TextString(s) => Some(s.clone()),
        _ => None,
    }
}

/// A KMIP 1.x Attribute with a simple value.
pub fn attribute(name: &str, value: Value) -> Item {
    Item::structure(
        Tag::ATTRIBUTE,
        vec![
            Item::new(Tag::ATTRIBUTE_NAME, Value::TextString(name.into())),
            Item::new(Tag::ATTRIBUTE_VALUE, value),
        ],
    )
}

/// A Discover Versions request (KMIP 1.4).
pub fn discover_versions() -> Item {
    request(4, 0x1E, vec![])
}

/// Reads one TTLV message from `r`.
pub fn read_ttlv(r: &mut impl Read) -> std::io::Result<Item> {
    let mut header = [0u8; 8];
    r.read_exact(&mut header)?;
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    let mut all = header.to_vec();
    all.extend_from_slice(&body);
    binary::decode(&all, &Limits::default()).map_err(|e| std::io::Error::other(e.to_string()))
}

/// Writes one TTLV message and reads the response.
pub fn roundtrip(s: &mut (impl Read + Write), msg: &Item) -> Item {
    s.write_all(&binary::to_vec(msg).expect("encode"))
        .expect("send");
    s.flush().expect("flush");
    read_ttlv(s).expect("response")
}

/// The Result Status (and Reason) of each batch item of a response.
pub fn results(response: &Item) -> Vec<(u32, Option<u32>)> {
    response
        .children_with(Tag::BATCH_ITEM)
        .map(|b| {
            let e = |tag| match b.child(tag).map(|i| &i.value) {
                Some(Value::Enumeration(v)) => Some(*v),
                _ => None,
            };
            (
                e(Tag::RESULT_STATUS).expect("status"),
                e(Tag::RESULT_REASON),
            )
        })
        .collect()
}

/// Result Status Operation Failed and Result Reason Invalid Message.
pub const INVALID_MESSAGE: (u32, Option<u32>) = (1, Some(4));

/// Runs `ksg serve` (as `cmd` describes) until it is listening or has exited, then stops it
/// with SIGTERM; returns its exit status and everything it wrote on standard error.
pub fn serve_then_stop(cmd: &mut Command) -> (Option<i32>, String) {
    let mut child = cmd.stderr(Stdio::piped()).spawn().expect("start ksg serve");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(mut l) = sink.lock() {
                l.push_str(&line);
                l.push('\n');
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if log.lock().is_ok_and(|l| l.contains("ksg listening"))
            || child.try_wait().ok().flatten().is_some()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if child.try_wait().ok().flatten().is_none() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stderr(Stdio::null())
            .status();
    }
    let status = child.wait().expect("wait");
    let _ = reader.join();
    let text = log.lock().map(|l| l.clone()).unwrap_or_default();
    (status.code(), text)
}

impl Gateway {
    /// Runs `tests/interop/SCRIPT HOST PORT TLS_DIR VERSION` (a PyKMIP client script) against
    /// this gateway; returns whether it exited successfully, and its output.
    pub fn run_pykmip(&self, script: &str, version: &str) -> (bool, String) {
        run_python(
            script,
            &[
                self.addr.ip().to_string(),
                self.addr.port().to_string(),
                self.data().join("tls").display().to_string(),
                version.to_string(),
            ],
        )
    }
}

/// Runs `tests/interop/SCRIPT ARGS…` with the Python of `KSG_PYTHON` (default: the `.venv`
/// that `tests/run-all` makes); returns whether it exited successfully, and its output.
pub fn run_python(script: &str, args: &[String]) -> (bool, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var("KSG_PYTHON")
        .unwrap_or_else(|_| root.join(".venv/bin/python").display().to_string());
    let out = Command::new(&python)
        .arg(root.join("tests/interop").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} (run tests/run-all to make the venv): {e}")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A fresh SoftHSM2 token and a gateway in HSM mode on it: `ksg pkcs11 setup`, a customer
/// KEK imported with `ksg pkcs11 import-kek` and named by KEKKeyPath; mutual TLS with the
/// development PKI when `tls`, else plain TCP.
pub fn softhsm_gateway(name: &str, tls: bool) -> Gateway {
    softhsm_gateway_with(name, tls, "")
}

/// [`softhsm_gateway`] with `extra` lines added to its `ksg.conf` (`pkcs11Trace = info`, say).
pub fn softhsm_gateway_with(name: &str, tls: bool, extra: &str) -> Gateway {
    let dir = TempDir::new(name);
    let conf = super::softhsm_token(&dir.0, "ksg-conf", "1234");
    let data = dir.0.join("data");
    let ksg = |args: &[&str], what: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_ksg"))
            .args(args)
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let module = super::softhsm_module();
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    ksg(
        &[
            "pkcs11",
            "setup",
            "--module",
            &path(&module),
            "--token-label",
            "ksg-conf",
            "--data",
            &path(&data),
        ],
        "ksg pkcs11 setup",
    );
    // The customer KEK: on the token (P6RKEK1) and in KEKKeyPath, so keys can leave wrapped.
    let kek = dir.0.join("kek.bin");
    let mut kek_bytes = [0u8; 32];
    getrandom::fill(&mut kek_bytes).expect("random");
    std::fs::write(&kek, kek_bytes).expect("kek");
    std::fs::set_permissions(&kek, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let confs = dir.0.join("confs");
    std::fs::create_dir_all(&confs).expect("mkdir");
    let ksg_conf = format!(
        "[p6ksg-gen]\ngateFlags = 0\nHSM_pin = \"1234\"\nKEKKeyPath = \"{}\"\n{extra}",
        kek.display()
    );
    for (file, text) in [
        ("ksg.conf", ksg_conf.as_str()),
        (
            "p6kmipserver.conf",
            if tls {
                "[p6kmip-server-gen]\nlistenPort = 0\nlistenIPAddr = 127.0.0.1\ntlsEnabled = 1\n"
            } else {
                "[p6kmip-server-gen]\nlistenPort = 0\nlistenIPAddr = 127.0.0.1\ntlsEnabled = 0\n"
            },
        ),
        ("p6kmip_auxiliary_ksg.conf", "[p6kmip-server-auxiliary]\n"),
    ] {
        std::fs::write(confs.join(file), text).expect("conf");
    }
    ksg(
        &[
            "pkcs11",
            "import-kek",
            "--file",
            &path(&kek),
            "--confs",
            &path(&confs),
            "--data",
            &path(&data),
        ],
        "ksg pkcs11 import-kek",
    );
    Gateway::spawn_with_env(&confs, dir, &[("SOFTHSM2_CONF", &conf)])
}
