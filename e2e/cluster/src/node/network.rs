//! The node's network: one Linux bridge on the host holding the first address of a private
//! /24, and per Pod a network namespace joined to the bridge by a veth pair.
//!
//! Everything is named with [`PREFIX`] and the owning process id (base 36), so a node that
//! starts can tell its own links and namespaces from those of another node running at the
//! same time, and remove those whose owner is gone (a crashed test leaves no PDEATHSIG for
//! kernel objects: links and namespaces outlive processes).
//!
//! No NAT is involved: the host reaches every Pod directly on the bridge's subnet, and a Pod
//! reaches the host's addresses through its default route via the bridge address.

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::Context;

/// Prefix of every link and network namespace a node makes.
pub const PREFIX: &str = "fgn";
/// The /16 the node's /24 subnets are taken from (the usual Pod range of kind clusters).
const POOL: [u8; 2] = [10, 244];

/// Runs `ip ARGS`; fails with its stderr.
pub fn ip(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("cannot run `ip` (Debian package iproute2)")?;
    anyhow::ensure!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The part of every name that says which process made it: its pid in base 36.
pub fn owner_tag(mut n: u32) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// The separator between the owner and the slot. It must not be a base-36 digit: with "x"
/// as separator, an owner such as "1x3" (pid 2487) was cut short and read as another pid.
pub const SLOT_SEPARATOR: char = '-';

/// The process id a name of this module carries: PREFIX + one kind letter + base-36 pid,
/// then SLOT_SEPARATOR + slot for per-Pod names. `None` for any other name.
fn owner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(PREFIX)?;
    // b: bridge, n: Pod network namespace, v: Pod veth (host end).
    let rest = rest.strip_prefix(['b', 'n', 'v'])?;
    let digits: String = rest.chars().take_while(|c| *c != SLOT_SEPARATOR).collect();
    let pid = i32::from_str_radix(&digits, 36).ok()?;
    (pid > 0).then_some(pid)
}

fn owner_alive(name: &str) -> bool {
    // Not a name this module makes: leave it alone.
    owner_pid(name).is_none_or(process_exists)
}

/// Whether process `pid` exists, asked of the kernel in this process's own PID namespace
/// (`/proc` may be mounted from another one in a sandbox, where `/proc/<getpid()>` is some
/// other process or none).
fn process_exists(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Removes the links and network namespaces of nodes whose process has exited.
pub fn sweep_leftovers() -> anyhow::Result<Vec<String>> {
    let mut removed = Vec::new();
    for line in ip(&["netns", "list"])?.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if name.starts_with(PREFIX) && !owner_alive(name) {
            ip(&["netns", "delete", name])?;
            removed.push(name.to_string());
        }
    }
    for line in ip(&["-o", "link", "show"])?.lines() {
        // "12: fgnb1a2b: <...>" or "13: fgnv1a2b-3@if2: <...>"
        let Some(name) = line
            .split(':')
            .nth(1)
            .map(|s| s.trim().split('@').next().unwrap_or_default().to_string())
        else {
            continue;
        };
        if name.starts_with(PREFIX) && !owner_alive(&name) {
            // A veth may already be gone with its peer's namespace.
            let _ = ip(&["link", "delete", &name]);
            removed.push(name);
        }
    }
    Ok(removed)
}

/// The host side: a bridge with the subnet's first address.
#[derive(Debug)]
pub struct Bridge {
    pub name: String,
    /// Base-36 process id, part of every name this node makes.
    pub owner: String,
    /// Third octet of 10.244.X.0/24.
    pub subnet: u8,
}

impl Bridge {
    /// Creates the bridge on the first 10.244.X.0/24 that no interface of this host uses.
    pub fn create() -> anyhow::Result<Self> {
        let owner = owner_tag(std::process::id());
        let name = format!("{PREFIX}b{owner}");
        let _lock = HostLock::take()?;
        let used = ip(&["-o", "-4", "addr", "show"])?;
        let subnet = (0..=255u8)
            .find(|x| !used.contains(&format!(" {}.{}.{x}.", POOL[0], POOL[1])))
            .context("every 10.244.X.0/24 is in use on this host")?;
        ip(&["link", "add", &name, "type", "bridge"])?;
        let bridge = Self {
            name,
            owner,
            subnet,
        };
        ip(&[
            "addr",
            "add",
            &format!("{}/24", bridge.host_ip()),
            "dev",
            &bridge.name,
        ])?;
        ip(&["link", "set", &bridge.name, "up"])?;
        Ok(bridge)
    }

    /// The host's address on the bridge (.1): the Pods' gateway, and where test servers the
    /// Pods must reach (xDS, backends) listen.
    pub fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(POOL[0], POOL[1], self.subnet, 1)
    }

    /// The address of Pod slot `slot` (2..=254).
    pub fn pod_ip(&self, slot: u8) -> Ipv4Addr {
        Ipv4Addr::new(POOL[0], POOL[1], self.subnet, slot)
    }

    /// The start of the name of every Pod network namespace of this node.
    pub fn namespace_prefix(&self) -> String {
        format!("{PREFIX}n{}{SLOT_SEPARATOR}", self.owner)
    }

    /// Makes the network namespace of Pod slot `slot`: loopback up, `eth0` with the slot's
    /// address, default route via the bridge.
    pub fn add_pod(&self, slot: u8) -> anyhow::Result<PodNetwork> {
        let netns = format!("{}{slot}", self.namespace_prefix());
        let host_link = format!("{PREFIX}v{}{SLOT_SEPARATOR}{slot}", self.owner);
        let pod = PodNetwork {
            netns,
            host_link,
            ip: self.pod_ip(slot),
        };
        ip(&["netns", "add", &pod.netns])?;
        ip(&[
            "link",
            "add",
            &pod.host_link,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &pod.netns,
        ])?;
        ip(&["link", "set", &pod.host_link, "master", &self.name, "up"])?;
        ip(&["-n", &pod.netns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            &pod.netns,
            "addr",
            "add",
            &format!("{}/24", pod.ip),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &pod.netns, "link", "set", "eth0", "up"])?;
        ip(&[
            "-n",
            &pod.netns,
            "route",
            "add",
            "default",
            "via",
            &self.host_ip().to_string(),
        ])?;
        Ok(pod)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = ip(&["link", "delete", &self.name]);
    }
}

/// One Pod's network namespace and veth; removed on drop.
#[derive(Debug)]
pub struct PodNetwork {
    pub netns: String,
    pub host_link: String,
    pub ip: Ipv4Addr,
}

impl Drop for PodNetwork {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth end, and with it the host end.
        let _ = ip(&["netns", "delete", &self.netns]);
        let _ = ip(&["link", "delete", &self.host_link]);
    }
}

/// An exclusive lock on the host while a node picks its subnet, so two nodes starting at
/// the same moment do not take the same one.
struct HostLock {
    _file: std::fs::File,
}

impl HostLock {
    fn take() -> anyhow::Result<Self> {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::env::temp_dir().join("ferrogate-node.lock"))?;
        // SAFETY: flock on a descriptor we own; released when the file closes.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        anyhow::ensure!(rc == 0, "flock: {}", std::io::Error::last_os_error());
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_owner() {
        let me = format!("{PREFIX}b{}", owner_tag(std::process::id()));
        assert!(owner_alive(&me));
        assert!(owner_alive(&format!(
            "{PREFIX}n{}{SLOT_SEPARATOR}7",
            owner_tag(std::process::id())
        )));
        // pid 0x7fffffff never exists on Linux (pid_max is at most 2^22).
        assert!(!owner_alive(&format!(
            "{PREFIX}v{}{SLOT_SEPARATOR}3",
            owner_tag(0x7fff_ffff)
        )));
        assert!(
            owner_alive("fgnother-name"),
            "foreign names are never swept"
        );
    }

    #[test]
    fn owners_whose_tag_holds_an_x_are_read_whole() {
        // 2487 is "1x3" in base 36: the letter x is a digit, not the end of the owner.
        assert_eq!(owner_tag(2487), "1x3");
        assert_eq!(
            owner_pid(&format!("{PREFIX}n1x3{SLOT_SEPARATOR}9")),
            Some(2487)
        );
        assert_eq!(owner_pid(&format!("{PREFIX}b1x3")), Some(2487));
        assert_eq!(owner_pid("eth0"), None);
        // The longest owner (pid 2^31-1) plus a three-digit slot fits Linux's 15-byte
        // interface names.
        let longest = format!("{PREFIX}v{}{SLOT_SEPARATOR}254", owner_tag(0x7fff_ffff));
        assert!(longest.len() <= 15, "{longest}");
    }
}
