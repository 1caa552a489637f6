package render_test

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"sockembot/bot/render"
	"sockembot/compliance"
)

// A check run's summary never passes GitHub's 65,535 characters: a release of thousands of
// changes is cut at a whole row, and the last line counts what was left out.
func TestCheckRunSummaryIsCappedWithACount(t *testing.T) {
	var r compliance.Report
	for i := 1; i <= 3000; i++ {
		r.Changes = append(r.Changes, compliance.ChangeReport{Kind: compliance.KindPullRequest, Number: i,
			Title: strings.Repeat("long title ", 10), URL: fmt.Sprintf("https://github.example/acme/pay/pull/%d", i),
			Violations: []compliance.Violation{{Code: compliance.MissingTicket, Message: "no Jira ticket referenced"}}})
	}
	s := render.CheckRunSummary("intro", r)
	if n := utf8.RuneCountInString(s); n > render.MaxCheckRunSummary {
		t.Fatalf("summary is %d characters, over GitHub's %d", n, render.MaxCheckRunSummary)
	}
	rows := strings.Count(s, "\n| [#")
	fixes := strings.Count(s, "\n- **")
	want := fmt.Sprintf("… and %d more", 6000-rows-fixes)
	if !strings.Contains(s, want) || rows == 0 {
		t.Fatalf("summary of %d rows and %d fixes lacks %q:\n…%s", rows, fixes, want, s[len(s)-300:])
	}
	if strings.Count(s, "… and") != 1 || !strings.HasPrefix(strings.TrimSpace(s[strings.LastIndex(s, "\n\n"):]), "… and") {
		t.Errorf("summary does not end with one count line: …%s", s[len(s)-200:])
	}
}

// What people wrote cannot break the table, link elsewhere or mention anyone in a check run.
func TestCheckRunSummaryEscapesWhatPeopleWrote(t *testing.T) {
	r := compliance.Report{Changes: []compliance.ChangeReport{{
		Kind: compliance.KindPullRequest, Number: 7, URL: "https://github.example/acme/pay/pull/7",
		Title:      "x | y\n# heading [click](https://evil.example) <img src=x> @acme/everyone `code` **bold**",
		Approvals:  []compliance.Approval{{User: "bob|evil"}},
		Violations: []compliance.Violation{{Code: compliance.MissingApproval, Message: "see https://evil.example | @octocat"}},
	}}}
	s := render.CheckRunSummary("", r)
	for _, bad := range []string{"x | y", "\n# heading", "[click](", " <img", "@acme", "@octocat", "`code`", "**bold**", "https://evil", "bob|evil"} {
		if strings.Contains(s, bad) {
			t.Errorf("summary carries %q unescaped:\n%s", bad, s)
		}
	}
	for _, row := range strings.Split(s, "\n") {
		if strings.HasPrefix(row, "| [#7]") && strings.Count(strings.ReplaceAll(row, `\|`, ""), "|") != 5 {
			t.Errorf("the change's row does not have 4 cells: %s", row)
		}
	}
}
