package render_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"sockembot/bot/check"
	"sockembot/bot/render"
	"sockembot/compliance"
)

// Golden files hold what people read (Slack messages, GitHub comments, notes, terminal text),
// so that any change to it shows up as a reviewed diff of testdata/golden/<name>.txt.
//
//	go test ./bot/render -update
//
// rewrites them from what the renderers produce now (and removes golden files no test uses any
// more); review `git diff bot/render/testdata` before committing.
var update = flag.Bool("update", false, "rewrite testdata/golden/*.txt with what the renderers produce now")

var goldenDir = filepath.Join("testdata", "golden")

// usedGoldens are the golden files the tests compared against, to find the ones left behind.
var usedGoldens = struct {
	sync.Mutex
	names map[string]bool
}{names: map[string]bool{}}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 && allTestsRan() {
		code = checkUnusedGoldens()
	}
	os.Exit(code)
}

// allTestsRan is false under -run, -skip or -list, when unused golden files say nothing.
func allTestsRan() bool {
	for _, name := range []string{"test.run", "test.skip", "test.list"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return true
}

// checkUnusedGoldens fails on a golden file no test compares with (a renamed or deleted case);
// -update removes it.
func checkUnusedGoldens() int {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.txt"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := 0
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		if usedGoldens.names[name] {
			continue
		}
		if *update {
			if err := os.Remove(f); err != nil {
				fmt.Fprintln(os.Stderr, err)
				code = 1
			}
			continue
		}
		fmt.Fprintf(os.Stderr, "FAIL: %s is used by no test (go test ./bot/render -update removes it)\n", f)
		code = 1
	}
	return code
}

// golden compares got with testdata/golden/<name>.txt, or rewrites the file under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	usedGoldens.Lock()
	usedGoldens.names[name] = true
	usedGoldens.Unlock()

	path := filepath.Join(goldenDir, name+".txt")
	want, err := os.ReadFile(path)
	if *update {
		if err == nil && string(want) == got {
			return
		}
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", path)
		return
	}
	if err != nil {
		t.Fatalf("%v (go test ./bot/render -update writes it)", err)
	}
	if string(want) != got {
		t.Errorf("%s: the output differs from the golden file (if the change is intended, go test ./bot/render -update and review the diff)\n%s",
			path, firstDifference(string(want), got))
	}
}

// firstDifference shows where got first departs from want: a few equal lines before it for
// context, then from there on a few lines, each as the golden file has it (-) and as the output
// has it (+), or once when both agree.
func firstDifference(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(wl) && i < len(gl) && wl[i] == gl[i] {
		i++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "first difference at line %d (golden file %d lines, output %d lines):\n", i+1, len(wl), len(gl))
	for j := max(0, i-3); j < i; j++ {
		fmt.Fprintf(&b, "    %4d | %s\n", j+1, wl[j])
	}
	line := func(lines []string, j int) (string, bool) {
		if j < len(lines) {
			return lines[j], true
		}
		return "<end of file>", false
	}
	for j := i; j < i+3 && (j < len(wl) || j < len(gl)); j++ {
		w, wok := line(wl, j)
		g, gok := line(gl, j)
		if w == g && wok && gok {
			fmt.Fprintf(&b, "    %4d | %s\n", j+1, w)
			continue
		}
		fmt.Fprintf(&b, "  - %4d | %s\n  + %4d | %s\n", j+1, w, j+1, g)
		if wok && gok && strings.TrimSpace(w) == strings.TrimSpace(g) {
			fmt.Fprintf(&b, "         (only white space differs: %q vs %q)\n", w, g)
		}
	}
	return b.String()
}

// slackText prints a Slack message as a reviewer reads it: the notification text, then each
// block in order (header, section with its mrkdwn as is, divider, context, actions with each
// button's action id, value and style, accessories). It is printed from the JSON Slack would
// receive, after checking that JSON is valid Block Kit.
func slackText(t *testing.T, m render.Message) string {
	t.Helper()
	raw, err := json.Marshal(slack.Blocks{BlockSet: m.Blocks})
	if err != nil {
		t.Fatalf("blocks do not marshal: %v", err)
	}
	checkBlockKit(t, raw)
	var blocks []map[string]any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		t.Fatal(err)
	}

	var b strings.Builder
	// A multi-line notification text is indented so its lines do not read as blocks.
	fmt.Fprintf(&b, "text: %s\n", strings.ReplaceAll(m.Text, "\n", "\n      "))
	for _, bl := range blocks {
		typ, _ := bl["type"].(string)
		head := "[" + typ
		if id, _ := bl["block_id"].(string); id != "" {
			head += " " + id
		}
		head += "]"
		switch typ {
		case "header":
			fmt.Fprintf(&b, "%s %s\n", head, textOf(bl["text"]))
		case "divider":
			fmt.Fprintf(&b, "%s\n", head)
		case "section":
			if o, _ := bl["text"].(map[string]any); o != nil && o["type"] != "mrkdwn" {
				head = strings.TrimSuffix(head, "]") + " " + fmt.Sprint(o["type"]) + "]"
			}
			fmt.Fprintf(&b, "%s\n", head)
			if bl["text"] != nil {
				fmt.Fprintf(&b, "%s\n", textOf(bl["text"]))
			}
			for _, f := range list(bl["fields"]) {
				fmt.Fprintf(&b, "  field: %s\n", textOf(f))
			}
			if acc, ok := bl["accessory"].(map[string]any); ok {
				fmt.Fprintf(&b, "  accessory: %s\n", elementText(acc))
			}
		case "context":
			var parts []string
			for _, e := range list(bl["elements"]) {
				if o, _ := e.(map[string]any); o != nil && o["type"] == "image" {
					parts = append(parts, elementText(o))
				} else {
					parts = append(parts, textOf(e))
				}
			}
			fmt.Fprintf(&b, "%s %s\n", head, strings.Join(parts, " | "))
		case "actions":
			fmt.Fprintf(&b, "%s\n", head)
			for _, e := range list(bl["elements"]) {
				o, _ := e.(map[string]any)
				fmt.Fprintf(&b, "  %s\n", elementText(o))
			}
		default:
			j, _ := json.Marshal(bl)
			fmt.Fprintf(&b, "%s %s\n", head, j)
		}
	}
	return b.String()
}

func textOf(v any) string {
	o, _ := v.(map[string]any)
	s, _ := o["text"].(string)
	return s
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// elementText prints an interactive element (a button) or an image on one line.
func elementText(o map[string]any) string {
	switch o["type"] {
	case "button":
		style, _ := o["style"].(string)
		if style == "" {
			style = "default"
		}
		s := fmt.Sprintf("button %q action=%v value=%q style=%s", textOf(o["text"]), o["action_id"], o["value"], style)
		if u, _ := o["url"].(string); u != "" {
			s += " url=" + u
		}
		if o["confirm"] != nil {
			c, _ := json.Marshal(o["confirm"])
			s += " confirm=" + string(c)
		}
		return s
	case "image":
		return fmt.Sprintf("image %v alt=%q", o["image_url"], o["alt_text"])
	}
	j, _ := json.Marshal(o)
	return string(j)
}

// checkBlockKit fails unless raw is Block Kit that Slack accepts: every block a known type, every
// text object valid (a type, not empty, within 3000 characters), headers and buttons within
// their limits, at most 50 blocks.
func checkBlockKit(t *testing.T, raw []byte) {
	t.Helper()
	var blocks slack.Blocks
	if err := json.Unmarshal(raw, &blocks); err != nil {
		t.Fatalf("not Block Kit JSON: %v\n%s", err, raw)
	}
	if n := len(blocks.BlockSet); n > render.MaxBlocks {
		t.Errorf("%d blocks, Slack allows %d", n, render.MaxBlocks)
	}
	text := func(i int, what string, o *slack.TextBlockObject) {
		t.Helper()
		if o == nil {
			t.Errorf("block %d: %s has no text", i, what)
			return
		}
		if err := o.Validate(); err != nil {
			t.Errorf("block %d: %s: %v (%q)", i, what, err, o.Text)
		}
	}
	for i, bl := range blocks.BlockSet {
		switch v := bl.(type) {
		case *slack.HeaderBlock:
			text(i, "header", v.Text)
			if v.Text != nil && (v.Text.Type != slack.PlainTextType || utf8.RuneCountInString(v.Text.Text) > render.MaxHeaderText) {
				t.Errorf("block %d: header must be plain text of at most %d characters: %q", i, render.MaxHeaderText, v.Text.Text)
			}
		case *slack.SectionBlock:
			if v.Text == nil && len(v.Fields) == 0 {
				t.Errorf("block %d: section with neither text nor fields", i)
			}
			if v.Text != nil {
				text(i, "section", v.Text)
			}
			for _, f := range v.Fields {
				text(i, "section field", f)
			}
		case *slack.ContextBlock:
			if len(v.ContextElements.Elements) == 0 {
				t.Errorf("block %d: empty context", i)
			}
			for _, e := range v.ContextElements.Elements {
				if o, ok := e.(*slack.TextBlockObject); ok {
					text(i, "context", o)
				}
			}
		case *slack.ActionBlock:
			for _, e := range v.Elements.ElementSet {
				btn, ok := e.(*slack.ButtonBlockElement)
				if !ok {
					continue
				}
				text(i, "button", btn.Text)
				if btn.Text != nil && (btn.Text.Type != slack.PlainTextType || utf8.RuneCountInString(btn.Text.Text) > 75) {
					t.Errorf("block %d: button text must be plain text of at most 75 characters: %q", i, btn.Text.Text)
				}
				if btn.ActionID == "" || len(btn.ActionID) > 255 || len(btn.Value) > 2000 {
					t.Errorf("block %d: button action id %q or value of %d characters out of Slack's limits", i, btn.ActionID, len(btn.Value))
				}
			}
		case *slack.DividerBlock:
		default:
			t.Errorf("block %d: unexpected block type %s", i, bl.BlockType())
		}
	}
}

func digestText(t *testing.T, d render.Digest) string {
	t.Helper()
	root, thread := render.DigestMessage(d)
	out := slackText(t, root)
	for i, m := range thread {
		out += fmt.Sprintf("\n--- thread reply %d ---\n%s", i+1, slackText(t, m))
	}
	return out
}

// Fixed inputs: no clock, no randomness, fixed SHAs.
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

// ticket is a ticket Jira knows, with its link built as integrations/jira builds it.
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
	retry := pr(13, "Retry card captures", "carol", []string{"dave"}, []compliance.Ticket{ticket("PAY-13", "Done")})
	retry.Warnings = []compliance.Violation{{Code: compliance.RequesterSoleApprover,
		Message: "dave is the only approver and is also deploying it: someone else must approve or deploy"}}
	return report(
		pr(12, "PAY-12 Refunds endpoint", "alice", []string{"bob"}, []compliance.Ticket{ticket("PAY-12", "In Progress")}),
		retry,
	)
}

func directPush() compliance.ChangeReport {
	return compliance.ChangeReport{Kind: compliance.KindDirectPush, Title: "hotfix: typo", Author: "frank", Commits: []string{strings.Repeat("c", 40)},
		Violations: []compliance.Violation{{Code: compliance.DirectPush, Message: "commit ccccccc by frank was pushed straight to the branch without a pull request, so nobody reviewed it"}}}
}

// badRelease breaks the policy in several ways: a change with no ticket and no approval, a
// ticket Jira does not know, and a direct push.
func badRelease() compliance.Report {
	return report(
		pr(12, "PAY-12 Refunds endpoint", "alice", []string{"bob"}, []compliance.Ticket{ticket("PAY-12", "In Progress")}),
		pr(14, "Tweak ranking", "frank", nil, nil,
			compliance.Violation{Code: compliance.MissingTicket, Message: "no Jira ticket referenced in the title, body, branch or commits"},
			compliance.Violation{Code: compliance.MissingApproval, Message: "needs 1 approval on the last commit from someone other than the author; has 0"}),
		pr(15, "PAY-99 Ledger export", "erin", []string{"frank"}, []compliance.Ticket{{Key: "PAY-99"}},
			compliance.Violation{Code: compliance.TicketNotFound, Message: "PAY-99 was not found in Jira"}),
		directPush(),
	)
}

// blockedPR breaks the policy in the ways a pull request under review usually does.
func blockedPR() compliance.ChangeReport {
	return pr(20, "PAY-20 Settlement report", "alice", nil, []compliance.Ticket{{Key: "PAY-20", Found: true, Status: "To Do", StatusCategory: "new",
		URL: "https://acme.atlassian.net/browse/PAY-20"}},
		compliance.Violation{Code: compliance.TicketStatus, Message: "PAY-20 is in status To Do; allowed: any status outside the To Do category"},
		compliance.Violation{Code: compliance.StaleApproval, Message: "the approval by bob (on 1234567) predates the last push (head bbbbbbb); needs 1 approval on the last commit from someone other than the author; has 0"},
		compliance.Violation{Code: compliance.ChangesRequested, Message: "carol requested changes and has not approved since"})
}

// policyChange loosens the repository's policy file without a policy owner's approval.
func policyChange() compliance.ChangeReport {
	c := pr(18, "PAY-18 One approval is enough", "mallory", []string{"bob"}, []compliance.Ticket{ticket("PAY-18", "In Progress")},
		compliance.Violation{Code: compliance.PolicyOwnerApproval, Message: "changes .sockembot.yml, so it needs an approval from a policy owner other than its author: carol"},
		compliance.Violation{Code: compliance.PolicyBelowFloor, Message: "writes a .sockembot.yml looser than the policy floor: approvals.required is 0; the floor is 1"})
	c.PolicyChange = true
	return c
}

func digest(r compliance.Report) render.Digest {
	return render.Digest{DeployID: 7, Service: "payments", Env: "production", Repo: r.Repo, Ref: "v1.4.0", Requester: "U0ALICE",
		CompareURL: render.CompareURL(r), Report: r, PolicyHash: "5860dcc3c9e5a1b2c3d4"}
}

func TestGoldenDigests(t *testing.T) {
	cases := map[string]func() render.Digest{
		"digest_compliant": func() render.Digest {
			d := digest(compliantRelease())
			d.Buttons = true
			return d
		},
		// Refused: no buttons, every violation named, Clippy.
		"digest_refused": func() render.Digest {
			d := digest(badRelease())
			d.Buttons = true // a refused release never offers them
			return d
		},
		"digest_emergency": func() render.Digest {
			d := digest(badRelease())
			d.Emergency, d.EmergencyReason, d.Buttons = true, "checkout returns 5xx > 50% & rising", true
			return d
		},
		// Once something happened, a status line replaces the buttons.
		"digest_status": func() render.Digest {
			d := digest(compliantRelease())
			d.Status = "🚀 *Deploying* · GitHub deployment 1000019 · confirmed by <@U0BOB> at 10:05 UTC"
			return d
		},
		// Too many changes to list inline: the root keeps the summary, the thread the list.
		"digest_40_changes": func() render.Digest {
			var many []compliance.ChangeReport
			for i := 1; i <= 40; i++ {
				many = append(many, pr(i, fmt.Sprintf("PAY-%d Change number %d", i, i), "alice", []string{"bob"},
					[]compliance.Ticket{ticket(fmt.Sprintf("PAY-%d", i), "In Progress")}))
			}
			d := digest(report(many...))
			d.Buttons = true
			return d
		},
		// A change that edits .sockembot.yml is labelled a policy change.
		"digest_policy_change": func() render.Digest {
			return digest(report(policyChange()))
		},
		// Text people control (a pull request title, the branch asked for, ticket keys and
		// statuses, a reviewer's login in a violation): escaped wherever it is shown, the
		// notification text, inline code and Clippy's code block included.
		"digest_hostile_text": func() render.Digest {
			hostile := pr(16, "<!channel> <https://evil.example|click here> & ```rm -rf", "mallory", nil,
				[]compliance.Ticket{ticket("PAY-1", "<b>In</b> & Progress"), ticket("<!here>&PAY-2", "Done")},
				compliance.Violation{Code: compliance.MissingApproval, Message: "needs 1 approval from someone other than <@U0MALLORY>; has 0 (not counted: <!channel> is a bot)"})
			d := digest(report(hostile))
			d.Ref = "fix/<!here>&```x"
			return d
		},
		// Links sockembot builds from what others wrote: a pull request or ticket URL that would
		// break out of <url|label>, or is not a web page, is dropped and its label stays as text.
		"digest_hostile_links": func() render.Digest {
			c := pr(17, "PAY-17 `quoted` title", "<@U024BE7LH>", []string{"bob`"},
				[]compliance.Ticket{{Key: "PAY-17", Found: true, Status: "Done", URL: "https://evil.example/x|<!channel>"},
					{Key: "PAY-18", Found: true, Status: "Done", URL: "javascript:alert(1)"}})
			c.URL = "https://github.com/acme/payments/pull/17>|<!here>"
			direct := directPush()
			direct.Title, direct.Author = "revert `x` & <!here>", "<!channel>"
			d := digest(report(c, direct))
			d.Emergency, d.EmergencyReason = true, "<!channel> `down` & <https://evil.example|status page>"
			return d
		},
	}
	for _, name := range sortedKeys(cases) {
		t.Run(name, func(t *testing.T) { golden(t, name, digestText(t, cases[name]())) })
	}
}

// stackLines makes a stack trace comparable: its line numbers move whenever a file on the stack
// (this test file first of all) is edited, so every ".go:<line>" reads ".go:N" in the golden
// files of failure reports. The function names stay: the stack still shows where it happened.
var stackLines = regexp.MustCompile(`\.go:\d+`)

func withoutLines(s string) string { return stackLines.ReplaceAllString(s, ".go:N") }

// gatherRelease fails the way the check path does: an error traced where it appeared.
func gatherRelease() error {
	cause := &url.Error{Op: "Get", URL: "https://api.github.com/repos/acme/payments/compare/v1.3.0...v1.4.0", Err: errors.New("502 Bad Gateway")}
	return check.Errorf("gather acme/payments v1.3.0..v1.4.0: %w", cause)
}

// statusOfNil panics as a bug in a command handler would.
func statusOfNil() error {
	var deploys map[string]int
	deploys["payments"]++
	return nil
}

func TestGoldenFailureReports(t *testing.T) {
	// A deploy check that failed: the default consequence (the deploy is refused), a note.
	traced := render.Failure{Doing: "check payments v1.4.0 → production", Err: gatherRelease()}
	golden(t, "failure_error_slack", withoutLines(slackText(t, render.FailureMessage(traced, "deploy #7 · requested by <@U0ALICE>"))))
	golden(t, "failure_error_text", withoutLines(traced.Text()))

	// A command that panicked, with what that means for this command.
	panicked := render.Failure{Doing: "handle `/deploy status payments`", Err: check.Safely(statusOfNil),
		Consequence: "Nothing was deployed by this command. Check `/deploy status` before trying again once the cause is fixed."}
	golden(t, "failure_panic_slack", withoutLines(slackText(t, render.FailureMessage(panicked))))
	golden(t, "failure_panic_text", withoutLines(panicked.Text()))

	// A repository policy whose YAML error quotes what its author wrote, for a ref someone typed.
	hostile := render.Failure{Doing: "check payments " + render.Code("fix/<!here>&`x`") + " → production",
		Err: check.Errorf("policy of acme/payments: %w", errors.New("yaml: unmarshal errors:\n  line 1: field <!channel> & <https://evil.example|click> `x` not found in type compliance.Policy"))}
	golden(t, "failure_hostile_slack", withoutLines(slackText(t, render.FailureMessage(hostile, "requested by <@U0ALICE>"))))
}

func TestGoldenNotices(t *testing.T) {
	announce := "🚨 *Emergency deploy* requested by <@U0ALICE>: *payments* `v1.4.0` → *production*.\n" +
		"Reason: _checkout returns 5xx &gt; 50% &amp; rising_\n" +
		"*4 violation(s) overridden* in #14, #15, direct push ccccccc. Details and the Deploy button: <https://acme.slack.com/archives/C0DEPLOYS/p1772445600000100|the digest>."
	golden(t, "notice", slackText(t, render.Notice(announce)))

	// Past one section's 3000 characters a notice is split at line ends; its notification
	// text is clipped.
	var long []string
	for i := 1; i <= 45; i++ {
		long = append(long, fmt.Sprintf("• acme/payments#%d: retroactive review due 2026-03-%02d, assigned to <@U0BOB>", 100+i, 1+i%28))
	}
	golden(t, "notice_long", slackText(t, render.Notice("*Open retroactive reviews*\n"+strings.Join(long, "\n"))))

	// Nothing to say is still a message Slack takes.
	golden(t, "notice_empty", slackText(t, render.Notice("")))

	// A notice past one section's limit, whose cuts fall inside links and escapes: each part
	// ends before the link or escape, never in it.
	var links []string
	for i := 1; i <= 30; i++ {
		links = append(links, render.Link(fmt.Sprintf("https://github.com/acme/payments/pull/%d", 100+i),
			fmt.Sprintf("#%d <b>a, b & c</b> %s", 100+i, strings.Repeat("&", 10))))
	}
	golden(t, "notice_long_links", slackText(t, render.Notice(strings.Join(links, ", "))))
}

func TestGoldenNotes(t *testing.T) {
	ok := pr(12, "PAY-12 Refunds endpoint", "alice", []string{"bob"}, []compliance.Ticket{ticket("PAY-12", "In Progress")})
	bad := badRelease().Changes[1]
	cases := map[string]string{
		"merge_note_compliant": render.MergeNoteText(render.MergeNote{Repo: "acme/payments", Number: 12, Title: ok.Title, URL: ok.URL,
			MergedBy: "bob", Compliant: true, Change: ok, Seq: 41}),
		"merge_note_not_compliant": render.MergeNoteText(render.MergeNote{Repo: "acme/payments", Number: 14, Title: bad.Title, URL: bad.URL,
			MergedBy: "frank", Change: bad, Seq: 42}),
		"merge_note_reconciled": render.MergeNoteText(render.MergeNote{Repo: "acme/payments", Number: 14, Title: bad.Title,
			MergedBy: "frank", Change: bad, Reconciled: true, Seq: 43}),
		"merge_failure_note": render.MergeFailureNote("acme/payments#14", render.Failure{Doing: "check the merged pull request",
			Err:         fmt.Errorf("tickets of acme/payments#14: %w", errors.New("jira search: 503 Service Unavailable")),
			Consequence: "The merge is not treated as compliant; sockembot will try to judge it again."}),
		"direct_push_alert_1": render.DirectPushAlert("acme/payments", "main", "frank", []render.DirectPush{
			{SHA: strings.Repeat("c", 40), Message: "hotfix: typo\n\nlonger body nobody reads", Author: "frank", Seq: 44}}),
		// Authors are a login or, without one, the git author name, which is free text.
		"direct_push_alert_3": render.DirectPushAlert("acme/payments", "main", "frank", []render.DirectPush{
			{SHA: strings.Repeat("c", 40), Message: "Bump version", Author: "frank", Seq: 45},
			{SHA: strings.Repeat("d", 40), Message: "Fix build", Author: "", Seq: 46},
			{SHA: strings.Repeat("e", 40), Message: "Revert <!here> & retry", Author: "<!channel> & co", Seq: 47}}),
		// A pull request whose title, link and merger are hostile, and a merge that could not be
		// judged because of an error quoting them.
		"merge_note_hostile": render.MergeNoteText(render.MergeNote{Repo: "acme/payments", Number: 16, Title: "<!channel> `rm` & <https://evil.example|click>",
			URL: "https://github.com/acme/payments/pull/16|<!here>", MergedBy: "<@U024BE7LH>", Change: bad, Seq: 48}),
		"merge_failure_note_hostile": render.MergeFailureNote("acme/payments#16", render.Failure{Doing: "check the merged pull request",
			Err: fmt.Errorf("policy: %w", errors.New("field <!channel> & ```x``` not found"))}),
		"direct_push_alert_hostile_branch": render.DirectPushAlert("acme/payments", "main`<!here>", "<!channel>", []render.DirectPush{
			{SHA: strings.Repeat("f", 40), Message: "`rm -rf` <https://evil.example|docs>", Author: "mallory", Seq: 49}}),
	}
	for _, name := range sortedKeys(cases) {
		t.Run(name, func(t *testing.T) { golden(t, name, cases[name]+"\n") })
	}
}

func TestGoldenGitHubText(t *testing.T) {
	ok := pr(12, "PAY-12 Refunds endpoint", "alice", []string{"bob"}, []compliance.Ticket{ticket("PAY-12", "In Progress")})
	long := ok
	long.Tickets = append([]compliance.Ticket(nil), ok.Tickets...)
	for i := 0; i < 30; i++ {
		long.Tickets = append(long.Tickets, ticket(fmt.Sprintf("PAY-%d", 100+i), "In Review"))
	}
	golden(t, "status_description", fmt.Sprintf("pass: %s\nfail: %s\nlong: %s\npolicy: %s\n",
		render.StatusDescription(ok), render.StatusDescription(blockedPR()), render.StatusDescription(long), render.StatusDescription(policyChange())))
	golden(t, "pr_comment", render.PRComment(headSHA, blockedPR(), "sockembot/compliance"))
	golden(t, "fixed_comment", render.FixedComment(headSHA, ok))
}

func TestGoldenSummaryReportAndClippy(t *testing.T) {
	golden(t, "summary_daily", render.SummaryText(render.Summary{Day: at,
		Merges: 5, CompliantMerges: 4, Deploys: 3, CompliantDeploys: 2, DirectPushes: 1, RefusedDeploys: 1,
		Violations:         map[compliance.Code]int{compliance.MissingTicket: 2, compliance.DirectPush: 1, compliance.StaleApproval: 2},
		NonCompliantMerges: []string{"acme/payments#14"}, Overrides: 1,
		OverdueReviews: []string{
			"• acme/search #2 in *search* (deploy #4, <@U0ALICE> → production): due 2026-02-27, 72h0m0s overdue",
			"• acme/payments direct push ccccccc in *payments* (deploy #5, <@U0BOB> → production): due 2026-02-28, 48h0m0s overdue",
		},
		HeadSeq: 120, HeadHash: strings.Repeat("f", 64)})+"\n")
	golden(t, "summary_empty", render.SummaryText(render.Summary{Day: at})+"\n")
	golden(t, "summary_hostile", render.SummaryText(render.Summary{Day: at, Merges: 1,
		NonCompliantMerges: []string{"acme/<!channel>#1", "acme/pay`ments#2"}})+"\n")
	golden(t, "report_text", render.ReportText(badRelease()))
	golden(t, "report_text_policy_change", render.ReportText(report(policyChange())))
	// Terminal escape sequences in a title (clear the screen, retitle the window) are shown, not run.
	golden(t, "report_text_hostile", render.ReportText(report(pr(16, "\x1b[2J\x1b]0;all clear\x07PAY-16 <!channel> `x`", "mallory\r", []string{"bob"},
		[]compliance.Ticket{ticket("PAY-16", "Done\x1b[0m")}))))
	golden(t, "clippy", render.Clippy("breaks the change policy:", "- no Jira ticket", "- no independent approval"))
}

func TestGoldenDiffMessage(t *testing.T) {
	want := "one\ntwo\nthree\nfour\nfive\n"
	got := "one\ntwo\nthree\nFOUR\nfive\n"
	msg := firstDifference(want, got)
	for _, s := range []string{"first difference at line 4", "       3 | three", "  -    4 | four", "  +    4 | FOUR"} {
		if !strings.Contains(msg, s) {
			t.Errorf("diff message lacks %q:\n%s", s, msg)
		}
	}
	if msg := firstDifference("a\n", "a"); !strings.Contains(msg, "<end of file>") {
		t.Errorf("a missing last newline is not shown:\n%s", msg)
	}
	if msg := firstDifference("a \n", "a\n"); !strings.Contains(msg, "only white space differs") {
		t.Errorf("a white space difference is not pointed out:\n%s", msg)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
