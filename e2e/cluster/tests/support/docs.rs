//! The shell blocks of a page in docs/, as a test reads and runs them: every ```sh block in
//! order, and `bash -euo pipefail` with the local cluster's kubeconfig and its kubectl first
//! on PATH, so a block runs as written.

use std::path::Path;
use std::time::Duration;

/// The ```sh blocks of `markdown`, in order, without their fences.
pub fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_end() == "```sh" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    assert!(current.is_none(), "an unclosed ```sh block");
    blocks
}

/// A command line as a classification compares it: without its trailing `# comment` and with
/// runs of blanks made one, so rewording a comment is not a change of command.
pub fn command(line: &str) -> String {
    let (mut single, mut double, mut previous) = (false, false, ' ');
    let mut end = line.len();
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && previous.is_whitespace() => {
                end = i;
                break;
            }
            _ => {}
        }
        previous = c;
    }
    line[..end].split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The commands of a block (blank lines dropped), compared with [`command`].
pub fn commands(block: &str) -> Vec<String> {
    block
        .lines()
        .map(command)
        .filter(|c| !c.is_empty())
        .collect()
}

/// What a block printed.
#[derive(Debug)]
pub struct Ran {
    pub stdout: String,
    pub stderr: String,
}

/// Runs `block` with `bash -euo pipefail` in `dir`, `KUBECONFIG` set to `kubeconfig` and the
/// folder of `kubectl` first on PATH (as a user who installed it); panics with both outputs
/// when it fails or outlives `timeout`.
pub async fn run(
    block: &str,
    dir: &Path,
    kubeconfig: &Path,
    kubectl: &Path,
    timeout: Duration,
) -> Ran {
    try_run(block, dir, kubeconfig, kubectl, timeout)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// [`run`], with the failure as the error.
pub async fn try_run(
    block: &str,
    dir: &Path,
    kubeconfig: &Path,
    kubectl: &Path,
    timeout: Duration,
) -> Result<Ran, String> {
    let bin = tempfile::tempdir().unwrap();
    // Only kubectl: the folder it was built into also holds the control plane's binaries.
    std::os::unix::fs::symlink(kubectl, bin.path().join("kubectl")).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", block])
        .current_dir(dir)
        .env("KUBECONFIG", kubeconfig)
        .env("PATH", path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("bash");
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| format!("this block did not finish within {timeout:?}:\n{block}"))?
        .expect("bash runs");
    let ran = Ran {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    if out.status.success() {
        Ok(ran)
    } else {
        Err(format!(
            "this block failed ({}):\n{block}\nstdout:\n{}\nstderr:\n{}",
            out.status, ran.stdout, ran.stderr
        ))
    }
}
