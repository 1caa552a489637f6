package render_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"sockembot/bot/check"
	"sockembot/bot/render"
	"sockembot/compliance"
)

// Golden files hold what people read, so a change to it is a reviewed diff:
// go test ./bot/render -update rewrites them.
var update = flag.Bool("update", false, "rewrite testdata/golden with the renderers' output")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".txt")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./bot/render -update writes it)", err)
	}
	if string(want) == got {
		return
	}
	wl, gl := strings.Split(string(want), "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			t.Fatalf("%s differs from its golden file at line %d (go test ./bot/render -update accepts it):\n  want: %s\n  got:  %s", name, i+1, w, g)
		}
	}
}

// messageText prints a Slack message as a reviewer reads it: the notification text, then each
// block, one per paragraph. It also checks the message is valid Block Kit JSON.
func messageText(t *testing.T, m render.Message) string {
	t.Helper()
	raw, err := json.Marshal(slack.Blocks{BlockSet: m.Blocks})
	if err != nil {
		t.Fatalf("blocks do not marshal: %v", err)
	}
	var blocks []map[string]any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "text: %s\n", m.Text)
	text := func(v any) string {
		if o, ok := v.(map[string]any); ok {
			s, _ := o["text"].(string)
			return s
		}
		return ""
	}
	for _, bl := range blocks {
		switch bl["type"] {
		case "header":
			fmt.Fprintf(&b, "[header] %s\n", text(bl["text"]))
		case "divider":
			b.WriteString("[divider]\n")
		case "section":
			fmt.Fprintf(&b, "[section]\n%s\n", text(bl["text"]))
			if acc, ok := bl["accessory"].(map[string]any); ok {
				fmt.Fprintf(&b, "  (button %q action=%s value=%q)\n", text(acc["text"]), acc["action_id"], acc["value"])
			}
		case "context":
			var parts []string
			for _, e := range bl["elements"].([]any) {
				parts = append(parts, text(e))
			}
			fmt.Fprintf(&b, "[context] %s\n", strings.Join(parts, " | "))
		case "actions":
			for _, e := range bl["elements"].([]any) {
				o := e.(map[string]any)
				fmt.Fprintf(&b, "[button %q action=%s value=%q style=%v]\n", text(o["text"]), o["action_id"], o["value"], o["style"])
			}
		default:
			fmt.Fprintf(&b, "[%v]\n", bl["type"])
		}
	}
	return b.String()
}

func digestText(t *testing.T, d render.Digest) string {
	t.Helper()
	root, thread := render.DigestMessage(d)
	out := messageText(t, root)
	for i, m := range thread {
		out += fmt.Sprintf("\n--- thread reply %d ---\n%s", i+1, messageText(t, m))
	}
	return out
}

var (
	at      = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	baseSHA = strings.Repeat("a", 40)
	headSHA = strings.Repeat("b", 40)
)

func pr(n int, title, author string, approvers []string, tickets []compliance.Ticket, violations ...compliance.Violation) compliance.ChangeReport {
	c := compliance.ChangeReport{Kind: compliance.KindPullRequest, Number: n, Title: title, Author: author, MergedBy: author,
		URL: fmt.Sprintf("https://github.com/acme/payments/pull/%d", n), Commits: []string{fmt.Sprintf("%040x", n)},
		Tickets: tickets, Compliant: len(violations) == 0, Violations: violations}
	for _, a := range approvers {
		c.Approvals = append(c.Approvals, compliance.Approval{User: a, At: at})
	}
	return c
}

func ticket(key, status string) compliance.Ticket {
	return compliance.Ticket{Key: key, Found: true, Status: status, StatusCategory: "indeterminate", URL: "https://acme.atlassian.net/browse/" + key}
}

func report(changes ...compliance.ChangeReport) compliance.Report {
	r := compliance.Report{Repo: "acme/payments", Base: "v1.3.0", Head: "v1.4.0", BaseSHA: baseSHA, HeadSHA: headSHA, Compliant: true, Changes: changes}
	for _, c := range changes {
		r.Compliant = r.Compliant && c.Compliant
	}
	return r
}

func compliantRelease() compliance.Report {
	return report(
		pr(12, "PAY-12 Refunds endpoint", "alice", []string{"bob"}, []compliance.Ticket{ticket("PAY-12", "In Progress")}),
		pr(13, "Retry card captures", "carol", []string{"dave"}, []compliance.Ticket{ticket("PAY-13", "Done")}),
	)
}

func badRelease() compliance.Report {
	direct := compliance.ChangeReport{Kind: compliance.KindDirectPush, Title: "hotfix: typo", Author: "frank", Commits: []string{strings.Repeat("c", 40)},
		Violations: []compliance.Violation{{Code: compliance.DirectPush, Message: "commit ccccccc by frank was pushed straight to the branch without a pull request, so nobody reviewed it"}}}
	return report(
		pr(12, "PAY-12 Refunds endpoint", "alice", []string{"bob"}, []compliance.Ticket{ticket("PAY-12", "In Progress")}),
		pr(14, "Tweak ranking", "frank", nil, nil,
			compliance.Violation{Code: compliance.MissingTicket, Message: "no Jira ticket referenced in the title, body, branch or commits"},
			compliance.Violation{Code: compliance.MissingApproval, Message: "needs 1 approval on the last commit from someone other than the author; has 0"}),
		pr(15, "PAY-99 Ledger export", "erin", []string{"frank"}, []compliance.Ticket{{Key: "PAY-99", URL: "https://acme.atlassian.net/browse/PAY-99"}},
			compliance.Violation{Code: compliance.TicketNotFound, Message: "PAY-99 was not found in Jira"}),
		direct,
	)
}

func digest(r compliance.Report) render.Digest {
	return render.Digest{DeployID: 7, Service: "payments", Env: "production", Repo: r.Repo, Ref: "v1.4.0", Requester: "U0ALICE",
		CompareURL: render.CompareURL(r), Report: r, PolicyHash: "5860dcc3c9e5a1b2c3d4"}
}

func TestGoldenDigests(t *testing.T) {
	d := digest(compliantRelease())
	d.Buttons = true
	golden(t, "digest_compliant", digestText(t, d))

	golden(t, "digest_refused", digestText(t, digest(badRelease())))

	e := digest(badRelease())
	e.Emergency, e.EmergencyReason, e.Buttons = true, "checkout is down for every customer", true
	golden(t, "digest_emergency", digestText(t, e))

	s := digest(compliantRelease())
	s.Status = "🚀 *Deploying* · GitHub deployment 1000019 · confirmed by <@U0BOB> at 10:05 UTC"
	golden(t, "digest_status", digestText(t, s))

	var many []compliance.ChangeReport
	for i := 1; i <= 40; i++ {
		many = append(many, pr(i, fmt.Sprintf("PAY-%d Change number %d", i, i), "alice", []string{"bob"}, []compliance.Ticket{ticket(fmt.Sprintf("PAY-%d", i), "In Progress")}))
	}
	big := digest(report(many...))
	big.Buttons = true
	golden(t, "digest_40_changes", digestText(t, big))

	// Text a pull request author controls: what Slack would read as a mention, a link or a code
	// fence is escaped where it is shown.
	hostile := report(
		pr(16, "<!channel> <https://evil.example|click here> & ```rm -rf```", "mallory", nil, []compliance.Ticket{ticket("PAY-1", "<b>In</b> & Progress")},
			compliance.Violation{Code: compliance.MissingApproval, Message: "needs 1 approval from someone other than <@U0MALLORY>; has 0"}),
	)
	golden(t, "digest_hostile_text", digestText(t, digest(hostile)))
}

// stackLines makes a stack trace comparable: its line numbers move whenever the test file is
// edited, so they read .go:N in the golden files.
var stackLines = regexp.MustCompile(`\.go:\d+`)

func TestGoldenFailureReports(t *testing.T) {
	traced := check.Errorf("gather acme/payments v1.3.0..v1.4.0: %w", errors.New("GET https://api.github.com/repos/acme/payments/compare/v1.3.0...v1.4.0: 502 Bad Gateway"))
	f := render.Failure{Doing: "check payments v1.4.0 → production", Err: traced}
	golden(t, "failure_error_slack", stackLines.ReplaceAllString(messageText(t, render.FailureMessage(f, "deploy #7 · requested by <@U0ALICE>")), ".go:N"))
	golden(t, "failure_error_text", stackLines.ReplaceAllString(f.Text(), ".go:N"))

	panicked := check.Safely(func() error {
		var m map[string]int
		m["boom"]++
		return nil
	})
	p := render.Failure{Doing: "handle `/deploy status payments`", Err: panicked,
		Consequence: "Nothing was deployed by this command. Check `/deploy status` before trying again once the cause is fixed."}
	golden(t, "failure_panic_slack", stackLines.ReplaceAllString(messageText(t, render.FailureMessage(p)), ".go:N"))
	golden(t, "failure_panic_text", stackLines.ReplaceAllString(p.Text(), ".go:N"))
}

func TestGoldenNotes(t *testing.T) {
	ok := pr(12, "PAY-12 Refunds endpoint", "alice", []string{"bob"}, []compliance.Ticket{ticket("PAY-12", "In Progress")})
	bad := badRelease().Changes[1]
	notes := []string{
		render.MergeNoteText(render.MergeNote{Repo: "acme/payments", Number: 12, Title: ok.Title, URL: ok.URL, MergedBy: "bob", Compliant: true, Change: ok, Seq: 41}),
		render.MergeNoteText(render.MergeNote{Repo: "acme/payments", Number: 14, Title: bad.Title, URL: bad.URL, MergedBy: "frank", Change: bad, Seq: 42}),
		render.MergeNoteText(render.MergeNote{Repo: "acme/payments", Number: 14, Title: bad.Title, MergedBy: "frank", Change: bad, Reconciled: true, Seq: 43}),
		render.MergeFailureNote("acme/payments#14", render.Failure{Doing: "check the merged pull request", Err: errors.New("jira projects: 503 Service Unavailable"),
			Consequence: "The merge is not treated as compliant; sockembot will try to judge it again."}),
		render.DirectPushAlert("acme/payments", "main", "frank", []render.DirectPush{{SHA: strings.Repeat("c", 40), Message: "hotfix: typo\n\nlonger body", Author: "frank", Seq: 44}}),
		render.DirectPushAlert("acme/payments", "main", "frank", []render.DirectPush{
			{SHA: strings.Repeat("c", 40), Message: "one", Author: "frank", Seq: 45},
			{SHA: strings.Repeat("d", 40), Message: "two", Author: "", Seq: 46},
			{SHA: strings.Repeat("e", 40), Message: "three <!here>", Author: "gina", Seq: 47}}),
	}
	golden(t, "notes", strings.Join(notes, "\n\n======\n\n")+"\n")
}

func TestGoldenGitHubText(t *testing.T) {
	ok := pr(12, "PAY-12 Refunds endpoint", "alice", []string{"bob"}, []compliance.Ticket{ticket("PAY-12", "In Progress")})
	bad := badRelease().Changes[1]
	long := ok
	for i := 0; i < 30; i++ {
		long.Tickets = append(long.Tickets, ticket(fmt.Sprintf("PAY-%d", 100+i), "In Review"))
	}
	out := []string{
		"status (pass): " + render.StatusDescription(ok),
		"status (fail): " + render.StatusDescription(bad),
		"status (long): " + render.StatusDescription(long),
		render.PRComment(headSHA, bad, "sockembot/compliance"),
		render.FixedComment(headSHA, ok),
	}
	golden(t, "github", strings.Join(out, "\n======\n")+"\n")
}

func TestGoldenSummaryReportAndClippy(t *testing.T) {
	full := render.Summary{Day: at, Merges: 5, CompliantMerges: 4, Deploys: 3, CompliantDeploys: 2, DirectPushes: 1, RefusedDeploys: 1,
		Violations:         map[compliance.Code]int{compliance.MissingTicket: 2, compliance.DirectPush: 1, compliance.StaleApproval: 2},
		NonCompliantMerges: []string{"acme/payments#14"}, Overrides: 1,
		OverdueReviews: []string{"• acme/search #2 in *search* (deploy #4, <@U0ALICE> → production): due 2026-02-27, 72h0m0s overdue"},
		HeadSeq:        120, HeadHash: strings.Repeat("f", 64)}
	out := []string{
		render.SummaryText(full),
		render.SummaryText(render.Summary{Day: at}),
		render.ReportText(badRelease()),
		render.Clippy("breaks the change policy:", "- no Jira ticket"),
	}
	golden(t, "summary_report_clippy", strings.Join(out, "\n======\n")+"\n")
}
