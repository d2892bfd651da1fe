//! ferrogate-cluster: a real local Kubernetes control plane for tests, and what the in-cluster
//! tests need around it.
//!
//! - [`tools`]: the binaries (etcd, kube-apiserver, kube-controller-manager, kubectl built from
//!   their Go modules by `scripts/cluster/build-control-plane.sh`, cached by version in
//!   `.tools/`), upstream's Gateway API CRDs from the `sigs.k8s.io/gateway-api` module, and
//!   Ferrogate's own binary.
//! - [`control_plane`]: starts etcd (data on tmpfs), kube-apiserver (TLS, RBAC, service-account
//!   token signing) and kube-controller-manager, and stops them; single components can be
//!   killed and restarted for fault tests; [`service_range`] gives each its own Service CIDR.
//! - [`install`]: installs upstream's CRDs and the Helm chart's rendered objects with
//!   server-side apply, and makes a kubeconfig for the chart's ServiceAccount, so the real
//!   server enforces the chart's RBAC on the controller.
//! - [`controller`]: `ferrogate controller` as a process authenticated as that ServiceAccount.
//! - [`http_echo`]: the stand-in for the image `hashicorp/http-echo` that the node runs
//!   (binary `ferrogate-http-echo`), as docs/quickstart.md's backend.
//! - [`node`]: the kubelet's part with real processes: a Ready Node that runs the Pods bound
//!   to it in network namespaces of their own (`ferrogate-node` is the same as a binary).
//!
//! - [`api_delay`]: a TLS proxy in front of kube-apiserver that delays the start of every
//!   request, for a controller that sees a slow API server.
//! - [`convergence_bench`]: route convergence in controller mode, with the API server direct
//!   and delayed (`ferrogate-cluster-bench`, `make bench-cluster`).
//!
//! - [`utc`]: fixed-width RFC 3339 timestamps, as the API and the kubelet write them.
//! - [`cri_log`], [`log_pipe`]: containers' output as timestamped CRI log records, as a
//!   container runtime keeps it for the kubelet.
//!
//! Every process is started with a parent-death signal, so a crashed test leaves none behind.

pub mod api_delay;
pub mod control_plane;
pub mod controller;
pub mod convergence_bench;
pub mod cri_log;
pub mod http_echo;
pub mod install;
pub mod kubectl;
pub mod log_pipe;
pub mod node;
pub mod pki;
pub mod process;
pub mod service_range;
pub mod tools;
pub mod upstream;
pub mod utc;
pub mod wait;

pub use control_plane::{ControlPlane, ControlPlaneOptions};
pub use controller::{Controller, ControllerOptions};
