//! `ksg pkcs11`: the counterpart of the seed's p6pkcs11tool.

use std::path::PathBuf;

use super::args::Args;
use crate::config::Config;
use crate::token::pkcs11::list_slots;
use crate::token::setup::{self, ModuleFile};
use crate::token::vendor::KEK_LABEL;
use crate::token::{Attr, Class, Token};

const HELP: &str = "\
Usage: ksg pkcs11 <setup|slots|import-kek> [options]

  setup       --module PATH [--token-label LABEL] [--data DIR]
              record the PKCS#11 module (and the token to use) in <data>/PKCS11, signed in
              <data>/PKCS11.sig with <data>/pkcs11baseKey.txt (made on first use). At start the
              gateway refuses a PKCS11 file whose signature fails, unless gateFlags has 0x0001.
  slots       [--data DIR] [--module PATH]
              list the slots, their tokens and mechanisms
  import-kek  --file F [--confs DIR] [--data DIR]
              put the customer's 32-byte KEK (raw file) on the configured token, labelled
              P6RKEK1, for wrapping and unwrapping only, not extractable

All of them, like `ksg serve`, honour SOFTHSM2_CONF as SoftHSM2 does. --data defaults to
./data and --confs to ./confs.
";

/// Runs `ksg pkcs11`.
pub fn run(args: &[String]) -> i32 {
    let (sub, a) = match super::args::subcommand(
        "pkcs11",
        HELP,
        args,
        &["module", "token-label", "data", "confs", "file"],
        &[],
    ) {
        Ok(parsed) => parsed,
        Err(status) => return status,
    };
    let data = PathBuf::from(a.value("data").unwrap_or("data"));
    let result = match sub {
        "setup" => setup_cmd(&a, &data),
        "slots" => slots(&a, &data),
        "import-kek" => import_kek(&a, &data),
        other => {
            eprintln!("ksg pkcs11: unknown subcommand {other:?}\n\n{HELP}");
            return 2;
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ksg pkcs11 {sub}: {e}");
            1
        }
    }
}

fn setup_cmd(a: &Args, data: &std::path::Path) -> Result<(), String> {
    let module = PathBuf::from(a.value("module").ok_or("--module PATH is required")?);
    let (_, slots) = list_slots(&module).map_err(|e| e.to_string())?;
    let token_label = a.value("token-label").map(str::to_string);
    if let Some(l) = &token_label
        && !slots.iter().any(|(_, label)| label == l)
    {
        return Err(format!(
            "no token labelled {l:?} (found {:?})",
            slots.iter().map(|s| &s.1).collect::<Vec<_>>()
        ));
    }
    setup::write(
        data,
        &ModuleFile {
            module: module.clone(),
            token_label,
        },
    )?;
    println!(
        "wrote {} and {} (module {}, {} slot(s) with a token)",
        data.join(setup::FILE).display(),
        data.join(setup::SIG).display(),
        module.display(),
        slots.len()
    );
    Ok(())
}

fn slots(a: &Args, data: &std::path::Path) -> Result<(), String> {
    let module = match a.value("module") {
        Some(m) => PathBuf::from(m),
        None => {
            setup::read(data, false)
                .map_err(|e| e.to_string())?
                .0
                .module
        }
    };
    let (ctx, slots) = list_slots(&module).map_err(|e| e.to_string())?;
    println!("module {}", module.display());
    for (slot, label) in slots {
        let info = ctx.get_token_info(slot).map_err(|e| e.to_string())?;
        println!(
            "slot {}: token {label:?} model {:?} serial {:?}",
            slot.id(),
            info.model().trim(),
            info.serial_number().trim()
        );
        let mechs = ctx.get_mechanism_list(slot).map_err(|e| e.to_string())?;
        let names: Vec<String> = mechs.iter().map(|m| format!("{m}")).collect();
        println!("  mechanisms ({}): {}", names.len(), names.join(" "));
    }
    Ok(())
}

fn import_kek(a: &Args, data: &std::path::Path) -> Result<(), String> {
    let file = a.value("file").ok_or("--file F is required")?;
    let kek = zeroize::Zeroizing::new(std::fs::read(file).map_err(|e| format!("{file}: {e}"))?);
    if kek.len() != 32 {
        return Err(format!(
            "{file}: a KEK is 32 raw bytes (AES-256), found {}",
            kek.len()
        ));
    }
    let confs = PathBuf::from(a.value("confs").unwrap_or("confs"));
    let config = Config::load(&confs, data).map_err(|e| e.to_string())?;
    let (token, warning) = crate::token::open_configured(&config)?;
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    let existing = token
        .find(&[Attr::Label(KEK_LABEL.into()), Attr::Class(Class::SecretKey)])
        .map_err(|e| e.to_string())?;
    if !existing.is_empty() {
        return Err(format!(
            "the token already holds a key labelled {KEK_LABEL}; remove it first"
        ));
    }
    token
        .create_object(&crate::token::import::kek_object(&kek))
        .map_err(|e| e.to_string())?;
    println!("imported the KEK as {KEK_LABEL} (wrap and unwrap only, not extractable)");
    Ok(())
}
