package demo_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sockembot/bot/demo"
)

var update = flag.Bool("update", false, "rewrite testdata/demo.golden with the demo's output")

// The demo tells the same story, in the same words, on every run: a fixed clock, the fakes named
// by host rather than port, stable ids. The golden file holds it, so a change to what people
// see reads as a diff. Stack trace line numbers are the one part that moves with the code, and
// are compared as ".go:N".
func TestDemoTellsTheSameStoryEveryRun(t *testing.T) {
	var runs [2]string
	for i := range runs {
		var b strings.Builder
		if err := demo.Demo(context.Background(), &b, ""); err != nil {
			t.Fatalf("run %d: %v\n%s", i+1, err, b.String())
		}
		runs[i] = b.String()
	}
	if runs[0] != runs[1] {
		t.Fatalf("two runs differ:\n%s", firstDifference(runs[0], runs[1]))
	}
	got := lineNumbers.ReplaceAllString(runs[0], ".go:N")
	// The report is written to the system's temporary directory, which differs by machine.
	got = strings.ReplaceAll(got, os.TempDir()+string(filepath.Separator), "$TMPDIR/")
	golden := filepath.Join("testdata", "demo.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./bot/demo -update to write it)", err)
	}
	if got != string(want) {
		t.Fatalf("the demo's story changed (go test ./bot/demo -update accepts it):\n%s", firstDifference(string(want), got))
	}
}

var lineNumbers = regexp.MustCompile(`\.go:\d+`)

// The story has every scene, in order, with what each is there to show.
func TestDemoStory(t *testing.T) {
	var b strings.Builder
	if err := demo.Demo(context.Background(), &b, ""); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	at := 0
	for _, want := range []string{
		"How to read it:",
		"1. A pull request without a second approval", "failure — no independent approval", "It looks like you're trying to ship",
		"2. A second person approves", "success — approved by dave", "Merged <http://github.example/acme/payments/pull/3",
		"3. A compliant release", "▸ @alice in #releases: /deploy payments to production", "[Deploy] [Cancel]", "▸ @bob presses [Deploy]",
		"*in progress*", "Jira ◂ comment on PAY-101", "*success*", "Jira: commented on PAY-101",
		"4. A release that breaks the policy is refused", "Deploy refused",
		"5. GitHub fails", "sockembot failed", "500 Internal Server Error", "Stack trace",
		"6. Someone who may not deploy", "🔒 only @mallory sees, in #dev:", "not allowed to deploy",
		"7. Search is down", "emergency override", "#incidents:", "Retroactive review needed",
		"8. The overridden changes are reviewed", "You can't approve #2 retroactively", "Retroactive review of *#2* done by @bob",
		"9. A merge queue", "check run sockembot on", "success — Compliant", "failure — Not compliant: 1 of 2 changes",
		"10. GitHub Actions deploys wait for sockembot", "answers workflow run", "approved", "· GitHub Actions", "GitHub Actions run",
		"answers workflow run", "rejected", "re-run the workflow job",
		"11. Everything above is evidence", "audit verify", "chain intact",
		"12. The auditor's report", "Evidence chain: intact (46 records", "sample: 7 of 7 changes deployed, seed 2024",
		"report: " + filepath.Join(os.TempDir(), demo.ReportFile),
	} {
		i := strings.Index(out[at:], want)
		if i < 0 {
			t.Fatalf("the story lacks %q after position %d:\n%s", want, at, out)
		}
		at += i
	}
	// Nothing that changes between runs or machines: no local ports, no goroutine numbers, no
	// build paths (the report's path is in the system's temporary directory).
	out = strings.ReplaceAll(out, filepath.Join(os.TempDir(), demo.ReportFile), "$TMPDIR/"+demo.ReportFile)
	for _, bad := range []*regexp.Regexp{regexp.MustCompile(`127\.0\.0\.1:\d+`), regexp.MustCompile(`goroutine \d+`), regexp.MustCompile(`/work/|/home/|/tmp/`)} {
		if m := bad.FindString(out); m != "" {
			t.Errorf("the story shows %q, which differs between runs", m)
		}
	}
}

// A kept store is a real evidence store: it opens as one and its chain verifies.
func TestDemoKeepsItsStore(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	if err := demo.Demo(context.Background(), &b, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sockembot.db")); err != nil {
		t.Fatalf("no store kept: %v", err)
	}
	// The auditor's report is written beside it, and the story names it.
	report, err := os.ReadFile(filepath.Join(dir, demo.ReportFile))
	if err != nil || !strings.Contains(string(report), "Evidence chain: intact (46 records") || !strings.Contains(b.String(), "report: "+filepath.Join(dir, demo.ReportFile)) {
		t.Fatalf("no report kept beside the store (%v)", err)
	}
}

func firstDifference(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "line " + itoa(i+1) + ":\n  want: " + x + "\n  got:  " + y
		}
	}
	return "(no difference)"
}

func itoa(n int) string {
	s := ""
	for n > 0 || s == "" {
		s = string(rune('0'+n%10)) + s
		n /= 10
	}
	return s
}
