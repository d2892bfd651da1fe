//! The images of the upstream conformance suite's base manifests, run by the project's node:
//! `echo-basic` (built from the suite's own module) answers HTTP with the Pod's name and
//! namespace from the downward API, and CoreDNS (built from its module with the suite's
//! plugins) answers the UDPRoute test's `whoami` zone from a ConfigMap-mounted Corefile. Both
//! are reached as the suite reaches backends behind a Gateway: on their Pod addresses, and
//! here also through LoadBalancer Services (TCP and UDP forwarding of the node). As the
//! suite's TLS backends do, the echo Pod mounts a Secret created after its Deployment: the
//! node retries until it exists, as the kubelet does.

mod support;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use ferrogate_cluster::node::{Node, NodeOptions, PoolSpec};
use serde_json::Value;
use support::{Cluster, condition_is};

/// As the suite's base manifests have them (the registry host does not matter to the node).
const WORLD: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: images}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: images}
spec:
  replicas: 1
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
      - name: echo
        image: k8s-staging-gateway-api/echo-basic:v20260204-monthly-2026.01-60-g28382302
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: NAMESPACE
          valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
        volumeMounts: [{name: late, mountPath: /etc/late}]
      volumes:
      - name: late
        secret: {secretName: late, items: [{key: greeting, path: greeting}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: images}
spec:
  type: LoadBalancer
  selector: {app: echo}
  ports: [{protocol: TCP, port: 8080, targetPort: 3000}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: images}
data:
  Corefile: |
    .:53 {
        forward . 8.8.8.8 9.9.9.9
        log
        errors
    }
    foo.bar.com:53 {
      whoami
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: images}
spec:
  selector: {matchLabels: {app: udp}}
  template:
    metadata: {labels: {app: udp}}
    spec:
      containers:
      - args: [-conf, /root/Corefile]
        image: coredns/coredns:v1.12.2
        name: coredns
        volumeMounts: [{mountPath: /root, name: conf}]
      volumes:
      - name: conf
        configMap: {name: coredns, defaultMode: 420}
---
apiVersion: v1
kind: Service
metadata: {name: coredns, namespace: images}
spec:
  type: LoadBalancer
  selector: {app: udp}
  ports: [{name: udp-dns, port: 53, protocol: UDP, targetPort: 53}]
"#;

/// A DNS query for `foo.bar.com` A, as the suite's UDPRoute test sends one.
fn dns_query(id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend([0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    for label in ["foo", "bar", "com"] {
        q.push(label.len() as u8);
        q.extend(label.as_bytes());
    }
    q.extend([0, 0, 1, 0, 1]); // root, type A, class IN
    q
}

/// Sends the query to `server`; returns the response's (rcode, additional record count).
fn ask(server: SocketAddr) -> Result<(u8, u16), String> {
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    socket
        .send_to(&dns_query(0x4242), server)
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).map_err(|e| e.to_string())?;
    if n < 12 || buf[..2] != [0x42, 0x42] || buf[2] & 0x80 == 0 {
        return Err(format!("not a reply: {:?}", &buf[..n]));
    }
    Ok((buf[3] & 0x0f, u16::from_be_bytes([buf[10], buf[11]])))
}

fn pod_ip(cluster: &Cluster, selector: &str) -> Option<Ipv4Addr> {
    let pods = cluster.kubectl(&["get", "pods", "-n", "images", "-l", selector, "-o", "json"]);
    let pods: Value = serde_json::from_str(&pods).unwrap();
    let pod = pods["items"].as_array()?.first()?.clone();
    if !condition_is(&pod, "/status/conditions", "Ready", "True") {
        return None;
    }
    pod["status"]["podIP"].as_str()?.parse().ok()
}

async fn ready_pod_ip(cluster: &Cluster, selector: &str) -> Ipv4Addr {
    ferrogate_cluster::wait::until(
        &format!("Pod {selector} Ready"),
        Duration::from_secs(60),
        || {
            let ip = pod_ip(cluster, selector);
            async move { ip.ok_or_else(|| "not Ready".to_string()) }
        },
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e:#}\n{}",
            cluster.kubectl(&["get", "pods", "-n", "images", "-o", "yaml"])
        )
    })
}

async fn lb_address(cluster: &Cluster, service: &str) -> Ipv4Addr {
    let svc = cluster
        .wait_for("Service address", "service", Some("images"), service, |s| {
            s["status"]["loadBalancer"]["ingress"][0]["ip"].is_string()
        })
        .await;
    svc["status"]["loadBalancer"]["ingress"][0]["ip"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_basic_and_coredns_run_as_the_suite_deploys_them() {
    let built = ferrogate_cluster::tools::upstream_conformance().expect("the suite's images build");
    let cluster = Cluster::start().await;
    let mut options = NodeOptions::new("node-img");
    options.images.echo_basic = Some(built.echo_basic);
    options.images.coredns = Some(built.coredns);
    options.load_balancer_pool = Some(PoolSpec::NodeSubnet);
    let node = Node::start(cluster.plane.client().await.unwrap(), options)
        .await
        .expect("the node starts");
    cluster.apply(WORLD);

    // The Secret does not exist yet: the container waits, saying why.
    ferrogate_cluster::wait::until(
        "echo Pod waiting on its Secret",
        Duration::from_secs(60),
        || {
            let waiting = cluster.list("pods", "images").iter().any(|p| {
                p["metadata"]["labels"]["app"] == "echo"
                    && p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                        == "CreateContainerConfigError"
            });
            async move {
                if waiting {
                    Ok(())
                } else {
                    Err("not waiting".to_string())
                }
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    cluster.apply("apiVersion: v1\nkind: Secret\nmetadata: {name: late, namespace: images}\nstringData: {greeting: hello}\n");

    // echo-basic: its JSON names the Pod and namespace the downward API gave it.
    let echo_ip = ready_pod_ip(&cluster, "app=echo").await;
    let lb = lb_address(&cluster, "echo").await;
    for url in [
        format!("http://{echo_ip}:3000/direct"),
        format!("http://{lb}:8080/through-lb"),
    ] {
        let body =
            ferrogate_cluster::wait::until(&format!("curl {url}"), Duration::from_secs(30), || {
                let out = Command::new("curl")
                    .args(["-sSf", "--max-time", "5", &url])
                    .output()
                    .expect("curl");
                async move {
                    if out.status.success() {
                        serde_json::from_slice::<Value>(&out.stdout).map_err(|e| e.to_string())
                    } else {
                        Err(String::from_utf8_lossy(&out.stderr).into_owned())
                    }
                }
            })
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let pod = body["pod"].as_str().unwrap_or_default();
        assert!(pod.starts_with("echo-"), "echo-basic names its Pod: {body}");
        assert_eq!(body["namespace"], "images", "{body}");
        assert!(
            url.ends_with(body["path"].as_str().unwrap_or("?")),
            "{body}"
        );
    }

    // CoreDNS: whoami answers foo.bar.com (NOERROR, the client's address and port as
    // additional records), on the Pod and through the UDP forwarder.
    let dns_ip = ready_pod_ip(&cluster, "app=udp").await;
    let dns_lb = lb_address(&cluster, "coredns").await;
    for server in [
        SocketAddr::from((dns_ip, 53)),
        SocketAddr::from((dns_lb, 53)),
    ] {
        let (rcode, additional) = ferrogate_cluster::wait::until(
            &format!("DNS answer from {server}"),
            Duration::from_secs(30),
            || {
                let got = ask(server);
                async move { got }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(rcode, 0, "NOERROR from {server}");
        assert_eq!(additional, 2, "whoami's A and SRV records from {server}");
    }
    drop(node);
}
