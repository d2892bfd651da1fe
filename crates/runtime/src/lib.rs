//! ferrogate-runtime: the wiring. Connects providers, the translators, the xDS server, the
//! infra manager and the status writers into running modes, supervises their tasks, and
//! serves health and metrics.
//!
//! Owns: task supervision (one cancellation token, every task in a `JoinSet`; a task that
//! ends unexpectedly ends the process), the translate-and-publish loop, and the admin HTTP
//! server (`/healthz`, `/readyz`, `/metrics`).
//!
//! Must not: hold Gateway API or Envoy semantics; it only moves values between stages.
#![forbid(unsafe_code)]

mod address_pool;
mod admin;
mod certgen;
mod config_dump;
mod controller;
mod controller_events;
mod controller_infra;
mod controller_mode;
mod controller_provider;
mod controller_sinks;
mod host_plan;
mod host_replicas;
mod host_xds_tls;
mod latest_wins;
mod metrics;
mod nack_status;
mod pipeline;
pub mod pki;
mod placement;
mod quarantine;
mod run_loop;
mod serving;
mod slots;
mod standalone;
mod standalone_mode;
mod static_addresses;
mod status_cluster;
mod status_cmd;
#[cfg(test)]
mod test_worlds;
mod translate_cmd;
mod version;
mod xds_cert_renewal;
mod xds_exposure;
mod xds_metrics;

pub use certgen::{
    CA_SECRET, CertgenReport, SERVER_SECRET, certgen, certgen_files, certgen_in_cluster,
};
pub use config_dump::{ConfigDumpError, admin_addr, config_dump, config_dump_from_cluster, redact};
pub use controller::{ControllerConfig, run_controller, run_controller_with};
pub use metrics::{MetricInfo, Metrics, reference as metrics_reference};
pub use standalone::{StandaloneConfig, run_standalone};
pub use static_addresses::{AddressRange, StaticAddressPools};
pub use status_cmd::{StatusError, StatusSource, read_status_dir, render_table, status_table};
pub use translate_cmd::{OutputFormat, Variant, translate_files};
pub use version::{BuildInfo, build_info};
pub use xds_exposure::PlaintextXdsRefused;

/// Ferrogate's own CustomResourceDefinitions, as YAML (generated from the Rust types).
pub fn crds_yaml() -> String {
    ferrogate_api::envoyproxy::crd_yaml()
}

/// Parses `--envoy-base-port`: a port whose first block (admin, stats, readiness) fits
/// below 65535, checked when the command line is parsed rather than when the first
/// Gateway arrives.
pub fn parse_envoy_base_port(value: &str) -> Result<u16, String> {
    let base: u16 = value
        .parse()
        .map_err(|e| format!("{value:?} is not a port: {e}"))?;
    let plan = ferrogate_infra_render::HostPortPlan::default();
    ferrogate_infra_render::HostPortPlan::new(base, plan.stride).map_err(|e| e.to_string())?;
    if base < 1024 {
        return Err(format!(
            "{base} is a privileged port; Envoy runs without privileges (use 1024 or more)"
        ));
    }
    Ok(base)
}
