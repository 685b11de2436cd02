//! The `ksg` command: arguments in, one call out.

#![forbid(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(ksg::cli::run(&args));
}
