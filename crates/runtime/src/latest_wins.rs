//! Slow I/O off the translate path. Each sink (status writes, infrastructure applies) is a
//! task of its own that takes the newest value the pipeline sent it: a slow API server or a
//! slow Envoy start delays that sink, never the next translation or xDS push. A value
//! replaced before the task got to it is dropped, not queued, and counted in
//! `ferrogate_sink_superseded_total{sink}`: the newer value carries everything it had.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Metrics;
use crate::serving::Tasks;

/// The sending side of a sink.
pub(crate) struct Sink<T> {
    tx: watch::Sender<Option<(u64, Arc<T>)>>,
    sent: u64,
}

impl<T: Send + Sync + 'static> Sink<T> {
    /// Spawns the task that runs `work` on the newest value, one at a time, until `cancel`.
    pub(crate) fn spawn<F, Fut>(
        tasks: &mut Tasks,
        name: &'static str,
        metrics: &Metrics,
        cancel: CancellationToken,
        mut work: F,
    ) -> Self
    where
        F: FnMut(Arc<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let (tx, mut rx) = watch::channel::<Option<(u64, Arc<T>)>>(None);
        let superseded = metrics.sink_superseded.with_label_values(&[name]);
        tasks.spawn(async move {
            let mut done = 0u64;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(name),
                    changed = rx.changed() => if changed.is_err() { return Ok(name) },
                }
                let Some((seq, value)) = rx.borrow_and_update().clone() else {
                    continue;
                };
                superseded.inc_by(seq.saturating_sub(done + 1));
                done = seq;
                work(value).await;
            }
        });
        Self { tx, sent: 0 }
    }

    /// Hands `value` to the task, replacing a value it has not taken yet.
    pub(crate) fn send(&mut self, value: T) {
        self.sent += 1;
        self.tx.send_replace(Some((self.sent, Arc::new(value))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn a_busy_sink_takes_the_newest_value_and_counts_the_ones_it_skipped() {
        let metrics = Metrics::new();
        let mut tasks = Tasks::new();
        let cancel = CancellationToken::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (gate_tx, gate_rx) = watch::channel(false);
        let record = seen.clone();
        let mut sink = Sink::spawn(
            &mut tasks,
            "test",
            &metrics,
            cancel.clone(),
            move |v: Arc<u32>| {
                let (record, mut gate) = (record.clone(), gate_rx.clone());
                async move {
                    record.lock().unwrap().push(*v);
                    // The first value blocks the sink until the test opens the gate.
                    let _ = gate.wait_for(|open| *open).await;
                }
            },
        );
        sink.send(1);
        while seen.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        for v in 2..=5 {
            sink.send(v);
        }
        gate_tx.send(true).unwrap();
        while seen.lock().unwrap().len() < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            *seen.lock().unwrap(),
            [1, 5],
            "values 2 to 4 were superseded, not queued"
        );
        let skipped = metrics.sink_superseded.with_label_values(&["test"]).get();
        assert_eq!(skipped, 3);
        cancel.cancel();
        while let Some(done) = tasks.join_next().await {
            assert_eq!(done.unwrap().unwrap(), "test");
        }
    }
}
