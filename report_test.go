package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	fakejira "sockembot/integrations/fake/jira"
)

// The done-when of the auditor's report: evidence written by the existing flows (the demo's
// /deploy, emergency and merge gate scenes, then a `sockembot check`) into one store, and
// `audit report` over it; then the same on a copy with one record edited.
func TestAuditReportOfEvidenceTheFlowsWrote(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	if res := sockembot(t, nil, "", "demo", "--keep", dir); res.code != 0 {
		t.Fatalf("demo --keep: exit %d\n%s", res.code, res.stderr)
	}
	key, err := os.ReadFile(filepath.Join(dir, "evidence.key"))
	if err != nil {
		t.Fatal(err)
	}
	dbFile := filepath.Join(dir, "sockembot.db")
	w := newWorld(t, fakejira.Cloud)
	w.compliantPR("PAY-1 Refunds endpoint")
	env := append(withoutVar(w.env(), "SOCKEMBOT_EVIDENCE_KEY"), "DATABASE_URL=sqlite://"+dbFile, "SOCKEMBOT_EVIDENCE_KEY="+strings.TrimSpace(string(key)))
	if res := sockembot(t, env, "", "check", "--repo", "acme/payments", "--base", "v1.0.0", "--head", "main"); res.code != 0 {
		t.Fatalf("check into the demo's store: exit %d\n%s", res.code, res.stderr)
	}

	// What was deployed, as the export lists it.
	to := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	export := sockembot(t, env, "", "audit", "export", "--from", "2024-01-01", "--to", to, "--format", "json")
	var rows []struct {
		Repo     string `json:"repo"`
		PRNumber int    `json:"pr_number"`
	}
	if err := json.Unmarshal([]byte(export.stdout), &rows); err != nil || len(rows) == 0 {
		t.Fatalf("export: %v\n%s%s", err, export.stdout, export.stderr)
	}

	out := filepath.Join(t.TempDir(), "report.html")
	res := sockembot(t, env, "", "audit", "report", "--from", "2024-01-01", "--to", to, "--seed", "4242", "--sample", "1000", "-o", out)
	if res.code != 0 || !strings.Contains(res.stdout, "Evidence chain: intact (") || !strings.Contains(res.stdout, "report: "+out) ||
		!strings.Contains(res.stdout, "seed 4242") {
		t.Fatalf("audit report: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if !strings.HasPrefix(page, "<!DOCTYPE html>") || strings.Count(page, "<html") != 1 || !strings.HasSuffix(strings.TrimSpace(page), "</html>") {
		t.Error("the report is not one HTML document")
	}
	if !strings.Contains(page, "<svg") {
		t.Error("the report has no inline SVG chart")
	}
	if m := regexp.MustCompile(`(?i)\b(src|href)\s*=\s*["']?\s*(https?:)?//`).FindString(page); m != "" {
		t.Errorf("the report points at an outside resource: %s", m)
	}
	for _, want := range []string{"Evidence chain: intact (", `<span id="seed">4242</span>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	for _, r := range rows {
		if r.PRNumber != 0 && !strings.Contains(page, fmt.Sprintf("%s#%d", r.Repo, r.PRNumber)) {
			t.Errorf("the report lacks deployed %s#%d", r.Repo, r.PRNumber)
		}
	}
	// The check the CLI just recorded is in the report's figures.
	if m := regexp.MustCompile(`id="fig-checks">(\d+)<`).FindStringSubmatch(page); m == nil || m[1] == "0" {
		t.Errorf("checks recorded: %v", m)
	}

	// On stdout: the HTML, with what the command says on stderr. The same seed draws the same
	// sample.
	small := func() string {
		res := sockembot(t, env, "", "audit", "report", "--from", "2024-01-01", "--to", to, "--seed", "7", "--sample", "2")
		if res.code != 0 || !strings.HasPrefix(res.stdout, "<!DOCTYPE html>") || !strings.Contains(res.stderr, "Evidence chain: intact") ||
			!strings.Contains(res.stderr, "sample: 2 of ") {
			t.Fatalf("audit report to stdout: exit %d\n%s", res.code, res.stderr)
		}
		return res.stdout[strings.Index(res.stdout, `<section id="sample">`):strings.Index(res.stdout, `<section id="exceptions">`)]
	}
	if small() != small() {
		t.Error("the same seed drew another sample")
	}
	// Without a seed one is drawn and printed.
	if res := sockembot(t, env, "", "audit", "report", "--from", "2024-01-01", "--to", to, "-o", filepath.Join(t.TempDir(), "r.html")); res.code != 0 ||
		!regexp.MustCompile(`seed \d+ \(drawn at random; --seed \d+ draws the same sample\)`).MatchString(res.stdout) {
		t.Errorf("no seed: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	// A copy of the store with one record edited behind sockembot's back.
	copyDir := t.TempDir()
	copyFile := filepath.Join(copyDir, "sockembot.db")
	if err := os.WriteFile(copyFile, mustRead(t, dbFile), 0o600); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, "sqlite://"+copyFile)
	if _, err := db.Exec(`UPDATE evidence SET body = replace(body, '"compliant":false', '"compliant":true') WHERE seq = (SELECT min(seq) FROM evidence WHERE body LIKE '%"compliant":false%')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	envCopy := append(withoutVar(env, "DATABASE_URL"), "DATABASE_URL=sqlite://"+copyFile)
	broken := filepath.Join(t.TempDir(), "broken.html")
	res = sockembot(t, envCopy, "", "audit", "report", "--from", "2024-01-01", "--to", to, "--seed", "4242", "-o", broken)
	if res.code != 1 || !strings.Contains(res.stdout, "Evidence chain: BROKEN at record ") {
		t.Fatalf("report of an edited store: exit %d, want 1\n%s%s", res.code, res.stdout, res.stderr)
	}
	if b, err := os.ReadFile(broken); err != nil || !strings.Contains(string(b), "Evidence chain: BROKEN at record ") {
		t.Errorf("the report of an edited store was not written, or does not say BROKEN (%v)", err)
	}
	// Without the key only the links can be checked: written, but not called intact.
	res = sockembot(t, withoutVar(env, "SOCKEMBOT_EVIDENCE_KEY"), "", "audit", "report", "--from", "2024-01-01", "--to", to, "-o", filepath.Join(t.TempDir(), "nokey.html"))
	if res.code != 2 || !strings.Contains(res.stdout, "Evidence chain: NOT VERIFIED") {
		t.Errorf("report without the key: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAuditReportBadInvocations(t *testing.T) {
	db := "DATABASE_URL=sqlite://" + filepath.Join(t.TempDir(), "none.db")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--to", "2024-03-31"}, "--from is required"},
		{[]string{"--from", "2024-03-01"}, "--to is required"},
		{[]string{"--from", "March", "--to", "2024-03-31"}, "--from must be a date"},
		{[]string{"--from", "2024-03-01", "--to", "2024-03-31", "--seed", "-1"}, "--seed must be a whole number"},
		{[]string{"--from", "2024-03-01", "--to", "2024-03-31", "--seed", "1e3"}, "--seed must be a whole number"},
		{[]string{"--from", "2024-03-01", "--to", "2024-03-31", "--sample", "-3"}, "the sample must be between 0 and 1000"},
		{[]string{"--from", "2024-03-01", "--to", "2024-03-31", "--sample", "5000"}, "the sample must be between 0 and 1000"},
		{[]string{"--from", "2024-03-31", "--to", "2024-03-01"}, "ends"},
		{[]string{"--from", "2010-01-01", "--to", "2024-03-01"}, "at most 262"},
		{[]string{"--from", "2024-03-01", "--to", "2024-03-31", "--repo", "acme"}, "--repo must be OWNER/NAME"},
		{[]string{"--from", "2024-03-01", "--to", "2024-03-31", "--env", "prod\nuction"}, "--env must be"},
		{[]string{"--from", "2024-03-01", "--to", "2024-03-31", "extra"}, `unexpected argument "extra"`},
	} {
		res := sockembot(t, []string{db}, "", append([]string{"audit", "report"}, c.args...)...)
		if res.code != 2 || !strings.Contains(res.stderr, c.want) || !strings.Contains(res.stderr, "audit report --help") {
			t.Errorf("%v: exit %d, want 2 with %q\n%s", c.args, res.code, c.want, res.stderr)
		}
	}
	// No store there: nothing is created, and nothing written.
	out := filepath.Join(t.TempDir(), "r.html")
	if res := sockembot(t, []string{db}, "", "audit", "report", "--from", "2024-03-01", "--to", "2024-03-31", "-o", out); res.code != 2 {
		t.Errorf("no store: exit %d\n%s", res.code, res.stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a report was written though the store could not be read")
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}
