//! `ksg serve`: runs the gateway.

use std::path::PathBuf;
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::args::Args;
use crate::config::{Config, gate_flags};
use crate::log;
use crate::server::Server;
use crate::store::{Store, key};

const HELP: &str = "\
Usage: ksg serve [--confs DIR] [--data DIR]

Runs the KMIP gateway with the configuration in DIR (default ./confs: ksg.conf,
p6kmipserver.conf, p6kmip_auxiliary_ksg.conf) and its state in the data directory (default
./data; relative paths in the conf files are relative to it). With tlsEnabled = 1 and no
certificate files configured, the first start makes a development PKI in <data>/tls/.

When it is ready it prints `ksg listening on IP:PORT (tls|plain)` on standard error.
SIGTERM or SIGINT: stop accepting, finish the requests in flight, exit 0.

Exit status: 0 after a clean stop, 1 if it cannot start, 2 for a bad configuration.
";

/// Runs `ksg serve`.
pub fn run(args: &[String]) -> i32 {
    let args = match Args::parse(args, &["confs", "data"], &["help"]) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ksg serve: {e}\nRun `ksg serve --help` for usage.");
            return 2;
        }
    };
    if args.has("help") {
        print!("{HELP}");
        return 0;
    }
    if !args.positionals.is_empty() {
        eprintln!("ksg serve: unexpected argument {:?}", args.positionals[0]);
        return 2;
    }
    let confs = PathBuf::from(args.value("confs").unwrap_or("confs"));
    let data = PathBuf::from(args.value("data").unwrap_or("data"));
    let config = match Config::load(&confs, &data) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ksg serve: {e}");
            return 2;
        }
    };
    for w in &config.warnings {
        log::warn(w);
    }
    if let Err(e) = std::fs::create_dir_all(&data) {
        eprintln!("ksg serve: data directory {}: {e}", data.display());
        return 1;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let store = match open_store(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ksg serve: {e}");
            return 1;
        }
    };
    // The HSM is reached at start, so a wrong module, PIN or slot stops the gateway here.
    let mut hsm: Option<Arc<dyn crate::token::Token>> = None;
    if config.ksg.gate_flags & gate_flags::SOFTWARE_TOKEN == 0 {
        match crate::token::open_configured(&config) {
            Ok((token, warning)) => {
                if let Some(w) = warning {
                    log::error(&w);
                }
                log::info(&format!("PKCS#11 token reachable and logged in: {token:?}"));
                hsm = Some(Arc::new(token));
            }
            Err(e) => {
                eprintln!("ksg serve: HSM: {e}");
                return 1;
            }
        }
    }
    let server = match Server::bind(Arc::new(config), Some(Arc::new(store)), hsm, now) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ksg serve: {e}");
            return 1;
        }
    };
    for n in &server.notices {
        log::info(n);
    }
    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ksg serve: cannot handle signals: {e}");
            return 1;
        }
    };
    let stopper = server.stopper();
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            log::info(&format!(
                "signal {sig}: stopping (requests in flight finish first)"
            ));
            stopper.stop();
        }
    });
    eprintln!(
        "ksg listening on {} ({})",
        server.local_addr(),
        if server.tls() { "tls" } else { "plain" }
    );
    server.run();
    0
}

/// Loads the store key and opens the keystore, reporting what opening found.
fn open_store(config: &Config) -> Result<Store, String> {
    let (store_key, source) = key::load(
        config.ksg.customer_key_path.as_deref(),
        &config.ksg.base_key_path,
    )?;
    if let key::KeySource::Generated(p) = &source {
        log::info(&format!(
            "generated the keystore's base key in {} (mode 0600; back it up)",
            p.display()
        ));
    }
    let recover = config.ksg.gate_flags & gate_flags::RECOVER_SIGNATURE != 0;
    let (store, report) = Store::open(&config.data_dir, &store_key, &config.ksg.hsm_name, recover)
        .map_err(|e| e.to_string())?;
    log::info(&format!(
        "keystore {}: {} objects ({} of other HSM_names), {} records{}",
        store.path().display(),
        report.objects,
        report.foreign,
        report.records,
        if report.created { ", new" } else { "" }
    ));
    if report.torn_bytes > 0 {
        log::warn(&format!(
            "keystore: cut a torn tail of {} bytes (an unfinished write before a crash)",
            report.torn_bytes
        ));
    }
    for i in &report.inconsistent {
        log::warn(&format!("keystore: {i}"));
    }
    if let Some(d) = &report.damage {
        log::error(&format!(
            "KEYSTORE SIGNATURE CHECK FAILED at byte {} (record {}): {}. gateFlags 0x0001 is set, so the gateway \
             opens the {} objects recorded before the damage and DROPS the {} bytes after it. The keystore is \
             read-only until re-sealed: stop the gateway and run `ksg keystore compact --recover`.",
            d.offset, d.seq, d.what, report.objects, d.dropped_bytes
        ));
    }
    Ok(store)
}
