package compliance_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The domain must stay pure: a verdict is reproducible from recorded facts only if nothing in
// compliance can reach a network, a database or another program.
func TestNoIODependencies(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	out, err := exec.Command(gotool, "list", "-deps", "sockembot/compliance").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list printed no packages")
	}
	for _, dep := range deps {
		if dep == "net" || strings.HasPrefix(dep, "net/") || dep == "database/sql" ||
			strings.HasPrefix(dep, "database/") || dep == "os/exec" {
			t.Errorf("sockembot/compliance depends on %s", dep)
		}
	}
}
