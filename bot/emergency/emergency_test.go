package emergency_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sockembot/bot"
	"sockembot/bot/audit"
	"sockembot/bot/bottest"
	"sockembot/bot/demo"
	"sockembot/bot/deploygate"
	"sockembot/bot/emergency"
	"sockembot/bot/render"
	"sockembot/compliance"
	fakeslack "sockembot/integrations/fake/slack"
	"strings"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"
)

const carol = "U0CAROL"

const searchEmergency = `search to production emergency "search is down for every customer"`

func TestEmergencyDeployOverridesViolationsAndOpensRetroReviews(t *testing.T) {
	// Bob reviews as a production deployer (through S0OPS); carol is a named reviewer.
	r, clk := bottest.NewEmergencyRig(t, func(c *bot.Config) {
		c.People[carol] = "carol"
		c.Emergency["production"] = c.Emergency["production"].WithReviewers(demo.OpsGroup, carol)
	})
	r.Command(demo.Alice, demo.Release, searchEmergency)
	root := r.Digest(1)
	body := bottest.Text(root)
	for _, want := range []string{"emergency override", "Emergency override", "search is down for every customer", "_(overridden)_",
		"#1: SRCH-7 was not found in Jira", "#2: no Jira ticket", "direct push"} {
		if !strings.Contains(body, want) {
			t.Errorf("emergency digest lacks %q:\n%s", want, r.Slack.Render())
		}
	}
	if !demo.HasAction(root, render.ActionDeploy) {
		t.Fatal("an emergency digest must offer Deploy despite the violations")
	}
	if strings.Contains(body, "Deploy refused") {
		t.Error("an emergency digest says refused")
	}
	r.Until("the emergency channel told", func() bool { return len(r.Slack.Messages(bottest.EmergencyChannel)) == 1 })
	note := r.Slack.Messages(bottest.EmergencyChannel)[0].Text
	for _, want := range []string{"Emergency deploy", "<@U0ALICE>", "search is down for every customer", "5 violation(s) overridden", fakeslack.PermalinkBase} {
		if !strings.Contains(note, want) {
			t.Errorf("emergency channel note lacks %q: %s", want, note)
		}
	}
	r.Until("the override recorded", func() bool { return len(r.Records(compliance.EvidenceOverride)) == 1 })
	if n := len(r.Records(compliance.EvidenceDeployRefused)); n != 0 {
		t.Errorf("%d refusals recorded for an emergency deploy", n)
	}

	// Deploy, twice: one GitHub deployment, and the retro reviews open once.
	r.Click(demo.Alice, render.ActionDeploy, root)
	r.Click(demo.Alice, render.ActionDeploy, root)
	r.Until("the retro reviews in the thread", func() bool {
		for _, m := range r.Thread(root) {
			if strings.Contains(m.Text, "Retroactive review needed") {
				return true
			}
		}
		return false
	})
	if n := r.GitHub.Count(bottest.DeployRoute); n != 1 {
		t.Fatalf("%d GitHub deployments, want 1", n)
	}
	reviews, err := emergency.RetroReviews(context.Background(), r.Store)
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
	var dep deploygate.DeploymentEvidence
	recs := r.Records(compliance.EvidenceDeploymentCreated)
	if len(recs) != 1 || json.Unmarshal(recs[0].Body, &dep) != nil || dep.Override == nil ||
		dep.Override.By != demo.Alice || dep.Override.Reason != "search is down for every customer" || dep.Compliant {
		t.Fatalf("deployment evidence does not carry the override: %+v", dep.Override)
	}
	deployID := dep.DeployID

	// The requester can't review her own emergency; bob can.
	retro := retroMessage(t, r, root)
	r.Slack.SendBlockAction(fakeslack.BlockAction{ActionID: render.ActionRetroApprove, Value: fmt.Sprintf("%d|#1", deployID),
		UserID: demo.Alice, ChannelID: retro.Channel, MessageTS: retro.TS})
	r.EphemeralTo(demo.Alice, "You can't approve #1 retroactively")
	clk.Set(clk.Now().Add(3 * time.Hour))
	r.Slack.SendBlockAction(fakeslack.BlockAction{ActionID: render.ActionRetroApprove, Value: fmt.Sprintf("%d|#1", deployID),
		UserID: demo.Bob, ChannelID: retro.Channel, MessageTS: retro.TS})
	r.Until("the retro review closed in the thread", func() bool { return r.ThreadSays(root, "Retroactive review of *#1* done by <@U0BOB>") })

	// Approvals that do not count: a bot's, one from outside the repository's collaborators,
	// and the requester's own (alice, mapped in people).
	deliverReviewAs(t, r, "acme/search", 2, "github-actions[bot]", "approved", "NONE", "Bot")
	deliverReviewAs(t, r, "acme/search", 2, "mallory", "approved", "CONTRIBUTOR", "User")
	deliverReview(t, r, "acme/search", 2, "alice", "approved")
	r.Until("those deliveries handled", func() bool {
		n, err := r.Store.PendingDeliveries(context.Background())
		return err == nil && n == 0
	})
	if r.ThreadSays(root, "Retroactive review of *#2* done") {
		t.Fatalf("a bot, a non-collaborator or the requester closed #2:\n%s", r.Slack.Render())
	}
	// #2 is approved on GitHub after the fact, by someone who is neither its author (frank)
	// nor the requester.
	deliverReview(t, r, "acme/search", 2, "carol", "approved")
	r.Until("the GitHub review closes #2", func() bool {
		return r.ThreadSays(root, "Retroactive review of *#2* done by carol (approving review on GitHub)")
	})
	// An approval by the change's own author does not count.
	deliverReview(t, r, "acme/search", 1, "erin", "approved")

	r.Until("the review evidence", func() bool { return len(r.Records(compliance.EvidenceRetroReview)) == 5 })
	reviews, _ = emergency.RetroReviews(context.Background(), r.Store)
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
	if err := audit.WriteCSV(context.Background(), r.Store, audit.ExportQuery{From: clk.Now().Add(-48 * time.Hour), To: clk.Now().Add(48 * time.Hour)}, &out); err != nil {
		t.Fatal(err)
	}
	csv := out.String()
	for _, want := range []string{"retro_review_due,retro_reviewed_by,retro_reviewed_via,retro_reviewed_at", demo.Bob, "carol", "github_review",
		"search is down for every customer", "2026-11-26T10:00:00Z", fakeslack.PermalinkBase + "/archives/" + demo.Release + "/p"} {
		if !strings.Contains(csv, want) {
			t.Errorf("export lacks %q:\n%s", want, csv)
		}
	}
	r.NoWebAPIErrors()
}

// The Deploy button of an emergency carries the override: only the requester or someone who
// may break glass there presses it, even a deployer.
func TestEmergencyDigestPressedOnlyByTheEmergencyList(t *testing.T) {
	r, _ := bottest.NewEmergencyRig(t)
	r.Command(demo.Alice, demo.Release, searchEmergency)
	root := r.Digest(1)
	r.Click(demo.Bob, render.ActionDeploy, root) // a deployer (through the ops group), not on the emergency list
	r.EphemeralTo(demo.Bob, "someone on the emergency list for *production* may deploy this emergency")
	if n := r.GitHub.Count(bottest.DeployRoute); n != 0 {
		t.Fatalf("%d deployments", n)
	}
	r.Until("the denied press recorded", func() bool { return len(r.Records(compliance.EvidenceDeployAttemptDenied)) == 1 })
	r.Click(demo.Alice, render.ActionDeploy, root)
	r.Until("the requester's deployment", func() bool { return r.GitHub.Count(bottest.DeployRoute) == 1 })
}

// The emergency list alone is what an emergency digest's Deploy needs, as for asking.
func TestEmergencyDigestPressedBySomeoneOnTheListWhoIsNoDeployer(t *testing.T) {
	r, _ := bottest.NewEmergencyRig(t, func(c *bot.Config) {
		c.Emergency["production"] = bot.EmergencyAccess{BreakGlass: []string{demo.Alice, demo.Mallory}}
	})
	r.Command(demo.Alice, demo.Release, searchEmergency)
	root := r.Digest(1)
	r.Click(demo.Mallory, render.ActionDeploy, root)
	r.Until("mallory's deployment", func() bool { return r.GitHub.Count(bottest.DeployRoute) == 1 })
}

func TestEmergencyDeployRefusedForSomeoneNotOnTheList(t *testing.T) {
	r, _ := bottest.NewEmergencyRig(t)
	// bob may deploy to production (through the ops group) but may not break glass.
	r.Command(demo.Bob, demo.Dev, searchEmergency)
	r.EphemeralTo(demo.Bob, "You may not make emergency deploys to *production*; this attempt has been recorded")
	r.Until("the attempt recorded", func() bool { return len(r.Records(compliance.EvidenceDeployAttemptDenied)) == 1 })
	var ev deploygate.AttemptDeniedEvidence
	if err := json.Unmarshal(r.Records(compliance.EvidenceDeployAttemptDenied)[0].Body, &ev); err != nil || ev.User != demo.Bob || ev.Action != "emergency" ||
		!strings.Contains(ev.Reason, "search is down") || ev.Channel != demo.Dev {
		t.Errorf("attempt evidence %+v", ev)
	}
	if n := len(r.Roots()); n != 0 {
		t.Errorf("%d digests posted for a refused emergency", n)
	}
	// A reason too short to mean anything is a usage answer, not a deploy.
	r.Command(demo.Alice, demo.Dev, `search to production emergency "urgent"`)
	r.EphemeralTo(demo.Alice, "at least 3 words")
}

// The emergency channel note is for visibility: a channel the bot cannot post to must not take
// the emergency deploy down with it.
func TestEmergencyDeployGoesAheadWhenTheEmergencyChannelCannotBeTold(t *testing.T) {
	r, _ := bottest.NewEmergencyRig(t)
	r.Slack.NotInChannel(bottest.EmergencyChannel)
	r.Command(demo.Alice, demo.Release, searchEmergency)
	root := r.Digest(1)
	r.Until("the warning in the thread", func() bool { return r.ThreadSays(root, "Could not tell the emergency channel") })
	if !r.ThreadSays(root, "not_in_channel") {
		t.Errorf("the warning does not say why:\n%s", r.Slack.Render())
	}
	if strings.Contains(r.Slack.Render(), "sockembot failed") {
		t.Fatalf("a failure report replaced the emergency digest:\n%s", r.Slack.Render())
	}
	d := r.Deploys("search", "production")[0]
	if d.State != deploygate.StateReady {
		t.Fatalf("deploy state %s, want ready", d.State)
	}
	r.Click(demo.Alice, render.ActionDeploy, r.Digest(1))
	r.Until("the deployment", func() bool { return r.GitHub.Count(bottest.DeployRoute) == 1 })
}

// An emergency digest that waited too long is re-checked like any other when Deploy is pressed;
// what the re-check finds is overridden on the record, not reported as "still compliant".
func TestEmergencyRecheckOverridesWhatItFinds(t *testing.T) {
	r, clk := bottest.NewEmergencyRig(t)
	r.Command(demo.Alice, demo.Release, `payments to production emergency "checkout is down for everyone"`)
	root := r.Digest(1)
	r.Jira.AddIssue("PAY-101", "To Do")
	clk.Set(time.Now().Add(2 * deploygate.RecheckAfter)) // the store dates the deploy by the wall clock
	r.Click(demo.Alice, render.ActionDeploy, root)
	r.Until("the deployment", func() bool { return r.GitHub.Count(bottest.DeployRoute) == 1 })
	r.Until("the retro review", func() bool { return r.ThreadSays(root, "Retroactive review needed") })
	if !r.ThreadSays(root, "*no longer compliant*. Deploying under <@U0ALICE>'s emergency override") || r.ThreadSays(root, "still compliant") {
		t.Fatalf("thread misreports the re-check:\n%s", r.Slack.Render())
	}
	recs := r.Records(compliance.EvidenceOverride)
	var ev deploygate.OverrideEvidence
	if len(recs) != 1 || json.Unmarshal(recs[0].Body, &ev) != nil || !strings.Contains(strings.Join(ev.Violations, " "), "ticket_status") {
		t.Fatalf("override evidence %d records: %+v", len(recs), ev)
	}
}

func TestOverdueRetroReviewsInTheDailySummaryWithAReminder(t *testing.T) {
	r, clk := bottest.NewEmergencyRig(t)
	r.Command(demo.Alice, demo.Release, searchEmergency)
	root := r.Digest(1)
	r.Click(demo.Alice, render.ActionDeploy, root)
	r.Until("the retro reviews", func() bool { return r.ThreadSays(root, "Retroactive review needed") })

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
	summary := r.Roots()[len(r.Roots())-1].Text
	if !strings.Contains(summary, "Overdue retroactive reviews (3)") {
		t.Errorf("summary lacks the overdue reviews:\n%s", summary)
	}
	reminders := 0
	for _, m := range r.Thread(root) {
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
		r, _ := bottest.NewEmergencyRig(t)
		r.Command(demo.Bob, demo.Release, "payments to production")
		root := r.Digest(1)
		body := bottest.Text(root)
		if demo.HasAction(root, render.ActionDeploy) || !strings.Contains(body, "Deploy refused") ||
			!strings.Contains(body, "bob is the only approver and is also deploying it") {
			t.Fatalf("want a refusal naming the sole approver:\n%s", r.Slack.Render())
		}
		r.Until("the refusal", func() bool { return len(r.Records(compliance.EvidenceDeployRefused)) == 1 })
		var ev deploygate.DeployRefusedEvidence
		json.Unmarshal(r.Records(compliance.EvidenceDeployRefused)[0].Body, &ev)
		if !strings.Contains(strings.Join(ev.Violations, " "), "#1 "+string(compliance.RequesterSoleApprover)) {
			t.Errorf("refusal evidence %+v", ev)
		}
		// alice did not approve anything here: she may deploy it ...
		r.Command(demo.Alice, demo.Release, "payments to production")
		root = r.Digest(2)
		if !demo.HasAction(root, render.ActionDeploy) {
			t.Fatalf("alice's request refused:\n%s", r.Slack.Render())
		}
		// ... but bob, a deployer who alone approved #1, may not be the one to press Deploy.
		r.Click(demo.Bob, render.ActionDeploy, root)
		r.EphemeralTo(demo.Bob, "You are the only approver of #1, so you may not also deploy it")
		if n := r.GitHub.Count(bottest.DeployRoute); n != 0 {
			t.Fatalf("%d deployments after the sole approver pressed Deploy", n)
		}
		r.Click(demo.Alice, render.ActionDeploy, root)
		r.Until("alice's deployment", func() bool { return r.GitHub.Count(bottest.DeployRoute) == 1 })
	})
	t.Run("emergency deploy of a compliant release", func(t *testing.T) {
		// Nothing is overridden here, so "emergency" must not switch the rule off for bob, who
		// may break glass too.
		r, _ := bottest.NewEmergencyRig(t, func(c *bot.Config) {
			c.Emergency["production"] = bot.EmergencyAccess{BreakGlass: []string{demo.Alice, demo.Bob}}
		})
		r.Command(demo.Alice, demo.Release, `payments to production emergency "checkout is down for everyone"`)
		root := r.Digest(1)
		if !demo.HasAction(root, render.ActionDeploy) {
			t.Fatalf("no Deploy button:\n%s", r.Slack.Render())
		}
		r.Click(demo.Bob, render.ActionDeploy, root)
		r.EphemeralTo(demo.Bob, "You are the only approver of #1, so you may not also deploy it")
		if n := r.GitHub.Count(bottest.DeployRoute); n != 0 {
			t.Fatalf("%d deployments after the sole approver pressed Deploy on an emergency digest", n)
		}
		r.Until("the denied attempt recorded", func() bool { return len(r.Records(compliance.EvidenceDeployAttemptDenied)) == 1 })
		r.Click(demo.Alice, render.ActionDeploy, root)
		r.Until("alice's deployment", func() bool { return r.GitHub.Count(bottest.DeployRoute) == 1 })
	})
	t.Run("warn", func(t *testing.T) {
		r, _ := bottest.NewEmergencyRig(t, func(c *bot.Config) { c.Policy.SeparationOfDuties.RequesterSoleApprover = compliance.ActionWarn })
		r.Command(demo.Bob, demo.Release, "payments to production")
		root := r.Digest(1)
		if !demo.HasAction(root, render.ActionDeploy) || !strings.Contains(bottest.Text(root), "⚠️ bob is the only approver") {
			t.Fatalf("want a warning and a Deploy button:\n%s", r.Slack.Render())
		}
	})
	t.Run("not production", func(t *testing.T) {
		r, _ := bottest.NewEmergencyRig(t)
		r.Command(demo.Bob, demo.Release, "payments to staging from v1.4.0")
		if root := r.Digest(1); !demo.HasAction(root, render.ActionDeploy) {
			t.Fatalf("staging is not a production environment:\n%s", r.Slack.Render())
		}
	})
}

func retroMessage(t *testing.T, r *bottest.Rig, root fakeslack.Message) fakeslack.Message {
	t.Helper()
	for _, m := range r.Thread(root) {
		if demo.HasAction(m, render.ActionRetroApprove) {
			return m
		}
	}
	t.Fatalf("no retro review buttons in the thread:\n%s", r.Slack.Render())
	return fakeslack.Message{}
}

// deliverReview sends GitHub's pull_request_review webhook for a review submitted on a merged
// pull request, signed, to the bot's endpoint.
func deliverReview(t *testing.T, r *bottest.Rig, repo string, number int, reviewer, state string) {
	t.Helper()
	deliverReviewAs(t, r, repo, number, reviewer, state, "COLLABORATOR", "User")
}

// deliverReviewAs is deliverReview with the reviewer's association to the repository and
// account type (User or Bot), as GitHub's payload gives them.
func deliverReviewAs(t *testing.T, r *bottest.Rig, repo string, number int, reviewer, state, association, userType string) {
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
	if err := r.Deliver(ctx, "pull_request_review", body); err != nil {
		t.Fatal(err)
	}
}

// A retroactive review is not open to anyone in the workspace: only the environment's reviewers
// (by default its deployers) close one, from Slack or by approving on GitHub. Anyone else gets
// an ephemeral refusal, recorded as a denied attempt.
func TestRetroReviewOnlyFromConfiguredReviewers(t *testing.T) {
	r, _ := bottest.NewEmergencyRig(t, func(c *bot.Config) { c.People[demo.Mallory] = "mallory" })
	r.Command(demo.Alice, demo.Release, searchEmergency)
	root := r.Digest(1)
	r.Click(demo.Alice, render.ActionDeploy, root)
	retro := func() fakeslack.Message {
		var m fakeslack.Message
		r.Until("the retro reviews in the thread", func() bool {
			for _, msg := range r.Thread(root) {
				if demo.HasAction(msg, render.ActionRetroApprove) {
					m = msg
					return true
				}
			}
			return false
		})
		return m
	}()
	var dep deploygate.DeploymentEvidence
	r.Until("the deployment recorded", func() bool { return len(r.Records(compliance.EvidenceDeploymentCreated)) == 1 })
	if err := json.Unmarshal(r.Records(compliance.EvidenceDeploymentCreated)[0].Body, &dep); err != nil {
		t.Fatal(err)
	}

	// Mallory has no role: no deployer, no reviewer.
	r.Slack.SendBlockAction(fakeslack.BlockAction{ActionID: render.ActionRetroApprove, Value: fmt.Sprintf("%d|#1", dep.DeployID),
		UserID: demo.Mallory, ChannelID: retro.Channel, MessageTS: retro.TS})
	r.EphemeralTo(demo.Mallory, "You can't approve #1 retroactively: only the reviewers of emergency deploys to production may: <@U0ALICE>, <!subteam^S0OPS>")
	r.Until("the denied attempt recorded", func() bool {
		for _, rec := range r.Records(compliance.EvidenceDeployAttemptDenied) {
			var ev deploygate.AttemptDeniedEvidence
			if json.Unmarshal(rec.Body, &ev) == nil && ev.User == demo.Mallory && ev.Action == "retro_review #1" {
				return true
			}
		}
		return false
	})
	// Nor does her approval on GitHub count, though she has write access.
	deliverReviewAs(t, r, "acme/search", 2, "mallory", "approved", "MEMBER", "User")
	r.Until("that delivery handled", func() bool {
		n, err := r.Store.PendingDeliveries(context.Background())
		return err == nil && n == 0
	})
	if r.ThreadSays(root, "Retroactive review of") {
		t.Fatalf("someone with no role closed a retroactive review:\n%s", r.Slack.Render())
	}
	// Bob, a production deployer through S0OPS, may.
	r.Slack.SendBlockAction(fakeslack.BlockAction{ActionID: render.ActionRetroApprove, Value: fmt.Sprintf("%d|#1", dep.DeployID),
		UserID: demo.Bob, ChannelID: retro.Channel, MessageTS: retro.TS})
	r.Until("bob's review closes #1", func() bool { return r.ThreadSays(root, "Retroactive review of *#1* done by <@U0BOB>") })
}
