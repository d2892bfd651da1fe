//! `ferrogate-echo`: echo backend for end-to-end tests, compatible with the
//! conformance echo-basic image (HTTP, gRPC, TCP and UDP roles). Prints the
//! bound ports of its role as one JSON line on stdout (HTTP role:
//! `{"http":34567,"h2c":34568,"https":34569}`; gRPC: `{"https":..,"grpc":..}`;
//! TCP: `{"tcp":..,"tls":..}`; UDP: `{"udp":..}`), then serves until SIGTERM.

use clap::Parser;
use ferrogate_e2e::echo::{ENV_VARS, EchoConfig, run};

fn main() -> anyhow::Result<()> {
    // Upstream treats an empty variable as unset, while clap would reject `""`
    // as a port number; drop such variables before clap reads them.
    for &name in ENV_VARS {
        if std::env::var_os(name).is_some_and(|v| v.is_empty()) {
            // SAFETY: no other thread exists yet; the runtime starts below.
            unsafe { std::env::remove_var(name) };
        }
    }
    let config = EchoConfig::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(config))
}
