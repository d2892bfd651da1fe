//! Watching the config directory: file events wake a debounced full re-read; a new
//! snapshot is published only when its content changed.

use std::sync::Arc;
use std::time::Duration;

use ferrogate_store::Snapshot;
use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::DirectoryReader;

/// Re-reads `reader`'s directory after every burst of file events (quiet for `debounce`)
/// and publishes changed snapshots on `tx`. Problems are logged when they change. Returns
/// when `cancel` fires, or with an error if the watcher cannot start.
pub async fn watch_directory(
    mut reader: DirectoryReader,
    debounce: Duration,
    tx: watch::Sender<Arc<Snapshot>>,
    cancel: CancellationToken,
) -> notify::Result<()> {
    // Capacity 1 is enough: any pending event already means "re-read".
    let (events_tx, mut events_rx) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = events_tx.try_send(());
        }
    })?;
    watcher.watch(reader.dir(), RecursiveMode::Recursive)?;
    let mut last_problems = Vec::new();
    publish(&mut reader, &tx, &mut last_problems);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            event = events_rx.recv() => if event.is_none() { return Ok(()) },
        }
        // Debounce: editors write a file in several steps; wait until it is quiet.
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(debounce) => break,
                _ = events_rx.recv() => {}
            }
        }
        publish(&mut reader, &tx, &mut last_problems);
    }
}

fn publish(reader: &mut DirectoryReader, tx: &watch::Sender<Arc<Snapshot>>, last_problems: &mut Vec<String>) {
    let report = reader.read();
    if report.problems != *last_problems {
        for problem in &report.problems {
            tracing::warn!(dir = %reader.dir().display(), "{problem}");
        }
        *last_problems = report.problems;
    }
    let snapshot = report.snapshot;
    tx.send_if_modified(|current| {
        let changed = current.diff(&snapshot);
        if changed.is_empty() {
            return false;
        }
        tracing::info!(files = report.files, changed = changed.len(), "config directory changed");
        for object in changed.iter().take(20) {
            tracing::debug!(%object, "changed");
        }
        *current = Arc::new(snapshot);
        true
    });
}
