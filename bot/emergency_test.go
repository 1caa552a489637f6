package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"

	"sockembot/compliance"
	fakeslack "sockembot/integrations/fake/slack"
	"sockembot/integrations/store"
)

const demoEmergency = "C0EMERG"

// clock is a settable time source for the bot, so deadlines are tested without waiting.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// emergencyRig is the demo world where alice may break glass in production, with the clock on
// Tuesday 2026-11-24 10:00 UTC.
func emergencyRig(t *testing.T, configure ...func(*Config)) (*slackRig, *clock) {
	t.Helper()
	clk := &clock{now: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	r := newSlackRig(t, func(o *worldOptions) {
		o.Now = clk.Now
		o.Configure = func(c *Config) {
			c.Emergency = map[string][]string{"production": {demoAlice}}
			c.EmergencyChannel = demoEmergency
			c.People = map[string]string{demoAlice: "alice", demoBob: "bob"}
			for _, f := range configure {
				f(c)
			}
		}
	})
	return r, clk
}

const searchEmergency = `search to production emergency "search is down for every customer"`

func TestEmergencyDeployOverridesViolationsAndOpensRetroReviews(t *testing.T) {
	r, clk := emergencyRig(t)
	r.command(demoAlice, demoRelease, searchEmergency)
	root := r.digest(1)
	body := text(root)
	for _, want := range []string{"emergency override", "Emergency override", "search is down for every customer", "_(overridden)_",
		"#1: SRCH-7 was not found in Jira", "#2: no Jira ticket", "direct push"} {
		if !strings.Contains(body, want) {
			t.Errorf("emergency digest lacks %q:\n%s", want, r.Slack.Render())
		}
	}
	if !hasAction(root, actionDeploy) {
		t.Fatal("an emergency digest must offer Deploy despite the violations")
	}
	if strings.Contains(body, "Deploy refused") {
		t.Error("an emergency digest says refused")
	}
	r.until("the emergency channel told", func() bool { return len(r.Slack.Messages(demoEmergency)) == 1 })
	note := r.Slack.Messages(demoEmergency)[0].Text
	for _, want := range []string{"Emergency deploy", "<@U0ALICE>", "search is down for every customer", "5 violation(s) overridden", fakeslack.PermalinkBase} {
		if !strings.Contains(note, want) {
			t.Errorf("emergency channel note lacks %q: %s", want, note)
		}
	}
	r.until("the override recorded", func() bool { return len(r.records(store.KindOverride)) == 1 })
	if n := len(r.records(store.KindDeployRefused)); n != 0 {
		t.Errorf("%d refusals recorded for an emergency deploy", n)
	}

	// Deploy, twice: one GitHub deployment, and the retro reviews open once.
	r.click(demoAlice, actionDeploy, root)
	r.click(demoAlice, actionDeploy, root)
	r.until("the retro reviews in the thread", func() bool {
		for _, m := range r.thread(root) {
			if strings.Contains(m.Text, "Retroactive review needed") {
				return true
			}
		}
		return false
	})
	if n := r.GitHub.Count(deployRoute); n != 1 {
		t.Fatalf("%d GitHub deployments, want 1", n)
	}
	reviews, err := r.Store.RetroReviews(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(reviews) != 3 {
		t.Fatalf("%d retro reviews, want one per non-compliant change (3)", len(reviews))
	}
	// Opened Tuesday 10:00 with two business days: due Thursday 10:00.
	if due := reviews[0].Opened.Due; !due.Equal(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("due %s", due)
	}
	var dep store.DeploymentEvidence
	recs := r.records(store.KindDeploymentCreated)
	if len(recs) != 1 || json.Unmarshal(recs[0].Body, &dep) != nil || dep.Override == nil ||
		dep.Override.By != demoAlice || dep.Override.Reason != "search is down for every customer" || dep.Compliant {
		t.Fatalf("deployment evidence does not carry the override: %+v", dep.Override)
	}
	deployID := dep.DeployID

	// The requester can't review her own emergency; bob can.
	retro := retroMessage(t, r, root)
	r.Slack.SendBlockAction(fakeslack.BlockAction{ActionID: actionRetroApprove, Value: fmt.Sprintf("%d|#1", deployID),
		UserID: demoAlice, ChannelID: retro.Channel, MessageTS: retro.TS})
	r.ephemeralTo(demoAlice, "You can't approve #1 retroactively")
	clk.Set(clk.Now().Add(3 * time.Hour))
	r.Slack.SendBlockAction(fakeslack.BlockAction{ActionID: actionRetroApprove, Value: fmt.Sprintf("%d|#1", deployID),
		UserID: demoBob, ChannelID: retro.Channel, MessageTS: retro.TS})
	r.until("the retro review closed in the thread", func() bool { return threadSays(r, root, "Retroactive review of *#1* done by <@U0BOB>") })

	// Approvals that do not count: a bot's, one from outside the repository's collaborators,
	// and the requester's own (alice, mapped in people).
	deliverReviewAs(t, r, "acme/search", 2, "github-actions[bot]", "approved", "NONE", "Bot")
	deliverReviewAs(t, r, "acme/search", 2, "mallory", "approved", "CONTRIBUTOR", "User")
	deliverReview(t, r, "acme/search", 2, "alice", "approved")
	r.until("those deliveries handled", func() bool {
		n, err := r.Store.PendingDeliveries(context.Background())
		return err == nil && n == 0
	})
	if threadSays(r, root, "Retroactive review of *#2* done") {
		t.Fatalf("a bot, a non-collaborator or the requester closed #2:\n%s", r.Slack.Render())
	}
	// #2 is approved on GitHub after the fact, by someone who is neither its author (frank)
	// nor the requester.
	deliverReview(t, r, "acme/search", 2, "carol", "approved")
	r.until("the GitHub review closes #2", func() bool {
		return threadSays(r, root, "Retroactive review of *#2* done by carol (approving review on GitHub)")
	})
	// An approval by the change's own author does not count.
	deliverReview(t, r, "acme/search", 1, "erin", "approved")

	r.until("the review evidence", func() bool { return len(r.records(store.KindRetroReview)) == 5 })
	reviews, _ = r.Store.RetroReviews(context.Background())
	open := 0
	for _, rv := range reviews {
		if rv.Closed == nil {
			open++
		}
	}
	if open != 1 {
		t.Errorf("%d reviews open, want 1 (the direct push)", open)
	}

	var out bytes.Buffer
	if err := store.WriteCSV(context.Background(), r.Store, store.ExportQuery{From: clk.Now().Add(-48 * time.Hour), To: clk.Now().Add(48 * time.Hour)}, &out); err != nil {
		t.Fatal(err)
	}
	csv := out.String()
	for _, want := range []string{"retro_review_due,retro_reviewed_by,retro_reviewed_via,retro_reviewed_at", demoBob, "carol", "github_review",
		"search is down for every customer", "2026-11-26T10:00:00Z", fakeslack.PermalinkBase + "/archives/" + demoRelease + "/p"} {
		if !strings.Contains(csv, want) {
			t.Errorf("export lacks %q:\n%s", want, csv)
		}
	}
	r.noWebAPIErrors()
}

// The Deploy button of an emergency carries the override: only the requester or someone who
// may break glass there presses it, even a deployer.
func TestEmergencyDigestPressedOnlyByTheEmergencyList(t *testing.T) {
	r, _ := emergencyRig(t)
	r.command(demoAlice, demoRelease, searchEmergency)
	root := r.digest(1)
	r.click(demoBob, actionDeploy, root) // a deployer (through the ops group), not on the emergency list
	r.ephemeralTo(demoBob, "someone on the emergency list for *production* may deploy this emergency")
	if n := r.GitHub.Count(deployRoute); n != 0 {
		t.Fatalf("%d deployments", n)
	}
	r.until("the denied press recorded", func() bool { return len(r.records(store.KindDeployAttemptDenied)) == 1 })
	r.click(demoAlice, actionDeploy, root)
	r.until("the requester's deployment", func() bool { return r.GitHub.Count(deployRoute) == 1 })
}

// The emergency list alone is what an emergency digest's Deploy needs, as for asking.
func TestEmergencyDigestPressedBySomeoneOnTheListWhoIsNoDeployer(t *testing.T) {
	r, _ := emergencyRig(t, func(c *Config) { c.Emergency["production"] = []string{demoAlice, demoMallory} })
	r.command(demoAlice, demoRelease, searchEmergency)
	root := r.digest(1)
	r.click(demoMallory, actionDeploy, root)
	r.until("mallory's deployment", func() bool { return r.GitHub.Count(deployRoute) == 1 })
}

func TestEmergencyDeployRefusedForSomeoneNotOnTheList(t *testing.T) {
	r, _ := emergencyRig(t)
	// bob may deploy to production (through the ops group) but may not break glass.
	r.command(demoBob, demoDev, searchEmergency)
	r.ephemeralTo(demoBob, "You may not make emergency deploys to *production*; this attempt has been recorded")
	r.until("the attempt recorded", func() bool { return len(r.records(store.KindDeployAttemptDenied)) == 1 })
	var ev attemptDeniedEvidence
	if err := json.Unmarshal(r.records(store.KindDeployAttemptDenied)[0].Body, &ev); err != nil || ev.User != demoBob || ev.Action != "emergency" ||
		!strings.Contains(ev.Reason, "search is down") || ev.Channel != demoDev {
		t.Errorf("attempt evidence %+v", ev)
	}
	if n := len(r.roots()); n != 0 {
		t.Errorf("%d digests posted for a refused emergency", n)
	}
	// A reason too short to mean anything is a usage answer, not a deploy.
	r.command(demoAlice, demoDev, `search to production emergency "urgent"`)
	r.ephemeralTo(demoAlice, "at least 3 words")
}

// The emergency channel note is for visibility: a channel the bot cannot post to must not take
// the emergency deploy down with it.
func TestEmergencyDeployGoesAheadWhenTheEmergencyChannelCannotBeTold(t *testing.T) {
	r, _ := emergencyRig(t)
	r.Slack.NotInChannel(demoEmergency)
	r.command(demoAlice, demoRelease, searchEmergency)
	root := r.digest(1)
	r.until("the warning in the thread", func() bool { return threadSays(r, root, "Could not tell the emergency channel") })
	if !threadSays(r, root, "not_in_channel") {
		t.Errorf("the warning does not say why:\n%s", r.Slack.Render())
	}
	if strings.Contains(r.Slack.Render(), "sockembot failed") {
		t.Fatalf("a failure report replaced the emergency digest:\n%s", r.Slack.Render())
	}
	d := r.deploys("search", "production")[0]
	if d.State != store.StateReady {
		t.Fatalf("deploy state %s, want ready", d.State)
	}
	r.click(demoAlice, actionDeploy, r.digest(1))
	r.until("the deployment", func() bool { return r.GitHub.Count(deployRoute) == 1 })
}

// An emergency digest that waited too long is re-checked like any other when Deploy is pressed;
// what the re-check finds is overridden on the record, not reported as "still compliant".
func TestEmergencyRecheckOverridesWhatItFinds(t *testing.T) {
	r, clk := emergencyRig(t)
	r.command(demoAlice, demoRelease, `payments to production emergency "checkout is down for everyone"`)
	root := r.digest(1)
	r.Jira.AddIssue("PAY-101", "To Do")
	clk.Set(time.Now().Add(2 * recheckAfter)) // the store dates the deploy by the wall clock
	r.click(demoAlice, actionDeploy, root)
	r.until("the deployment", func() bool { return r.GitHub.Count(deployRoute) == 1 })
	r.until("the retro review", func() bool { return threadSays(r, root, "Retroactive review needed") })
	if !threadSays(r, root, "*no longer compliant*. Deploying under <@U0ALICE>'s emergency override") || threadSays(r, root, "still compliant") {
		t.Fatalf("thread misreports the re-check:\n%s", r.Slack.Render())
	}
	recs := r.records(store.KindOverride)
	var ev overrideEvidence
	if len(recs) != 1 || json.Unmarshal(recs[0].Body, &ev) != nil || !strings.Contains(strings.Join(ev.Violations, " "), "ticket_status") {
		t.Fatalf("override evidence %d records: %+v", len(recs), ev)
	}
}

func TestOverdueRetroReviewsInTheDailySummaryWithAReminder(t *testing.T) {
	r, clk := emergencyRig(t)
	r.command(demoAlice, demoRelease, searchEmergency)
	root := r.digest(1)
	r.click(demoAlice, actionDeploy, root)
	r.until("the retro reviews", func() bool { return threadSays(r, root, "Retroactive review needed") })

	ctx := context.Background()
	// Wednesday: not due yet.
	clk.Set(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	s, err := r.App.DailySummary(ctx, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.OverdueReviews) != 0 || s.Overrides != 1 {
		t.Fatalf("Wednesday: overdue %q, overrides %d", s.OverdueReviews, s.Overrides)
	}
	// Friday: two days overdue, reminded once however often the job runs that day.
	clk.Set(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
	for range 2 {
		if s, err = r.App.DailySummary(ctx, time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.OverdueReviews) != 3 || !strings.Contains(s.OverdueReviews[0], "due 2026-11-26") {
		t.Fatalf("Friday: overdue %q", s.OverdueReviews)
	}
	summary := r.roots()[len(r.roots())-1].Text
	if !strings.Contains(summary, "Overdue retroactive reviews (3)") {
		t.Errorf("summary lacks the overdue reviews:\n%s", summary)
	}
	reminders := 0
	for _, m := range r.thread(root) {
		if strings.Contains(m.Text, "⏰ <@U0ALICE>") {
			reminders++
		}
	}
	if reminders != 3 {
		t.Errorf("%d reminders in the thread, want one per overdue review (3)", reminders)
	}
}

func TestSoleApproverMayNotAlsoDeploy(t *testing.T) {
	t.Run("refuse", func(t *testing.T) {
		// bob alone approved payments #1 and asks to deploy it to production.
		r, _ := emergencyRig(t)
		r.command(demoBob, demoRelease, "payments to production")
		root := r.digest(1)
		body := text(root)
		if hasAction(root, actionDeploy) || !strings.Contains(body, "Deploy refused") ||
			!strings.Contains(body, "bob is the only approver and is also deploying it") {
			t.Fatalf("want a refusal naming the sole approver:\n%s", r.Slack.Render())
		}
		r.until("the refusal", func() bool { return len(r.records(store.KindDeployRefused)) == 1 })
		var ev deployRefusedEvidence
		json.Unmarshal(r.records(store.KindDeployRefused)[0].Body, &ev)
		if !strings.Contains(strings.Join(ev.Violations, " "), "#1 "+string(compliance.RequesterSoleApprover)) {
			t.Errorf("refusal evidence %+v", ev)
		}
		// alice did not approve anything here: she may deploy it ...
		r.command(demoAlice, demoRelease, "payments to production")
		root = r.digest(2)
		if !hasAction(root, actionDeploy) {
			t.Fatalf("alice's request refused:\n%s", r.Slack.Render())
		}
		// ... but bob, a deployer who alone approved #1, may not be the one to press Deploy.
		r.click(demoBob, actionDeploy, root)
		r.ephemeralTo(demoBob, "You are the only approver of #1, so you may not also deploy it")
		if n := r.GitHub.Count(deployRoute); n != 0 {
			t.Fatalf("%d deployments after the sole approver pressed Deploy", n)
		}
		r.click(demoAlice, actionDeploy, root)
		r.until("alice's deployment", func() bool { return r.GitHub.Count(deployRoute) == 1 })
	})
	t.Run("emergency deploy of a compliant release", func(t *testing.T) {
		// Nothing is overridden here, so "emergency" must not switch the rule off for bob, who
		// may break glass too.
		r, _ := emergencyRig(t, func(c *Config) { c.Emergency["production"] = []string{demoAlice, demoBob} })
		r.command(demoAlice, demoRelease, `payments to production emergency "checkout is down for everyone"`)
		root := r.digest(1)
		if !hasAction(root, actionDeploy) {
			t.Fatalf("no Deploy button:\n%s", r.Slack.Render())
		}
		r.click(demoBob, actionDeploy, root)
		r.ephemeralTo(demoBob, "You are the only approver of #1, so you may not also deploy it")
		if n := r.GitHub.Count(deployRoute); n != 0 {
			t.Fatalf("%d deployments after the sole approver pressed Deploy on an emergency digest", n)
		}
		r.until("the denied attempt recorded", func() bool { return len(r.records(store.KindDeployAttemptDenied)) == 1 })
		r.click(demoAlice, actionDeploy, root)
		r.until("alice's deployment", func() bool { return r.GitHub.Count(deployRoute) == 1 })
	})
	t.Run("warn", func(t *testing.T) {
		r, _ := emergencyRig(t, func(c *Config) { c.Policy.SeparationOfDuties.RequesterSoleApprover = compliance.ActionWarn })
		r.command(demoBob, demoRelease, "payments to production")
		root := r.digest(1)
		if !hasAction(root, actionDeploy) || !strings.Contains(text(root), "⚠️ bob is the only approver") {
			t.Fatalf("want a warning and a Deploy button:\n%s", r.Slack.Render())
		}
	})
	t.Run("not production", func(t *testing.T) {
		r, _ := emergencyRig(t)
		r.command(demoBob, demoRelease, "payments to staging from v1.4.0")
		if root := r.digest(1); !hasAction(root, actionDeploy) {
			t.Fatalf("staging is not a production environment:\n%s", r.Slack.Render())
		}
	})
}

func retroMessage(t *testing.T, r *slackRig, root fakeslack.Message) fakeslack.Message {
	t.Helper()
	for _, m := range r.thread(root) {
		if hasAction(m, actionRetroApprove) {
			return m
		}
	}
	t.Fatalf("no retro review buttons in the thread:\n%s", r.Slack.Render())
	return fakeslack.Message{}
}

func threadSays(r *slackRig, root fakeslack.Message, s string) bool {
	for _, m := range r.thread(root) {
		if strings.Contains(m.Text, s) {
			return true
		}
	}
	return false
}

// deliverReview sends GitHub's pull_request_review webhook for a review submitted on a merged
// pull request, signed, to the bot's endpoint.
func deliverReview(t *testing.T, r *slackRig, repo string, number int, reviewer, state string) {
	t.Helper()
	deliverReviewAs(t, r, repo, number, reviewer, state, "COLLABORATOR", "User")
}

// deliverReviewAs is deliverReview with the reviewer's association to the repository and
// account type (User or Bot), as GitHub's payload gives them.
func deliverReviewAs(t *testing.T, r *slackRig, repo string, number int, reviewer, state, association, userType string) {
	t.Helper()
	owner, name, _ := strings.Cut(repo, "/")
	ctx := context.Background()
	pr, _, err := r.CD.PullRequests.Get(ctx, owner, name, number)
	if err != nil {
		t.Fatal(err)
	}
	rp, _, err := r.CD.Repositories.Get(ctx, owner, name)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(gh.PullRequestReviewEvent{
		Action: gh.String("submitted"),
		Review: &gh.PullRequestReview{ID: gh.Int64(int64(9000 + number)), User: &gh.User{Login: gh.String(reviewer), Type: gh.String(userType)},
			State: gh.String(state), CommitID: pr.GetHead().SHA, SubmittedAt: &gh.Timestamp{Time: time.Now()},
			AuthorAssociation: gh.String(association)},
		PullRequest: pr, Repo: rp, Sender: &gh.User{Login: gh.String(reviewer)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.deliver(ctx, "pull_request_review", body); err != nil {
		t.Fatal(err)
	}
}
