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
    /// Run in a cluster: watch Gateway API objects, provision Envoy per Gateway, write statuses.
    Controller(ControllerArgs),
    /// Create the xDS CA and server certificate (Secrets in a cluster, or files).
    Certgen(CertgenArgs),
    /// Run the control plane and one local Envoy per Gateway from a directory of YAML.
    Standalone(StandaloneArgs),
    /// Translate YAML files offline and print statuses, IR or Envoy resources.
    Translate(TranslateArgs),
    /// Show every Gateway and route of ours with its conditions, as a table.
    Status(StatusArgs),
    /// Print the running Envoy configuration of a Gateway (private keys redacted).
    ConfigDump(ConfigDumpArgs),
    /// Print Ferrogate's own CRDs (EnvoyProxy) as YAML.
    Crds,
    /// Print version and build information.
    Version,
}

#[derive(clap::Args, Debug)]
struct StatusArgs {
    /// Read the status files of `ferrogate standalone` from this directory; without it, the
    /// statuses are read from the cluster of the current kubeconfig context.
    #[arg(long)]
    status_dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct ConfigDumpArgs {
    /// The Gateway, `<namespace>/<name>` (a bare name means namespace `default`).
    gateway: String,
    /// Work directory of `ferrogate standalone` (where each Gateway's bootstrap names its
    /// Envoy's admin port). Without it or `--admin-addr`, the dump comes from one of the
    /// Gateway's Ready Envoy Pods in the cluster of the current kubeconfig context, through
    /// a port-forward to its admin port.
    #[arg(long, conflicts_with = "admin_addr")]
    work_dir: Option<PathBuf>,
    /// Envoy admin address to ask instead (e.g. a `kubectl port-forward` to port 19000 of an
    /// Envoy pod).
    #[arg(long)]
    admin_addr: Option<SocketAddr>,
    /// Include endpoints (EDS).
    #[arg(long)]
    include_eds: bool,
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
    /// First port of the per-Gateway Envoy admin/stats/readiness ports (10 per Gateway,
    /// so (65535 - 3 - base) / 10 + 1 Gateways fit; from 1024 to 65532).
    #[arg(long, default_value_t = 19100, value_parser = ferrogate_runtime::parse_envoy_base_port)]
    envoy_base_port: u16,
    /// Give each Gateway its own bind address from this IPv4 network (e.g. 127.0.1.0/24),
    /// reported in its status.addresses; `spec.addresses` requests a specific one.
    #[arg(long)]
    address_pool: Option<ipnet::Ipv4Net>,
    /// Serve xDS over mutual TLS with a CA made at start and one client certificate per
    /// Gateway (under the work directory); each Envoy gets only its own Gateway's config.
    #[arg(long)]
    xds_tls: bool,
    /// Allow plaintext xDS on a non-loopback --xds-addr. Without it Ferrogate refuses to
    /// start there: any client that reaches the port could read every Gateway's config.
    #[arg(long)]
    xds_insecure_plaintext: bool,
}

#[derive(clap::Args, Debug)]
struct ControllerArgs {
    /// xDS gRPC listen address.
    #[arg(long, default_value = "0.0.0.0:18000")]
    xds_addr: SocketAddr,
    /// Prometheus metrics listen address.
    #[arg(long, default_value = "0.0.0.0:19001")]
    metrics_addr: SocketAddr,
    /// Health (`/healthz`, `/readyz`) listen address.
    #[arg(long, default_value = "0.0.0.0:8081")]
    health_addr: SocketAddr,
    /// Namespace of the controller (its Lease and xDS Service).
    #[arg(long, env = "POD_NAMESPACE", default_value = "ferrogate-system")]
    namespace: String,
    /// This replica's leader-election identity.
    #[arg(long, env = "POD_NAME", default_value = "ferrogate")]
    pod_name: String,
    /// Name of the xDS Service in --namespace (Envoys dial <svc>.<namespace>.svc).
    #[arg(long, default_value = "ferrogate")]
    xds_service: String,
    /// Directory with ca.crt, ca.key, tls.crt, tls.key for xDS over mutual TLS. Without it
    /// xDS is plaintext and unauthenticated (development only).
    #[arg(long)]
    xds_tls_dir: Option<PathBuf>,
    /// Allow plaintext xDS (no --xds-tls-dir) on a non-loopback --xds-addr. Without it the
    /// controller refuses to start there: any client could read every Gateway's config.
    #[arg(long)]
    xds_insecure_plaintext: bool,
    /// Elect a leader on a Lease (only the leader writes statuses and infra).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Name of the leader Lease.
    #[arg(long, default_value = "ferrogate-leader")]
    lease_name: String,
    /// xDS variant the Envoys use.
    #[arg(long, value_enum, default_value = "delta")]
    xds_mode: XdsMode,
    /// Envoy image for Gateways whose EnvoyProxy names none.
    #[arg(long)]
    envoy_image: Option<String>,
    /// How often watched changes are handed to the translator, in milliseconds (changes
    /// within one period go together). Handing one over is O(log n): the snapshot is shared.
    #[arg(long, default_value_t = 10)]
    debounce_ms: u64,
    /// Validity, in seconds, of the xDS server certificates the controller issues itself when
    /// it renews the one from certgen (after two thirds of their life; default one year).
    #[arg(long, default_value_t = 365 * 24 * 3600, value_parser = clap::value_parser!(u64).range(60..))]
    xds_server_cert_validity_secs: u64,
    /// An address pool of the cluster's load balancer (a CIDR or a range FIRST-LAST, as in
    /// MetalLB's IPAddressPool); repeat for several. A Gateway asking in `spec.addresses` for
    /// an IP outside every pool, or one another Gateway asked for first, gets `Programmed:
    /// False` / `AddressNotUsable` at once. Without any, such a Gateway waits for its Service
    /// (`AddressNotAssigned`).
    #[arg(long = "static-address-pool", value_name = "CIDR|FIRST-LAST")]
    static_address_pools: Vec<ferrogate_runtime::AddressRange>,
}

#[derive(clap::Args, Debug)]
struct CertgenArgs {
    /// Namespace of the Secrets (the controller's).
    #[arg(long, env = "POD_NAMESPACE", default_value = "ferrogate-system")]
    namespace: String,
    /// Name of the xDS Service the server certificate is for.
    #[arg(long, default_value = "ferrogate")]
    xds_service: String,
    /// Write the files (ca.crt, ca.key, tls.crt, tls.key) into this directory instead of
    /// creating Secrets.
    #[arg(long)]
    output_dir: Option<PathBuf>,
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
    /// Translate as `ferrogate standalone` does (declared ports, the first Gateway slot's
    /// readiness port, 127.0.0.1 as the Gateways' address) instead of as `ferrogate
    /// controller` does (ports below 1024 shifted by 10000, readiness on 19003).
    #[arg(long)]
    standalone: bool,
}

#[derive(Clone, Debug, ValueEnum)]
enum Output {
    /// Statuses (YAML).
    Status,
    /// Statuses as JSON, for scripts.
    Json,
    /// The IR of every Gateway.
    Ir,
    /// Envoy resources.
    Xds,
    /// The Kubernetes objects the controller would create.
    Infra,
}

impl Cli {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Controller(a) => {
                let mut config = ferrogate_runtime::ControllerConfig::new(a.namespace, a.pod_name);
                config.xds_addr = a.xds_addr;
                config.metrics_addr = a.metrics_addr;
                config.health_addr = a.health_addr;
                config.xds_service = a.xds_service;
                config.xds_tls_dir = a.xds_tls_dir;
                config.xds_insecure_plaintext = a.xds_insecure_plaintext;
                config.leader_elect = a.leader_elect;
                config.lease_name = a.lease_name;
                config.delta_xds = matches!(a.xds_mode, XdsMode::Delta);
                config.envoy_image = a.envoy_image;
                config.debounce = Duration::from_millis(a.debounce_ms);
                config.xds_server_cert_validity =
                    Duration::from_secs(a.xds_server_cert_validity_secs);
                config.static_address_pools =
                    ferrogate_runtime::StaticAddressPools(a.static_address_pools);
                ferrogate_runtime::run_controller(config).await
            }
            Command::Certgen(a) => match a.output_dir {
                Some(dir) => {
                    let names =
                        ferrogate_runtime::pki::xds_service_dns_names(&a.xds_service, &a.namespace);
                    ferrogate_runtime::certgen_files(&dir, &names)?;
                    println!(
                        "wrote ca.crt, ca.key, tls.crt, tls.key to {}",
                        dir.display()
                    );
                    Ok(())
                }
                None => {
                    let report = ferrogate_runtime::certgen(&a.namespace, &a.xds_service).await?;
                    println!(
                        "{}/{}: {}; {}/{}: {}",
                        a.namespace,
                        ferrogate_runtime::CA_SECRET,
                        if report.created_ca { "created" } else { "kept" },
                        a.namespace,
                        ferrogate_runtime::SERVER_SECRET,
                        if report.created_server {
                            "created"
                        } else {
                            "kept"
                        },
                    );
                    Ok(())
                }
            },
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
                    xds_tls: a.xds_tls,
                    xds_insecure_plaintext: a.xds_insecure_plaintext,
                })
                .await
            }
            Command::Translate(a) => {
                let format = match a.output {
                    Output::Status => OutputFormat::Status,
                    Output::Json => OutputFormat::StatusJson,
                    Output::Ir => OutputFormat::Ir,
                    Output::Xds => OutputFormat::Xds,
                    Output::Infra => OutputFormat::Infra,
                };
                let variant = if a.standalone {
                    ferrogate_runtime::Variant::Standalone
                } else {
                    ferrogate_runtime::Variant::Controller
                };
                let (text, warnings) =
                    ferrogate_runtime::translate_files(&a.files, format, variant)?;
                for w in &warnings {
                    tracing::warn!("{w}");
                }
                write_stdout(&text)?;
                // The valid documents are still translated and printed (so one typo does not
                // hide the rest), but a script must see that the input was not all valid.
                anyhow::ensure!(
                    warnings.is_empty(),
                    "{} input document(s) are invalid",
                    warnings.len()
                );
                Ok(())
            }
            Command::Status(a) => {
                let source = match a.status_dir {
                    Some(dir) => ferrogate_runtime::StatusSource::Dir(dir),
                    None => ferrogate_runtime::StatusSource::Cluster,
                };
                write_stdout(&ferrogate_runtime::status_table(&source).await?)?;
                Ok(())
            }
            Command::ConfigDump(a) => {
                let dump = match (a.admin_addr, a.work_dir) {
                    (Some(addr), _) => ferrogate_runtime::config_dump(addr, a.include_eds).await?,
                    (None, Some(work_dir)) => {
                        let addr = ferrogate_runtime::admin_addr(&work_dir, &a.gateway)?;
                        ferrogate_runtime::config_dump(addr, a.include_eds).await?
                    }
                    (None, None) => {
                        ferrogate_runtime::config_dump_from_cluster(&a.gateway, a.include_eds)
                            .await?
                    }
                };
                write_stdout(&format!("{}\n", serde_json::to_string_pretty(&dump)?))?;
                Ok(())
            }
            Command::Crds => {
                write_stdout(&ferrogate_runtime::crds_yaml())?;
                Ok(())
            }
            Command::Version => {
                println!("{}", ferrogate_runtime::build_info());
                Ok(())
            }
        }
    }
}

/// Logs go to standard error: colored text only on a terminal (a file or a log collector
/// would store the escape codes), or JSON with the event's fields at the top level next to
/// `timestamp`, `level`, `target` and `message`, so log pipelines need no nested paths.
pub(crate) fn init_logging(format: &LogFormat, level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
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
