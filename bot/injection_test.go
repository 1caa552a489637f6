package bot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	gh "github.com/google/go-github/v62/github"

	"sockembot/bot"
	"sockembot/bot/bottest"
	"sockembot/bot/demo"
	"sockembot/bot/render"
	fakegithub "sockembot/integrations/fake/github"
	fakejira "sockembot/integrations/fake/jira"
	fakeslack "sockembot/integrations/fake/slack"
)

// hostile is text a person controls, written to do harm once it reaches Slack: a broadcast to the
// channel, to everyone online, a mention of someone uninvolved, a link whose label hides where it
// goes, a bare ampersand, and a backtick that would close an inline code span early.
const hostile = "<!channel> <!here> <@U024BE7LH> <https://evil.example|click> & tick`tock"

// Refs can hold most of it: git refuses spaces and ':' in a ref name, and /deploy takes the
// first '@' as the start of the ref.
const (
	payRef    = "fix/<!channel>&<!here>tick`tock"
	ledgerRef = "hot/<!here>&<!channel>tick`tock"
)

// raw are sequences that must never reach Slack as written: each would ping, link or format.
var raw = []string{"<!channel>", "<!here>", "<@U024BE7LH>", "<https://evil.example", "tick`tock"}

// escaped is how those sequences look once escaped: each message kind below must show one of
// them (proof that its scene really carried hostile text to Slack).
var escaped = []string{"&lt;!channel&gt;", "&lt;!here&gt;", "&lt;@U024BE7LH&gt;", "&lt;https://evil.example", "tickˋtock"}

// slashText is the text of a slash command as Slack sends it: with &, < and > escaped.
func slashText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Every message kind sockembot posts, fed the hostile text where a person could put it (pull
// request titles, branches, commit messages and authors, reviewer logins, Jira statuses and
// summaries, the ref and the reason typed in /deploy, a lock reason, a deployment status
// description, a repository policy whose YAML error quotes it), driven end to end through the
// real clients. Then every request the fake Slack received is read back: no text and no block
// carries any of it unescaped.
func TestHostileTextReachesSlackEscaped(t *testing.T) {
	r := bottest.NewRig(t, func(o *demo.Options) {
		o.Configure = func(c *bot.Config) {
			c.Services["ledger"] = bot.Service{Repo: "acme/ledger", Environments: []string{"production"}}
		}
	})
	ctx := context.Background()

	// payments: a compliant change whose title, body, branch and commit message are hostile,
	// with a ticket whose summary is too, released under a hostile tag.
	r.Jira.PutIssue(fakejira.Issue{Key: "PAY-104", Summary: hostile, Status: "In Progress"})
	pay := r.GitHub.Repo("acme/payments")
	pay.MergePR(fakegithub.PR{Title: "PAY-104 " + hostile, Body: hostile, Author: "carol", Branch: "carol/" + payRef,
		Messages: []string{"PAY-104 " + hostile}, Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.MergeCommit)
	pay.Tag(payRef)

	// ledger: a change whose ticket sits in a hostile "To Do" status and whose reviewer, with a
	// hostile login, asked for changes; both end up in violation messages, and so in Clippy.
	r.Jira.AddProject("LEDG")
	r.Jira.PutIssue(fakejira.Issue{Key: "LEDG-9", Summary: hostile, Status: "Later " + hostile, StatusCategory: "new"})
	ledger := r.GitHub.AddRepo("acme/ledger", "main")
	ledger.Commit("Initial import", "erin")
	ledger.Deploy(ledger.Tag("v1.0.0"), "production", "success")
	ledger.MergePR(fakegithub.PR{Title: "LEDG-9 " + hostile, Author: "erin", Branch: "erin/" + ledgerRef,
		Reviews: []fakegithub.Review{{User: "rev<!here>&`x", State: "CHANGES_REQUESTED"}}}, fakegithub.Squash)
	ledger.Tag(ledgerRef)

	// billing: its own policy file is invalid YAML for a policy; the parser's error quotes the
	// unknown key, which is hostile.
	r.GitHub.Repo("acme/billing").SetFile(".sockembot.yml", fmt.Sprintf("%q: true\n", hostile))

	rootWith := func(what, contains string) fakeslack.Message {
		t.Helper()
		var found fakeslack.Message
		r.Until(what, func() bool {
			for _, m := range r.Roots() {
				if strings.Contains(bottest.Text(m), contains) {
					found = m
					return true
				}
			}
			return false
		})
		return found
	}
	kinds := map[string]string{} // message kind -> its text and blocks as Slack got them

	// A compliant release of the hostile tag, asked for outside the release channel: the
	// "checking" ephemeral, the digest, Deploy, the deployment's statuses and Jira in the thread,
	// and the digest updated each time.
	r.Command(demo.Alice, demo.Dev, slashText("payments@"+payRef+" to production"))
	digest := rootWith("the payments digest", "payments → production")
	kinds["ephemeral: checking"] = r.EphemeralTo(demo.Alice, "Checking").Text
	if !demo.HasAction(digest, render.ActionDeploy) {
		t.Fatalf("the hostile release should be compliant:\n%s", r.Slack.Render())
	}
	r.Click(demo.Bob, render.ActionDeploy, digest)
	var depID int64
	r.Until("the GitHub deployment", func() bool {
		made := bottest.MadeByBot(pay)
		if len(made) == 1 {
			depID = made[0].ID
		}
		return depID != 0 && len(r.Thread(digest)) >= 1
	})
	if err := r.ReportStatus(ctx, "acme/payments", depID, "success", hostile); err != nil {
		t.Fatal(err)
	}
	r.Until("the status and the Jira update in the thread", func() bool {
		return r.ThreadSays(digest, "*success*") && r.ThreadSays(digest, "Jira")
	})
	r.Until("the digest updated", func() bool { return strings.Contains(bottest.Text(r.Roots()[0]), "Deployed") })
	kinds["digest"] = bottest.Text(r.Roots()[0])
	kinds["notification text"] = r.Roots()[0].Text
	for _, m := range r.Thread(digest) {
		if strings.Contains(m.Text, "*success*") {
			kinds["thread reply: deployment status"] = bottest.Text(m)
		}
	}

	// A refused release: the digest names the violations, Clippy quotes the first of each.
	n := len(r.Roots())
	r.Command(demo.Alice, demo.Release, slashText("ledger@"+ledgerRef+" to production"))
	r.Until("the refused digest", func() bool { return len(r.Roots()) > n })
	kinds["refused digest"] = bottest.Text(r.Roots()[n])
	kinds["refused digest: Clippy"] = clippy(t, r.Roots()[n])

	// The same release as an emergency with a hostile reason: the override digest, the note to
	// the emergency channel, and the retroactive reviews in the thread once deployed.
	n = len(r.Roots())
	r.Command(demo.Alice, demo.Release, slashText(fmt.Sprintf("ledger@%s to production emergency %q", ledgerRef, hostile)))
	r.Until("the emergency digest", func() bool { return len(r.Roots()) > n })
	emergency := r.Roots()[n]
	r.Until("the emergency announcement", func() bool { return len(r.Slack.Messages(demo.Incidents)) > 0 })
	kinds["emergency digest"] = bottest.Text(emergency)
	kinds["emergency announcement"] = bottest.Text(r.Slack.Messages(demo.Incidents)[0])
	r.Click(demo.Alice, render.ActionDeploy, emergency)
	r.Until("the retroactive reviews", func() bool {
		for _, m := range r.Thread(emergency) {
			if demo.HasAction(m, render.ActionRetroApprove) {
				kinds["retroactive reviews"] = bottest.Text(m)
				return true
			}
		}
		return false
	})

	// A check that could not run: the failure report quotes the policy's error.
	n = len(r.Roots())
	r.Command(demo.Alice, demo.Dev, slashText("billing to production"))
	r.Until("the failure report", func() bool { return len(r.Roots()) > n })
	kinds["failure report"] = bottest.Text(r.Roots()[n])
	r.EphemeralTo(demo.Alice, "failure report is in")

	// Answers only the person who typed sees.
	r.Command(demo.Alice, demo.Dev, slashText("payments@<https://evil.example|click> to production"))
	kinds["ephemeral: usage"] = r.EphemeralTo(demo.Alice, "not a valid git ref").Text
	r.Command(demo.Alice, demo.Dev, slashText("payments@nope<!here>&tick`tock to production"))
	kinds["ephemeral: unknown ref"] = r.EphemeralTo(demo.Alice, "has no branch, tag or commit").Text
	n = len(r.Roots())
	r.Command(demo.Alice, demo.Dev, slashText(fmt.Sprintf("lock payments staging %q", hostile)))
	r.Until("the lock announcement", func() bool { return len(r.Roots()) > n })
	kinds["lock announcement"] = bottest.Text(r.Roots()[n])
	r.Command(demo.Alice, demo.Dev, slashText("payments@"+payRef+" to staging"))
	kinds["ephemeral: locked"] = r.EphemeralTo(demo.Alice, "is locked by").Text
	r.Command(demo.Alice, demo.Dev, "status payments")
	kinds["ephemeral: status"] = r.EphemeralTo(demo.Alice, "last request").Text
	r.Command(demo.Alice, demo.Dev, "history payments")
	kinds["ephemeral: history"] = r.EphemeralTo(demo.Alice, "deploy requests of payments").Text

	// The merge gate: a merge that breaks the policy, a merge that could not be judged, and a
	// commit pushed straight to main.
	n = len(r.Roots())
	merged := pay.MergePR(fakegithub.PR{Title: hostile, Author: "mallory", Branch: "mallory/" + payRef}, fakegithub.Squash)
	deliver(t, r, "pull_request", func() ([]byte, error) { return r.PullRequestEvent(ctx, "acme/payments", merged.Number, "closed") })
	r.Until("the merge note", func() bool { return len(r.Roots()) > n })
	kinds["merge note"] = bottest.Text(r.Roots()[n])

	n = len(r.Roots())
	bill := r.GitHub.Repo("acme/billing")
	billed := bill.MergePR(fakegithub.PR{Title: "BILL-4 " + hostile, Author: "gina", Reviews: []fakegithub.Review{{User: "hank", State: "APPROVED"}}}, fakegithub.Squash)
	deliver(t, r, "pull_request", func() ([]byte, error) { return r.PullRequestEvent(ctx, "acme/billing", billed.Number, "closed") })
	r.Until("the merge failure note", func() bool { return len(r.Roots()) > n })
	kinds["merge failure note"] = bottest.Text(r.Roots()[n])

	n = len(r.Roots())
	sha := pay.Commit(hostile+"\n\nbody "+hostile, "")
	push, err := json.Marshal(gh.PushEvent{
		Ref: gh.String("refs/heads/main"), After: gh.String(sha),
		Commits: []*gh.HeadCommit{{ID: gh.String(sha), Message: gh.String(hostile + "\n\nbody " + hostile),
			Author: &gh.CommitAuthor{Name: gh.String(hostile)}, Committer: &gh.CommitAuthor{Name: gh.String(hostile)}}},
		Pusher: &gh.CommitAuthor{Name: gh.String(hostile)},
		Repo:   &gh.PushEventRepository{FullName: gh.String("acme/payments"), DefaultBranch: gh.String("main")},
	})
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, r, "push", func() ([]byte, error) { return push, nil })
	r.Until("the direct push alert", func() bool { return len(r.Roots()) > n })
	kinds["direct push alert"] = bottest.Text(r.Roots()[n])

	// The day in numbers, after all of that.
	n = len(r.Roots())
	if _, err := r.App.DailySummary(ctx, r.App.Time()); err != nil {
		t.Fatal(err)
	}
	kinds["daily summary"] = bottest.Text(r.Roots()[n])

	// Each kind carried the hostile text to Slack, escaped (the daily summary has no field a
	// person writes: it is only checked for what it must not contain).
	for kind, text := range kinds {
		if kind != "daily summary" && !slices.ContainsFunc(escaped, func(e string) bool { return strings.Contains(text, e) }) {
			t.Errorf("%s: the hostile text did not reach Slack, so this test proves nothing about it:\n%s", kind, text)
		}
	}
	r.NoWebAPIErrors()

	// Everything Slack was sent, wherever it went: every Web API call's parameters (text,
	// blocks, ...), every response_url post, every ack.
	var sent []string
	for _, c := range r.Slack.Calls() {
		for k, v := range c.Params {
			sent = append(sent, strings.Join(strings.Fields(c.Method+" "+k), ".")+"\x00"+v)
		}
	}
	for _, p := range r.Slack.Responses() {
		sent = append(sent, "response_url.text\x00"+p.Text, "response_url.blocks\x00"+string(p.Blocks))
	}
	for _, a := range r.Slack.Acks() {
		sent = append(sent, "ack.payload\x00"+string(a.Payload))
	}
	checked := 0
	for _, s := range sent {
		where, v, _ := strings.Cut(s, "\x00")
		for _, str := range stringsIn(v) {
			checked++
			if problem := unescaped(str); problem != "" {
				t.Errorf("%s: %s in %q", where, problem, str)
			}
		}
	}
	if checked < 50 {
		t.Fatalf("only %d strings were sent to Slack: the scenes did not run", checked)
	}
}

// deliver sends a webhook as GitHub would, signed; the caller waits for what sockembot says.
func deliver(t *testing.T, r *bottest.Rig, event string, body func() ([]byte, error)) {
	t.Helper()
	b, err := body()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Deliver(context.Background(), event, b); err != nil {
		t.Fatal(err)
	}
}

// clippy is the section of a refused digest with Clippy in it.
func clippy(t *testing.T, m fakeslack.Message) string {
	t.Helper()
	for _, s := range stringsIn(string(m.Blocks)) {
		if strings.Contains(s, "It looks like you're trying to ship a change") {
			return s
		}
	}
	t.Fatalf("no Clippy in the refused digest: %s", bottest.Text(m))
	return ""
}

// stringsIn is every string in v: v itself, or each string value inside it when v is JSON (the
// blocks parameter, a payload).
func stringsIn(v string) []string {
	var doc any
	if t := strings.TrimSpace(v); (strings.HasPrefix(t, "[") || strings.HasPrefix(t, "{")) && json.Unmarshal([]byte(t), &doc) == nil {
		var out []string
		var walk func(any)
		walk = func(x any) {
			switch x := x.(type) {
			case string:
				out = append(out, x)
			case []any:
				for _, e := range x {
					walk(e)
				}
			case map[string]any:
				for _, e := range x {
					walk(e)
				}
			}
		}
		walk(doc)
		return out
	}
	return []string{v}
}

// span is one <...> sequence Slack would act on.
var span = regexp.MustCompile(`<[^<>]*>`)

// ours are the <...> sequences sockembot writes itself: mentions of the demo's people, its
// channels and user groups, and links to the fakes and Slack.
var ours = regexp.MustCompile(`^<(@U0(ALICE|BOB|MALLORY)|#C0[A-Z]+|!subteam\^S0[A-Z]+|https?://(github\.example|jira\.example|ci\.example|[a-z0-9-]+\.slack\.com)/[^|\s]*\|.+)>$`)

// unescaped says what in s Slack would read as something other than text, or "".
func unescaped(s string) string {
	for _, r := range raw {
		if strings.Contains(s, r) {
			return fmt.Sprintf("%q as written", r)
		}
	}
	for i := strings.IndexByte(s, '&'); i >= 0; i = next(s, i+1, '&') {
		rest := s[i:]
		if !strings.HasPrefix(rest, "&amp;") && !strings.HasPrefix(rest, "&lt;") && !strings.HasPrefix(rest, "&gt;") {
			return "a bare &"
		}
	}
	for _, m := range span.FindAllString(s, -1) {
		if !ours.MatchString(m) {
			return fmt.Sprintf("the sequence %q, which sockembot does not write", m)
		}
	}
	if rest := span.ReplaceAllString(s, ""); strings.ContainsAny(rest, "<>") {
		return "a < or > outside any link or mention"
	}
	return ""
}

func next(s string, from int, b byte) int {
	if j := strings.IndexByte(s[from:], b); j >= 0 {
		return from + j
	}
	return -1
}
