//go:build tools

// The echo backend of the suite's base manifests is built from the same module graph as the
// suite, so the two always come from one release.
package upstream

import _ "sigs.k8s.io/gateway-api/conformance/echo-basic"
