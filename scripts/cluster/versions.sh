# Versions of the local test cluster's parts, in one place (sourced by the scripts beside it).
# Kubernetes: kube-apiserver, kube-controller-manager and kubectl from the k8s.io/kubernetes module.
: "${KUBE_VERSION:=v1.36.3}"
# etcd from go.etcd.io/etcd/server/v3 (Kubernetes 1.34+ pairs with 3.6).
: "${ETCD_VERSION:=v3.6.16}"
# The Gateway API release the translator targets: its upstream CRDs are installed in the test
# cluster, its conformance suite runs against it, and users install the same release. (The
# gateway-api crate 0.22 was generated from v1.5.1, whose schema v1.6 changes only by adding
# TCPRoute/UDPRoute v1 with the v1alpha2 schema and removing sessionPersistence.idleTimeout.)
: "${GATEWAY_API_VERSION:=v1.6.3}"
# CoreDNS, the DNS server of the conformance suite's UDPRoute test (its base manifests name
# this release's image); built from the github.com/coredns/coredns module.
: "${COREDNS_VERSION:=v1.12.2}"
