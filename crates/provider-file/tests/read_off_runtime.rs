//! Reading the config directory never stalls the runtime it is watched from: a file whose
//! read blocks (here a FIFO no one writes yet, standing in for a slow disk or a hostile
//! file) leaves other tasks of a single-threaded runtime running, and a deeply nested file
//! is refused at once with a problem naming it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferrogate_provider_file::{DirectoryReader, watch_directory};
use ferrogate_store::Snapshot;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: n}\n";

#[tokio::test(flavor = "current_thread")]
async fn a_blocking_read_leaves_the_runtime_free() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("slow.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());

    let (tx, mut rx) = watch::channel(Arc::new(Snapshot::default()));
    let cancel = CancellationToken::new();
    let watcher = tokio::spawn(watch_directory(
        DirectoryReader::new(dir.path()),
        Duration::from_millis(10),
        tx,
        cancel.clone(),
    ));

    // A task standing for /healthz: it must keep running while the read is blocked.
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = ticks.load(Ordering::Relaxed);
    assert!(
        during >= 10,
        "only {during} ticks in 300 ms while the read was blocked"
    );

    // Unblock the read: the FIFO's content arrives as the first snapshot.
    let writer = std::thread::spawn(move || std::fs::write(&fifo, SERVICE).unwrap());
    tokio::time::timeout(Duration::from_secs(10), rx.changed())
        .await
        .expect("first snapshot")
        .unwrap();
    assert_eq!(rx.borrow().services.len(), 1);
    writer.join().unwrap();
    cancel.cancel();
    ticker.abort();
    watcher.await.unwrap().unwrap();
}

#[test]
fn a_deeply_nested_file_is_refused_in_milliseconds_and_the_others_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.yaml"), SERVICE).unwrap();
    let nested = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: b, namespace: n}}\nspec: {}",
        "[".repeat(200_000)
    );
    std::fs::write(dir.path().join("nested.yaml"), nested).unwrap();
    let started = Instant::now();
    let report = DirectoryReader::new(dir.path()).read();
    let took = started.elapsed();
    eprintln!("read a 200 KB nested file and a good one in {took:?}");
    assert!(took < Duration::from_millis(500), "took {took:?}");
    assert_eq!(report.snapshot.services.len(), 1);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("nested.yaml: line 4: brackets nested deeper than 64")),
        "{:?}",
        report.problems
    );
}
