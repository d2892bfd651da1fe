//! http-echo's command line, read the way its Go `flag` package reads it: `-name=value`,
//! `-name value` or `--name...`; parsing stops at the first argument that is not a flag (or
//! after `--`), and any argument left over is refused ("Too many arguments!"). The flags are
//! those of http-echo 1.0: `-listen` (default `:5678`), `-text`, `-status-code` (default 200)
//! and `-version`. Anything else is an error, so a manifest written for another http-echo
//! fails its Pod with the reason instead of running something different.

use std::fmt;

/// The parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flags {
    /// `-listen`: `[host]:port`; an empty host means every address.
    pub listen: Listen,
    /// `-text` (`None`: not given; the program then reads `ECHO_TEXT`).
    pub text: Option<String>,
    /// `-status-code` of every answer except `/health`.
    pub status: u16,
    /// `-version`: print the version and exit.
    pub version: bool,
    /// `-h` / `-help`: print the usage and exit 0, as Go's `flag` does.
    pub help: bool,
}

/// The `-listen` address as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why the command line is refused; the text is what http-echo prints (the Go wording).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagError(pub String);

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FlagError {}

/// The usage text (`-h`).
pub const USAGE: &str = "Usage of http-echo:
  -listen string
    \taddress and port to listen (default \":5678\")
  -status-code int
    \thttp response code, e.g.: 200 (default 200)
  -text string
    \ttext to put on the webpage
  -version
    \tdisplay version information
";

fn error(message: impl Into<String>) -> FlagError {
    FlagError(message.into())
}

impl Flags {
    /// Parses the arguments after the program name.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Self, FlagError> {
        let mut flags = Self {
            listen: parse_listen(":5678").expect("the default parses"),
            text: None,
            status: 200,
            version: false,
            help: false,
        };
        let mut rest = args.iter().map(AsRef::as_ref);
        while let Some(arg) = rest.next() {
            if arg == "--" {
                break;
            }
            let Some(body) = arg.strip_prefix('-').filter(|b| !b.is_empty()) else {
                // The first non-flag ends the flags; it and what follows are positional.
                return Err(error("Too many arguments!"));
            };
            let body = body.strip_prefix('-').unwrap_or(body);
            if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
                return Err(error(format!("bad flag syntax: {arg}")));
            }
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            match name {
                "version" => flags.version = parse_bool(name, inline)?,
                "h" | "help" => flags.help = true,
                "listen" | "text" | "status-code" => {
                    let value = match inline {
                        Some(v) => v,
                        None => rest
                            .next()
                            .ok_or_else(|| error(format!("flag needs an argument: -{name}")))?,
                    };
                    match name {
                        "listen" => flags.listen = parse_listen(value)?,
                        "text" => flags.text = Some(value.to_string()),
                        _ => flags.status = parse_status(value)?,
                    }
                }
                _ => return Err(error(format!("flag provided but not defined: -{name}"))),
            }
        }
        if rest.next().is_some() {
            return Err(error("Too many arguments!"));
        }
        Ok(flags)
    }
}

fn parse_bool(name: &str, value: Option<&str>) -> Result<bool, FlagError> {
    match value {
        None | Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(v) => Err(error(format!(
            "invalid boolean value {v:?} for -{name}: parse error"
        ))),
    }
}

/// `[host]:port` as Go's `net.Listen` takes it; the port must be a number here (Go would
/// also look up service names such as `:http`).
fn parse_listen(value: &str) -> Result<Listen, FlagError> {
    let bad = |why: &str| error(format!("invalid value {value:?} for flag -listen: {why}"));
    let (host, port) = value
        .rsplit_once(':')
        .ok_or_else(|| bad("missing port in address"))?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .ok_or_else(|| bad("missing ']' in address"))?,
        None => host,
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| bad("the port must be a number from 0 to 65535"))?;
    Ok(Listen {
        host: host.to_string(),
        port,
    })
}

/// Go's `net/http` refuses status codes outside 100-999 (it panics on the first request);
/// here that is an error at start.
fn parse_status(value: &str) -> Result<u16, FlagError> {
    match value.parse::<u16>() {
        Ok(code) if (100..=999).contains(&code) => Ok(code),
        Ok(_) => Err(error(format!(
            "invalid value {value:?} for flag -status-code: not an HTTP status (100-999)"
        ))),
        Err(_) => Err(error(format!(
            "invalid value {value:?} for flag -status-code: parse error"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, String> {
        Flags::parse(args).map_err(|e| e.0)
    }

    #[test]
    fn the_quickstart_arguments_listen_on_every_address_of_port_8080() {
        let flags = parse(&["-listen=:8080", "-text=hello from echo"]).unwrap();
        assert_eq!(
            flags.listen,
            Listen {
                host: String::new(),
                port: 8080
            }
        );
        assert_eq!(flags.text.as_deref(), Some("hello from echo"));
        assert_eq!(flags.status, 200);
        assert!(!flags.version && !flags.help);
    }

    #[test]
    fn defaults_are_port_5678_and_status_200() {
        let flags = parse(&[]).unwrap();
        assert_eq!(flags.listen.port, 5678);
        assert_eq!(flags.listen.host, "");
        assert_eq!(flags.text, None);
        assert_eq!(flags.status, 200);
    }

    #[test]
    fn values_may_follow_as_the_next_argument_and_double_dashes_work() {
        let flags = parse(&[
            "--listen",
            "127.0.0.1:9000",
            "-text",
            "hi",
            "--status-code=503",
        ])
        .unwrap();
        assert_eq!(flags.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(flags.text.as_deref(), Some("hi"));
        assert_eq!(flags.status, 503);
        let v6 = parse(&["-listen=[::1]:80"]).unwrap();
        assert_eq!(v6.listen.host, "::1");
        assert_eq!(v6.listen.to_string(), "[::1]:80");
    }

    #[test]
    fn the_last_of_a_repeated_flag_wins() {
        let flags = parse(&["-text=a", "-text=b"]).unwrap();
        assert_eq!(flags.text.as_deref(), Some("b"));
    }

    #[test]
    fn version_and_help_are_flags_without_values() {
        assert!(parse(&["-version"]).unwrap().version);
        assert!(!parse(&["-version=false"]).unwrap().version);
        assert!(parse(&["-h"]).unwrap().help);
        assert!(parse(&["--help"]).unwrap().help);
        assert_eq!(
            parse(&["-version=maybe"]).unwrap_err(),
            "invalid boolean value \"maybe\" for -version: parse error"
        );
    }

    #[test]
    fn unknown_flags_are_refused_with_gos_wording() {
        assert_eq!(
            parse(&["-port=8080"]).unwrap_err(),
            "flag provided but not defined: -port"
        );
        assert_eq!(
            parse(&["--text=x", "-delay", "5"]).unwrap_err(),
            "flag provided but not defined: -delay"
        );
    }

    #[test]
    fn positional_arguments_are_too_many() {
        assert_eq!(
            parse(&["-text=x", "extra"]).unwrap_err(),
            "Too many arguments!"
        );
        assert_eq!(parse(&["--", "x"]).unwrap_err(), "Too many arguments!");
        assert!(parse(&["-text=x", "--"]).is_ok());
        // A lone "-" is not a flag either.
        assert_eq!(parse(&["-"]).unwrap_err(), "Too many arguments!");
    }

    #[test]
    fn malformed_values_are_refused() {
        assert_eq!(
            parse(&["-text"]).unwrap_err(),
            "flag needs an argument: -text"
        );
        assert!(
            parse(&["-listen=8080"])
                .unwrap_err()
                .contains("missing port")
        );
        assert!(parse(&["-listen=:http"]).unwrap_err().contains("port"));
        assert!(
            parse(&["-status-code=abc"])
                .unwrap_err()
                .contains("parse error")
        );
        assert!(parse(&["-status-code=42"]).unwrap_err().contains("100-999"));
        assert_eq!(
            parse(&["---text=x"]).unwrap_err(),
            "bad flag syntax: ---text=x"
        );
        assert_eq!(parse(&["-=x"]).unwrap_err(), "bad flag syntax: -=x");
    }
}
