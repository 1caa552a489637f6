package deploygate_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"sockembot/bot"
	"sockembot/bot/bottest"
	"sockembot/bot/deploygate"
	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
)

// GitHub Actions deployments gated by sockembot's deployment protection rule, in App mode. The
// payload is a real deployment_protection_rule delivery (see testdata/README.md), retargeted at
// the run the fake GitHub holds.

const protectionFixture = "open-security-tools+ost-environment-gate/testdata/deployment-protection-requested.json"

// actionsRig is an App-mode rig with acme/payments deployed to production at v1 (a successful
// deployment), then one compliant pull request merged.
func actionsRig(t *testing.T) (*bottest.Hooks, *fakegithub.Repo) {
	t.Helper()
	e := bottest.NewAppHooks(t)
	e.App.Config.Services = map[string]bot.Service{"payments": {Repo: "acme/payments", Environments: []string{"staging", "production"}}}
	e.Jira.AddIssue("PAY-1", "In Progress")
	r := e.GitHub.AddRepo("acme/payments", "main")
	r.Commit("Initial import", "alice")
	r.Deploy(r.Tag("v1"), "production", "success")
	r.MergePR(fakegithub.PR{Title: "PAY-1 Refunds endpoint", Author: "alice", Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.Squash)
	return e, r
}

// protectionPayload is the real payload made into run's request for env at sha.
func protectionPayload(t *testing.T, run fakegithub.ActionsRun, env, sha, actor string) []byte {
	t.Helper()
	return bottest.Retarget(bottest.Fixture(t, protectionFixture),
		"https://api.github.com/repos/zaniebot/release-authenticator-example/actions/runs/23625057533/deployment_protection_rule", run.CallbackURL,
		`"environment": "release"`, `"environment": "`+env+`"`,
		"zaniebot/release-authenticator-example", "acme/payments", `"name": "release-authenticator-example"`, `"name": "payments"`,
		`"login": "zaniebot"`, `"login": "`+actor+`"`,
		"47efb7196c2a1a2fd3f52f2c59f0e2dd3d0e4d54", sha, "23625057533", fmt.Sprint(run.RunID), "4189575565", fmt.Sprint(run.DeploymentID))
}

func reviewsOf(e *bottest.Hooks, runID int64) []fakegithub.ProtectionReview {
	var out []fakegithub.ProtectionReview
	for _, r := range e.GitHub.ProtectionReviews() {
		if r.RunID == runID {
			out = append(out, r)
		}
	}
	return out
}

// A compliant release deployed by a GitHub Actions job is approved: the same digest as /deploy,
// marked as an Actions deploy, the answer at the callback with the installation token, and the
// deploy recorded like a confirmed /deploy. A release with a non-compliant change is rejected,
// naming it. A redelivery never checks or posts twice.
func TestActionsDeploymentApprovedAndRejected(t *testing.T) {
	e, r := actionsRig(t)
	head := r.Head()
	run := r.WaitingRun("production", head, "main", "alice")
	payload := protectionPayload(t, run, "production", head, "alice")
	if code, msg := e.Deliver("deployment_protection_rule", payload); code != http.StatusAccepted {
		t.Fatalf("deployment_protection_rule: %d %s", code, msg)
	}
	e.Drain()
	got := reviewsOf(e, run.RunID)
	if len(got) != 1 || got[0].State != "approved" || got[0].Environment != "production" || got[0].AppID != e.GitHub.AppID() {
		t.Fatalf("reviews %+v, want one approval by the App", got)
	}
	if !strings.Contains(got[0].Comment, "the 1 change meets the change policy") {
		t.Errorf("comment %q", got[0].Comment)
	}
	msgs := e.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages in the release channel, want the digest", len(msgs))
	}
	digest := string(msgs[0].Blocks)
	for _, want := range []string{"payments → production · GitHub Actions", "GitHub Actions run", run.RunURL, "started by `alice`", "#1", "Approved"} {
		if !strings.Contains(digest, want) {
			t.Errorf("digest lacks %q:\n%s", want, digest)
		}
	}
	created := e.Records(compliance.EvidenceDeploymentCreated, "")
	if len(created) != 1 {
		t.Fatalf("%d deployment_created records, want 1", len(created))
	}
	dep := bottest.Decode[deploygate.DeploymentEvidence](t, created[0])
	if dep.Requester != "github:alice" || dep.Deployer != "github:alice" || dep.SHA != head || dep.GitHubDeploymentID != run.DeploymentID || !dep.Compliant || len(dep.Report.Changes) != 1 {
		t.Errorf("deployment evidence %+v", dep)
	}
	reviews := e.Records(compliance.EvidenceActionsReview, "")
	if len(reviews) != 1 || bottest.Decode[deploygate.ActionsReviewEvidence](t, reviews[0]).Sender != "alice" {
		t.Fatalf("actions_deploy_review records %+v", reviews)
	}

	// Redelivered (GitHub retries, or a second replica): no second check, digest or review.
	checks := len(e.Records(compliance.EvidenceCheckRun, ""))
	e.Deliver("deployment_protection_rule", payload)
	e.Drain()
	if len(reviewsOf(e, run.RunID)) != 1 || len(e.Messages()) != 1 || len(e.Records(compliance.EvidenceCheckRun, "")) != checks {
		t.Errorf("redelivery acted again: %d reviews, %d messages", len(reviewsOf(e, run.RunID)), len(e.Messages()))
	}
	if n := e.Pending(); n != 0 {
		t.Errorf("%d deliveries left pending: an answered rule must not be retried forever", n)
	}

	// The run went out; GitHub reports success. Then a release with an unreviewed change.
	r.Deploy(head, "production", "success")
	r.MergePR(fakegithub.PR{Title: "Tweak retries", Author: "mallory"}, fakegithub.Squash)
	head2 := r.Head()
	run2 := r.WaitingRun("production", head2, "main", "mallory")
	e.Deliver("deployment_protection_rule", protectionPayload(t, run2, "production", head2, "mallory"))
	e.Drain()
	got = reviewsOf(e, run2.RunID)
	if len(got) != 1 || got[0].State != "rejected" {
		t.Fatalf("reviews %+v, want a rejection", got)
	}
	for _, want := range []string{"rejected", "#2 missing_ticket", "#2 missing_approval", "1 of 1 change breaks"} {
		if !strings.Contains(got[0].Comment, want) {
			t.Errorf("rejection comment lacks %q:\n%s", want, got[0].Comment)
		}
	}
	msgs = e.Messages()
	if len(msgs) != 2 || !strings.Contains(msgs[1].Text, "refused") || !strings.Contains(string(msgs[1].Blocks), "Rejected") {
		t.Errorf("second digest %q", msgs[len(msgs)-1].Text)
	}
	if n := len(e.Records(compliance.EvidenceDeploymentCreated, "")); n != 1 {
		t.Errorf("%d deployment_created records: a rejected deploy must not be recorded as deployed", n)
	}
	onlyInstallationTokens(t, e)
}

// Fail closed: a check that cannot run, a locked environment, and an environment with no known
// release each reject the job, saying why, in the answer and in Slack.
func TestActionsDeploymentFailsClosed(t *testing.T) {
	t.Run("check cannot run", func(t *testing.T) {
		e, r := actionsRig(t)
		run := r.WaitingRun("production", r.Head(), "main", "alice")
		e.GitHub.FailNext(10, "/compare/", http.StatusInternalServerError)
		e.Deliver("deployment_protection_rule", protectionPayload(t, run, "production", r.Head(), "alice"))
		e.Drain()
		got := reviewsOf(e, run.RunID)
		if len(got) != 1 || got[0].State != "rejected" || !strings.Contains(got[0].Comment, "could not check this deployment") || !strings.Contains(got[0].Comment, "500") {
			t.Fatalf("reviews %+v", got)
		}
		if msgs := e.Messages(); len(msgs) != 1 || !strings.Contains(msgs[0].Text, "sockembot failed") {
			t.Errorf("Slack: %+v, want the failure report", msgs)
		}
	})
	t.Run("locked", func(t *testing.T) {
		e, r := actionsRig(t)
		if ok, _, err := e.Store.Lock(context.Background(), "payments", "production", "U0BOB", "incident 42"); err != nil || !ok {
			t.Fatal(ok, err)
		}
		run := r.WaitingRun("production", r.Head(), "main", "alice")
		e.Deliver("deployment_protection_rule", protectionPayload(t, run, "production", r.Head(), "alice"))
		e.Drain()
		got := reviewsOf(e, run.RunID)
		if len(got) != 1 || got[0].State != "rejected" || !strings.Contains(got[0].Comment, "incident 42") {
			t.Fatalf("reviews %+v", got)
		}
	})
	t.Run("nothing deployed yet", func(t *testing.T) {
		e, r := actionsRig(t)
		run := r.WaitingRun("staging", r.Head(), "main", "alice")
		e.Deliver("deployment_protection_rule", protectionPayload(t, run, "staging", r.Head(), "alice"))
		e.Drain()
		got := reviewsOf(e, run.RunID)
		if len(got) != 1 || got[0].State != "rejected" || !strings.Contains(got[0].Comment, "nothing is recorded as running in staging") {
			t.Fatalf("reviews %+v", got)
		}
		if msgs := e.Messages(); len(msgs) != 1 || !strings.Contains(msgs[0].Text, "rejected") {
			t.Errorf("Slack: %+v", msgs)
		}
	})
}

// A callback URL that does not point at the repository's own run on GitHub's API is never sent
// the installation token: the delivery fails (and is retried), nothing is approved.
func TestActionsCallbackElsewhereIsRefused(t *testing.T) {
	e, r := actionsRig(t)
	run := r.WaitingRun("production", r.Head(), "main", "alice")
	evil := run
	evil.CallbackURL = "https://attacker.example/repos/acme/payments/actions/runs/1/deployment_protection_rule"
	e.Deliver("deployment_protection_rule", protectionPayload(t, evil, "production", r.Head(), "alice"))
	e.Drain()
	if got := e.GitHub.ProtectionReviews(); len(got) != 0 {
		t.Fatalf("reviews %+v", got)
	}
}

func onlyInstallationTokens(t *testing.T, e *bottest.Hooks) {
	t.Helper()
	for _, rq := range e.GitHub.Requests() {
		if strings.Contains(rq.Path, "/repos/") && !strings.HasSuffix(rq.Path, "/installation") && rq.Auth != "installation" {
			t.Errorf("%s %s sent with auth %q, want an installation token", rq.Method, rq.Path, rq.Auth)
		}
	}
}

// Slack not answering (the bot is not in the release channel) does not hold a GitHub Actions job
// up: the answer still goes to GitHub, once, with its evidence; only the digest is missing.
func TestActionsDeploymentAnsweredWhenSlackFails(t *testing.T) {
	e, r := actionsRig(t)
	e.Slack.NotInChannel(bottest.Channel)
	run := r.WaitingRun("production", r.Head(), "main", "alice")
	e.Deliver("deployment_protection_rule", protectionPayload(t, run, "production", r.Head(), "alice"))
	e.Drain()
	if got := reviewsOf(e, run.RunID); len(got) != 1 || got[0].State != "approved" {
		t.Fatalf("reviews %+v, want one approval", got)
	}
	if n := len(e.Records(compliance.EvidenceDeploymentCreated, "")); n != 1 {
		t.Errorf("%d deployment_created records, want 1", n)
	}
	if n := e.Pending(); n != 0 {
		t.Errorf("%d deliveries pending", n)
	}
	if m := e.Messages(); len(m) != 0 {
		t.Fatalf("Slack took %d messages: this test needs it refusing them", len(m))
	}
}
