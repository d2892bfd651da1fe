//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use ferrogate_runtime::{OutputFormat, StandaloneConfig};

/// Ferrogate: a Kubernetes Gateway API implementation on Envoy.
#[derive(Parser, Debug)]
#[command(name = "ferrogate", version)]
pub(crate) struct Cli {
    /// Log level filter (e.g. `info`, `ferrogate=debug`).
    #[arg(long, env = "FERROGATE_LOG", default_value = "info", global = true)]
    pub log_level: String,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Debug, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the control plane and one local Envoy per Gateway from a directory of YAML.
    Standalone(StandaloneArgs),
    /// Translate YAML files offline and print statuses, IR or Envoy resources.
    Translate(TranslateArgs),
    /// Print Ferrogate's own CRDs (EnvoyProxy) as YAML.
    Crds,
    /// Print version information.
    Version,
}

#[derive(clap::Args, Debug)]
struct StandaloneArgs {
    /// Directory of Gateway API YAML (read recursively, re-read on change).
    #[arg(long)]
    config_dir: PathBuf,
    /// Directory for status files (outside the config directory).
    #[arg(long, default_value = ".run/status")]
    status_dir: PathBuf,
    /// Directory for Envoy bootstraps and logs.
    #[arg(long, default_value = ".run/envoy")]
    work_dir: PathBuf,
    /// Envoy binary.
    #[arg(long, env = "FERROGATE_ENVOY", default_value = ".tools/bin/envoy")]
    envoy: PathBuf,
    /// Envoy log level.
    #[arg(long, default_value = "warning")]
    envoy_log_level: String,
    /// xDS gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:18000")]
    xds_addr: SocketAddr,
    /// Prometheus metrics listen address.
    #[arg(long, default_value = "127.0.0.1:19001")]
    metrics_addr: SocketAddr,
    /// Health (`/healthz`, `/readyz`) listen address.
    #[arg(long, default_value = "127.0.0.1:8081")]
    health_addr: SocketAddr,
    /// xDS variant the Envoys use.
    #[arg(long, value_enum, default_value = "delta")]
    xds_mode: XdsMode,
    /// Quiet time after file changes before re-reading, in milliseconds.
    #[arg(long, default_value_t = 50)]
    debounce_ms: u64,
    /// First port of the per-Gateway Envoy admin/stats/readiness ports (10 per Gateway).
    #[arg(long, default_value_t = 19100)]
    envoy_base_port: u16,
    /// Give each Gateway its own bind address from this IPv4 network (e.g. 127.0.1.0/24),
    /// reported in its status.addresses; `spec.addresses` requests a specific one.
    #[arg(long)]
    address_pool: Option<ipnet::Ipv4Net>,
}

#[derive(Clone, Debug, ValueEnum)]
enum XdsMode {
    /// Incremental xDS.
    Delta,
    /// State-of-the-world xDS.
    Sotw,
}

#[derive(clap::Args, Debug)]
struct TranslateArgs {
    /// Input files (`-` for standard input).
    #[arg(short = 'f', long = "file", required = true, num_args = 1..)]
    files: Vec<PathBuf>,
    /// Output.
    #[arg(short = 'o', long = "output", value_enum, default_value = "status")]
    output: Output,
}

#[derive(Clone, Debug, ValueEnum)]
enum Output {
    Status,
    Ir,
    Xds,
    Infra,
}

impl Cli {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Standalone(a) => {
                ferrogate_runtime::run_standalone(StandaloneConfig {
                    config_dir: a.config_dir,
                    status_dir: a.status_dir,
                    work_dir: a.work_dir,
                    envoy_path: a.envoy,
                    envoy_log_level: a.envoy_log_level,
                    xds_addr: a.xds_addr,
                    metrics_addr: a.metrics_addr,
                    health_addr: a.health_addr,
                    delta_xds: matches!(a.xds_mode, XdsMode::Delta),
                    debounce: Duration::from_millis(a.debounce_ms),
                    envoy_base_port: a.envoy_base_port,
                    address_pool: a.address_pool,
                })
                .await
            }
            Command::Translate(a) => {
                let format = match a.output {
                    Output::Status => OutputFormat::Status,
                    Output::Ir => OutputFormat::Ir,
                    Output::Xds => OutputFormat::Xds,
                    Output::Infra => OutputFormat::Infra,
                };
                let (text, warnings) = ferrogate_runtime::translate_files(&a.files, format)?;
                for w in warnings {
                    tracing::warn!("{w}");
                }
                write_stdout(&text)?;
                Ok(())
            }
            Command::Crds => {
                write_stdout(&ferrogate_runtime::crds_yaml())?;
                Ok(())
            }
            Command::Version => {
                println!("ferrogate {}", env!("CARGO_PKG_VERSION"));
                Ok(())
            }
        }
    }
}

pub(crate) fn init_logging(format: &LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Prints to standard output; a closed pipe (`| head`) ends the output quietly.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
