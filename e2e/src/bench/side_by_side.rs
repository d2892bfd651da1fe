//! The side-by-side run (issue 16): Ferrogate and Envoy Gateway, each with its own Envoy (the
//! same binary), config directory and echo backends, both started at the beginning and
//! stepped through the same route counts in turn. At every step the one that went second
//! goes first next time, so a drift of the shared machine does not always fall on the same
//! implementation; the other is idle (no file changes, no traffic) while one is measured.
//!
//! Per step each gets the ordinary step measurement ([`super::Ctx::step`]: bulk apply,
//! convergence probes, CPU, RSS); at the endpoint step (`at`) also endpoint propagation and
//! failed requests under load ([`super::under_load`]). If the peer fails, its error is
//! recorded, it is stopped, and Ferrogate finishes the run alone.

use std::time::Duration;

use super::implementation::Implementation;
use super::{BenchConfig, Ctx, Record, setup, teardown, under_load};

/// Scenario prefix of every side-by-side record.
pub const PREFIX: &str = "side-by-side/";

/// What went wrong with one implementation (the run continues without it).
#[derive(Clone, Debug)]
pub struct Failure {
    pub implementation: Implementation,
    pub routes: usize,
    pub error: String,
}

/// Samples the 1-minute load average every 5 s while the run lasts.
struct LoadSampler {
    samples: std::sync::Arc<std::sync::Mutex<Vec<f64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl LoadSampler {
    fn start() -> Self {
        let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = samples.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Some(v) = load_1m() {
                    s.lock().expect("load samples").push(v);
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
        Self { samples, task }
    }

    fn finish(self) -> Vec<f64> {
        self.task.abort();
        let v = self.samples.lock().expect("load samples").clone();
        v
    }
}

fn load_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

async fn measure(ctx: &mut Ctx, n: usize, at: usize) -> anyhow::Result<()> {
    ctx.step(n, "scale-up").await?;
    if n == at {
        ctx.endpoints().await?;
        under_load::route_edits(ctx).await?;
        under_load::routes_added(ctx).await?;
    }
    Ok(())
}

/// Runs both implementations through `cfg.steps` (scale-up only) and appends their records
/// (scenarios prefixed with [`PREFIX`]) to `out`, plus the machine's load during the run.
pub async fn run(cfg: &BenchConfig, out: &mut Vec<Record>) -> anyhow::Result<Vec<Failure>> {
    let load = LoadSampler::start();
    let mut failures = Vec::new();
    let (mut fg, _fg_temp) = setup(cfg, Implementation::Ferrogate, "delta", cfg.port_base).await?;
    fg.scenario_prefix = PREFIX;
    let mut eg = match setup(
        cfg,
        Implementation::EnvoyGateway,
        "delta",
        cfg.port_base + 200,
    )
    .await
    {
        Ok((mut ctx, temp)) => {
            ctx.scenario_prefix = PREFIX;
            Some((ctx, temp))
        }
        Err(e) => {
            failures.push(Failure {
                implementation: Implementation::EnvoyGateway,
                routes: 0,
                error: format!("{e:#}"),
            });
            None
        }
    };
    let mut result = Ok(());
    for (k, n) in cfg.steps.iter().copied().enumerate() {
        let peer_first = k % 2 == 1;
        if peer_first && let Some((ctx, _)) = eg.as_mut() {
            if let Err(e) = measure(ctx, n, cfg.at).await {
                failures.push(peer_failure(n, e));
                stop_peer(&mut eg, out).await;
            }
        }
        if let Err(e) = measure(&mut fg, n, cfg.at).await {
            failures.push(Failure {
                implementation: Implementation::Ferrogate,
                routes: n,
                error: format!("{e:#}"),
            });
            result = Err(e);
            break;
        }
        if !peer_first && let Some((ctx, _)) = eg.as_mut() {
            if let Err(e) = measure(ctx, n, cfg.at).await {
                failures.push(peer_failure(n, e));
                stop_peer(&mut eg, out).await;
            }
        }
    }
    stop_peer(&mut eg, out).await;
    teardown(&mut fg).await;
    out.append(&mut fg.out);
    let samples = load.finish();
    let n = cfg.steps.iter().copied().max().unwrap_or(0);
    for (name, value) in load_figures(&samples) {
        out.push(Record {
            name: name.into(),
            routes: n,
            value,
            unit: "load".into(),
            scenario: Some(format!("{PREFIX}machine")),
            implementation: None,
            run: cfg.run.clone(),
        });
    }
    result.map(|()| failures)
}

fn peer_failure(n: usize, e: anyhow::Error) -> Failure {
    eprintln!("[bench envoy-gateway] FAILED at {n} routes: {e:#}");
    Failure {
        implementation: Implementation::EnvoyGateway,
        routes: n,
        error: format!("{e:#}"),
    }
}

async fn stop_peer(eg: &mut Option<(Ctx, Option<tempfile::TempDir>)>, out: &mut Vec<Record>) {
    if let Some((mut ctx, _temp)) = eg.take() {
        teardown(&mut ctx).await;
        out.append(&mut ctx.out);
    }
}

/// Min, mean and max of the 1-minute load average samples.
pub fn load_figures(samples: &[f64]) -> Vec<(&'static str, f64)> {
    if samples.is_empty() {
        return Vec::new();
    }
    let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    vec![
        ("loadavg_1m_min", min),
        ("loadavg_1m_mean", mean),
        ("loadavg_1m_max", max),
        ("loadavg_samples", samples.len() as f64),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_figures_are_min_mean_max_and_count() {
        let f = load_figures(&[1.0, 3.0, 2.0]);
        assert_eq!(
            f,
            vec![
                ("loadavg_1m_min", 1.0),
                ("loadavg_1m_mean", 2.0),
                ("loadavg_1m_max", 3.0),
                ("loadavg_samples", 3.0),
            ]
        );
        assert!(load_figures(&[]).is_empty());
    }
}
