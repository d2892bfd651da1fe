// Package upstream runs the Gateway API conformance suite, unmodified, from its published
// module. Every option comes from the suite's own flags (--gateway-class,
// --conformance-profiles, --supported-features, --report-output, ...); build.sh builds this
// file into a test binary against the release in scripts/cluster/versions.sh.
package upstream

import (
	"testing"

	"sigs.k8s.io/gateway-api/conformance"
)

func TestConformance(t *testing.T) {
	conformance.RunConformance(t)
}
