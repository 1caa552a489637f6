package demo

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"sockembot/bot/audit"
	"sockembot/bot/render"
	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	fakejira "sockembot/integrations/fake/jira"
	fakeslack "sockembot/integrations/fake/slack"
	"sockembot/integrations/store"
)

// storyStart is the demo's clock when the story begins: a Monday morning, after the history the
// fakes were seeded with. The clock moves only between scenes, so every run prints, and records,
// the same thing.
var storyStart = time.Date(2024, 3, 4, 9, 0, 0, 0, time.UTC)

// sceneStep is how far the clock moves at each scene.
const sceneStep = 5 * time.Minute

// legend explains the notation of the story.
const legend = `sockembot demo: the whole bot (Slack socket mode, GitHub webhooks, the SQLite evidence store)
running against built-in fakes of Slack, GitHub and Jira. Each scene says what a person or
another system did, then everything sockembot said and wrote, in the order it happened.

How to read it:
  ▸ @alice in #releases: /deploy …   something a person (or GitHub, or the CD system) did
  #releases:                          a message sockembot posted in a channel; its lines follow
      ↳ …                             a reply sockembot posted in that message's thread
  ✎ …                                 sockembot edited an earlier message: the lines it added
                                      (and, marked "gone", the ones it removed)
  🔒 only @alice sees, in #releases:  an ephemeral message
  # title · --- · ~ text · [Deploy]   a header, a divider, small grey context text, a button
  <url|text>, *bold*, _italic_, ` + "`code`" + `   Slack's own markup, as sockembot sent it; @alice is a mention
  GitHub ◂ … · Jira ◂ …               what sockembot wrote to GitHub (statuses, comments) or Jira
  ‹MAC›                               a MAC of the evidence chain: the demo's key is random on each
                                      run, so its MACs differ every time and are not shown
The fakes listen on local ports; their links read github.example and jira.example.
`

// Demo plays the story in a fresh world and prints it to out: the merge gate holding a pull
// request until a second person approves it, a compliant release going to production (digest,
// Deploy, GitHub deployment, its statuses in the thread, Jira updated), a release refused, a
// failure report when GitHub breaks, someone not allowed to deploy, an emergency deploy past
// the violations and its retroactive review, a merge queue, GitHub Actions deployments approved
// and rejected, and the evidence chain verified at the end. The bot runs as a GitHub App.
//
// keepDir, when set, is where the demo's SQLite store is kept after it ends (created if need
// be), with its evidence key beside it in KeyFile, so `sockembot audit verify` and `audit
// export` can be run on it; "" uses a temporary directory, removed at the end.
func Demo(ctx context.Context, out io.Writer, keepDir string) error {
	dir := keepDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "sockembot-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// A random key for each run, never printed. A kept store keeps its key in a file beside it,
	// which suits a demo only: a real key lives where whoever can write the database can't read it.
	key := store.NewKey()
	if keepDir != "" {
		if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
			return err
		}
	}
	clk := &clock{now: storyStart}
	// One retry keeps the GitHub outage short; `run` uses the adapter's defaults.
	w, err := Start(ctx, Options{Dir: dir, EvidenceKey: key, GitHubRetries: 1, Now: clk.Now, StoreNow: clk.Now, App: true})
	if err != nil {
		return fmt.Errorf("start the demo: %w", err)
	}
	defer w.Close()
	Seed(w)
	s := newStory(w, clk)
	s.reportPath = filepath.Join(os.TempDir(), ReportFile)
	if keepDir != "" {
		s.reportPath = filepath.Join(dir, ReportFile)
	}
	err = s.play(ctx)
	// What happened so far is printed even when a scene broke: it shows where.
	fmt.Fprint(out, s.String())
	return err
}

// KeyFile is the file, in a kept demo store's directory, that holds its evidence key (hex).
const KeyFile = "evidence.key"

// clock is the demo's fixed clock, moved by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// story tells what happens in a world, scene by scene.
type story struct {
	w     *World
	clk   *clock
	b     strings.Builder
	scene int

	calls      int              // Slack Web API calls told so far
	messages   map[string]*told // by ts: each message as last told
	last       string           // the root message told last: its replies follow it directly
	github     map[string]string
	jira       int    // Jira comments told
	deliveries int    // webhooks sent
	moves      int    // Jira transitions told
	reportPath string // where the auditor's report is written
	refused    int    // the pull request the merge queue refused
}

type told struct {
	channel string
	title   string
	lines   []string
}

func newStory(w *World, clk *clock) *story {
	s := &story{w: w, clk: clk, messages: map[string]*told{}, github: map[string]string{}}
	s.b.WriteString(legend)
	return s
}

func (s *story) String() string { return s.b.String() }

const wait = 30 * time.Second

func (s *story) play(ctx context.Context) error {
	for _, scene := range []func(context.Context) error{
		s.mergeGate, s.approveAndMerge, s.compliantRelease, s.refusedRelease, s.githubDown,
		s.notAllowed, s.emergency, s.retroReview, s.mergeQueue, s.actionsDeploys, s.evidence, s.report,
	} {
		if err := scene(ctx); err != nil {
			return fmt.Errorf("scene %d: %w", s.scene, err)
		}
	}
	return nil
}

// --- the scenes ---

func (s *story) mergeGate(ctx context.Context) error {
	s.title("A pull request without a second approval is held at the merge gate")
	s.w.Jira.AddIssue("PAY-103", "In Progress")
	pay := s.w.GitHub.Repo("acme/payments")
	info := pay.OpenPR(fakegithub.PR{Title: "PAY-103 Partial refunds", Author: "carol", MergedBy: "dave", Branch: "carol/partial-refunds"})
	s.act("GitHub: carol opens acme/payments#%d “PAY-103 Partial refunds”; GitHub sends sockembot a pull_request webhook", info.Number)
	if err := s.webhook(ctx, "pull_request", func() ([]byte, error) { return s.w.PullRequestEvent(ctx, "acme/payments", info.Number, "opened") }); err != nil {
		return err
	}
	if err := Wait(ctx, "the failing status", wait, func() bool { return hasStatus(pay, info.HeadSHA, "failure") && len(pay.Comments(info.Number)) > 0 }); err != nil {
		return err
	}
	s.tellGitHub(pay, info.Number, info.HeadSHA)
	s.tellSlack()
	return nil
}

func (s *story) approveAndMerge(ctx context.Context) error {
	s.title("A second person approves: the status turns green, and the merge is recorded")
	pay := s.w.GitHub.Repo("acme/payments")
	info, _ := pay.PR(3)
	pay.AddReview(3, fakegithub.Review{User: "dave", State: "APPROVED"})
	s.act("GitHub: dave approves acme/payments#3; GitHub sends a pull_request_review webhook")
	if err := s.webhook(ctx, "pull_request_review", func() ([]byte, error) { return s.w.ReviewEvent(ctx, "acme/payments", 3, "submitted") }); err != nil {
		return err
	}
	if err := Wait(ctx, "the passing status", wait, func() bool {
		cs := pay.Comments(3)
		return hasStatus(pay, info.HeadSHA, "success") && len(cs) > 0 && strings.Contains(cs[len(cs)-1].Body, render.FixedHeading)
	}); err != nil {
		return err
	}
	s.tellGitHub(pay, 3, info.HeadSHA)
	pay.Merge(3, fakegithub.Squash)
	n := len(s.w.Roots())
	s.act("GitHub: dave squash-merges acme/payments#3; GitHub sends a pull_request webhook (closed, merged)")
	if err := s.webhook(ctx, "pull_request", func() ([]byte, error) { return s.w.PullRequestEvent(ctx, "acme/payments", 3, "closed") }); err != nil {
		return err
	}
	if err := Wait(ctx, "the merge note", wait, func() bool { return len(s.w.Roots()) > n }); err != nil {
		return err
	}
	s.tellSlack()
	return nil
}

func (s *story) compliantRelease(ctx context.Context) error {
	s.title("A compliant release goes to production")
	s.command(Alice, Release, "payments to production")
	digest, err := s.waitRoot(ctx, "the payments digest", func(m fakeslack.Message) bool { return HasAction(m, render.ActionDeploy) })
	if err != nil {
		return err
	}
	s.tellSlack()
	s.click(Bob, render.ActionDeploy, "Deploy", digest, "")
	pay := s.w.GitHub.Repo("acme/payments")
	var depID int64
	if err := Wait(ctx, "the GitHub deployment", wait, func() bool {
		for _, d := range pay.Deployments() {
			if d.Creator != "deployer" {
				depID = d.ID
			}
		}
		// Done when the digest says so: the thread replies (the deploy, then the chain's head)
		// come first, the edit last.
		return depID != 0 && len(s.w.Slack.Thread(Release, digest.TS)) >= 3 && edited(s.w, digest, "Deploying")
	}); err != nil {
		return err
	}
	s.tellSlack()
	for i, st := range []struct{ state, desc string }{{"in_progress", "rolling out to 12 pods"}, {"success", "12/12 pods healthy"}} {
		s.act("The CD system reports deployment %d %s (“%s”); GitHub sends a deployment_status webhook", depID, strings.ReplaceAll(st.state, "_", " "), st.desc)
		if err := s.webhook(ctx, "deployment_status", func() ([]byte, error) {
			return s.w.StatusEvent(ctx, "acme/payments", depID, st.state, st.desc)
		}); err != nil {
			return err
		}
		// The success status also closes the loop in Jira: one more reply then.
		if want := 4 + i + i; len(s.w.Slack.Thread(Release, digest.TS)) < want {
			return fmt.Errorf("the %s status was processed but the thread has %d messages, want %d", st.state, len(s.w.Slack.Thread(Release, digest.TS)), want)
		}
		s.tellJira()
		s.tellSlack()
	}
	return nil
}

func (s *story) refusedRelease(ctx context.Context) error {
	s.title("A release that breaks the policy is refused")
	n := len(s.w.Roots())
	s.command(Alice, Release, "search to production")
	if err := Wait(ctx, "the refused search digest", wait, func() bool { return len(s.w.Roots()) > n }); err != nil {
		return err
	}
	if err := s.waitAnchor(ctx); err != nil {
		return err
	}
	s.tellSlack()
	return nil
}

func (s *story) githubDown(ctx context.Context) error {
	s.title("GitHub fails while billing is checked: a failure report, and nothing is deployed")
	s.act("GitHub starts answering 500 Internal Server Error for acme/billing")
	s.w.GitHub.FailNext(1000, "/repos/acme/billing", http.StatusInternalServerError)
	n := len(s.w.Roots())
	s.command(Alice, Release, "billing to production")
	if err := Wait(ctx, "the billing failure report", wait, func() bool { return len(s.w.Roots()) > n }); err != nil {
		return err
	}
	if err := s.waitAnchor(ctx); err != nil {
		return err
	}
	s.tellSlack()
	return nil
}

func (s *story) notAllowed(ctx context.Context) error {
	s.title("Someone who may not deploy to production is told so, and the attempt is recorded")
	s.command(Mallory, Dev, "payments to production")
	if err := Wait(ctx, "the answer to Mallory", wait, func() bool {
		for _, e := range s.w.Slack.Ephemerals() {
			if e.User == Mallory {
				return true
			}
		}
		return false
	}); err != nil {
		return err
	}
	s.tellSlack()
	return nil
}

func (s *story) emergency(ctx context.Context) error {
	s.title("Search is down for everyone: an emergency deploy past the violations")
	s.command(Alice, Release, `search to production emergency "search is down for every customer"`)
	emergency, err := s.waitRoot(ctx, "the emergency digest", func(m fakeslack.Message) bool {
		return HasAction(m, render.ActionDeploy) && strings.Contains(string(m.Blocks), "emergency")
	})
	if err != nil {
		return err
	}
	// The note to the incidents channel follows the digest.
	if err := Wait(ctx, "the note to #incidents", wait, func() bool { return len(s.w.Slack.Messages(Incidents)) > 0 }); err != nil {
		return err
	}
	s.tellSlack()
	s.click(Alice, render.ActionDeploy, "Deploy", emergency, "")
	if err := Wait(ctx, "the retroactive reviews", wait, func() bool {
		for _, m := range s.w.Slack.Thread(Release, emergency.TS) {
			if HasAction(m, render.ActionRetroApprove) {
				return true
			}
		}
		return false
	}); err != nil {
		return err
	}
	s.tellSlack()
	return nil
}

func (s *story) retroReview(ctx context.Context) error {
	s.title("The overridden changes are reviewed after the fact, by a second person")
	var emergency, retro fakeslack.Message
	for _, m := range s.w.Roots() {
		if strings.Contains(string(m.Blocks), "emergency override") {
			emergency = m
		}
	}
	for _, m := range s.w.Slack.Thread(Release, emergency.TS) {
		if HasAction(m, render.ActionRetroApprove) {
			retro = m
		}
	}
	before := len(s.w.Slack.Ephemerals())
	s.click(Alice, render.ActionRetroApprove, "Approve retroactively", retro, "#2")
	if err := Wait(ctx, "alice's own review refused", wait, func() bool { return len(s.w.Slack.Ephemerals()) > before }); err != nil {
		return err
	}
	s.tellSlack()
	n := len(s.w.Slack.Thread(Release, emergency.TS))
	s.click(Bob, render.ActionRetroApprove, "Approve retroactively", retro, "#2")
	if err := Wait(ctx, "the retroactive review closed", wait, func() bool { return len(s.w.Slack.Thread(Release, emergency.TS)) > n }); err != nil {
		return err
	}
	s.tellSlack()
	return nil
}

func (s *story) mergeQueue(ctx context.Context) error {
	s.title("A merge queue: each group of queued pull requests is checked as a whole")
	s.w.Jira.AddIssue("PAY-104", "In Progress")
	pay := s.w.GitHub.Repo("acme/payments")
	good := pay.OpenPR(fakegithub.PR{Title: "PAY-104 Refund webhooks", Author: "carol", Branch: "carol/refund-webhooks",
		Reviews: []fakegithub.Review{{User: "dave", State: "APPROVED"}}})
	bad := pay.OpenPR(fakegithub.PR{Title: "Raise the retry limit", Author: "erin", Branch: "erin/retries"})
	s.refused = bad.Number
	// The queue builds a group for each queued pull request: its own, on top of those ahead of it.
	first := pay.QueuePRs(fakegithub.MergeCommit, good.Number)
	second := pay.QueuePRs(fakegithub.MergeCommit, good.Number, bad.Number)
	for _, q := range []struct {
		g    fakegithub.MergeGroup
		what string
	}{
		{first, fmt.Sprintf("#%d", good.Number)},
		{second, fmt.Sprintf("#%d and #%d", good.Number, bad.Number)},
	} {
		s.act("GitHub: the merge queue of acme/payments builds a group of %s on main (%s); GitHub sends a merge_group webhook (checks_requested)", q.what, render.Short(q.g.HeadSHA))
		if err := s.webhook(ctx, "merge_group", func() ([]byte, error) { return s.w.MergeGroupEvent(ctx, "acme/payments", q.g, "checks_requested", "") }); err != nil {
			return err
		}
		s.tellGitHub(pay, 0, q.g.HeadSHA)
	}
	pay.MergeQueued(first)
	s.act("GitHub: the first group's check passed, so the queue merges #%d into main", good.Number)
	s.act("GitHub: the second group's check failed: the queue drops it, and #%d stays out of main; GitHub sends a merge_group webhook (destroyed)", bad.Number)
	return s.webhook(ctx, "merge_group", func() ([]byte, error) {
		return s.w.MergeGroupEvent(ctx, "acme/payments", second, "destroyed", "invalidated")
	})
}

func (s *story) actionsDeploys(ctx context.Context) error {
	s.title("GitHub Actions deploys wait for sockembot: one approved, one rejected")
	pay := s.w.GitHub.Repo("acme/payments")
	head := pay.Head()
	run := pay.WaitingRun("production", head, "main", "carol")
	s.act("GitHub Actions: carol's workflow run %d wants to deploy acme/payments main (%s) to production; the environment's protection rule sends sockembot a deployment_protection_rule webhook", run.RunID, render.Short(head))
	if err := s.webhook(ctx, "deployment_protection_rule", func() ([]byte, error) {
		return s.w.ProtectionRuleEvent(ctx, "acme/payments", run, "production", head, "main", "carol", "workflow_dispatch")
	}); err != nil {
		return err
	}
	s.tellActions(run)
	if err := s.waitAnchor(ctx); err != nil {
		return err
	}
	s.tellSlack()
	s.act("GitHub Actions deploys it and reports deployment %d success; GitHub sends a deployment_status webhook", run.DeploymentID)
	if err := s.webhook(ctx, "deployment_status", func() ([]byte, error) {
		return s.w.StatusEvent(ctx, "acme/payments", run.DeploymentID, "success", "deployed by GitHub Actions")
	}); err != nil {
		return err
	}
	s.tellJira()
	s.tellSlack()

	// An admin merges the pull request the queue refused, past the rules.
	pay.Merge(s.refused, fakegithub.MergeCommit)
	head = pay.Head()
	run = pay.WaitingRun("production", head, "main", "erin")
	s.act("GitHub: an admin merges “Raise the retry limit” past the rules; erin's workflow run %d wants to deploy main (%s) to production", run.RunID, render.Short(head))
	if err := s.webhook(ctx, "deployment_protection_rule", func() ([]byte, error) {
		return s.w.ProtectionRuleEvent(ctx, "acme/payments", run, "production", head, "main", "erin", "push")
	}); err != nil {
		return err
	}
	s.tellActions(run)
	if err := s.waitAnchor(ctx); err != nil {
		return err
	}
	s.tellSlack()
	return nil
}

func (s *story) evidence(ctx context.Context) error {
	s.title("Everything above is evidence: the chain an auditor verifies")
	s.act("sockembot audit verify")
	res, err := s.w.Store.Verify(ctx)
	if err != nil {
		return err
	}
	if !res.OK {
		return fmt.Errorf("the demo's own evidence chain does not verify: record %d: %s", res.FirstBad, res.Problem)
	}
	fmt.Fprintf(&s.b, "  OK: %d evidence records, chain intact\n  keyed: records %d-%d, HMAC-SHA256, every MAC checked\n  head: record %d, MAC ‹MAC›\n",
		res.Checked, res.KeyedFrom, res.HeadSeq, res.HeadSeq)
	kinds := map[string]int{}
	if err := s.w.Store.Records(ctx, "", "", func(r compliance.Record) error { kinds[r.Kind]++; return nil }); err != nil {
		return err
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	var parts []string
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %d", k, kinds[k]))
	}
	fmt.Fprintf(&s.b, "  by kind: %s\n", strings.Join(parts, " · "))
	return nil
}

// reportSeed draws the demo report's sample: fixed, so the story tells the same sample each run.
const reportSeed = 2024

func (s *story) report(ctx context.Context) error {
	s.title("The auditor's report: one HTML file to sample from")
	from := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	q := audit.ReportQuery{From: from, To: from.AddDate(0, 1, 0), Sample: 25, Seed: reportSeed, SeedGiven: true,
		Generated: s.clk.Now(), Version: "sockembot demo",
		Command: fmt.Sprintf("sockembot audit report --from 2024-03-01 --to 2024-03-31 --sample 25 --seed %d", reportSeed)}
	s.act("%s -o %s", q.Command, ReportFile)
	res, err := audit.WriteReportFile(ctx, s.w.Store, q, s.reportPath)
	if err != nil {
		return err
	}
	if !res.Chain.Intact() {
		return fmt.Errorf("the demo's report: %s", res.Chain.Line())
	}
	fmt.Fprintf(&s.b, "  Evidence chain: intact (%d records, head ‹MAC›)\n", res.Chain.Records)
	fmt.Fprintf(&s.b, "  %d deploys, %d changes deployed, %s of them compliant; %d deploys chain to the one before them, %d gaps\n",
		res.Deploys, res.Population, res.CompliantShare, res.Deploys-res.Gaps, res.Gaps)
	fmt.Fprintf(&s.b, "  sample: %d of %d changes deployed, seed %d; the exceptions listed: %d\n", res.Sampled, res.Population, res.Seed, res.Exceptions)
	fmt.Fprintf(&s.b, "  report: %s (open it in a browser; it prints to PDF)\n", s.reportPath)
	s.b.WriteString(`
To look for yourself, keep the store and read it with the audit commands:
  go run . demo --keep ./demo-store
  DATABASE_URL=sqlite://./demo-store/sockembot.db SOCKEMBOT_EVIDENCE_KEY="$(cat ./demo-store/evidence.key)" go run . audit verify
  DATABASE_URL=sqlite://./demo-store/sockembot.db go run . audit export --from 2024-03-01 --to 2024-03-31
  DATABASE_URL=sqlite://./demo-store/sockembot.db SOCKEMBOT_EVIDENCE_KEY="$(cat ./demo-store/evidence.key)" go run . audit report --from 2024-03-01 --to 2024-03-31 -o report.html
`)
	return nil
}

// ReportFile is the demo report's file name: in the kept store's directory, or else in the
// system's temporary directory (it outlives the demo, which removes its store).
const ReportFile = "sockembot-demo-report.html"

// --- what people do ---

// title starts a scene: the clock moves on, and the scene gets its number.
func (s *story) title(t string) {
	s.clk.advance(sceneStep)
	s.scene++
	s.last = ""
	fmt.Fprintf(&s.b, "\n━━ %d. %s ━━\n", s.scene, t)
}

func (s *story) act(format string, args ...any) {
	fmt.Fprintf(&s.b, "▸ %s\n", fmt.Sprintf(format, args...))
	s.last = ""
}

// command types a slash command, as the user typed it.
func (s *story) command(user, channel, text string) {
	s.act("%s in #%s: /deploy %s", person(user), channelName(channel), text)
	s.w.Command(user, channel, text)
}

// click presses a button (whose value contains valueHas, when set) on message m.
func (s *story) click(user, actionID, label string, m fakeslack.Message, valueHas string) {
	what := "[" + label + "]"
	if valueHas != "" {
		what += " on " + valueHas
	}
	s.act("%s presses %s", person(user), what)
	value := ""
	if valueHas != "" {
		value = buttonValue(m, actionID, valueHas)
	}
	s.w.Slack.SendBlockAction(fakeslack.BlockAction{ActionID: actionID, Value: value, UserID: user, ChannelID: m.Channel, MessageTS: m.TS})
}

// webhook sends what GitHub would for an event, signed, to the bot's endpoint.
// It returns once sockembot has processed the delivery: whatever it says follows from it alone.
func (s *story) webhook(ctx context.Context, event string, body func() ([]byte, error)) error {
	b, err := body()
	if err != nil {
		return err
	}
	s.deliveries++
	id := fmt.Sprintf("story-%d", s.deliveries)
	if err := s.w.DeliverID(ctx, event, id, b); err != nil {
		return err
	}
	return Wait(ctx, "delivery "+id+" processed", wait, func() bool {
		state, err := s.w.Store.DeliveryState(ctx, id)
		return err == nil && state != "pending"
	})
}

// waitAnchor waits for the evidence chain's head in the thread of the newest root message in the
// release channel: the deploy gate posts it there once the deploy's outcome is on record.
func (s *story) waitAnchor(ctx context.Context) error {
	roots := s.w.Roots()
	root := roots[len(roots)-1]
	return Wait(ctx, "the evidence chain head in the thread", wait, func() bool {
		return slices.ContainsFunc(s.w.Slack.Thread(root.Channel, root.TS), func(m fakeslack.Message) bool {
			return strings.Contains(m.Text, "Evidence chain head")
		})
	})
}

// waitRoot waits for a new root message in the release channel that satisfies ok.
func (s *story) waitRoot(ctx context.Context, what string, ok func(fakeslack.Message) bool) (fakeslack.Message, error) {
	var found fakeslack.Message
	err := Wait(ctx, what, wait, func() bool {
		// Any root not told yet may be the one, even one posted between the act and this wait.
		for _, m := range s.w.Roots() {
			if _, seen := s.messages[m.TS]; !seen && ok(m) {
				found = m
				return true
			}
		}
		return false
	})
	return found, err
}

// --- what sockembot said ---

// tellSlack tells every Web API call sockembot made since the last time, in order.
func (s *story) tellSlack() {
	calls := s.w.Slack.Calls()
	for _, c := range calls[s.calls:] {
		if c.Error != "" {
			continue
		}
		lines := messageLines(c.Text, c.Blocks)
		switch c.Method {
		case "chat.postMessage":
			if c.ThreadTS == "" {
				fmt.Fprintf(&s.b, "#%s:\n", channelName(c.Channel))
				writeLines(&s.b, "  ", "  ", lines)
				s.messages[c.TS] = &told{channel: c.Channel, title: firstLine(lines), lines: lines}
				s.last = c.TS
				continue
			}
			if s.last != c.ThreadTS {
				root := s.messages[c.ThreadTS]
				title := "an earlier message"
				if root != nil {
					title = "“" + root.title + "”"
				}
				fmt.Fprintf(&s.b, "#%s, in the thread of %s:\n", channelName(c.Channel), title)
				s.last = c.ThreadTS
			}
			writeLines(&s.b, "    ↳ ", "      ", lines)
			s.messages[c.TS] = &told{channel: c.Channel, title: firstLine(lines), lines: lines}
		case "chat.update":
			m := s.messages[c.TS]
			if m == nil {
				m = &told{channel: c.Channel}
				s.messages[c.TS] = m
			}
			title := m.title
			if title == "" {
				title = firstLine(lines)
			}
			fmt.Fprintf(&s.b, "#%s, sockembot edits “%s”:\n", channelName(c.Channel), title)
			added, gone := diffLines(m.lines, lines)
			for _, l := range added {
				fmt.Fprintf(&s.b, "  ✎ %s\n", l)
			}
			for _, l := range gone {
				fmt.Fprintf(&s.b, "  ✎ gone: %s\n", l)
			}
			m.lines = lines
			s.last = ""
		case "chat.postEphemeral":
			fmt.Fprintf(&s.b, "🔒 only %s sees, in #%s:\n", person(c.User), channelName(c.Channel))
			writeLines(&s.b, "  ", "  ", lines)
			s.last = ""
		}
	}
	s.calls = len(calls)
}

// tellGitHub tells the commit statuses on sha and sockembot's comment on pull request number
// that were not told yet (or changed since).
func (s *story) tellGitHub(r *fakegithub.Repo, number int, sha string) {
	for _, st := range r.Statuses(sha) {
		key := fmt.Sprintf("status %d", st.ID)
		if _, seen := s.github[key]; seen {
			continue
		}
		s.github[key] = st.State
		fmt.Fprintf(&s.b, "GitHub ◂ commit status %s on %s: %s — %s\n", st.Context, render.Short(sha), st.State, st.Description)
	}
	for _, cr := range r.CheckRuns(sha) {
		key := fmt.Sprintf("check run %d", cr.ID)
		state := cr.Status + " " + cr.Conclusion
		if s.github[key] == state {
			continue
		}
		s.github[key] = state
		if cr.Status != "completed" {
			fmt.Fprintf(&s.b, "GitHub ◂ check run %s on %s: %s\n", cr.Name, render.Short(sha), cr.Status)
			continue
		}
		fmt.Fprintf(&s.b, "GitHub ◂ check run %s on %s: %s — %s\n", cr.Name, render.Short(sha), cr.Conclusion, cr.Title)
		writeLines(&s.b, "  │ ", "  │ ", strings.Split(strings.TrimRight(cr.Summary, "\n"), "\n"))
	}
	if number == 0 {
		s.last = ""
		return
	}
	for _, c := range r.Comments(number) {
		key := fmt.Sprintf("comment %d", c.ID)
		if prev, seen := s.github[key]; seen && prev == c.Body {
			continue
		}
		verb := "comments on"
		if _, seen := s.github[key]; seen {
			verb = "edits its comment on"
		}
		s.github[key] = c.Body
		fmt.Fprintf(&s.b, "GitHub ◂ %s %s %s#%d:\n", c.User, verb, r.FullName(), number)
		writeLines(&s.b, "  │ ", "  │ ", strings.Split(strings.TrimRight(c.Body, "\n"), "\n"))
	}
	s.last = ""
}

// tellActions tells sockembot's answer to a GitHub Actions run waiting on its protection rule.
func (s *story) tellActions(run fakegithub.ActionsRun) {
	for _, r := range s.w.GitHub.ProtectionReviews() {
		if r.RunID == run.RunID {
			fmt.Fprintf(&s.b, "GitHub ◂ sockembot answers workflow run %d (%s): %s\n", r.RunID, r.Environment, r.State)
			writeLines(&s.b, "  │ ", "  │ ", strings.Split(strings.TrimRight(r.Comment, "\n"), "\n"))
		}
	}
	s.last = ""
}

// tellJira tells the comments and transitions sockembot made in Jira since the last time.
func (s *story) tellJira() {
	// The tickets of a deploy are updated a few at a time, in parallel: told in key order.
	comments := s.w.Jira.Comments()
	batch := slices.Clone(comments[s.jira:])
	slices.SortStableFunc(batch, func(a, b fakejira.Comment) int { return strings.Compare(a.Issue, b.Issue) })
	for _, c := range batch {
		fmt.Fprintf(&s.b, "Jira ◂ comment on %s:\n", c.Issue)
		writeLines(&s.b, "  │ ", "  │ ", strings.Split(c.Body, "\n"))
	}
	s.jira = len(comments)
	moves := s.w.Jira.Performed()
	done := slices.Clone(moves[s.moves:])
	slices.SortStableFunc(done, func(a, b fakejira.PerformedTransition) int { return strings.Compare(a.Issue, b.Issue) })
	for _, m := range done {
		fmt.Fprintf(&s.b, "Jira ◂ %s moved through “%s”: %s → %s\n", m.Issue, m.Name, m.From, m.To)
	}
	s.moves = len(moves)
	s.last = ""
}

// --- text ---

var (
	people   = map[string]string{Alice: "@alice", Bob: "@bob", Mallory: "@mallory"}
	channels = map[string]string{Release: "releases", Dev: "dev", Incidents: "incidents"}
	mentions = strings.NewReplacer("<@"+Alice+">", "@alice", "<@"+Bob+">", "@bob", "<@"+Mallory+">", "@mallory", "<!subteam^"+OpsGroup+">", "@ops")
)

func person(user string) string {
	if p, ok := people[user]; ok {
		return p
	}
	return "@" + user
}

func channelName(id string) string {
	if n, ok := channels[id]; ok {
		return n
	}
	return id
}

// macs matches the evidence chain's MACs (commit SHAs are 40 hex digits, not 64).
var macs = regexp.MustCompile(`\b[0-9a-f]{64}\b`)

// messageLines is a message as a reader sees it, mentions shown as @name and the evidence
// chain's MACs, which change with the demo's random key, as ‹MAC›.
func messageLines(text string, blocks []byte) []string {
	lines := strings.Split(text, "\n")
	if len(blocks) > 0 {
		lines = fakeslack.Flatten(blocks)
	}
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		out = append(out, strings.TrimRight(macs.ReplaceAllString(mentions.Replace(l), "‹MAC›"), " "))
	}
	// A code block's closing fence often follows an empty line: keep the text as posted, but
	// without trailing empty lines.
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

func writeLines(b *strings.Builder, first, rest string, lines []string) {
	for i, l := range lines {
		prefix := rest
		if i == 0 {
			prefix = first
		}
		b.WriteString(strings.TrimRight(prefix+l, " ") + "\n")
	}
}

func firstLine(lines []string) string {
	for _, l := range lines {
		if l = strings.TrimSpace(strings.TrimPrefix(l, "# ")); l != "" {
			return l
		}
	}
	return ""
}

// diffLines is what an edit added and removed, line by line (order kept, repeats counted).
func diffLines(before, after []string) (added, gone []string) {
	count := map[string]int{}
	for _, l := range before {
		count[l]++
	}
	for _, l := range after {
		if count[l] > 0 {
			count[l]--
			continue
		}
		added = append(added, l)
	}
	left := map[string]int{}
	for _, l := range after {
		left[l]++
	}
	for _, l := range before {
		if left[l] > 0 {
			left[l]--
			continue
		}
		gone = append(gone, l)
	}
	return added, gone
}

// buttonValue finds the value of the actionID button on m whose value contains has.
func buttonValue(m fakeslack.Message, actionID, has string) string {
	var blocks any
	if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
		return ""
	}
	var found string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["action_id"] == actionID {
				if val, ok := v["value"].(string); ok && strings.Contains(val, has) && found == "" {
					found = val
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(blocks)
	return found
}

// edited says whether message m now contains text.
func edited(w *World, m fakeslack.Message, text string) bool {
	th := w.Slack.Thread(m.Channel, m.TS)
	return len(th) > 0 && th[0].Edits > 0 && strings.Contains(string(th[0].Blocks), text)
}

func hasStatus(r *fakegithub.Repo, sha, state string) bool {
	return slices.ContainsFunc(r.Statuses(sha), func(st fakegithub.Status) bool { return st.State == state })
}
