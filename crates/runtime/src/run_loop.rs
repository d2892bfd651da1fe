//! The one run loop of every mode: wait for a change (the mode's inputs, or Envoy's
//! answers), translate and publish, hand the output to the mode's sinks. What differs
//! between standalone and controller mode (which inputs wake it, when the world is complete
//! enough to translate, who may write) is the [`Mode`]; everything else is here once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ferrogate_store::Snapshot;
use ferrogate_xds_server::SnapshotCache;
use tokio_util::sync::CancellationToken;

use crate::nack_status::{self, NackDigest};
use crate::pipeline::{Pipeline, RunOutput};

/// What woke a mode.
pub(crate) enum Wake {
    /// An input changed: run.
    Run,
    /// Something the mode handled itself: nothing to run.
    Skip,
    /// An input is gone for good: stop.
    Stop,
}

/// A mode's inputs and outputs around the shared pipeline.
pub(crate) trait Mode {
    /// Waits for the mode's next input change.
    fn changed(&mut self) -> impl Future<Output = Wake> + Send;
    /// The snapshot to translate, with the pipeline's options set for it; `None` while the
    /// world is not complete enough to act on.
    fn prepare(&mut self, pipeline: &mut Pipeline) -> Option<Arc<Snapshot>>;
    /// Hands a run's output to the mode's sinks (status writes, infrastructure).
    fn deliver(&mut self, output: RunOutput, snapshot: Arc<Snapshot>);
}

/// Runs `mode` until `cancel` or until one of its inputs is gone.
pub(crate) async fn run<M: Mode + Send>(
    mut mode: M,
    mut pipeline: Pipeline,
    cache: SnapshotCache,
    ready: Arc<AtomicBool>,
    cancel: CancellationToken,
) {
    let mut nacks = NackDigest::new();
    let mut answers = nack_status::AnswerBursts::new(cache.answers());
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            burst = answers.next() => {
                if burst.is_err() { return }
                let now = nack_status::digest(&cache.stats());
                // An accepted trial of the route quarantine changes no NACK.
                let answered = pipeline.envoy_answers_need_a_run();
                if now == nacks && !answered { continue }
                nacks = now;
            }
            wake = mode.changed() => match wake {
                Wake::Run => {}
                Wake::Skip => continue,
                Wake::Stop => return,
            },
        }
        // The change just woke us: propagation latency counts from here.
        let seen = std::time::Instant::now();
        let Some(snapshot) = mode.prepare(&mut pipeline) else {
            continue;
        };
        let mut output = pipeline.run_at(&snapshot, seen);
        nack_status::annotate(&mut output.statuses, &nacks);
        ready.store(true, Ordering::Release);
        mode.deliver(output, snapshot);
    }
}
