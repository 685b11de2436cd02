//! The `ksg` command line: one module per subcommand, each `run(args) -> exit status`.

pub mod args;
pub mod bench;
pub mod client;
pub mod codec;
pub mod conformance;
pub mod connect;
pub mod credential;
pub mod keystore;
pub mod pkcs11;
pub mod serve;
pub mod tls;

const USAGE: &str = "\
ksg — KMIP Server Gateway

Usage: ksg <command> [options]

Commands:
  serve     run the gateway (--confs DIR, --data DIR)
  keystore  verify, dump, compact or benchmark the keystore
  pkcs11    set up the PKCS#11 module, list slots, import the customer KEK
  codec     convert KMIP messages between TTLV, hex, XML, JSON and an annotated tree dump
  conformance  replay OASIS KMIP XML test cases against a running KMIP server
  bench     load any KMIP server: throughput, latency, server CPU and memory
  client    send one KMIP request (create, get, encrypt, locate, ...) and print the answer
  tls       issue another client certificate from the development CA
  credential  hash a password for p6kmip_credentials.conf (KMIP Credential checking)
  features  print the supported-features matrix (operations, object types, versions, backends)
  help      show this help, or `ksg help <command>` for one command

Run `ksg <command> --help` for the options of a command.
";

/// Runs the command line `args` (without the program name) and returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return 2;
    };
    match command.as_str() {
        "codec" => codec::run(rest),
        "serve" => serve::run(rest),
        "keystore" => keystore::run(rest),
        "pkcs11" => pkcs11::run(rest),
        "conformance" => conformance::run(rest),
        "client" => client::run(rest),
        "bench" => bench::run(rest),
        "tls" => tls::run(rest),
        "credential" => credential::run(rest),
        "features" => {
            if rest.iter().any(|a| a == "--help" || a == "-h") {
                println!(
                    "Usage: ksg features\n\nPrints, as a Markdown table, every operation this \
                     build implements: the KMIP version that introduced it, the object types it \
                     takes, and what it does on the software token and on a PKCS#11 HSM."
                );
            } else {
                print!("{}", crate::ops::features::markdown());
            }
            0
        }
        "help" | "--help" | "-h" => match rest.first().map(String::as_str) {
            Some("codec") => codec::run(&["--help".to_string()]),
            Some("serve") => serve::run(&["--help".to_string()]),
            Some("keystore") => keystore::run(&["--help".to_string()]),
            Some("pkcs11") => pkcs11::run(&["--help".to_string()]),
            Some("conformance") => conformance::run(&["--help".to_string()]),
            Some("client") => client::run(&["--help".to_string()]),
            Some("bench") => bench::run(&["--help".to_string()]),
            Some("tls") => tls::run(&["--help".to_string()]),
            Some("credential") => credential::run(&["--help".to_string()]),
            _ => {
                print!("{USAGE}");
                0
            }
        },
        "--version" | "-V" => {
            println!("ksg {}", env!("CARGO_PKG_VERSION"));
            0
        }
        other => {
            eprintln!("ksg: unknown command {other:?}\n\n{USAGE}");
            2
        }
    }
}
