//! `ferrogate-http-echo`: the node's stand-in for the image `hashicorp/http-echo:1.0` (see
//! `ferrogate_cluster::http_echo`). Exit codes follow http-echo's: 2 for a flag error, 127
//! for a missing text or extra arguments, 0 after `-version` or `-h`.

use ferrogate_cluster::http_echo::{self, Flags, flags::USAGE};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags = match Flags::parse(&args) {
        Ok(flags) => flags,
        Err(e) => {
            eprintln!("{e}");
            // Go's flag package prints the usage after a flag error; http-echo's own checks
            // (positional arguments) exit 127 without it.
            if e.0 == "Too many arguments!" {
                std::process::exit(127);
            }
            eprint!("{USAGE}");
            std::process::exit(2);
        }
    };
    if flags.help {
        eprint!("{USAGE}");
        return;
    }
    if flags.version {
        eprintln!("http-echo v{}", http_echo::VERSION);
        return;
    }
    // As http-echo: an empty or missing -text falls back to ECHO_TEXT.
    let text = flags
        .text
        .clone()
        .filter(|t| !t.is_empty())
        .or_else(|| std::env::var("ECHO_TEXT").ok().filter(|t| !t.is_empty()));
    let Some(text) = text else {
        eprintln!("Missing -text option or ECHO_TEXT env var!");
        std::process::exit(127);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    if let Err(e) = runtime.block_on(http_echo::serve(&flags.listen, text, flags.status)) {
        eprintln!("[ERR] server exited with: {e:#}");
        std::process::exit(1);
    }
}
