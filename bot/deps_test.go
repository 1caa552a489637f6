package bot_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// Imports point inward: main → bot → the gates → check → compliance. The gates and the pure
// packages see the outside world only through the few methods they declare; the adapters never
// import a gate; only the demo (and tests) import the fakes. `go list -deps` keeps it so.
func TestImportsPointInward(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	deps := func(pkg string) []string {
		t.Helper()
		out, err := exec.Command(gotool, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		return strings.Fields(string(out))
	}
	adapters := []string{"sockembot/integrations/github", "sockembot/integrations/jira", "sockembot/integrations/slack",
		"sockembot/integrations/store", "github.com/google/go-github", "github.com/andygrunwald/go-jira", "database/sql"}
	fakes := "sockembot/integrations/fake"
	rules := []struct {
		pkg       string
		forbidden []string
	}{
		// Pure: values in, values out.
		{"sockembot/compliance", append(adapters, "sockembot/bot", "net", "os/exec", "github.com/slack-go/slack", "github.com/sirupsen/logrus")},
		// (render builds slack-go's block types; slack-go brings net/http, which render never calls.)
		{"sockembot/bot/render", append(adapters, "sockembot/bot/check", "sockembot/bot/mergegate", "sockembot/bot/deploygate", "os/exec", "github.com/sirupsen/logrus")},
		{"sockembot/bot/deploygate/command", append(adapters, "sockembot/bot/render", "net")},
		// The check path and the gates reach adapters only through interfaces they declare.
		{"sockembot/bot/check", append(adapters, fakes, "sockembot/bot/render", "sockembot/bot/mergegate", "sockembot/bot/deploygate")},
		{"sockembot/bot/mergegate", append(adapters, fakes, "sockembot/bot/deploygate", "sockembot/bot/emergency", "sockembot/bot/rollout")},
		{"sockembot/bot/deploygate", append(adapters, fakes, "sockembot/bot/mergegate", "sockembot/bot/emergency", "sockembot/bot/rollout")},
		{"sockembot/bot/emergency", append(adapters, fakes, "sockembot/bot/mergegate", "sockembot/bot/rollout")},
		{"sockembot/bot/rollout", append(adapters, fakes, "sockembot/bot/mergegate", "sockembot/bot/emergency")},
		// The auditor's side reads the store, nothing else outside.
		{"sockembot/bot/audit", []string{"sockembot/integrations/github", "sockembot/integrations/jira", "sockembot/integrations/slack", fakes, "github.com/google/go-github", "github.com/andygrunwald/go-jira"}},
		// Adapters never import a gate, the runtime or another adapter's fake.
		{"sockembot/integrations/github", []string{"sockembot/bot", fakes}},
		{"sockembot/integrations/jira", []string{"sockembot/bot", fakes}},
		{"sockembot/integrations/slack", []string{"sockembot/bot", fakes}},
		{"sockembot/integrations/store", []string{"sockembot/bot", fakes}},
		// The runtime does not depend on test servers: only the demo brings them in.
		{"sockembot/bot", []string{fakes, "sockembot/bot/demo", "testing"}},
	}
	for _, r := range rules {
		for _, dep := range deps(r.pkg) {
			if dep == r.pkg {
				continue
			}
			for _, f := range r.forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s depends on %s", r.pkg, dep)
				}
			}
		}
	}
}

// Modules with known vulnerabilities stay out of the build: golang-jwt/jwt/v4 before v4.5.2
// (CVE-2024-51744, CVE-2025-30204), which go-jira brings in, is what scanners flag.
func TestNoKnownVulnerableModules(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	out, err := exec.Command(gotool, "list", "-m", "-f", "{{.Version}}", "github.com/golang-jwt/jwt/v4").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m: %v\n%s", err, out)
	}
	v := strings.TrimSpace(string(out))
	var major, minor, patch int
	if _, err := fmt.Sscanf(v, "v%d.%d.%d", &major, &minor, &patch); err != nil {
		t.Fatalf("version %q: %v", v, err)
	}
	if major == 4 && (minor < 5 || minor == 5 && patch < 2) {
		t.Errorf("github.com/golang-jwt/jwt/v4 %s has CVE-2024-51744 and CVE-2025-30204: require v4.5.2 or later", v)
	}
}
