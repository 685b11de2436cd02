//! A tiny argument parser: `--name value`, `--name=value`, `--switch`, and positionals.

/// Parsed arguments of one subcommand.
#[derive(Debug, Default)]
pub struct Args {
    options: Vec<(String, Option<String>)>,
    /// Arguments that are not options, in order.
    pub positionals: Vec<String>,
}

impl Args {
    /// Parses `args`; `with_value` names the options that take a value, `switches` those that
    /// do not. Anything else starting with `--` is an error.
    pub fn parse(args: &[String], with_value: &[&str], switches: &[&str]) -> Result<Args, String> {
        let mut out = Args::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if a == "--" {
                out.positionals.extend(it.by_ref().cloned());
                break;
            }
            let Some(name) = a.strip_prefix("--") else {
                out.positionals.push(a.clone());
                continue;
            };
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (name, None),
            };
            if with_value.contains(&name) {
                let v = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .cloned()
                        .ok_or(format!("--{name} needs a value"))?,
                };
                out.options.push((name.to_string(), Some(v)));
            } else if switches.contains(&name) && inline.is_none() {
                out.options.push((name.to_string(), None));
            } else {
                return Err(format!("unknown option --{name}"));
            }
        }
        Ok(out)
    }

    /// The last value given for `--name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Every value given for `--name`, in order (for repeatable options).
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.options
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| v.as_deref())
            .collect()
    }

    /// Whether `--name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.options.iter().any(|(n, _)| n == name)
    }
}

/// Splits `ksg <command> <subcommand> [options]`: the subcommand and its parsed options, or the
/// exit status once usage (2) or help (0) has been printed.
pub fn subcommand<'a>(
    command: &str,
    help: &str,
    args: &'a [String],
    with_value: &[&str],
    switches: &[&str],
) -> Result<(&'a str, Args), i32> {
    let Some((sub, rest)) = args.split_first() else {
        eprint!("{help}");
        return Err(2);
    };
    let mut switches = switches.to_vec();
    switches.push("help");
    let a = Args::parse(rest, with_value, &switches).map_err(|e| {
        eprintln!("ksg {command}: {e}\nRun `ksg {command} --help` for usage.");
        2
    })?;
    if a.has("help") || sub == "--help" || sub == "help" {
        print!("{help}");
        return Err(0);
    }
    Ok((sub.as_str(), a))
}
