//! `ksg serve`: runs the gateway.

use std::path::PathBuf;
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::args::Args;
use crate::config::Config;
use crate::log;
use crate::server::Server;

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
    let server = match Server::bind(Arc::new(config), now) {
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
