//! The KSG guide's own deployment: stunnel (Debian `stunnel4`) terminates mutual TLS with the
//! shipped `confs/stunnel.conf` and forwards plain KMIP to `ksg serve` running with
//! `tlsEnabled = 0`; the PyKMIP client works through it, and a client without a certificate is
//! turned away by stunnel. Only the two ports of the shipped file are changed (the test runs on
//! free ports); its certificate paths (`data/tls/...`) are used as they are.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::gateway::{Gateway, Settings, client_config, run_python, tls_connect_with};

struct Stunnel {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Stunnel {
    fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Stunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn pykmip_works_through_stunnel_with_the_shipped_conf() {
    let gw = Gateway::start(
        "stunnel",
        Settings {
            tls: false,
            ..Settings::default()
        },
    );
    // The development PKI the shipped stunnel.conf names (a TLS-on first start would make it).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    ksg::server::pki::DevPki::new(&gw.data())
        .create(now)
        .expect("development PKI");

    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("confs/stunnel.conf"))
            .expect("confs/stunnel.conf");
    let port = free_port();
    let conf: String = shipped
        .lines()
        .map(|l| match l.split_once('=').map(|(k, _)| k.trim()) {
            Some("accept") => format!("accept = 127.0.0.1:{port}"),
            Some("connect") => format!("connect = {}", gw.addr),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        conf.lines().filter(|l| !shipped.contains(l)).count(),
        2,
        "only the two ports differ from the shipped file"
    );
    let conf_path = gw.dir.0.join("stunnel.conf");
    std::fs::write(&conf_path, conf).expect("write stunnel.conf");

    let binary = ["stunnel4", "stunnel"]
        .into_iter()
        .find(|b| Command::new(b).arg("-version").output().is_ok())
        .expect("stunnel not found: install stunnel4 (tests/run-all does)");
    let mut child = Command::new(binary)
        .arg(&conf_path)
        .current_dir(&gw.dir.0) // the conf's paths are relative to the folder holding data/
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stunnel");
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().expect("stderr");
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(mut l) = sink.lock() {
                l.push_str(&line);
                l.push('\n');
            }
        }
    });
    let stunnel = Stunnel { child, log };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "stunnel did not listen:\n{}",
            stunnel.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let tls_dir = gw.data().join("tls").display().to_string();
    for (script, version) in [
        ("pykmip_operations.py", "1.4"),
        ("pykmip_discover_query.py", "1.0"),
    ] {
        let (ok, text) = run_python(
            script,
            &[
                "127.0.0.1".into(),
                port.to_string(),
                tls_dir.clone(),
                version.into(),
            ],
        );
        assert!(
            ok && text.trim_end().ends_with("ok"),
            "{script} at {version} through stunnel:\n{text}\nstunnel:\n{}\nksg:\n{}",
            stunnel.log(),
            gw.log_text()
        );
    }

    // requireCert = yes: a client without a certificate gets no KMIP answer.
    let tls = gw.data().join("tls");
    let anonymous = client_config(&tls.join("ca.pem"), None);
    let mut s = tls_connect_with(
        format!("127.0.0.1:{port}").parse().expect("addr"),
        anonymous,
    );
    let sent = std::io::Write::write_all(
        &mut s,
        &ksg::ttlv::binary::to_vec(&common::gateway::discover_versions()).expect("encode"),
    )
    .and_then(|()| std::io::Write::flush(&mut s));
    let answered = sent.is_ok() && common::gateway::read_ttlv(&mut s).is_ok();
    assert!(!answered, "stunnel answered a client without a certificate");
}
