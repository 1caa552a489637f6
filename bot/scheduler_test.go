package bot_test

import (
	"context"
	"errors"
	"fmt"
	"sockembot/bot"
	"sockembot/bot/bottest"
	"sockembot/bot/deploygate"
	"sockembot/bot/mergegate"
	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestDailySummary(t *testing.T) {
	e, r := bottest.NewReconcileHooks(t)
	e.GitHub.AddRepo("atmos/hubot-deploy", "master")
	r.MergePR(fakegithub.PR{Title: "PAY-1 refunds", Author: "alice", Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.Squash)
	r.MergePR(fakegithub.PR{Title: "hotfix", Author: "carol"}, fakegithub.Squash)
	r.MergePR(fakegithub.PR{Title: "PAY-404 typo", Author: "carol", Reviews: []fakegithub.Review{{User: "alice", State: "APPROVED"}}}, fakegithub.Squash)
	if _, err := e.App.Merges().Reconcile(e.Ctx); err != nil {
		t.Fatal(err)
	}
	day := e.App.Time()
	deploy := deploygate.DeploymentEvidence{Service: "payments", Environment: "production", Repo: "acme/payments", Compliant: true,
		Report: compliance.Report{Compliant: true}}
	for _, at := range []time.Time{day, day.AddDate(0, 0, 1)} { // the second is the next day
		if _, err := e.Store.Append(e.Ctx, compliance.Evidence{At: at, Kind: compliance.EvidenceDeploymentCreated, Repo: "acme/payments", Subject: "deploy/1", Body: deploy}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Store.Append(e.Ctx, compliance.Evidence{At: day, Kind: compliance.EvidenceDirectPush, Repo: "acme/payments", Subject: "abc", Body: mergegate.DirectPushEvidence{}}); err != nil {
		t.Fatal(err)
	}
	// #2, merged today without a ticket or an approval, is also deployed today in an emergency:
	// one change, so its violations count once.
	hotfix := compliance.ChangeReport{Kind: compliance.KindPullRequest, Number: 2, Violations: []compliance.Violation{
		{Code: compliance.MissingTicket}, {Code: compliance.MissingApproval}}}
	emergency := deploygate.DeploymentEvidence{Service: "payments", Environment: "production", Repo: "acme/payments",
		Report: compliance.Report{Repo: "acme/payments", Changes: []compliance.ChangeReport{hotfix}}, Override: &deploygate.Override{By: "U0ALICE", Reason: "down"}}
	if _, err := e.Store.Append(e.Ctx, compliance.Evidence{At: day, Kind: compliance.EvidenceDeploymentCreated, Repo: "acme/payments", Subject: "deploy/2", Body: emergency}); err != nil {
		t.Fatal(err)
	}
	// Refused as not compliant counts; a superseded digest does not.
	if _, err := e.Store.Append(e.Ctx, compliance.Evidence{At: day, Kind: compliance.EvidenceDeployRefused, Repo: "acme/payments", Subject: "deploy/3",
		Body: deploygate.DeployRefusedEvidence{Violations: []string{"#2 missing_ticket"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.Append(e.Ctx, compliance.Evidence{At: day, Kind: compliance.EvidenceDeployRefused, Repo: "acme/payments", Subject: "deploy/4",
		Body: deploygate.DeployRefusedEvidence{Reason: "superseded by deploy #2"}}); err != nil {
		t.Fatal(err)
	}
	before := len(e.Messages())
	s, err := e.App.DailySummary(e.Ctx, day)
	if err != nil {
		t.Fatal(err)
	}
	if s.Merges != 3 || s.CompliantMerges != 1 || s.Deploys != 2 || s.CompliantDeploys != 1 || s.DirectPushes != 1 || s.RefusedDeploys != 1 || s.Overrides != 1 ||
		s.Violations[compliance.MissingTicket] != 1 || s.Violations[compliance.MissingApproval] != 1 || s.Violations[compliance.TicketNotFound] != 1 {
		t.Fatalf("summary %+v", s)
	}
	msgs := e.Messages()
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
	if s, err := e.App.DailySummary(e.Ctx, day.AddDate(0, 0, -1)); err != nil || s.Merges != 0 || s.Deploys != 0 {
		t.Fatalf("empty day: %+v %v", s, err)
	}
}

// Two replicas tick at the same moment: the job runs on one, and the daily summary is posted
// once even when the lease has run out and a job runs again.
func TestScheduledJobsRunOnOneReplica(t *testing.T) {
	e, _ := bottest.NewReconcileHooks(t)
	other := e.NewApp(e.OpenStore(), "replica-2") // another process on the same database file
	other.Now, other.Config = e.App.Now, e.App.Config
	var runs atomic.Int32
	job := func(context.Context) error { runs.Add(1); return nil }
	e.App.RunJob(e.Ctx, "test", time.Hour, job)
	other.RunJob(e.Ctx, "test", time.Hour, job)
	if n := runs.Load(); n != 1 {
		t.Fatalf("job ran %d times", n)
	}

	e.App.RunJob(e.Ctx, "daily_summary", time.Hour, e.App.DailySummaryJob)
	other.RunJob(e.Ctx, "daily_summary", time.Hour, other.DailySummaryJob)
	if err := other.DailySummaryJob(e.Ctx); err != nil { // as if the lease had expired
		t.Fatal(err)
	}
	if n := len(e.Messages()); n != 1 {
		t.Fatalf("%d daily summaries posted, want 1", n)
	}
}

func TestRunScheduler(t *testing.T) {
	e, _ := bottest.NewReconcileHooks(t)
	e.App.Config.Schedules.Reconcile = "every other tuesday"
	if err := e.App.RunScheduler(e.Ctx); err == nil || !strings.Contains(err.Error(), "reconcile") {
		t.Fatalf("bad schedule accepted: %v", err)
	}
	e.App.Config.Schedules = bot.DefaultConfig().Schedules
	ctx, cancel := context.WithCancel(e.Ctx)
	done := make(chan error, 1)
	go func() { done <- e.App.RunScheduler(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("runScheduler after cancel: %v", err)
	}
}

// A lease is renewed while held; when another replica has it after all (this one stalled past
// its term), the holder is told, so a job stops instead of running twice.
func TestRenewLease(t *testing.T) {
	e := bottest.NewHooks(t)
	const ttl = 60 * time.Millisecond
	if ok, err := e.Store.AcquireLease(e.Ctx, "job:x", e.App.Replica(), ttl); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	var lost atomic.Bool
	stop := e.App.RenewLease(e.Ctx, "job:x", ttl, func() { lost.Store(true) })
	defer stop()
	// A renewal keeps the lease with its holder (no timing asserted here: see the store's lease
	// tests); taken over after a stall past the term, the renewer notices and says so.
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Released and taken by replica-2 (a renewal may slip in between: try again).
		if err := e.Store.ReleaseLease(e.Ctx, "job:x", e.App.Replica()); err != nil {
			t.Fatal(err)
		}
		ok, err := e.Store.AcquireLease(e.Ctx, "job:x", "replica-2", time.Hour)
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
