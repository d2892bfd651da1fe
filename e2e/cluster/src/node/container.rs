//! Starting one container: a local process in the Pod's network namespace and in a mount
//! namespace of its own, where each volume's folder is bind-mounted at its mountPath and the
//! Pod's hosts file at `/etc/hosts`.
//!
//! A mountPath that does not exist on the host (`/etc/envoy`) gets a writable overlay on its
//! nearest existing ancestor inside the container's mount namespace, so the folder is made
//! there and never on the host. The chain `ip netns exec` -> `unshare` -> `sh` -> program
//! replaces itself with `exec` at every step, so the process the node holds (and kills, and
//! whose parent-death signal ends it with the node) is the program itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::ManagedProcess;

/// A bind mount into the container.
#[derive(Clone, Debug)]
pub struct Mount {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

/// Everything needed to start a container's process.
#[derive(Debug)]
pub struct Launch<'a> {
    pub name: &'a str,
    pub netns: &'a str,
    pub hostname: &'a str,
    /// Folder for the overlays' upper and work folders.
    pub scratch: &'a Path,
    pub mounts: Vec<Mount>,
    pub env: BTreeMap<String, String>,
    pub argv: Vec<String>,
    pub working_dir: Option<String>,
    pub log: &'a Path,
}

/// PATH when the container sets none (the usual image default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The deepest existing ancestor of `path` (on the host, before any overlay).
fn existing_ancestor(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    while !p.exists() {
        if !p.pop() {
            return PathBuf::from("/");
        }
    }
    p
}

/// The shell script run inside the new mount namespace before `exec`ing the program.
pub fn mount_script(launch: &Launch<'_>) -> anyhow::Result<String> {
    let mut script = vec!["set -e".to_string()];
    // Overlays first (outermost first), so later bind mounts land on top of them.
    let mut overlays = BTreeSet::new();
    for m in &launch.mounts {
        if !m.target.exists() {
            let ancestor = existing_ancestor(&m.target);
            anyhow::ensure!(
                ancestor != Path::new("/"),
                "mountPath {} has no existing ancestor below /",
                m.target.display()
            );
            overlays.insert(ancestor);
        }
    }
    let overlays: Vec<PathBuf> = overlays
        .iter()
        .filter(|a| !overlays.iter().any(|o| o != *a && a.starts_with(o)))
        .cloned()
        .collect();
    for (i, lower) in overlays.iter().enumerate() {
        let (upper, work) = (
            launch.scratch.join(format!("overlay{i}/upper")),
            launch.scratch.join(format!("overlay{i}/work")),
        );
        std::fs::create_dir_all(&upper)?;
        std::fs::create_dir_all(&work)?;
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        script.push(format!(
            "mount -t overlay overlay -o {} {}",
            quote(&options),
            quote(&lower.to_string_lossy())
        ));
    }
    for m in &launch.mounts {
        // A mount over the folder holding the sources would hide the sources mounted after it.
        anyhow::ensure!(
            !launch.scratch.starts_with(&m.target),
            "mountPath {} would hide this node's files ({})",
            m.target.display(),
            launch.scratch.display()
        );
    }
    let mut mounts = launch.mounts.clone();
    mounts.sort_by_key(|m| m.target.components().count());
    for m in &mounts {
        let target = quote(&m.target.to_string_lossy());
        if m.source.is_dir() {
            script.push(format!("mkdir -p {target}"));
        } else {
            script.push(format!(
                "[ -e {target} ] || {{ mkdir -p \"$(dirname {target})\" && touch {target}; }}"
            ));
        }
        script.push(format!(
            "mount --bind {} {target}",
            quote(&m.source.to_string_lossy())
        ));
        if m.read_only {
            script.push(format!("mount -o remount,bind,ro {target}"));
        }
    }
    script.push(format!("hostname {}", quote(launch.hostname)));
    if let Some(dir) = &launch.working_dir {
        script.push(format!("cd {}", quote(dir)));
    }
    script.push("exec \"$@\"".to_string());
    Ok(script.join("\n"))
}

/// Starts the container's process; its stdout and stderr go to `launch.log` as timestamped
/// CRI records, which the log endpoint needs for `sinceTime` and `timestamps`.
pub fn start(launch: &Launch<'_>) -> anyhow::Result<ManagedProcess> {
    let script = mount_script(launch)?;
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        launch.netns,
        "unshare",
        "--mount",
        "--uts",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        &script,
        launch.name,
    ]);
    cmd.args(&launch.argv);
    cmd.env_clear();
    cmd.env("PATH", DEFAULT_PATH)
        .env("HOSTNAME", launch.hostname);
    cmd.envs(&launch.env);
    ManagedProcess::spawn_cri(launch.name, cmd, launch.log)
}
