//! docs/controller.md's "A local control plane for development", run as written: `make
//! cluster`'s binary, then the documented shell block (chart objects applied, a kubeconfig for
//! the chart's ServiceAccount, certgen, `ferrogate controller` in the background, and the
//! GatewayClass Accepted). The block runs in a scratch folder that links the repository's
//! scripts, charts, build and tools, so it writes nothing into the checkout.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferrogate_cluster::tools::repo_root;

fn documented_block() -> String {
    let doc = std::fs::read_to_string(repo_root().join("docs/controller.md")).unwrap();
    let start = doc
        .find("<!-- local-cluster:begin -->")
        .expect("begin marker");
    let end = doc.find("<!-- local-cluster:end -->").expect("end marker");
    let block = &doc[start..end];
    let code = block
        .split("```sh\n")
        .nth(1)
        .expect("a sh block")
        .split("```")
        .next()
        .unwrap();
    code.to_string()
}

#[test]
fn the_documented_local_cluster_commands_work() {
    let root = repo_root();
    let scratch = tempfile::tempdir().unwrap();
    for entry in ["scripts", "charts", "target", ".tools"] {
        std::os::unix::fs::symlink(root.join(entry), scratch.path().join(entry)).unwrap();
    }
    std::fs::create_dir(scratch.path().join(".run")).unwrap();
    let kubeconfig = scratch.path().join(".run/cluster.kubeconfig");

    // `make cluster` (its binary): stays in the foreground until interrupted.
    let mut cluster = Command::new(env!("CARGO_BIN_EXE_ferrogate-cluster"))
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .current_dir(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(cluster.stdout.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("export KUBECONFIG="));
    assert!(
        ready.is_some(),
        "ferrogate-cluster never printed the kubeconfig"
    );

    // The documented block, in its own process group (it starts the controller in the
    // background), with a deadline.
    let mut block = Command::new("bash");
    block
        .args(["-euo", "pipefail", "-c", &documented_block()])
        .current_dir(scratch.path())
        .env_remove("KUBECONFIG");
    // SAFETY: setpgid on the child before exec.
    unsafe {
        block.pre_exec(|| {
            libc::setpgid(0, 0);
            Ok(())
        });
    }
    let mut block = block.spawn().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = block.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(180) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // Stop the background controller, then the control plane.
    unsafe {
        libc::kill(-(block.id() as i32), libc::SIGTERM);
        libc::kill(cluster.id() as i32, libc::SIGINT);
    }
    let _ = cluster.wait();
    let status = status.expect("the documented commands did not finish within 180 s");
    assert!(status.success(), "the documented commands failed: {status}");
}
