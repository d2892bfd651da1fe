//! The fleet pass (issue 15): G Gateways x R HTTPRoutes (100 x 1000 = 100 000 routes) in one
//! real `ferrogate standalone` process, every Gateway with its own real Envoy (started by
//! ferrogate, on its own loopback address) and, beside it, simulated proxies
//! ([`super::xds_sim`], half delta, half state-of-the-world) that bring each Gateway to
//! `streams_per_gateway` xDS streams. Measured:
//!
//! - control-plane RSS (peak since start, settled) and CPU with the whole fleet connected;
//! - route convergence of a one-route edit on the first Gateway, through its real Envoy, and
//!   how many xDS responses the edits sent to the other Gateways' streams (must be none);
//! - an EndpointSlice change that every Gateway uses: the time until the last simulated
//!   stream has received and ACKed it (and the first), over adds and removals;
//! - a simulated proxy NACKing an endpoint update: counted by the control plane, and the
//!   update still reaches every other stream.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ferrogate_xds_server::ENDPOINT_TYPE;
use tokio::sync::watch;

use super::fleet_world::{self, FleetWorld};
use super::procs::{self, Ferrogate, FerrogateLaunch, Ports, RssSampler};
use super::xds_sim::{Protocol, Seen, SimProxy};
use super::{BenchConfig, MIB, Record, percentile, until_status, world};

/// The fleet's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FleetSize {
    pub gateways: usize,
    pub routes_per_gateway: usize,
    /// xDS streams per Gateway: its real Envoy plus simulated proxies up to this count.
    pub streams_per_gateway: usize,
}

impl FleetSize {
    /// Parses `GxR` (e.g. `100x1000`) with `streams` streams per Gateway.
    pub fn parse(text: &str, streams: usize) -> anyhow::Result<Self> {
        let size = super::in_process::Size::parse(text)?;
        anyhow::ensure!(
            size.gateways > 0 && size.routes_per_gateway > 0,
            "{text:?}: a fleet needs at least one Gateway and one route"
        );
        anyhow::ensure!(streams >= 1, "at least one stream per Gateway (its Envoy)");
        Ok(Self {
            gateways: size.gateways,
            routes_per_gateway: size.routes_per_gateway,
            streams_per_gateway: streams,
        })
    }

    pub fn routes(self) -> usize {
        self.gateways * self.routes_per_gateway
    }

    pub fn scenario(self) -> String {
        format!(
            "fleet, {} Gateways x {} routes, {} xDS streams each",
            self.gateways, self.routes_per_gateway, self.streams_per_gateway
        )
    }
}

/// Route edits (each an add and a removal) on the first Gateway, and EndpointSlice changes
/// (each an add and a removal).
#[derive(Clone, Copy, Debug)]
pub struct FleetSamples {
    pub edits: usize,
    pub endpoint_changes: usize,
}

struct Fleet {
    size: FleetSize,
    scenario: String,
    world: FleetWorld,
    ferrogate: Ferrogate,
    launch: FerrogateLaunch,
    listener_port: u16,
    echo_b_port: u16,
    echo_a_port: u16,
    sims: Vec<SimProxy>,
    ticks: f64,
    budget: Duration,
    out: Vec<Record>,
    run: Option<String>,
    log: bool,
}

impl Fleet {
    fn rec(&mut self, name: &str, value: f64, unit: &str) {
        if self.log {
            eprintln!("  {name} = {value:.3} {unit} ({})", self.scenario);
        }
        self.out.push(Record {
            name: name.into(),
            routes: self.size.routes(),
            value,
            unit: unit.into(),
            scenario: Some(self.scenario.clone()),
            implementation: Some("ferrogate".into()),
            run: self.run.clone(),
        });
    }

    fn log(&self, msg: &str) {
        if self.log {
            eprintln!("[bench ferrogate fleet] {msg}");
        }
    }

    fn cpu(&self) -> f64 {
        procs::cpu_ticks(self.ferrogate.pid).unwrap_or(0) as f64 / self.ticks
    }

    fn envoy_addr(&self, k: usize) -> SocketAddr {
        SocketAddr::from((fleet_world::address(k), self.listener_port))
    }

    /// Waits until every Gateway's Envoy serves its last route.
    async fn until_all_serve(&self) -> anyhow::Result<()> {
        let last = self.size.routes_per_gateway - 1;
        for k in 0..self.size.gateways {
            until_status(
                self.envoy_addr(k),
                &world::host(last),
                &world::path(last),
                200,
                1,
                self.budget,
            )
            .await
            .with_context(|| {
                format!(
                    "Gateway {} never served its routes",
                    fleet_world::gateway(k)
                )
            })?;
        }
        Ok(())
    }

    /// Waits until the control plane is idle (under 20 ms of CPU in a second): after the
    /// fleet serves, it still writes a status file per object, which must not be counted
    /// in the figures of the edits that follow. Returns how long that took.
    async fn until_idle(&self) -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        loop {
            let cpu0 = self.cpu();
            tokio::time::sleep(Duration::from_secs(1)).await;
            if self.cpu() - cpu0 < 0.02 {
                return Ok(t0.elapsed());
            }
            anyhow::ensure!(
                t0.elapsed() < self.budget,
                "the control plane was still busy {:?} after the fleet served",
                self.budget
            );
        }
    }

    /// Simulated proxies for every Gateway, up to `streams_per_gateway` streams with its Envoy.
    async fn connect_sims(&mut self) -> anyhow::Result<()> {
        let xds = SocketAddr::from(([127, 0, 0, 1], self.launch.ports.xds()));
        for k in 0..self.size.gateways {
            for s in 1..self.size.streams_per_gateway {
                let protocol = if s % 2 == 1 {
                    Protocol::Delta
                } else {
                    Protocol::Sotw
                };
                let gateway = format!("default/{}", fleet_world::gateway(k));
                let sim =
                    SimProxy::connect(xds, &gateway, &format!("sim-{k}-{s}"), protocol).await?;
                self.sims.push(sim);
            }
        }
        // Connected means holding the Gateway's endpoints, as an Envoy that is ready does.
        let port = u32::from(self.echo_a_port);
        self.until_every_sim(|s| s.has_endpoint_port(port)).await?;
        Ok(())
    }

    /// Waits until `ready` holds for every simulated proxy; returns each one's view then.
    async fn until_every_sim(&self, ready: impl Fn(&Seen) -> bool) -> anyhow::Result<Vec<Seen>> {
        let mut views = Vec::with_capacity(self.sims.len());
        for sim in &self.sims {
            let mut rx: watch::Receiver<Seen> = sim.seen.clone();
            let seen =
                tokio::time::timeout(self.budget, rx.wait_for(|s| ready(s) || s.ended.is_some()))
                    .await
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "a simulated proxy of {} waited over {:?}",
                            sim.gateway,
                            self.budget
                        )
                    })?
                    .map_err(|_| anyhow::anyhow!("a simulated proxy of {} stopped", sim.gateway))?
                    .clone();
            if let Some(why) = &seen.ended {
                anyhow::bail!(
                    "a simulated proxy of {} lost its stream: {why}",
                    sim.gateway
                );
            }
            views.push(seen);
        }
        Ok(views)
    }

    /// Responses received so far by the simulated proxies of every Gateway but the first.
    fn responses_to_others(&self) -> u64 {
        self.sims
            .iter()
            .filter(|s| s.gateway != format!("default/{}", fleet_world::gateway(0)))
            .map(|s| s.seen.borrow().total_responses())
            .sum()
    }

    async fn route_edits(&mut self, samples: usize) -> anyhow::Result<()> {
        self.log(&format!(
            "{samples} route edits on {}",
            fleet_world::gateway(0)
        ));
        let others0 = self.responses_to_others();
        let cpu0 = self.cpu();
        let (mut adds, mut removes) = (Vec::new(), Vec::new());
        for n in 0..samples {
            let name = format!("probe{n}");
            let (host, path) = (world::host(n), format!("/{name}"));
            let t0 = Instant::now();
            self.world.add_route(0, &name, &host, &path)?;
            let ok = until_status(self.envoy_addr(0), &host, &path, 200, 3, self.budget).await?;
            adds.push(ok.duration_since(t0).as_secs_f64() * 1000.0);
            let t1 = Instant::now();
            self.world.remove_route(0, &name)?;
            let gone = until_status(self.envoy_addr(0), &host, &path, 404, 3, self.budget).await?;
            removes.push(gone.duration_since(t1).as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let edits = (2 * samples) as f64;
        let cpu = (self.cpu() - cpu0) * 1000.0 / edits;
        let others = (self.responses_to_others() - others0) as f64 / edits;
        adds.sort_by(f64::total_cmp);
        removes.sort_by(f64::total_cmp);
        self.rec("convergence_samples", samples as f64, "count");
        self.rec("convergence_p50_ms", percentile(&adds, 50.0), "ms");
        self.rec("convergence_p99_ms", percentile(&adds, 99.0), "ms");
        self.rec("route_removal_p50_ms", percentile(&removes, 50.0), "ms");
        self.rec("route_removal_p99_ms", percentile(&removes, 99.0), "ms");
        self.rec("cp_cpu_per_edit_ms", cpu, "ms");
        self.rec("xds_responses_to_other_gateways_per_edit", others, "count");
        Ok(())
    }

    /// One EndpointSlice change every Gateway uses: (first, last) ACK after the write, in ms.
    async fn endpoint_change(&mut self, add: bool) -> anyhow::Result<(f64, f64)> {
        let port = u32::from(self.echo_b_port);
        let t0 = Instant::now();
        if add {
            self.world.add_slice_b(self.echo_b_port)?;
        } else {
            self.world.remove_slice_b()?;
        }
        let views = self
            .until_every_sim(|s| s.has_endpoint_port(port) == add)
            .await?;
        let since = |s: &Seen| {
            s.eds_acked_at
                .map(|at| at.saturating_duration_since(t0).as_secs_f64() * 1000.0)
                .unwrap_or(f64::NAN)
        };
        let times: Vec<f64> = views.iter().map(since).collect();
        let first = times.iter().copied().fold(f64::INFINITY, f64::min);
        let last = times.iter().copied().fold(0.0, f64::max);
        Ok((first, last))
    }

    async fn endpoint_changes(&mut self, samples: usize) -> anyhow::Result<()> {
        self.log(&format!(
            "{samples} EndpointSlice changes seen by {} simulated streams",
            self.sims.len()
        ));
        let cpu0 = self.cpu();
        let (mut firsts, mut lasts) = (Vec::new(), Vec::new());
        for _ in 0..samples {
            for add in [true, false] {
                let (first, last) = self.endpoint_change(add).await?;
                firsts.push(first);
                lasts.push(last);
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        let changes = lasts.len() as f64;
        // The 300 ms pauses cost the control plane nothing worth subtracting.
        let cpu = (self.cpu() - cpu0) * 1000.0 / changes;
        firsts.sort_by(f64::total_cmp);
        lasts.sort_by(f64::total_cmp);
        self.rec("eds_simulated_streams", self.sims.len() as f64, "count");
        self.rec("eds_changes", changes, "count");
        self.rec("eds_first_ack_p50_ms", percentile(&firsts, 50.0), "ms");
        self.rec("eds_last_ack_p50_ms", percentile(&lasts, 50.0), "ms");
        self.rec("eds_last_ack_p99_ms", percentile(&lasts, 99.0), "ms");
        self.rec("cp_cpu_per_endpoint_change_ms", cpu, "ms");
        Ok(())
    }

    /// One simulated proxy rejects the next endpoint update (as an Envoy NACKs a config it
    /// cannot take): the control plane must count the NACK and every other stream must still
    /// get the change; the proxy takes the change after it (the slice's removal).
    async fn nack(&mut self) -> anyhow::Result<()> {
        let Some(rejecting) = self.sims.last() else {
            return Ok(());
        };
        self.log(&format!(
            "a simulated proxy of {} NACKs an endpoint update",
            rejecting.gateway
        ));
        rejecting.nack_next(ENDPOINT_TYPE);
        let sent_before = rejecting.seen.borrow().nacks;
        let metrics = self.launch.ports.metrics();
        let before = procs::sum(
            &procs::scrape(metrics, "/metrics").await?,
            "ferrogate_xds_nacks_total",
        );
        let port = u32::from(self.echo_b_port);
        self.world.add_slice_b(self.echo_b_port)?;
        let rejecting = self.sims.len() - 1;
        for (i, sim) in self.sims.iter().enumerate() {
            let mut rx = sim.seen.clone();
            let done = |s: &Seen| {
                s.ended.is_some()
                    || if i == rejecting {
                        s.nacks > sent_before
                    } else {
                        s.has_endpoint_port(port)
                    }
            };
            tokio::time::timeout(self.budget, rx.wait_for(done))
                .await
                .map_err(|_| {
                    anyhow::anyhow!("the update beside a NACK did not reach {}", sim.gateway)
                })?
                .map_err(|_| anyhow::anyhow!("a simulated proxy of {} stopped", sim.gateway))?;
        }
        // The proxy has sent its NACK; the server counts it when it reads it.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut after = before;
        while after == before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let scrape = procs::scrape(metrics, "/metrics").await?;
            after = procs::sum(&scrape, "ferrogate_xds_nacks_total");
        }
        self.rec("xds_nacks_counted", after - before, "count");
        self.world.remove_slice_b()?;
        self.until_every_sim(|s| !s.has_endpoint_port(port)).await?;
        Ok(())
    }

    async fn memory(&mut self, sampler: &RssSampler) {
        let peak = sampler.take_peak();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let settled = procs::rss_bytes(self.ferrogate.pid).unwrap_or(0);
        self.rec("cp_rss_peak_mib", peak as f64 / MIB, "MiB");
        self.rec("cp_rss_settled_mib", settled as f64 / MIB, "MiB");
        let envoys = super::dataplane_impl::all_envoys(&self.launch.work_dir());
        let total: u64 = envoys.iter().filter_map(|p| procs::rss_bytes(*p)).sum();
        self.rec("envoy_processes", envoys.len() as f64, "count");
        self.rec("envoy_rss_total_mib", total as f64 / MIB, "MiB");
    }
}

/// Runs the fleet pass; appends its records to `out` (also those measured before a failure).
pub async fn measure(
    cfg: &BenchConfig,
    size: FleetSize,
    samples: FleetSamples,
    out: &mut Vec<Record>,
) -> anyhow::Result<()> {
    let scratch = super::Scratch::new(cfg, "ferrogate-fleet-", "fleet").await?;
    let (dir, mut echo_a, mut echo_b, _temp) =
        (scratch.dir, scratch.echo_a, scratch.echo_b, scratch.temp);
    // Its own ports, clear of the other passes': xDS, metrics and health at the base, the
    // Gateways' listener just above, then 10 Envoy ports per Gateway.
    let ports = Ports {
        base: cfg.port_base + FLEET_PORT_OFFSET,
    };
    let listener_port = ports.base + 5;
    let pool = vec!["--address-pool".into(), fleet_world::ADDRESS_POOL.into()];
    let launch = FerrogateLaunch::of(cfg, &dir, ports, "delta", pool)?;
    let world = FleetWorld::new(&dir, listener_port)?;
    world.write(size.gateways, size.routes_per_gateway, echo_a.http_port)?;
    if cfg.log {
        eprintln!(
            "[bench ferrogate fleet] {} in {}",
            size.scenario(),
            dir.display()
        );
    }
    let t0 = Instant::now();
    let ferrogate = Ferrogate::start(&launch).await?;
    let sampler = RssSampler::start(ferrogate.pid);
    let mut fleet = Fleet {
        size,
        scenario: size.scenario(),
        world,
        ferrogate,
        launch,
        listener_port,
        echo_a_port: echo_a.http_port,
        echo_b_port: echo_b.http_port,
        sims: Vec::new(),
        ticks: procs::clock_ticks(),
        budget: cfg.probe_budget.max(Duration::from_secs(300)),
        out: Vec::new(),
        run: cfg.run.clone(),
        log: cfg.log,
    };
    let result = async {
        fleet.until_all_serve().await?;
        let up = t0.elapsed().as_secs_f64();
        let cpu = fleet.cpu();
        fleet.rec("fleet_start_s", up, "s");
        fleet.rec("cp_cpu_start_s", cpu, "s");
        fleet.connect_sims().await?;
        let busy = fleet.until_idle().await?;
        fleet.rec("cp_busy_after_serving_s", busy.as_secs_f64(), "s");
        fleet.memory(&sampler).await;
        fleet.route_edits(samples.edits).await?;
        fleet.endpoint_changes(samples.endpoint_changes).await?;
        fleet.nack().await?;
        anyhow::Ok(())
    }
    .await;
    fleet.sims.clear();
    fleet.ferrogate.stop().await;
    super::stop_envoys(&fleet.launch.work_dir()).await;
    echo_a.stop().await;
    echo_b.stop().await;
    out.append(&mut fleet.out);
    result
}

/// Where the fleet's ports start, above the bench's base (the delta pass uses the base, the
/// sotw pass base + 200).
pub const FLEET_PORT_OFFSET: u16 = 400;
