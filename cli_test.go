package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --help on every command exits 0 and says the command's usage, its flags, the environment it
// reads and its exit codes.
func TestEveryCommandAnswersHelp(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"Usage:", "sockembot check", "sockembot run", "sockembot version", "Exit codes"}},
		{[]string{"check", "--help"}, []string{"usage: sockembot check", "-repo OWNER/NAME", "-base REF", "-head REF", "-policy FILE", "-format", "GITHUB_TOKEN", "JIRA_URL", "JIRA_USER", "JIRA_TOKEN", "DATABASE_URL", "Exit codes: 0 compliant, 1 not compliant, 2"}},
		{[]string{"check", "-h"}, []string{"usage: sockembot check"}},
		{[]string{"run", "--help"}, []string{"usage: sockembot run", "SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "SLACK_API_URL", "GITHUB_WEBHOOK_SECRET", "GITHUB_TOKEN", "JIRA_URL", "DATABASE_URL", "PORT", "METRICS_ADDR", "METRICS_TOKEN", "SOCKEMBOT_CONFIG"}},
		{[]string{"demo", "--help"}, []string{"usage: sockembot demo", "-keep DIR", "no credentials"}},
		{[]string{"audit", "--help"}, []string{"usage: sockembot audit", "export", "verify", "DATABASE_URL"}},
		{[]string{"audit", "export", "--help"}, []string{"usage: sockembot audit export", "-from YYYY-MM-DD", "-to YYYY-MM-DD", "-repo OWNER/NAME", "-kind", "-format", "DATABASE_URL"}},
		{[]string{"audit", "report", "--help"}, []string{"usage: sockembot audit report", "-from YYYY-MM-DD", "-to YYYY-MM-DD", "-repo OWNER/NAME", "-env", "-sample N", "-seed SEED", "-github", "-o FILE", "SOCKEMBOT_EVIDENCE_KEY", "DATABASE_URL", "GITHUB_TOKEN", "Exit codes: 0 written, chain intact"}},
		{[]string{"audit", "verify", "--help"}, []string{"usage: sockembot audit verify", "-anchor SEQ:MAC", "-allow-empty", "SOCKEMBOT_EVIDENCE_KEY", "DATABASE_URL", "Exit codes: 0 intact, 1 tampered or empty, 2"}},
		{[]string{"version", "--help"}, []string{"usage: sockembot version"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			res := sockembot(t, nil, "", c.args...)
			if res.code != 0 || res.stderr != "" {
				t.Fatalf("exit %d, stderr %q: want 0 and the help on stdout", res.code, res.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(res.stdout, w) {
					t.Errorf("help lacks %q:\n%s", w, res.stdout)
				}
			}
		})
	}
}

// A wrong argument names the flag and the form it wants, points at --help, and exits 2 without
// dumping every flag.
func TestUsageErrorsNameTheFlag(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"audit", "export", "--from", "2026-01-01", "--to", "soon"}, `--to must be a date (YYYY-MM-DD) or an RFC 3339 time (got "soon")`},
		{[]string{"audit", "export", "--from", "2026-01-01", "--to", "2026-02-01", "--format", "xml"}, `--format must be csv or json (got "xml")`},
		{[]string{"audit", "export", "--from", "2026-01-01", "--to", "2026-02-01", "--kind", "all"}, `--kind must be deployments or events (got "all")`},
		{[]string{"audit", "verify", "--anchor", "42"}, `--anchor is SEQ:MAC`},
		{[]string{"audit", "prune"}, `unknown subcommand "prune"`},
		{[]string{"demo", "now"}, `unexpected argument "now"`},
		{[]string{"run", "--port", "80"}, "flag provided but not defined: -port"},
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			res := sockembot(t, nil, "", c.args...)
			if res.code != 2 || !strings.Contains(res.stderr, c.want) || !strings.Contains(res.stderr, "--help' for usage") {
				t.Fatalf("exit %d, stderr:\n%s\nwant 2 and %q", res.code, res.stderr, c.want)
			}
			if strings.Contains(res.stderr, "  -") {
				t.Errorf("a usage error dumps the flags:\n%s", res.stderr)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		res := sockembot(t, nil, "", arg)
		if res.code != 0 || !strings.HasPrefix(res.stdout, "sockembot ") || !strings.Contains(res.stdout, "revision: ") || !strings.Contains(res.stdout, "go: go1.") {
			t.Fatalf("%s: exit %d\n%s%s", arg, res.code, res.stdout, res.stderr)
		}
	}
}

// A failure report says what it means for the command that failed: an audit that could not
// verify must not read as a check that did not complete.
func TestFailureWordingPerCommand(t *testing.T) {
	absent := "DATABASE_URL=sqlite://" + filepath.Join(t.TempDir(), "absent.db")
	verify := sockembot(t, []string{absent}, "", "audit", "verify")
	if verify.code != 2 || !strings.Contains(verify.stderr, "NOT verified") || strings.Contains(verify.stderr, "The check did not complete") {
		t.Fatalf("audit verify on no store: exit %d\n%s", verify.code, verify.stderr)
	}
	export := sockembot(t, []string{absent}, "", "audit", "export", "--from", "2026-01-01", "--to", "2026-01-31")
	if export.code != 2 || !strings.Contains(export.stderr, "do not use this output") {
		t.Fatalf("audit export on no store: exit %d\n%s", export.code, export.stderr)
	}
}

// `demo --keep DIR` leaves a real evidence store, and says how to read it: the commands it
// prints work.
func TestDemoKeepsAStoreTheAuditCommandsRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo-store")
	res := sockembot(t, nil, "", "demo", "--keep", dir)
	if res.code != 0 || !strings.Contains(res.stdout, "━━ 9.") {
		t.Fatalf("demo --keep: exit %d\n%s", res.code, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "sockembot.db")); err != nil {
		t.Fatal(err)
	}
	i := strings.Index(res.stderr, "DATABASE_URL=")
	if i < 0 {
		t.Fatalf("demo --keep does not say how to read the store:\n%s", res.stderr)
	}
	url := strings.Fields(res.stderr[i:])[0]
	// The demo's evidence key is random, kept beside the store.
	key, err := os.ReadFile(filepath.Join(dir, "evidence.key"))
	if err != nil || !strings.Contains(res.stderr, "its evidence key in "+filepath.Join(dir, "evidence.key")) {
		t.Fatalf("demo --keep does not keep or name its evidence key (%v):\n%s", err, res.stderr)
	}
	verify := sockembot(t, []string{url, "SOCKEMBOT_EVIDENCE_KEY=" + strings.TrimSpace(string(key))}, "", "audit", "verify")
	if verify.code != 0 || !strings.Contains(verify.stdout, "chain intact") {
		t.Fatalf("audit verify on the kept store (%s): exit %d\n%s%s", url, verify.code, verify.stdout, verify.stderr)
	}
	if !strings.Contains(res.stderr, "its auditor's report in "+filepath.Join(dir, "sockembot-demo-report.html")) || !strings.Contains(res.stderr, "sockembot audit report --from 2024-03-01") {
		t.Errorf("demo --keep does not name its report or the command that makes one:\n%s", res.stderr)
	}
	report := sockembot(t, []string{url, "SOCKEMBOT_EVIDENCE_KEY=" + strings.TrimSpace(string(key))}, "", "audit", "report", "--from", "2024-03-01", "--to", "2024-03-31", "--seed", "2024")
	kept, err := os.ReadFile(filepath.Join(dir, "sockembot-demo-report.html"))
	if report.code != 0 || err != nil {
		t.Fatalf("audit report on the kept store: exit %d (%v)\n%s", report.code, err, report.stderr)
	}
	// The demo's report and the command's, of the same store and seed, draw the same sample.
	sample := func(page string) string {
		return page[strings.Index(page, `<section id="sample">`):strings.Index(page, `<section id="exceptions">`)]
	}
	if sample(report.stdout) != sample(string(kept)) {
		t.Error("audit report --seed 2024 drew another sample than the demo's report with the same seed")
	}
}

// run warns when the evidence store would not outlive a restart on the platform it runs on.
func TestStoreWarningOnEphemeralPlatforms(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	for _, c := range []struct {
		name string
		env  func(string) string
		warn bool
	}{
		{"Heroku, default SQLite", env("DYNO", "web.1"), true},
		{"Cloud Run, sqlite URL", env("K_SERVICE", "bot", "DATABASE_URL", "sqlite:///data/s.db"), true},
		{"Kubernetes, PostgreSQL", env("KUBERNETES_SERVICE_HOST", "10.0.0.1", "DATABASE_URL", "postgres://db/s"), false},
		{"a server with a disk", env("DATABASE_URL", ""), false},
	} {
		w := storeWarning(c.env)
		if (w != "") != c.warn || (c.warn && !strings.Contains(w, "lost on restart")) {
			t.Errorf("%s: warning %q", c.name, w)
		}
	}
}
