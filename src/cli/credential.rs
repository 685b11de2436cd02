//! `ksg credential hash`: a line for `p6kmip_credentials.conf` (a salted PBKDF2-SHA-256 hash of
//! a password read from standard input), for servers with `requireCredential = 1`.

use std::io::BufRead;

use crate::config::credentials::{CREDENTIAL_CONF, ITERATIONS, StoredCredential};

const HELP: &str = "\
Usage: ksg credential hash --user NAME  < password

  hash   reads a password (the first line of standard input), and prints the line to add
         under [credentials] in confs/p6kmip_credentials.conf:
           NAME = pbkdf2-sha256$ITERATIONS$SALT$HASH
         (a random 16-byte salt; PBKDF2-HMAC-SHA-256). The password itself is not stored.

With `requireCredential = 1` in p6kmipserver.conf, every request must carry a KMIP Credential
(Username and Password) listed there, on top of the client certificate; Query and Discover
Versions stay open. `ksg client --username NAME --password-file FILE` sends one.
";

/// Runs `ksg credential`.
pub fn run(args: &[String]) -> i32 {
    let (sub, a) = match super::args::subcommand("credential", HELP, args, &["user"], &[]) {
        Ok(parsed) => parsed,
        Err(status) => return status,
    };
    if sub != "hash" {
        eprintln!("ksg credential: unknown subcommand {sub:?}\n\n{HELP}");
        return 2;
    }
    let Some(user) = a.value("user") else {
        eprintln!("ksg credential hash: --user NAME is required\n\n{HELP}");
        return 2;
    };
    if user.is_empty()
        || user.contains(['=', '[', ']', ';', '#'])
        || user.contains(char::is_whitespace)
    {
        eprintln!("ksg credential hash: {user:?} cannot be a key in {CREDENTIAL_CONF}");
        return 2;
    }
    let mut password = zeroize::Zeroizing::new(String::new());
    if std::io::stdin().lock().read_line(&mut password).is_err() {
        eprintln!("ksg credential hash: cannot read the password from standard input");
        return 1;
    }
    let password = password.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        eprintln!("ksg credential hash: the password (standard input) is empty");
        return 2;
    }
    let mut salt = [0u8; 16];
    if getrandom::fill(&mut salt).is_err() {
        eprintln!("ksg credential hash: no randomness from the operating system");
        return 1;
    }
    eprintln!("(PBKDF2-HMAC-SHA-256, {ITERATIONS} iterations)");
    println!(
        "{}",
        StoredCredential::new(user, password.as_bytes(), &salt).line()
    );
    0
}
