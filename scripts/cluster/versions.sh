# Versions of the local test cluster's parts, in one place (sourced by the scripts beside it).
# Kubernetes: kube-apiserver, kube-controller-manager and kubectl from the k8s.io/kubernetes module.
: "${KUBE_VERSION:=v1.36.3}"
# etcd from go.etcd.io/etcd/server/v3 (Kubernetes 1.34+ pairs with 3.6).
: "${ETCD_VERSION:=v3.6.16}"
# The Gateway API release the translator targets: its upstream CRDs are installed in the test
# cluster, its conformance suite runs against it, users install the same release, and the
# workspace's Gateway API types (crates/gateway-types) are generated from its CRDs
# (`make gateway-types`; regenerate them when this changes).
: "${GATEWAY_API_VERSION:=v1.6.3}"
# CoreDNS, the DNS server of the conformance suite's UDPRoute test (its base manifests name
# this release's image); built from the github.com/coredns/coredns module.
: "${COREDNS_VERSION:=v1.12.2}"
