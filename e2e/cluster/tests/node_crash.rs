//! A node killed with SIGKILL leaves its bridge, its Pods' network namespaces and files
//! behind (kernel objects outlive processes); the next node removes them when it starts, and
//! leaves those of live nodes alone.

use std::process::Command;
use std::time::Duration;

use ferrogate_cluster::node::network::{PREFIX, SLOT_SEPARATOR, ip, owner_tag};
use ferrogate_cluster::node::{Node, NodeOptions};
use ferrogate_cluster::process::ManagedProcess;
use ferrogate_cluster::{ControlPlane, ControlPlaneOptions};

fn leftovers(tag: &str) -> Vec<String> {
    let links = ip(&["-o", "link", "show"]).unwrap();
    let netns = ip(&["netns", "list"]).unwrap();
    let names = links
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or_default().to_string());
    names
        .chain(
            netns
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(str::to_string),
        )
        .filter(|n| {
            n.starts_with(PREFIX)
                && n[PREFIX.len() + 1..].starts_with(&format!("{tag}{SLOT_SEPARATOR}"))
                || *n == format!("{PREFIX}b{tag}")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_nodes_links_namespaces_and_files_are_swept_by_the_next() {
    let plane = ControlPlane::start(ControlPlaneOptions::default())
        .await
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrogate-node"));
    cmd.arg("--kubeconfig")
        .arg(plane.kubeconfig())
        .args(["--name", "doomed"]);
    let mut doomed =
        ManagedProcess::spawn("ferrogate-node", cmd, &plane.dir().join("doomed-node.log")).unwrap();
    let tag = owner_tag(doomed.pid().unwrap());

    // A Pod gives the doomed node a network namespace (its image cannot run; that is enough).
    // The controller-manager makes the `default` ServiceAccount the Pod needs.
    ferrogate_cluster::wait::until("ServiceAccount default", Duration::from_secs(60), || {
        let found = plane
            .kubectl_output(&["get", "serviceaccount", "default"])
            .is_ok();
        async move {
            if found {
                Ok(())
            } else {
                Err("missing".to_string())
            }
        }
    })
    .await
    .unwrap();
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  containers: [{name: c, image: 'busybox:1.36'}]\n";
    ferrogate_cluster::kubectl::run(
        &plane.binaries().kubectl,
        plane.kubeconfig(),
        &["apply", "-f", "-"],
        Some(pod),
    )
    .unwrap();
    ferrogate_cluster::wait::until(
        "the doomed node runs the Pod's sandbox",
        Duration::from_secs(60),
        || {
            let out = plane
                .kubectl_output(&[
                    "get",
                    "pod",
                    "p",
                    "-o",
                    "jsonpath={.spec.nodeName} {.status.podIP}",
                ])
                .unwrap_or_default();
            async move {
                if out.starts_with("doomed 10.244.") {
                    Ok(())
                } else {
                    Err(out)
                }
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", doomed.log_tail(20)));
    doomed.kill();
    let left = leftovers(&tag);
    assert!(
        left.len() >= 3,
        "bridge, host veth and namespace of the killed node are still there: {left:?}"
    );
    let files = std::fs::read_dir("/run/ferrogate-node")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("ferrogate-node-{}-", doomed_pid(&tag)))
                })
                .count()
        })
        .unwrap_or(0);
    assert_eq!(files, 1, "the killed node's Pod files are still there");

    let node = Node::start(plane.client().await.unwrap(), NodeOptions::new("survivor"))
        .await
        .unwrap();
    assert_eq!(
        leftovers(&tag),
        Vec::<String>::new(),
        "the next node swept the dead one's links and namespaces"
    );
    let files = std::fs::read_dir("/run/ferrogate-node")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("ferrogate-node-{}-", doomed_pid(&tag)))
                })
                .count()
        })
        .unwrap_or(0);
    assert_eq!(files, 0, "and its files");
    // Its own bridge is there, named after this process.
    assert_eq!(
        leftovers(&owner_tag(std::process::id())),
        vec![format!("{PREFIX}b{}", owner_tag(std::process::id()))]
    );
    drop(node);
    assert_eq!(
        leftovers(&owner_tag(std::process::id())),
        Vec::<String>::new(),
        "a dropped node removes its bridge"
    );
}

fn doomed_pid(tag: &str) -> u32 {
    u32::from_str_radix(tag, 36).unwrap()
}
