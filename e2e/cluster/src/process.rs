//! Child processes of the test infrastructure: output to a log file, killed with the test.
//!
//! The control plane's processes write straight to their file. Pod containers
//! ([`ManagedProcess::spawn_cri`]) write through pipes that the node turns into timestamped
//! CRI records ([`crate::log_pipe`]), as a container runtime does for the kubelet.
//!
//! Each child gets `PR_SET_PDEATHSIG(SIGKILL)`, so it dies with the thread that started it
//! even when the test process crashes or is killed; start children from a long-lived thread
//! (a test's own thread or `main`), never from a `spawn_blocking` thread that may retire.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cri_log;
use crate::log_pipe::Drains;

/// How long an exit waits for the last output to reach the log (the pipes close with the
/// process unless a descendant holds them).
const DRAIN_LIMIT: Duration = Duration::from_millis(500);

/// A running child process whose output goes to `log`.
#[derive(Debug)]
pub struct ManagedProcess {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    /// The threads copying the output, for a CRI log (none for a plain one).
    drains: Option<Drains>,
}

impl ManagedProcess {
    /// Starts `command`, appending its stdout and stderr to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let out = open_log(log)?;
        let err = out.try_clone()?;
        command.stdout(out).stderr(err);
        let child = start(name, command)?;
        Ok(Self {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
            drains: None,
        })
    }

    /// Starts `command`, appending its stdout and stderr to `log` as CRI records (one
    /// timestamped line each, [`cri_log`]), as a container's output.
    pub fn spawn_cri(name: &str, mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let file = open_log(log)?;
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = start(name, command)?;
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            unreachable!("both streams were piped");
        };
        let drains = match Drains::start(file, out, err) {
            Ok(d) => d,
            Err(e) => {
                // Nobody would read its pipes: it would block on its first full one.
                let _ = child.kill();
                let _ = child.wait();
                return Err(e).with_context(|| format!("log threads of {name}"));
            }
        };
        Ok(Self {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
            drains: Some(drains),
        })
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the log (its plain text for a CRI log), for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        match self.drains {
            Some(_) => cri_log::tail(&self.log, lines),
            None => tail(&self.log, lines),
        }
    }

    /// `Some(status)` once the process has exited, and then its output is in the log.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        if status.is_some() {
            self.drain();
        }
        status
    }

    /// Waits (briefly) for the output copied from the pipes to reach the log.
    fn drain(&mut self) {
        if let Some(d) = &mut self.drains {
            d.wait(DRAIN_LIMIT);
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.drain();
        }
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn terminate(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: sending a signal to our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                self.drain();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        self.drain();
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn open_log(log: &Path) -> anyhow::Result<File> {
    File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("log file {}", log.display()))
}

/// Starts `command` with no stdin and the parent-death signal.
fn start(name: &str, mut command: Command) -> anyhow::Result<Child> {
    command.stdin(Stdio::null());
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
        .spawn()
        .with_context(|| format!("cannot start {name} ({command:?})"))
}

/// The last `lines` lines of a plain log file ("" when unreadable).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri_log::Stream;

    /// Runs `script` with `sh` as a container would be, until it exits; the log's bytes.
    fn run(script: &str) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c.log");
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", script]);
        let mut p = ManagedProcess::spawn_cri("sh", cmd, &log).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while p.exited().is_none() {
            assert!(Instant::now() < deadline, "sh did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Read right after the exit is reported: nothing may still be on its way.
        std::fs::read(&log).unwrap()
    }

    #[test]
    fn interleaved_stdout_and_stderr_lines_land_with_increasing_times() {
        let file = run(
            "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; sleep 0.01; done; printf 'no newline'",
        );
        let records: Vec<_> = file
            .split_inclusive(|b| *b == b'\n')
            .map(|l| cri_log::parse(l).unwrap_or_else(|| panic!("record: {l:?}")))
            .collect();
        assert_eq!(records.len(), 11, "{}", String::from_utf8_lossy(&file));
        assert!(
            records.windows(2).all(|w| w[0].time <= w[1].time),
            "times never decrease down the file:\n{}",
            String::from_utf8_lossy(&file)
        );
        // Each stream keeps its order; the two may interleave either way within a step.
        let texts = |s: Stream| -> Vec<String> {
            records
                .iter()
                .filter(|r| r.stream == s)
                .map(|r| String::from_utf8_lossy(r.text).into_owned())
                .collect()
        };
        assert_eq!(
            texts(Stream::Stdout),
            ["out1", "out2", "out3", "out4", "out5", "no newline"]
        );
        assert_eq!(
            texts(Stream::Stderr),
            ["err1", "err2", "err3", "err4", "err5"]
        );
        assert!(
            records.iter().all(|r| !r.partial),
            "the last piece is flushed as a full line"
        );
        assert!(cri_log::plain(&file).ends_with(b"no newline\n"));
    }

    #[test]
    fn a_line_longer_than_a_record_is_split_into_partial_records() {
        let n = cri_log::MAX_RECORD_TEXT + 10;
        let file = run(&format!(
            "head -c {n} /dev/zero | tr '\\0' x; echo; echo next"
        ));
        let records: Vec<_> = file
            .split_inclusive(|b| *b == b'\n')
            .filter_map(cri_log::parse)
            .collect();
        let shape: Vec<(bool, usize)> = records.iter().map(|r| (r.partial, r.text.len())).collect();
        assert_eq!(
            shape,
            [(true, cri_log::MAX_RECORD_TEXT), (false, 10), (false, 4)]
        );
        assert_eq!(cri_log::plain(&file).len(), n + 1 + 5);
    }

    #[test]
    fn the_log_tail_of_a_cri_log_is_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c.log");
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "echo one; echo two >&2; exit 3"]);
        let mut p = ManagedProcess::spawn_cri("sh", cmd, &log).unwrap();
        while p.exited().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let tail = p.log_tail(5);
        assert!(tail == "one\ntwo" || tail == "two\none", "{tail:?}");
    }
}
