//! Copies a child's stdout and stderr from pipes into one CRI log file ([`crate::cri_log`]),
//! one timestamped record per line, as a container runtime does for the kubelet.
//!
//! One thread per stream reads its pipe. Each record's time is taken while the file's lock is
//! held, so times never decrease down the file even when both streams write at once (readers
//! that filter by time, as `sinceTime` does, rely on it). A line without its newline when the
//! pipe closes is written as a full record, as containerd does. Threads end when the pipe
//! closes (every holder of its write end exited); [`Drains::wait`] lets the owner wait for
//! that before it reports the exit, so the log holds the last lines by then.

use std::fs::File;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::cri_log::{self, MAX_RECORD_TEXT, Stream};

/// The copying threads of one process.
#[derive(Debug, Default)]
pub struct Drains(Vec<JoinHandle<()>>);

impl Drains {
    /// Starts copying `stdout` and `stderr` into `file`.
    pub fn start(
        file: File,
        stdout: impl Read + Send + 'static,
        stderr: impl Read + Send + 'static,
    ) -> std::io::Result<Self> {
        let file = Arc::new(Mutex::new(file));
        let mut threads = Vec::new();
        for (stream, pipe) in [
            (Stream::Stdout, Box::new(stdout) as Box<dyn Read + Send>),
            (Stream::Stderr, Box::new(stderr)),
        ] {
            let file = file.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("log-{stream:?}").to_lowercase())
                    .spawn(move || copy(pipe, stream, &file))?,
            );
        }
        Ok(Self(threads))
    }

    /// Waits up to `limit` for both pipes to be copied to their end. The limit matters only
    /// when a descendant of the process still holds a pipe open; the lines it writes later
    /// are still copied.
    pub fn wait(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.0.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let (done, running): (Vec<_>, Vec<_>) = std::mem::take(&mut self.0)
            .into_iter()
            .partition(JoinHandle::is_finished);
        for t in done {
            let _ = t.join();
        }
        self.0 = running;
    }
}

/// Copies `pipe` until it closes, one record per line (longer lines in pieces).
fn copy(mut pipe: Box<dyn Read + Send>, stream: Stream, file: &Mutex<File>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        pending.extend_from_slice(&buf[..n]);
        let mut start = 0;
        loop {
            let rest = &pending[start..];
            match rest.iter().position(|b| *b == b'\n') {
                Some(i) if i <= MAX_RECORD_TEXT => {
                    write(file, stream, false, &rest[..i]);
                    start += i + 1;
                }
                _ if rest.len() > MAX_RECORD_TEXT => {
                    write(file, stream, true, &rest[..MAX_RECORD_TEXT]);
                    start += MAX_RECORD_TEXT;
                }
                _ => break,
            }
        }
        pending.drain(..start);
    }
    if !pending.is_empty() {
        write(file, stream, false, &pending);
    }
}

fn write(file: &Mutex<File>, stream: Stream, partial: bool, text: &[u8]) {
    let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
    let record = cri_log::record(OffsetDateTime::now_utc(), stream, partial, text);
    // A full disk loses lines; the process must not block on it.
    let _ = file.write_all(&record);
}
