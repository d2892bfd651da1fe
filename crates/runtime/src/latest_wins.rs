//! Slow I/O off the translate path. Each sink (status writes, infrastructure applies) is a
//! task of its own that takes the newest value the pipeline sent it: a slow API server or a
//! slow Envoy start delays that sink, never the next translation or xDS push. A value
//! replaced before the task got to it is dropped, not queued, and counted in
//! `ferrogate_sink_superseded_total{sink}`: the newer value carries everything it had.
//!
//! A value whose work failed (an API error, an unwritable file) is tried again after a
//! backoff, or as soon as a newer value comes, so a failure is never left for the next change
//! of the world to repair (which may be hours away); retries count in
//! `ferrogate_sink_retries_total{sink}`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Metrics;
use crate::serving::Tasks;

/// How a sink's work on one value ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done, or failed in a way that trying again cannot fix.
    Done,
    /// Part of it failed: run it again after a backoff unless a newer value comes first.
    Retry,
}

/// The first wait before a failed value is tried again; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

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
        Fut: Future<Output = Outcome> + Send,
    {
        let (tx, mut rx) = watch::channel::<Option<(u64, Arc<T>)>>(None);
        let superseded = metrics.sink_superseded.with_label_values(&[name]);
        let retries = metrics.sink_retries.with_label_values(&[name]);
        tasks.spawn(async move {
            let mut done = 0u64;
            // The value to try again, and the wait before it.
            let mut failed: Option<(Arc<T>, Duration)> = None;
            loop {
                let retry_after = failed.as_ref().map(|(_, wait)| *wait);
                let value = tokio::select! {
                    _ = cancel.cancelled() => return Ok(name),
                    changed = rx.changed() => {
                        if changed.is_err() { return Ok(name) }
                        let Some((seq, value)) = rx.borrow_and_update().clone() else { continue };
                        superseded.inc_by(seq.saturating_sub(done + 1));
                        done = seq;
                        value
                    }
                    _ = tokio::time::sleep(retry_after.unwrap_or_default()), if retry_after.is_some() => {
                        retries.inc();
                        match failed.take() {
                            Some((value, _)) => value,
                            None => continue,
                        }
                    }
                };
                failed = match work(value.clone()).await {
                    Outcome::Done => None,
                    Outcome::Retry => {
                        let wait = retry_after.map_or(FIRST_BACKOFF, |w| (w * 2).min(MAX_BACKOFF));
                        Some((value, wait))
                    }
                };
            }
        });
        Self { tx, sent: 0 }
    }

    /// Hands `value` to the task, replacing a value it has not taken yet.
    pub(crate) fn send(&mut self, value: T) {
        self.send_shared(Arc::new(value));
    }

    /// Like [`Sink::send`], for a value that may be the one sent last (the same `Arc`): that
    /// one is not sent again, since the task has it (done, or retrying it). A run that changed
    /// nothing for this sink then costs it nothing; at 100 000 routes a status pass over an
    /// unchanged set was a tenth of an edit's CPU.
    pub(crate) fn send_shared(&mut self, value: Arc<T>) {
        let unchanged = self
            .tx
            .borrow()
            .as_ref()
            .is_some_and(|(_, last)| Arc::ptr_eq(last, &value));
        if !unchanged {
            self.sent += 1;
            self.tx.send_replace(Some((self.sent, value)));
        }
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
                    Outcome::Done
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
        stop(cancel, tasks).await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_value_sent_last_is_not_sent_again_and_an_equal_new_one_is() {
        let (metrics, mut tasks, cancel) = (Metrics::new(), Tasks::new(), CancellationToken::new());
        let (mut sink, attempts) =
            recording_sink(&mut tasks, &metrics, &cancel, |_, _| Outcome::Done);
        let value = Arc::new(7);
        sink.send_shared(Arc::clone(&value));
        tokio::time::sleep(Duration::from_millis(10)).await;
        sink.send_shared(Arc::clone(&value));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            attempts.lock().unwrap().len(),
            1,
            "the same Arc again: no work"
        );
        sink.send_shared(Arc::new(7));
        tokio::time::sleep(Duration::from_millis(10)).await;
        let values: Vec<u32> = attempts.lock().unwrap().iter().map(|(v, _)| *v).collect();
        assert_eq!(values, [7, 7], "an equal value in a new Arc is new work");
        stop(cancel, tasks).await;
    }

    /// A sink over `u32`s that records every attempt (value, time) and ends each as
    /// `outcome(value, attempt number from 1)` says.
    fn recording_sink(
        tasks: &mut Tasks,
        metrics: &Metrics,
        cancel: &CancellationToken,
        outcome: fn(u32, usize) -> Outcome,
    ) -> (Sink<u32>, Arc<Mutex<Vec<(u32, tokio::time::Instant)>>>) {
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let record = attempts.clone();
        let sink = Sink::spawn(
            tasks,
            "test",
            metrics,
            cancel.clone(),
            move |v: Arc<u32>| {
                let record = record.clone();
                async move {
                    let mut attempts = record.lock().unwrap();
                    attempts.push((*v, tokio::time::Instant::now()));
                    outcome(*v, attempts.len())
                }
            },
        );
        (sink, attempts)
    }

    async fn stop(cancel: CancellationToken, mut tasks: Tasks) {
        cancel.cancel();
        while let Some(done) = tasks.join_next().await {
            assert_eq!(done.unwrap().unwrap(), "test");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_value_is_tried_again_with_backoff_until_it_succeeds() {
        let (metrics, mut tasks, cancel) = (Metrics::new(), Tasks::new(), CancellationToken::new());
        // The first three attempts fail, like an API server that refuses.
        let (mut sink, attempts) = recording_sink(&mut tasks, &metrics, &cancel, |_, n| {
            if n <= 3 {
                Outcome::Retry
            } else {
                Outcome::Done
            }
        });
        let start = tokio::time::Instant::now();
        sink.send(7);
        while attempts.lock().unwrap().len() < 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_secs(120)).await;
        let attempts = attempts.lock().unwrap().clone();
        assert_eq!(attempts.len(), 4, "no attempt after the success");
        assert!(attempts.iter().all(|(v, _)| *v == 7));
        let waits: Vec<u128> = attempts
            .windows(2)
            .map(|w| (w[1].1 - w[0].1).as_millis())
            .collect();
        assert_eq!(waits, [500, 1000, 2000], "the backoff doubles");
        assert!(attempts[0].1 - start < Duration::from_millis(10));
        let retried = metrics.sink_retries.with_label_values(&["test"]).get();
        assert_eq!(retried, 3);
        stop(cancel, tasks).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_newer_value_replaces_the_failed_one_at_once() {
        let (metrics, mut tasks, cancel) = (Metrics::new(), Tasks::new(), CancellationToken::new());
        let (mut sink, attempts) = recording_sink(&mut tasks, &metrics, &cancel, |v, _| {
            if v == 1 {
                Outcome::Retry
            } else {
                Outcome::Done
            }
        });
        let seen = || -> Vec<u32> { attempts.lock().unwrap().iter().map(|(v, _)| *v).collect() };
        sink.send(1);
        while seen().is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        sink.send(2);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(seen(), [1, 2], "2 ran before 1's backoff ended");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(seen(), [1, 2], "the failed 1 is not tried again");
        stop(cancel, tasks).await;
    }
}
