//! `ksg tls issue-client`: another client certificate from the development CA, for a second
//! client or for trying per-client ownership.

use std::path::{Path, PathBuf};

use crate::server::pki::DevPki;

const HELP: &str = "\
Usage: ksg tls issue-client --cn NAME --out DIR [--data DIR]

  issue-client   issues a client certificate with Common Name NAME (the client's identity at
                 the gateway) from the development CA in <data>/tls, and writes DIR/client.pem,
                 DIR/client.key (mode 0600) and DIR/ca.pem: the layout of <data>/tls, so DIR
                 can be given to clients in its place, e.g.
                   ksg client --ca DIR/ca.pem --cert DIR/client.pem --key DIR/client.key query
                 Existing files in DIR are not replaced.

Options:
  --cn NAME      the certificate's subject Common Name (required)
  --out DIR      where to write the files (required; made if missing)
  --data DIR     the gateway's data directory, holding tls/ca.pem and tls/ca.key (default
                 ./data); the development CA exists after the first `ksg serve` with TLS on

The development PKI is for development and evaluation; production deployments use their own CA.
";

/// Runs `ksg tls`.
pub fn run(args: &[String]) -> i32 {
    let (sub, a) = match super::args::subcommand("tls", HELP, args, &["cn", "out", "data"], &[]) {
        Ok(parsed) => parsed,
        Err(status) => return status,
    };
    if sub != "issue-client" {
        eprintln!("ksg tls: unknown subcommand {sub:?}\n\n{HELP}");
        return 2;
    }
    let (Some(cn), Some(out)) = (a.value("cn"), a.value("out")) else {
        eprintln!("ksg tls issue-client: --cn NAME and --out DIR are required\n\n{HELP}");
        return 2;
    };
    let data = PathBuf::from(a.value("data").unwrap_or("data"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    match DevPki::new(&data).issue_client_into(cn, now, Path::new(out)) {
        Ok(()) => {
            println!(
                "issued {out}/client.pem (CN={cn}) and {out}/client.key from {}",
                DevPki::new(&data).ca_cert().display()
            );
            0
        }
        Err(e) => {
            eprintln!("ksg tls issue-client: {e}");
            1
        }
    }
}
