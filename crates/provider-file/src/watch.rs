//! Watching the config directory: file events wake a debounced re-read of the files they
//! name; a new snapshot is published only when its content changed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ferrogate_store::Snapshot;
use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::DirectoryReader;

/// Quiet time after a burst whose every file was written completely (closed after writing,
/// renamed into place or removed): nothing is half-written any more, so the full debounce,
/// which is there for editors writing a file in several steps, need not be waited. One
/// timer tick still gathers the files of a burst one writer makes back to back (a copy, a
/// checkout); a burst split anyway is merely read in two parts, each a consistent snapshot,
/// and the translation downstream takes the newest (latest wins).
const SETTLE: Duration = Duration::from_millis(1);

/// Paths named by events since the last read, each with whether its last event finished
/// it; `None` when a full re-read is needed (the watcher lost events).
#[derive(Default)]
struct Pending {
    paths: BTreeMap<PathBuf, bool>,
    rescan: bool,
}

impl Pending {
    fn note(&mut self, event: &notify::Event) {
        if event.need_rescan() {
            self.rescan = true;
        }
        let complete = matches!(
            event.kind,
            EventKind::Access(AccessKind::Close(AccessMode::Write))
                | EventKind::Modify(ModifyKind::Name(
                    RenameMode::To | RenameMode::From | RenameMode::Both
                ))
                | EventKind::Remove(_)
        );
        for path in &event.paths {
            self.paths.insert(path.clone(), complete);
        }
    }
}

/// Re-reads `reader`'s directory after every burst of file events (quiet for `debounce`,
/// or for a few milliseconds when every file of the burst is complete) and publishes
/// changed snapshots on `tx` (and the first read in any case). Only the files events name are read again. Problems are
/// logged when they change. Returns when `cancel` fires, or with an error if the watcher
/// cannot start.
pub async fn watch_directory(
    mut reader: DirectoryReader,
    debounce: Duration,
    tx: watch::Sender<Arc<Snapshot>>,
    cancel: CancellationToken,
) -> notify::Result<()> {
    // Capacity 1 is enough: any pending event already means "re-read"; what to read is in
    // `pending`.
    let (events_tx, mut events_rx) = mpsc::channel::<()>(1);
    let pending = Arc::new(Mutex::new(Pending::default()));
    let mut watcher = {
        let pending = pending.clone();
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let mut p = pending.lock().unwrap_or_else(PoisonError::into_inner);
            match event {
                // Opening and reading (our own reads among them) change nothing.
                Ok(e)
                    if e.kind.is_access()
                        && !matches!(
                            e.kind,
                            EventKind::Access(AccessKind::Close(AccessMode::Write))
                        ) =>
                {
                    return;
                }
                Ok(e) => p.note(&e),
                Err(_) => p.rescan = true,
            }
            drop(p);
            let _ = events_tx.try_send(());
        })?
    };
    watcher.watch(reader.dir(), RecursiveMode::Recursive)?;
    let mut last_problems = Vec::new();
    let (returned, report) = off_runtime(reader, DirectoryReader::read).await?;
    reader = returned;
    // The first read is always published, even when it equals the empty initial snapshot:
    // it tells the consumer the directory has been read (standalone's host manager stops
    // the Envoys of Gateways deleted while it was down on its first apply, also when none
    // is left).
    publish(report, &reader, &tx, &mut last_problems, true);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            event = events_rx.recv() => if event.is_none() { return Ok(()) },
        }
        // Debounce: editors write a file in several steps; wait until it is quiet.
        loop {
            let all_complete = {
                let p = pending.lock().unwrap_or_else(PoisonError::into_inner);
                !p.paths.is_empty() && p.paths.values().all(|c| *c)
            };
            let quiet = if all_complete {
                SETTLE.min(debounce)
            } else {
                debounce
            };
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(quiet) => break,
                _ = events_rx.recv() => {}
            }
        }
        let Pending { paths, rescan } =
            std::mem::take(&mut *pending.lock().unwrap_or_else(PoisonError::into_inner));
        let (returned, report) = off_runtime(reader, move |r| {
            if rescan {
                r.read()
            } else {
                r.read_changed(paths.keys().map(PathBuf::as_path))
            }
        })
        .await?;
        reader = returned;
        publish(report, &reader, &tx, &mut last_problems, false);
    }
}

/// Runs a read on the blocking pool: reading and parsing a large or hostile file takes as
/// long as it takes, and the runtime's workers meanwhile keep serving health probes,
/// metrics and xDS. The reader goes there and comes back.
async fn off_runtime(
    mut reader: DirectoryReader,
    read: impl FnOnce(&mut DirectoryReader) -> crate::ReadReport + Send + 'static,
) -> notify::Result<(DirectoryReader, crate::ReadReport)> {
    tokio::task::spawn_blocking(move || {
        let report = read(&mut reader);
        (reader, report)
    })
    .await
    .map_err(|e| notify::Error::generic(&format!("reading the config directory failed: {e}")))
}

fn publish(
    report: crate::ReadReport,
    reader: &DirectoryReader,
    tx: &watch::Sender<Arc<Snapshot>>,
    last_problems: &mut Vec<String>,
    first: bool,
) {
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
            return first;
        }
        tracing::info!(
            files = report.files,
            changed = changed.len(),
            "config directory changed"
        );
        for object in changed.iter().take(20) {
            tracing::debug!(%object, "changed");
        }
        *current = Arc::new(snapshot);
        true
    });
}
