package render

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sockembot/bot/check"
	"sockembot/compliance"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

func release(n int, bad func(i int) bool) compliance.Report {
	r := compliance.Report{Repo: "acme/payments", Base: "v1", Head: "main",
		BaseSHA: strings.Repeat("a", 40), HeadSHA: strings.Repeat("b", 40), Compliant: true}
	for i := 1; i <= n; i++ {
		c := compliance.ChangeReport{
			Kind: compliance.KindPullRequest, Number: i, Title: fmt.Sprintf("Change number %d of the release", i),
			URL:    fmt.Sprintf("https://github.com/acme/payments/pull/%d", i),
			Author: "alice", Approvals: []compliance.Approval{{User: "bob"}},
			Tickets:   []compliance.Ticket{{Key: fmt.Sprintf("PAY-%d", i), Found: true, Status: "In Progress", URL: fmt.Sprintf("https://jira.example/browse/PAY-%d", i)}},
			Compliant: true,
		}
		if bad(i) {
			c.Compliant, r.Compliant = false, false
			c.Tickets = nil
			c.Violations = []compliance.Violation{{Code: compliance.MissingTicket, Message: "No Jira ticket is referenced in the title, body, branch or commits."}}
		}
		r.Changes = append(r.Changes, c)
	}
	return r
}

// checkLimits fails when a message breaks a Slack limit, which Slack would answer with
// invalid_blocks or msg_blocks_too_long and post nothing.
func checkLimits(t *testing.T, name string, m Message) {
	t.Helper()
	if len(m.Blocks) > MaxBlocks {
		t.Errorf("%s: %d blocks, Slack allows %d", name, len(m.Blocks), MaxBlocks)
	}
	total := 0
	for i, b := range m.Blocks {
		n := BlockText(b)
		total += n
		switch v := b.(type) {
		case *slack.SectionBlock:
			if n > MaxSectionText {
				t.Errorf("%s: block %d: section of %d characters, Slack allows %d", name, i, n, MaxSectionText)
			}
		case *slack.HeaderBlock:
			if n > MaxHeaderText {
				t.Errorf("%s: header of %d characters", name, n)
			}
		case *slack.ActionBlock:
			for _, e := range v.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok && len(btn.Value) > 2000 {
					t.Errorf("%s: button value too long", name)
				}
			}
		}
	}
	if total > MaxMessageText {
		t.Errorf("%s: %d characters of block text, over %d", name, total, MaxMessageText)
	}
	// What Slack receives must be valid JSON Block Kit.
	if _, err := json.Marshal(slack.Blocks{BlockSet: m.Blocks}); err != nil {
		t.Errorf("%s: marshal: %v", name, err)
	}
}

func allText(ms ...Message) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, m := range ms {
		for _, bl := range m.Blocks {
			_ = enc.Encode(bl)
		}
	}
	return b.String()
}

func hasButtons(m Message) bool {
	for _, b := range m.Blocks {
		if _, ok := b.(*slack.ActionBlock); ok {
			return true
		}
	}
	return false
}

func TestDigestSmallCompliant(t *testing.T) {
	r := release(3, func(int) bool { return false })
	root, thread := DigestMessage(Digest{DeployID: 7, Service: "payments", Env: "production", Repo: r.Repo, Ref: "main",
		Requester: "U0ALICE", CompareURL: CompareURL(r), Report: r, Buttons: true, PolicyHash: "0123456789abcdef"})
	checkLimits(t, "root", root)
	if len(thread) != 0 {
		t.Errorf("a 3-change release needs no thread, got %d replies", len(thread))
	}
	text := allText(root)
	for _, want := range []string{
		"payments → production", "<@U0ALICE>", "https://github.com/acme/payments/compare/" + r.BaseSHA + "..." + r.HeadSHA,
		"3 changes, all compliant", "https://github.com/acme/payments/pull/2|#2 Change number 2", "approved by bob",
		"https://jira.example/browse/PAY-3|PAY-3", "In Progress", ActionDeploy, ActionCancel, "deploy #7",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("digest lacks %q", want)
		}
	}
	if !hasButtons(root) {
		t.Error("a compliant ready digest has no Deploy button")
	}
}

func TestDigestRefused(t *testing.T) {
	r := release(4, func(i int) bool { return i == 2 || i == 4 })
	root, _ := DigestMessage(Digest{DeployID: 8, Service: "payments", Env: "production", Repo: r.Repo, Report: r, Buttons: true})
	checkLimits(t, "root", root)
	if hasButtons(root) {
		t.Fatal("a refused digest offers a Deploy button")
	}
	text := allText(root)
	for _, want := range []string{"Deploy refused", "Not compliant: #2, #4", "#2: No Jira ticket", "#4: No Jira ticket", "It looks like you're trying to ship", "2 compliant"} {
		if !strings.Contains(text, want) {
			t.Errorf("refusal lacks %q", want)
		}
	}
	if !strings.HasPrefix(root.Text, "Deploy refused") {
		t.Errorf("notification text %q does not say refused", root.Text)
	}
}

func TestDigest300PRs(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  func(int) bool
	}{
		{"all compliant", func(int) bool { return false }},
		{"every third not compliant", func(i int) bool { return i%3 == 0 }},
		{"none compliant", func(int) bool { return true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := release(300, tc.bad)
			root, thread := DigestMessage(Digest{DeployID: 9, Service: "payments", Env: "production", Repo: r.Repo, Report: r, Buttons: true})
			checkLimits(t, "root", root)
			if len(thread) == 0 {
				t.Fatal("300 changes and no thread replies")
			}
			for i, m := range thread {
				checkLimits(t, fmt.Sprintf("reply %d", i+1), m)
				if m.Text == "" {
					t.Errorf("reply %d has no notification text", i+1)
				}
			}
			// Every change is listed once, in order, across the thread.
			re := regexp.MustCompile(`pull/(\d+)\|#`)
			var seen []string
			for _, m := range re.FindAllStringSubmatch(allText(thread...), -1) {
				seen = append(seen, m[1])
			}
			if len(seen) != 300 {
				t.Fatalf("thread lists %d changes, want 300", len(seen))
			}
			for i, n := range seen {
				if n != fmt.Sprint(i+1) {
					t.Fatalf("change %d listed as #%s", i+1, n)
				}
			}
			// Every non-compliant change is named in the root message itself.
			rootText := allText(root)
			for i := 1; i <= 300; i++ {
				if tc.bad(i) && !regexp.MustCompile(fmt.Sprintf(`#%d\b`, i)).MatchString(rootText) {
					t.Fatalf("non-compliant #%d not named in the root message", i)
				}
			}
			if hasButtons(root) != r.Compliant {
				t.Errorf("buttons %v for compliant %v", hasButtons(root), r.Compliant)
			}
		})
	}
}

func TestDigestHugeTexts(t *testing.T) {
	r := release(2, func(i int) bool { return i == 1 })
	r.Changes[0].Title = strings.Repeat("very long title ", 400)
	r.Changes[0].Violations = nil
	for i := 0; i < 200; i++ {
		r.Changes[0].Violations = append(r.Changes[0].Violations, compliance.Violation{Code: compliance.TicketStatus, Message: strings.Repeat("é", 90)})
	}
	root, thread := DigestMessage(Digest{Service: strings.Repeat("s", 200), Env: "production", Repo: r.Repo, Report: r})
	checkLimits(t, "root", root)
	for i, m := range thread {
		checkLimits(t, fmt.Sprintf("reply %d", i+1), m)
	}
}

func TestDigestEscapesMarkup(t *testing.T) {
	r := release(1, func(int) bool { return false })
	r.Changes[0].Title = "Fix <!channel> & <https://evil.example|click>"
	root, _ := DigestMessage(Digest{Service: "payments", Env: "staging", Repo: r.Repo, Report: r})
	text := allText(root)
	if strings.Contains(text, "<!channel>") || strings.Contains(text, "<https://evil.example") {
		t.Errorf("title markup reached Slack unescaped: %s", text)
	}
}

func TestFailureMessage(t *testing.T) {
	perr := check.Safely(func() error { panic(strings.Repeat("boom ", 10)) })
	for name, f := range map[string]Failure{
		// An error from the check path is traced where it happened (check.Errorf).
		"github down": {Doing: "check payments main → production", Err: check.Errorf("gather: %w", errors.New("GET /repos/acme/payments/compare: 500 Internal Server Error"))},
		"panic":       {Doing: "handle /deploy payments", Err: perr},
		"huge stack":  {Doing: "x", Err: &check.PanicError{Value: "deep", Stack: strings.Repeat("sockembot/bot/x.f\n\tsockembot/bot/x/file.go:123\n", 2000)}},
	} {
		t.Run(name, func(t *testing.T) {
			m := FailureMessage(f)
			checkLimits(t, name, m)
			text := allText(m)
			if !strings.Contains(text, "the deploy is refused") || !strings.Contains(text, "Could not *") {
				t.Errorf("failure report does not say what failed and that the deploy is refused: %s", text)
			}
			if hasButtons(m) {
				t.Error("failure report offers buttons")
			}
			if !strings.Contains(text, "Stack trace") || !strings.Contains(text, ".go:") {
				t.Error("stack trace missing")
			}
		})
	}
	// The stack is where the failure happened, not where the report was rendered, with paths as
	// a -trimpath build names them.
	for _, err := range []error{perr, check.Errorf("gather: %w", errors.New("down"))} {
		text := allText(FailureMessage(Failure{Doing: "handle /deploy payments", Err: err}))
		if !strings.Contains(text, "sockembot/bot/render/digest_test.go") {
			t.Errorf("stack trace does not show where the failure happened:\n%s", text)
		}
		if strings.Contains(text, "render.FailureMessage") || strings.Contains(text, "/work/") || strings.Contains(text, "goroutine ") {
			t.Errorf("stack trace shows the renderer, build paths or goroutine numbers:\n%s", text)
		}
	}
	// An error nobody traced has no stack to show, rather than the renderer's.
	if text := allText(FailureMessage(Failure{Doing: "x", Err: errors.New("plain")})); strings.Contains(text, "Stack trace") {
		t.Errorf("a stack trace for an untraced error:\n%s", text)
	}
}

func TestSplitText(t *testing.T) {
	for _, s := range []string{"", "short", strings.Repeat("line\n", 5000), strings.Repeat("x", 10000), strings.Repeat("日本", 4000), strings.Repeat("#12, ", 3000)} {
		parts := SplitText(s, 3000)
		if strings.Join(parts, "") == "" && s != "" {
			t.Fatalf("lost the text")
		}
		for _, p := range parts {
			if n := utf8.RuneCountInString(p); n > 3000 {
				t.Fatalf("part of %d characters", n)
			}
			if !utf8.ValidString(p) {
				t.Fatal("split inside a character")
			}
		}
	}
}

// Where each change's facts came from: the digest's footer and the text report say how many
// pull requests were read from evidence, from which records and when; none said, none reused.
func TestFactsFromEvidenceAreNamed(t *testing.T) {
	r := release(4, func(int) bool { return false })
	if got := FactsSourceText(r); got != "" {
		t.Errorf("nothing reused, yet: %q", got)
	}
	day := func(d int) time.Time { return time.Date(2026, 11, d, 9, 30, 0, 0, time.UTC) }
	r.Changes[0].Recorded = &compliance.FactsRecord{Seq: 40, At: day(2)}
	r.Changes[2].Recorded = &compliance.FactsRecord{Seq: 12, At: day(1)}
	r.Changes = append(r.Changes, compliance.ChangeReport{Kind: compliance.KindDirectPush, Title: "hotfix", Commits: []string{strings.Repeat("c", 40)}})
	want := "facts recorded: 2 of 4 pull requests from evidence records #12–#40 (2026-11-01 – 2026-11-02 UTC); the others fetched from GitHub"
	if got := FactsSourceText(r); got != want {
		t.Errorf("FactsSourceText = %q, want %q", got, want)
	}
	root, _ := DigestMessage(Digest{DeployID: 7, Service: "payments", Env: "production", Repo: r.Repo, Ref: "main", Report: r, PolicyHash: "0123456789abcdef"})
	if text := allText(root); !strings.Contains(text, "deploy #7 · policy 0123456789ab · "+want) {
		t.Errorf("the digest's footer does not name the records:\n%s", text)
	}
	text := ReportText(r)
	for _, w := range []string{want, "facts recorded: evidence record #40, 2026-11-02 09:30 UTC (not fetched again)"} {
		if !strings.Contains(text, w) {
			t.Errorf("the text report lacks %q:\n%s", w, text)
		}
	}
	for i := range r.Changes {
		r.Changes[i].Recorded = &compliance.FactsRecord{Seq: 7, At: day(3)}
	}
	if got := FactsSourceText(r); got != "facts recorded: 4 of 4 pull requests from evidence record #7 (2026-11-03 UTC)" {
		t.Errorf("all from one record: %q", got)
	}
}
