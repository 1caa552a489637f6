package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	"sockembot/integrations/store"
)

// reconcileEnv has acme/payments configured as a service, with the app's clock on the fake
// GitHub's synthetic clock so "merged since" windows line up.
func reconcileEnv(t *testing.T) (*gateEnv, *fakegithub.Repo) {
	e := newGateEnv(t)
	e.app.Now = e.gh.Now
	e.app.Config.Services = map[string]Service{
		"payments": {Repo: "acme/payments", Environments: []string{"production"}},
		"hubot":    {Repo: "atmos/hubot-deploy", Environments: []string{"production"}},
	}
	e.jira.AddIssue("PAY-1", "In Progress")
	r := e.gh.AddRepo("acme/payments", "main")
	r.Commit("Initial commit", "alice")
	return e, r
}

func TestReconcileFindsMergeNoWebhookAnnounced(t *testing.T) {
	e, r := reconcileEnv(t)
	// atmos/hubot-deploy#32 arrives by webhook as usual.
	hubot := e.gh.AddRepo("atmos/hubot-deploy", "master")
	hubot.Commit("Initial commit", "atmos")
	info := prAt(t, hubot, 32, fakegithub.PR{Title: "Webhooks events generator", Author: "atmos"}, fakegithub.MergeCommit)
	e.deliver("pull_request", retarget(fixture(t, "atmos+hubot-deploy/test/fixtures/pull_requests/pull_request_merged.json"),
		"c95e3c0492c0c0456c396389b97ea486fa32c9af", info.HeadSHA, "d137a85d827990a8075fdab2ef6998bf6b7b9180", info.MergeSHA))
	e.drain()
	// Two merges into acme/payments whose webhooks never arrived (GitHub does not retry).
	r.MergePR(fakegithub.PR{Title: "PAY-1 refunds", Author: "alice", Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.Squash)
	r.MergePR(fakegithub.PR{Title: "hotfix", Author: "carol"}, fakegithub.MergeCommit)

	n, err := e.app.Reconcile(e.ctx)
	if err != nil || n != 2 {
		t.Fatalf("Reconcile = %d, %v; want the 2 unannounced merges", n, err)
	}
	for num, compliant := range map[string]bool{"acme/payments#1": true, "acme/payments#2": false} {
		recs := e.records(store.KindMergeVerdict, num)
		if len(recs) != 1 {
			t.Fatalf("%s: %d verdicts", num, len(recs))
		}
		if ev := decodeBody[MergeVerdictEvidence](t, recs[0]); ev.Compliant != compliant || ev.Source != "reconcile" {
			t.Errorf("%s: compliant %v source %s", num, ev.Compliant, ev.Source)
		}
	}
	if n := len(e.records(store.KindMergeVerdict, "atmos/hubot-deploy#32")); n != 1 {
		t.Fatalf("the webhook-announced merge was recorded %d times", n)
	}
	msgs := e.channel()
	if len(msgs) != 3 || !strings.Contains(msgs[1].Text, "found by reconciliation") || !strings.Contains(msgs[1].Text, "acme/payments#1") ||
		!strings.Contains(msgs[1].Text, "compliant: approved by bob · PAY-1 In Progress") {
		t.Fatalf("channel: %+v", msgs)
	}

	// Nothing new: nothing recorded, nothing posted.
	if n, err := e.app.Reconcile(e.ctx); err != nil || n != 0 {
		t.Fatalf("second Reconcile = %d, %v", n, err)
	}
	r.MergePR(fakegithub.PR{Title: "PAY-1 more refunds", Author: "alice"}, fakegithub.Rebase)
	if n, err := e.app.Reconcile(e.ctx); err != nil || n != 1 {
		t.Fatalf("third Reconcile = %d, %v", n, err)
	}
	if _, ok, _ := e.store.GetState(e.ctx, "reconcile.cursor:acme/payments"); !ok {
		t.Fatal("no cursor stored")
	}
}

// A merge that cannot be judged is reported, not skipped: the cursor stays before it and the
// next run records it.
func TestReconcileRetriesMergeItCouldNotJudge(t *testing.T) {
	e, r := reconcileEnv(t)
	e.gh.AddRepo("atmos/hubot-deploy", "master")
	r.MergePR(fakegithub.PR{Title: "PAY-1 refunds", Author: "alice"}, fakegithub.Squash)
	r.MergePR(fakegithub.PR{Title: "PAY-1 more refunds", Author: "alice"}, fakegithub.Squash)
	e.gh.FailNext(1, "/pulls/1/reviews", http.StatusBadGateway)
	// #1 cannot be judged this time; #2, merged after it, is recorded anyway.
	if n, err := e.app.Reconcile(e.ctx); err == nil || !strings.Contains(err.Error(), "acme/payments#1") || n != 1 {
		t.Fatalf("Reconcile = %d, %v; want #2 recorded and an error naming #1", n, err)
	}
	if msgs := e.channel(); len(msgs) != 2 || !strings.Contains(msgs[0].Text+msgs[1].Text, "could not judge") {
		t.Fatalf("channel: %+v", msgs)
	}
	if n, err := e.app.Reconcile(e.ctx); err != nil || n != 1 {
		t.Fatalf("retry: Reconcile = %d, %v; want #1 recorded now", n, err)
	}
	for _, pr := range []string{"acme/payments#1", "acme/payments#2"} {
		if n := len(e.records(store.KindMergeVerdict, pr)); n != 1 {
			t.Fatalf("%s: %d verdicts", pr, n)
		}
	}
}

func TestDailySummary(t *testing.T) {
	e, r := reconcileEnv(t)
	e.gh.AddRepo("atmos/hubot-deploy", "master")
	r.MergePR(fakegithub.PR{Title: "PAY-1 refunds", Author: "alice", Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.Squash)
	r.MergePR(fakegithub.PR{Title: "hotfix", Author: "carol"}, fakegithub.Squash)
	r.MergePR(fakegithub.PR{Title: "PAY-404 typo", Author: "carol", Reviews: []fakegithub.Review{{User: "alice", State: "APPROVED"}}}, fakegithub.Squash)
	if _, err := e.app.Reconcile(e.ctx); err != nil {
		t.Fatal(err)
	}
	day := e.app.now()
	deploy := store.DeploymentEvidence{Service: "payments", Environment: "production", Repo: "acme/payments", Compliant: true,
		Report: compliance.Report{Compliant: true}}
	for _, at := range []time.Time{day, day.AddDate(0, 0, 1)} { // the second is the next day
		if _, err := e.store.Append(e.ctx, store.Evidence{At: at, Kind: store.KindDeploymentCreated, Repo: "acme/payments", Subject: "deploy/1", Body: deploy}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.store.Append(e.ctx, store.Evidence{At: day, Kind: store.KindDirectPush, Repo: "acme/payments", Subject: "abc", Body: DirectPushEvidence{}}); err != nil {
		t.Fatal(err)
	}
	// #2, merged today without a ticket or an approval, is also deployed today in an emergency:
	// one change, so its violations count once.
	hotfix := compliance.ChangeReport{Kind: compliance.KindPullRequest, Number: 2, Violations: []compliance.Violation{
		{Code: compliance.MissingTicket}, {Code: compliance.MissingApproval}}}
	emergency := store.DeploymentEvidence{Service: "payments", Environment: "production", Repo: "acme/payments",
		Report: compliance.Report{Repo: "acme/payments", Changes: []compliance.ChangeReport{hotfix}}, Override: &store.Override{By: "U0ALICE", Reason: "down"}}
	if _, err := e.store.Append(e.ctx, store.Evidence{At: day, Kind: store.KindDeploymentCreated, Repo: "acme/payments", Subject: "deploy/2", Body: emergency}); err != nil {
		t.Fatal(err)
	}
	// Refused as not compliant counts; a superseded digest does not.
	if _, err := e.store.Append(e.ctx, store.Evidence{At: day, Kind: store.KindDeployRefused, Repo: "acme/payments", Subject: "deploy/3",
		Body: deployRefusedEvidence{Violations: []string{"#2 missing_ticket"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Append(e.ctx, store.Evidence{At: day, Kind: store.KindDeployRefused, Repo: "acme/payments", Subject: "deploy/4",
		Body: deployRefusedEvidence{Reason: "superseded by deploy #2"}}); err != nil {
		t.Fatal(err)
	}
	before := len(e.channel())
	s, err := e.app.DailySummary(e.ctx, day)
	if err != nil {
		t.Fatal(err)
	}
	if s.Merges != 3 || s.CompliantMerges != 1 || s.Deploys != 2 || s.CompliantDeploys != 1 || s.DirectPushes != 1 || s.RefusedDeploys != 1 || s.Overrides != 1 ||
		s.Violations[compliance.MissingTicket] != 1 || s.Violations[compliance.MissingApproval] != 1 || s.Violations[compliance.TicketNotFound] != 1 {
		t.Fatalf("summary %+v", s)
	}
	msgs := e.channel()
	if len(msgs) != before+1 {
		t.Fatalf("summary not posted")
	}
	text := msgs[len(msgs)-1].Text
	if s.HeadSeq == 0 || len(s.HeadHash) != 64 {
		t.Errorf("summary has no chain head: %d %q", s.HeadSeq, s.HeadHash)
	}
	for _, want := range []string{fmt.Sprintf("audit verify --anchor %d:%s", s.HeadSeq, s.HeadHash), "Daily summary for Fri 1 Mar 2024", "Merges: 3 (1 compliant, 2 not)", "Deploys: 2 (1 compliant)", "Refused as non-compliant: 1",
		"Direct pushes: 1", "missing_approval ×1", "missing_ticket ×1", "ticket_not_found ×1", "acme/payments#2, acme/payments#3"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	// The previous day saw nothing.
	if s, err := e.app.DailySummary(e.ctx, day.AddDate(0, 0, -1)); err != nil || s.Merges != 0 || s.Deploys != 0 {
		t.Fatalf("empty day: %+v %v", s, err)
	}
}

// Two replicas tick at the same moment: the job runs on one, and the daily summary is posted
// once even when the lease has run out and a job runs again.
func TestScheduledJobsRunOnOneReplica(t *testing.T) {
	e, _ := reconcileEnv(t)
	other := e.newApp(e.openStore(), "replica-2") // another process on the same database file
	other.Now, other.Config = e.app.Now, e.app.Config
	var runs atomic.Int32
	job := func(context.Context) error { runs.Add(1); return nil }
	e.app.runJob(e.ctx, "test", time.Hour, job)
	other.runJob(e.ctx, "test", time.Hour, job)
	if n := runs.Load(); n != 1 {
		t.Fatalf("job ran %d times", n)
	}

	e.app.runJob(e.ctx, "daily_summary", time.Hour, e.app.dailySummaryJob)
	other.runJob(e.ctx, "daily_summary", time.Hour, other.dailySummaryJob)
	if err := other.dailySummaryJob(e.ctx); err != nil { // as if the lease had expired
		t.Fatal(err)
	}
	if n := len(e.channel()); n != 1 {
		t.Fatalf("%d daily summaries posted, want 1", n)
	}
}

func TestRunScheduler(t *testing.T) {
	e, _ := reconcileEnv(t)
	e.app.Config.Schedules.Reconcile = "every other tuesday"
	if err := e.app.runScheduler(e.ctx); err == nil || !strings.Contains(err.Error(), "reconcile") {
		t.Fatalf("bad schedule accepted: %v", err)
	}
	e.app.Config.Schedules = DefaultConfig().Schedules
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.app.runScheduler(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("runScheduler after cancel: %v", err)
	}
}

// A lease is renewed while held; when another replica has it after all (this one stalled past
// its term), the holder is told, so a job stops instead of running twice.
func TestRenewLease(t *testing.T) {
	e := newGateEnv(t)
	const ttl = 60 * time.Millisecond
	if ok, err := e.store.AcquireLease(e.ctx, "job:x", e.app.replica(), ttl); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	var lost atomic.Bool
	stop := e.app.renewLease(e.ctx, "job:x", ttl, func() { lost.Store(true) })
	defer stop()
	// A renewal keeps the lease with its holder (no timing asserted here: see the store's lease
	// tests); taken over after a stall past the term, the renewer notices and says so.
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Released and taken by replica-2 (a renewal may slip in between: try again).
		if err := e.store.ReleaseLease(e.ctx, "job:x", e.app.replica()); err != nil {
			t.Fatal(err)
		}
		ok, err := e.store.AcquireLease(e.ctx, "job:x", "replica-2", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replica-2 never got the lease")
		}
	}
	for !lost.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the renewer never noticed the lease was lost")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
