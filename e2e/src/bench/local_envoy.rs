//! Envoys the benchmark starts itself (the hand-written static configs, Envoy under
//! callgrind), beside the ones Ferrogate runs.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::{Child, Command};

use super::{Ctx, world};

/// A running Envoy, killed when dropped.
pub(super) struct LocalEnvoy {
    child: Child,
    /// Its pid (valgrind runs the program in its own process, so this is Envoy's too).
    pub pid: u32,
    /// The listener port it serves the bench routes on.
    pub port: u16,
}

impl LocalEnvoy {
    /// Runs `launcher` (a program and its arguments put before Envoy, e.g. valgrind; empty
    /// for none) with the bench's Envoy on `bootstrap` and `extra` arguments, logging to
    /// `<scratch>/<name>.log`, and waits up to `timeout` until route 0 answers 200 on `port`.
    pub(super) async fn start(
        ctx: &Ctx,
        name: &str,
        launcher: &[String],
        bootstrap: &Path,
        extra: &[&str],
        port: u16,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let log_path = ctx.dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = match launcher.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&ctx.launch.envoy);
                cmd
            }
            None => Command::new(&ctx.launch.envoy),
        };
        let mut child = cmd
            .arg("-c")
            .arg(bootstrap)
            .args(["--disable-hot-restart", "--log-level", "warning"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the {name} Envoy ({launcher:?})"))?;
        let pid = child.id().context("the Envoy has no pid")?;
        let (host, path) = (world::host(0), world::path(0));
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                anyhow::bail!("the {name} Envoy exited ({status}): {}", tail.join(" | "));
            }
            if crate::client::get(addr, &host, &path, &[])
                .await
                .map(|r| r.status)
                .ok()
                == Some(200)
            {
                return Ok(Self { child, pid, port });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the {name} Envoy did not serve {host}{path} within {timeout:?}")
    }

    /// Kills it and waits for it to exit.
    pub(super) async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
