package mergegate_test

import (
	"net/http"
	"sockembot/bot"
	"sockembot/bot/bottest"
	"sockembot/bot/check"
	"sockembot/bot/mergegate"
	"sockembot/bot/render"
	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A non-compliant pull request gets a failing status and one comment, kept up to date across
// pushes and reviews rather than repeated.
func TestMergeGateNonCompliantPullRequest(t *testing.T) {
	e := bottest.NewHooks(t)
	r, info, opened := e.OpenedPR()

	if code, msg := e.Deliver("pull_request", opened); code != http.StatusAccepted {
		t.Fatalf("opened: %d %s", code, msg)
	}
	if got := r.Statuses(info.HeadSHA); len(got) != 0 {
		t.Fatalf("processed before the 2xx: %v", got)
	}
	e.Drain()
	got := bottest.Statuses(r, info.HeadSHA)
	want := []string{"pending: checking tickets and approvals…", "failure: no Jira ticket · no independent approval"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("statuses:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	comments := r.Comments(2)
	if len(comments) != 1 {
		t.Fatalf("%d comments, want 1", len(comments))
	}
	c := comments[0]
	for _, want := range []string{render.CommentMarker, render.ViolationHeading, "**missing_ticket**", "**missing_approval**",
		"It looks like you're trying to ship a change that", "- no Jira ticket", "@  @"} {
		if !strings.Contains(c.Body, want) {
			t.Errorf("comment lacks %q:\n%s", want, c.Body)
		}
	}

	for _, d := range []struct{ event, file string }{
		{"pull_request", "pull_request/synchronize.payload.json"},
		{"pull_request", "pull_request/reopened.payload.json"},
		{"pull_request_review", "pull_request_review/submitted.payload.json"}, // Codertocat commenting on their own PR
		{"pull_request_review", "pull_request_review/dismissed.payload.json"},
	} {
		if code, msg := e.Deliver(d.event, bottest.Retarget(bottest.Fixture(t, bottest.Octokit+d.file), bottest.OctokitHead, info.HeadSHA)); code != http.StatusAccepted {
			t.Fatalf("%s: %d %s", d.file, code, msg)
		}
	}
	e.Drain()
	got = bottest.Statuses(r, info.HeadSHA)
	if len(got) != 10 || got[9] != want[1] {
		t.Fatalf("after 4 more checks, statuses:\n%s", strings.Join(got, "\n"))
	}
	comments = r.Comments(2)
	if len(comments) != 1 {
		t.Fatalf("%d comments after re-checks, want the one comment edited", len(comments))
	}
	if n := e.GitHub.Count("POST /repos/{owner}/{repo}/issues/{number}/comments"); n != 1 {
		t.Errorf("comment created %d times, want once", n)
	}
	recs := e.Records(compliance.EvidenceCheckRun, info.HeadSHA)
	if len(recs) != 5 {
		t.Fatalf("%d check_run records, want one per check (5)", len(recs))
	}
	ev := bottest.Decode[check.CheckRunEvidence](t, recs[4])
	if ev.Compliant || ev.Trigger != "pull_request_review.dismissed" || ev.Repo != "Codertocat/Hello-World" || ev.HeadSHA != info.HeadSHA ||
		len(ev.Facts.Range.Changes) != 1 || ev.Facts.Range.Changes[0].PR.Number != 2 {
		t.Errorf("check_run evidence: %+v", ev)
	}
	if n := e.Pending(); n != 0 {
		t.Errorf("%d deliveries left", n)
	}
}

// A real approving review delivery (google/github-owners-bot) on a PR with a ticket in
// progress turns the status green, and the earlier violation comment says it is fixed.
func TestMergeGateApprovedReviewTurnsGreen(t *testing.T) {
	e := bottest.NewHooks(t)
	e.Jira.AddIssue("PAY-11", "In Progress")
	r := e.GitHub.AddRepo("erwinmombay/github-owners-bot-test-repo", "master")
	r.Commit("Initial commit", "erwinmombay")
	info := bottest.PRAt(t, r, 35, fakegithub.PR{
		Title: "Update file.txt", Body: "Refs PAY-11", Author: "ampprojectbot", Branch: "ampprojectbot-patch-3",
		Reviews: []fakegithub.Review{{User: "erwinmombay", State: "APPROVED"}},
	}, "")
	// sockembot flagged this PR earlier, before the approval.
	r.AddComment(35, "erwinmombay", "LGTM once the ticket is linked")
	r.AddComment(35, "sockembot[bot]", render.CommentMarker+"\n"+render.ViolationHeading+"\n- **missing_approval**: ...")

	body := bottest.Retarget(bottest.Fixture(t, "google+github-owners-bot/test/fixtures/actions/pull_request_review.35.submitted.json"),
		"9272f18514cbd3fa935b3ced62ae1c2bf6efa76d", info.HeadSHA)
	if code, msg := e.Deliver("pull_request_review", body); code != http.StatusAccepted {
		t.Fatalf("review: %d %s", code, msg)
	}
	e.Drain()
	got := bottest.Statuses(r, info.HeadSHA)
	if len(got) != 2 || got[1] != "success: approved by erwinmombay · PAY-11 In Progress" {
		t.Fatalf("statuses %q", got)
	}
	comments := r.Comments(35)
	if len(comments) != 2 || !strings.Contains(comments[1].Body, render.FixedHeading) || strings.Contains(comments[1].Body, "missing_approval") {
		t.Fatalf("comments after the fix: %+v", comments)
	}
	if comments[0].Body != "LGTM once the ticket is linked" {
		t.Fatal("someone else's comment was touched")
	}
	// Checked again while still compliant: the comment is left alone.
	e.Deliver("pull_request_review", body)
	e.Drain()
	if n := e.GitHub.Count("PATCH /repos/{owner}/{repo}/issues/comments/{id}"); n != 1 {
		t.Fatalf("comment edited %d times, want once", n)
	}
}

// A compliant PR that was never flagged gets the green status and no comment at all.
func TestMergeGateCompliantPullRequestGetsNoComment(t *testing.T) {
	e := bottest.NewHooks(t)
	e.Jira.AddIssue("PAY-7", "In Review")
	r := e.GitHub.AddRepo("Codertocat/Hello-World", "master")
	r.Commit("Initial commit", "Codertocat")
	info := bottest.PRAt(t, r, 2, fakegithub.PR{
		Title: "PAY-7 Update the README with new information.", Author: "Codertocat", Branch: "changes",
		Reviews: []fakegithub.Review{{User: "hubot", State: "APPROVED"}},
	}, "")
	e.Deliver("pull_request", bottest.Retarget(bottest.Fixture(t, bottest.Octokit+"pull_request/opened.payload.json"), bottest.OctokitHead, info.HeadSHA))
	e.Drain()
	if got := bottest.Statuses(r, info.HeadSHA); len(got) != 2 || got[1] != "success: approved by hubot · PAY-7 In Review" {
		t.Fatalf("statuses %q", got)
	}
	if c := r.Comments(2); len(c) != 0 {
		t.Fatalf("comments on a compliant PR: %+v", c)
	}
}

// An approval given before the last push does not count (the prow fixture is a real approval
// of kubernetes/kubernetes#66686; here the PR got another commit after it).
func TestMergeGateStaleApproval(t *testing.T) {
	e := bottest.NewHooks(t)
	e.Jira.AddIssue("PAY-3", "In Progress")
	r := e.GitHub.AddRepo("kubernetes/kubernetes", "master")
	r.Commit("Initial commit", "k8s-ci-robot")
	const n = 66686
	info := bottest.PRAt(t, r, n, fakegithub.PR{
		Title: "PAY-3 test image for a release 1.7 based sample-apiserver", Author: "dims",
		Branch: "test-image-for-a-release-1.7-based-sample-apiserver", Commits: 2,
		Reviews: []fakegithub.Review{{User: "luxas", State: "APPROVED", OnCommit: 1}},
	}, "")
	body := bottest.Retarget(bottest.Fixture(t, "kubernetes-sigs+prow/cmd/phony/examples/review_approve_submitted.json"),
		"90680e35391e777b5d1e49ad0c9dd7c4946bb459", info.HeadSHA)
	if code, msg := e.Deliver("pull_request_review", body); code != http.StatusAccepted {
		t.Fatalf("review: %d %s", code, msg)
	}
	e.Drain()
	got := bottest.Statuses(r, info.HeadSHA)
	if len(got) != 2 || got[1] != "failure: approval predates last push" {
		t.Fatalf("statuses %q", got)
	}
	if c := r.Comments(n); len(c) != 1 || !strings.Contains(c[0].Body, "**stale_approval**") {
		t.Fatalf("comments %+v", c)
	}
}

// Checks of one pull request never overlap, even on two replicas: the last verdict set is the
// one from the newest facts.
func TestMergeGateChecksOfOnePRDoNotOverlap(t *testing.T) {
	e := bottest.NewHooks(t)
	r, info, _ := e.OpenedPR()
	e.GitHub.SetLatency(5 * time.Millisecond) // long enough for checks to interleave if they could
	apps := []*bot.App{e.App, e.App, e.NewApp(e.OpenStore(), "replica-2"), e.NewApp(e.OpenStore(), "replica-3")}
	var wg sync.WaitGroup
	for i, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.Merges().CheckPullRequest(e.Ctx, r.FullName(), 2, info.HeadSHA, "test"); err != nil {
				t.Errorf("check %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	got := bottest.Statuses(r, info.HeadSHA)
	if len(got) != 2*len(apps) {
		t.Fatalf("%d statuses", len(got))
	}
	for i, s := range got {
		if pending := strings.HasPrefix(s, "pending"); pending != (i%2 == 0) {
			t.Fatalf("checks overlapped:\n%s", strings.Join(got, "\n"))
		}
	}
}

// When Jira cannot be reached the check cannot run, and the status says error: never success.
func TestMergeGateFailsClosedWhenJiraIsDown(t *testing.T) {
	e := bottest.NewHooks(t)
	r, info, body := e.OpenedPR()
	e.Jira.SetOutage(true)
	e.Deliver("pull_request", body)
	e.Drain()
	got := bottest.Statuses(r, info.HeadSHA)
	if len(got) != 2 || !strings.HasPrefix(got[1], "error: check could not run: jira projects: ") {
		t.Fatalf("statuses %q", got)
	}
	for _, s := range got {
		if strings.HasPrefix(s, "success") || strings.HasPrefix(s, "failure") {
			t.Fatalf("a verdict without facts: %q", got)
		}
	}
	if c := r.Comments(2); len(c) != 0 {
		t.Fatalf("commented without a verdict: %+v", c)
	}
	if n := e.Pending(); n != 1 {
		t.Fatalf("pending %d: the delivery must stay queued for a retry", n)
	}
	m := e.Metrics()
	if !strings.Contains(m, `sockembot_checks_total{state="error"} 1`) {
		t.Errorf("metrics:\n%s", m)
	}
}

// The real merged-PR delivery from atmos/hubot-deploy: the verdict is frozen as evidence and
// the release channel hears about it, once, however it is redelivered.
func TestMergeGateRecordsMergeVerdict(t *testing.T) {
	e := bottest.NewHooks(t)
	r := e.GitHub.AddRepo("atmos/hubot-deploy", "master")
	r.Commit("Initial commit", "atmos")
	info := bottest.PRAt(t, r, 32, fakegithub.PR{
		Title: "Webhooks events generator", Author: "atmos", Branch: "webhooks-events-generator", Commits: 3,
	}, fakegithub.MergeCommit)
	body := bottest.Retarget(bottest.Fixture(t, "atmos+hubot-deploy/test/fixtures/pull_requests/pull_request_merged.json"),
		"c95e3c0492c0c0456c396389b97ea486fa32c9af", info.HeadSHA,
		"d137a85d827990a8075fdab2ef6998bf6b7b9180", info.MergeSHA)
	if code, msg := e.DeliverID("pull_request", "merged-1", body); code != http.StatusAccepted {
		t.Fatalf("merged: %d %s", code, msg)
	}
	// GitHub's "Redeliver" sends the same delivery id; a second hook (org + repo) another one.
	e.DeliverID("pull_request", "merged-1", body)
	e.DeliverID("pull_request", "merged-2", body)
	e.Drain()

	recs := e.Records(compliance.EvidenceMergeVerdict, "atmos/hubot-deploy#32")
	if len(recs) != 1 {
		t.Fatalf("%d merge_verdict records, want 1", len(recs))
	}
	ev := bottest.Decode[mergegate.MergeVerdictEvidence](t, recs[0])
	if ev.Compliant || ev.MergeSHA != info.MergeSHA || ev.HeadSHA != info.HeadSHA || ev.MergedBy != "atmos" ||
		ev.Source != "webhook" || ev.PolicyHash == "" || len(ev.Report.Changes) != 1 || len(ev.Facts.Range.Changes[0].PR.Commits) != 3 {
		t.Fatalf("verdict evidence: %+v", ev)
	}
	msgs := e.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d channel messages, want 1: %+v", len(msgs), msgs)
	}
	for _, want := range []string{"atmos/hubot-deploy#32", "Webhooks events generator", "by atmos", "NOT compliant", "no Jira ticket", "no independent approval"} {
		if !strings.Contains(msgs[0].Text, want) {
			t.Errorf("merge note lacks %q: %s", want, msgs[0].Text)
		}
	}
	// A closed, unmerged PR is not a merge.
	e.Deliver("pull_request", bottest.Fixture(t, bottest.Octokit+"pull_request/closed.payload.json"))
	e.Drain()
	if n := len(e.Records(compliance.EvidenceMergeVerdict, "")); n != 1 || len(e.Messages()) != 1 {
		t.Fatalf("closed without merge recorded something: %d verdicts", n)
	}
}

// A merge note Slack did not take is posted when the merge comes again (a retried delivery or
// a second hook); the verdict is still recorded once.
func TestMergeGateMergeNoteSurvivesASlackFailure(t *testing.T) {
	e := bottest.NewHooks(t)
	r := e.GitHub.AddRepo("atmos/hubot-deploy", "master")
	r.Commit("Initial commit", "atmos")
	info := bottest.PRAt(t, r, 32, fakegithub.PR{Title: "Webhooks events generator", Author: "atmos", Branch: "webhooks-events-generator", Commits: 3}, fakegithub.MergeCommit)
	body := bottest.Retarget(bottest.Fixture(t, "atmos+hubot-deploy/test/fixtures/pull_requests/pull_request_merged.json"),
		"c95e3c0492c0c0456c396389b97ea486fa32c9af", info.HeadSHA,
		"d137a85d827990a8075fdab2ef6998bf6b7b9180", info.MergeSHA)
	e.Slack.NotInChannel(bottest.Channel)
	e.DeliverID("pull_request", "merged-1", body)
	e.Drain()
	if n := e.Pending(); n != 1 || len(e.Messages()) != 0 {
		t.Fatalf("pending %d, %d notes: the delivery must stay queued when its note failed", n, len(e.Messages()))
	}
	e.Slack.Invite(bottest.Channel)
	e.DeliverID("pull_request", "merged-2", body)
	e.Drain()
	if n := len(e.Records(compliance.EvidenceMergeVerdict, "atmos/hubot-deploy#32")); n != 1 {
		t.Fatalf("%d verdicts, want 1", n)
	}
	if msgs := e.Messages(); len(msgs) != 1 || !strings.Contains(msgs[0].Text, "atmos/hubot-deploy#32") {
		t.Fatalf("notes: %+v, want the merge note once", msgs)
	}
	e.DeliverID("pull_request", "merged-3", body)
	e.Drain()
	if len(e.Messages()) != 1 {
		t.Fatalf("%d notes after a third delivery, want still 1", len(e.Messages()))
	}
}

// The webhook, a second hook and the reconciliation job on other replicas all reach one merge
// at once: one verdict, one note.
func TestMergeGateRecordsConcurrentMergeOnce(t *testing.T) {
	e := bottest.NewHooks(t)
	r := e.GitHub.AddRepo("atmos/hubot-deploy", "master")
	r.Commit("Initial commit", "atmos")
	bottest.PRAt(t, r, 32, fakegithub.PR{Title: "Webhooks events generator", Author: "atmos"}, fakegithub.Squash)
	e.GitHub.SetLatency(2 * time.Millisecond)
	apps := []*bot.App{e.App, e.App, e.NewApp(e.OpenStore(), "replica-2"), e.NewApp(e.OpenStore(), "replica-3")}
	var wg sync.WaitGroup
	var recorded atomic.Int32
	for _, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first, err := a.Merges().RecordMerge(e.Ctx, r.FullName(), 32, "reconcile")
			if err != nil {
				t.Error(err)
			}
			if first {
				recorded.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := len(e.Records(compliance.EvidenceMergeVerdict, "atmos/hubot-deploy#32")); n != 1 || recorded.Load() != 1 || len(e.Messages()) != 1 {
		t.Fatalf("%d verdicts, %d recorders, %d notes; want 1 each", n, recorded.Load(), len(e.Messages()))
	}
}

// A push of commits that came through a PR is quiet; a commit straight onto the default branch
// raises the alert and is recorded.
func TestMergeGateDirectPush(t *testing.T) {
	e := bottest.NewHooks(t)

	// prow's push: PR #1476 merged into kubernetes/test-infra with a merge commit.
	ti := e.GitHub.AddRepo("kubernetes/test-infra", "master")
	before := ti.Commit("Initial commit", "rmmh")
	pr := bottest.PRAt(t, ti, 1476, fakegithub.PR{Title: "Reenable kops-aws for batch jobs in split mode", Author: "rmmh", Branch: "reenable"}, fakegithub.MergeCommit)
	push := bottest.Retarget(bottest.Fixture(t, "kubernetes-sigs+prow/cmd/phony/examples/push.json"),
		"1876a0f562a44b5193020075bb8825553b0c4102", before,
		"fc7fcc627c2b1418698de23122a1c7a9fe3cc9df", pr.Commits[0],
		"ff7b7646f056f5c60f382ace1381353df8d218ef", pr.MergeSHA)
	if code, msg := e.Deliver("push", push); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, msg)
	}
	// Tag deletions are not pushes to the default branch.
	e.Deliver("push", bottest.Fixture(t, bottest.Octokit+"push/payload.json"))
	e.Drain()
	if n := len(e.Records(compliance.EvidenceDirectPush, "")); n != 0 || len(e.Messages()) != 0 {
		t.Fatalf("merged PR commits reported as direct pushes: %d records, %+v", n, e.Messages())
	}

	// octokit's push creating master with one commit no PR brought in.
	hw := e.GitHub.AddRepo("Codertocat/Hello-World", "master")
	sha := hw.Commit("Initial commit", "Codertocat")
	body := bottest.Retarget(bottest.Fixture(t, bottest.Octokit+"push/with-new-branch.payload.json"), "6113728f27ae82c7b1a177c8d03f9e96e0adf246", sha)
	if code, msg := e.Deliver("push", body); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, msg)
	}
	e.Drain()
	recs := e.Records(compliance.EvidenceDirectPush, sha)
	if len(recs) != 1 {
		t.Fatalf("%d direct_push records, want 1", len(recs))
	}
	ev := bottest.Decode[mergegate.DirectPushEvidence](t, recs[0])
	if ev.Repo != "Codertocat/Hello-World" || ev.Ref != "refs/heads/master" || ev.Author != "Codertocat" || ev.Pusher != "Codertocat" || ev.Message != "Initial commit" {
		t.Fatalf("direct push evidence: %+v", ev)
	}
	msgs := e.Messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "Direct push to Codertocat/Hello-World `master` by Codertocat") ||
		!strings.Contains(msgs[0].Text, sha[:7]+"` Initial commit") {
		t.Fatalf("alert: %+v", msgs)
	}
}

// The same push from two hooks, or a delivery retried after its alert failed: each commit is
// recorded once and the alert is posted once, when Slack takes it.
func TestMergeGateDirectPushRecordedAndAlertedOnce(t *testing.T) {
	e := bottest.NewHooks(t)
	hw := e.GitHub.AddRepo("Codertocat/Hello-World", "master")
	sha := hw.Commit("Initial commit", "Codertocat")
	body := bottest.Retarget(bottest.Fixture(t, bottest.Octokit+"push/with-new-branch.payload.json"), "6113728f27ae82c7b1a177c8d03f9e96e0adf246", sha)
	e.Slack.NotInChannel(bottest.Channel)
	e.DeliverID("push", "push-1", body)
	e.Drain()
	if n := e.Pending(); n != 1 {
		t.Fatalf("pending %d: the push must stay queued when its alert failed", n)
	}
	e.Slack.Invite(bottest.Channel)
	e.DeliverID("push", "push-2", body)
	e.DeliverID("push", "push-3", body)
	e.Drain()
	if n := len(e.Records(compliance.EvidenceDirectPush, sha)); n != 1 {
		t.Fatalf("%d direct_push records for one commit, want 1", n)
	}
	if msgs := e.Messages(); len(msgs) != 1 || !strings.Contains(msgs[0].Text, "Direct push to Codertocat/Hello-World") {
		t.Fatalf("alerts: %+v, want one", msgs)
	}
}

// When GitHub cannot say which PR a pushed commit belongs to, the push is not waved through.
func TestMergeGateDirectPushFailsClosed(t *testing.T) {
	e := bottest.NewHooks(t)
	hw := e.GitHub.AddRepo("Codertocat/Hello-World", "master")
	sha := hw.Commit("Initial commit", "Codertocat")
	e.GitHub.FailNext(1, "/pulls", http.StatusBadGateway)
	e.Deliver("push", bottest.Retarget(bottest.Fixture(t, bottest.Octokit+"push/with-new-branch.payload.json"), "6113728f27ae82c7b1a177c8d03f9e96e0adf246", sha))
	e.Drain()
	if n := e.Pending(); n != 1 {
		t.Fatalf("pending %d: the push must be retried", n)
	}
}

func TestRepoPolicyTightensTheMergeGate(t *testing.T) {
	e := bottest.NewHooks(t)
	e.Jira.AddIssue("PAY-7", "In Review")
	r := e.GitHub.AddRepo("Codertocat/Hello-World", "master")
	r.Commit("Initial commit", "Codertocat")
	r.SetFile(check.RepoPolicyPath, "approvals:\n  required: 2\n")
	info := bottest.PRAt(t, r, 2, fakegithub.PR{
		Title: "PAY-7 Update the README with new information.", Author: "Codertocat", Branch: "changes",
		Reviews: []fakegithub.Review{{User: "hubot", State: "APPROVED"}},
	}, "")
	e.Deliver("pull_request", bottest.Retarget(bottest.Fixture(t, bottest.Octokit+"pull_request/opened.payload.json"), bottest.OctokitHead, info.HeadSHA))
	e.Drain()
	got := bottest.Statuses(r, info.HeadSHA)
	if len(got) != 2 || !strings.HasPrefix(got[1], "failure: ") {
		t.Fatalf("one approval under a repository policy that asks for two: statuses %q", got)
	}
	recs := e.Records(compliance.EvidenceCheckRun, info.HeadSHA)
	if len(recs) != 1 {
		t.Fatalf("%d check runs", len(recs))
	}
	ev := bottest.Decode[check.CheckRunEvidence](t, recs[0])
	if !strings.HasPrefix(ev.PolicySource, "Codertocat/Hello-World/.sockembot.yml@") || ev.Policy.Approvals.Required != 2 {
		t.Errorf("evidence policy source %q, required %d", ev.PolicySource, ev.Policy.Approvals.Required)
	}
}

// A repository's own policy may loosen the global one only down to the configured floor;
// without a floor, the global policy is the floor.
func TestRepoPolicyLoosensOnlyToTheFloor(t *testing.T) {
	for _, tc := range []struct {
		name  string
		floor *compliance.Policy
		want  string
	}{
		{"no floor: raised to the global policy", nil, "failure"},
		{"a floor that allows it", &compliance.Policy{
			Tickets: compliance.TicketPolicy{Projects: []string{}, AllowedStatuses: []string{}}, Approvals: compliance.ApprovalPolicy{},
			SeparationOfDuties: compliance.DutiesPolicy{RequesterSoleApprover: compliance.ActionWarn},
			Emergency:          compliance.EmergencyPolicy{ReviewWithinBusinessDays: 5},
		}, "success"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := bottest.NewHooks(t)
			e.App.Config.Policy.Floor = tc.floor
			r := e.GitHub.AddRepo("Codertocat/Hello-World", "master")
			r.Commit("Initial commit", "Codertocat")
			// A docs repository that needs neither tickets nor reviews: the global policy would fail it.
			r.SetFile(check.RepoPolicyPath, "tickets: {required: false}\napprovals: {required: 0}\n")
			info := bottest.PRAt(t, r, 2, fakegithub.PR{Title: "Fix a typo", Author: "Codertocat", Branch: "changes"}, "")
			e.Deliver("pull_request", bottest.Retarget(bottest.Fixture(t, bottest.Octokit+"pull_request/opened.payload.json"), bottest.OctokitHead, info.HeadSHA))
			e.Drain()
			if got := bottest.Statuses(r, info.HeadSHA); len(got) != 2 || !strings.HasPrefix(got[1], tc.want) {
				t.Fatalf("statuses %q, want %s", got, tc.want)
			}
			ev := bottest.Decode[check.CheckRunEvidence](t, e.Records(compliance.EvidenceCheckRun, info.HeadSHA)[0])
			raised := strings.Contains(ev.PolicySource, "raised to the policy floor (tickets.required is off; the floor requires tickets; approvals.required is 0; the floor is 1)")
			if raised != (tc.floor == nil) {
				t.Errorf("policy source %q", ev.PolicySource)
			}
		})
	}
}

// A pull request that loosens .sockembot.yml and reaches the branch past the gate (an admin's
// bypass) is judged by the policy before it, and so is every change after it: the loosened
// file is held to the floor.
func TestPolicyLooseningIsJudgedByThePolicyBeforeIt(t *testing.T) {
	e, r := bottest.NewReconcileHooks(t)
	e.GitHub.AddRepo("atmos/hubot-deploy", "master")
	e.App.Config.Policy.Owners = []string{"carol"}
	relax := r.MergePR(fakegithub.PR{Title: "Relax the policy", Author: "mallory",
		Files: map[string]string{check.RepoPolicyPath: "tickets: {required: false}\napprovals: {required: 0}\n"}}, fakegithub.Squash)
	r.MergePR(fakegithub.PR{Title: "Sneak a change in", Author: "mallory"}, fakegithub.Squash)
	if n, err := e.App.Merges().Reconcile(e.Ctx); err != nil || n != 2 {
		t.Fatalf("Reconcile = %d, %v", n, err)
	}
	ev := bottest.Decode[mergegate.MergeVerdictEvidence](t, e.Records(compliance.EvidenceMergeVerdict, "acme/payments#1")[0])
	ch := ev.Report.Changes[0]
	if ev.Compliant || !ch.PolicyChange || ev.PolicySource != check.GlobalPolicySource {
		t.Fatalf("the loosening PR: compliant %v, policy change %v, judged by %q", ev.Compliant, ch.PolicyChange, ev.PolicySource)
	}
	codes := map[compliance.Code]bool{}
	for _, v := range ch.Violations {
		codes[v.Code] = true
	}
	for _, want := range []compliance.Code{compliance.MissingTicket, compliance.MissingApproval, compliance.PolicyOwnerApproval, compliance.PolicyBelowFloor} {
		if !codes[want] {
			t.Errorf("the loosening PR lacks %s: %v", want, ch.Violations)
		}
	}
	if edit := ev.Facts.Range.Changes[0].PolicyEdit; edit == nil || len(edit.Commits) != 1 || edit.Commits[0] != relax.HeadSHA || edit.Policy == nil {
		t.Errorf("policy edit facts: %+v", edit)
	}
	ev = bottest.Decode[mergegate.MergeVerdictEvidence](t, e.Records(compliance.EvidenceMergeVerdict, "acme/payments#2")[0])
	if ev.Compliant || ev.Report.Changes[0].PolicyChange || !strings.Contains(ev.PolicySource, "raised to the policy floor") {
		t.Fatalf("the PR after it: compliant %v, judged by %q: %v", ev.Compliant, ev.PolicySource, ev.Report.Changes[0].Violations)
	}
}

// A change to the policy file needs an approval from a policy owner, on top of the usual rules,
// even when it tightens the policy.
func TestPolicyChangeNeedsAPolicyOwner(t *testing.T) {
	e, r := bottest.NewReconcileHooks(t)
	e.GitHub.AddRepo("atmos/hubot-deploy", "master")
	e.App.Config.Policy.Owners = []string{"Carol"}
	tighten := map[string]string{check.RepoPolicyPath: "approvals: {required: 1}\ntickets: {projects: [PAY]}\n"}
	r.MergePR(fakegithub.PR{Title: "PAY-1 Tighten the policy", Author: "alice", Files: tighten,
		Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.Squash)
	r.MergePR(fakegithub.PR{Title: "PAY-1 Tighten the policy again", Author: "alice", Files: tighten,
		Reviews: []fakegithub.Review{{User: "carol", State: "APPROVED"}}}, fakegithub.MergeCommit)
	if n, err := e.App.Merges().Reconcile(e.Ctx); err != nil || n != 2 {
		t.Fatalf("Reconcile = %d, %v", n, err)
	}
	ev := bottest.Decode[mergegate.MergeVerdictEvidence](t, e.Records(compliance.EvidenceMergeVerdict, "acme/payments#1")[0])
	if ch := ev.Report.Changes[0]; ev.Compliant || !ch.PolicyChange || len(ch.Violations) != 1 || ch.Violations[0].Code != compliance.PolicyOwnerApproval ||
		!strings.Contains(ch.Violations[0].Message, "Carol") {
		t.Fatalf("approved by a non-owner: compliant %v, violations %v", ev.Compliant, ch.Violations)
	}
	ev = bottest.Decode[mergegate.MergeVerdictEvidence](t, e.Records(compliance.EvidenceMergeVerdict, "acme/payments#2")[0])
	if ch := ev.Report.Changes[0]; !ev.Compliant || !ch.PolicyChange {
		t.Fatalf("approved by an owner: compliant %v, policy change %v, violations %v", ev.Compliant, ch.PolicyChange, ch.Violations)
	}
}

// A 404 on .sockembot.yml is not taken at its word: the tree at that commit must confirm the
// file is absent, else the check fails closed rather than fall back to the global policy.
func TestRepoPolicy404IsConfirmedBeforeFallingBack(t *testing.T) {
	// open delivers an approved PR's opened event, with or without a repository policy asking
	// for two approvals; fail injects faults before the check runs.
	open := func(t *testing.T, policy bool, fail func(*fakegithub.Server)) (*bottest.Hooks, []string) {
		e := bottest.NewHooks(t)
		e.Jira.AddIssue("PAY-7", "In Review")
		r := e.GitHub.AddRepo("Codertocat/Hello-World", "master")
		r.Commit("Initial commit", "Codertocat")
		if policy {
			r.SetFile(check.RepoPolicyPath, "approvals:\n  required: 2\n")
		}
		info := bottest.PRAt(t, r, 2, fakegithub.PR{Title: "PAY-7 Update", Author: "Codertocat", Branch: "changes",
			Reviews: []fakegithub.Review{{User: "hubot", State: "APPROVED"}}}, "")
		e.Deliver("pull_request", bottest.Retarget(bottest.Fixture(t, bottest.Octokit+"pull_request/opened.payload.json"), bottest.OctokitHead, info.HeadSHA))
		fail(e.GitHub)
		e.Drain()
		return e, bottest.Statuses(r, info.HeadSHA)
	}
	for _, tc := range []struct {
		name string
		fail func(*fakegithub.Server)
	}{
		{"contents alone answers 404", func(g *fakegithub.Server) { g.FailNext(1, "/contents/", http.StatusNotFound) }},
		{"the token lost access to the repository", func(g *fakegithub.Server) {
			g.FailNext(1, "/contents/", http.StatusNotFound)
			g.FailNext(1, "/git/trees/", http.StatusNotFound)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The pull request and its reviews are read; then the policy file answers 404.
			_, got := open(t, true, tc.fail)
			if len(got) < 2 || !strings.HasPrefix(got[1], "error: .sockembot.yml in Codertocat/Hello-World could not be read") {
				t.Fatalf("statuses %q: a 404 must not fall back to the global policy (1 approval) when the repository asks for 2", got)
			}
		})
	}

	// Confirmed absent: the global policy applies.
	e, got := open(t, false, func(*fakegithub.Server) {})
	if len(got) != 2 || !strings.HasPrefix(got[1], "success") {
		t.Fatalf("no policy file: statuses %q", got)
	}
	if n := e.GitHub.Count("GET /repos/{owner}/{repo}/git/trees/{sha}"); n != 1 {
		t.Errorf("the 404 was confirmed %d times, want once", n)
	}
}

func TestInvalidRepoPolicyFailsTheMergeGateClosed(t *testing.T) {
	for name, content := range map[string]string{
		"unknown key": "approvals:\n  requried: 2\n",
		"bad value":   "approvals:\n  required: -1\n",
		"not YAML":    "approvals: [\n",
	} {
		t.Run(name, func(t *testing.T) {
			e := bottest.NewHooks(t)
			e.Jira.AddIssue("PAY-7", "In Review")
			r := e.GitHub.AddRepo("Codertocat/Hello-World", "master")
			r.Commit("Initial commit", "Codertocat")
			r.SetFile(check.RepoPolicyPath, content)
			info := bottest.PRAt(t, r, 2, fakegithub.PR{
				Title: "PAY-7 Update the README", Author: "Codertocat", Branch: "changes",
				Reviews: []fakegithub.Review{{User: "hubot", State: "APPROVED"}},
			}, "")
			e.Deliver("pull_request", bottest.Retarget(bottest.Fixture(t, bottest.Octokit+"pull_request/opened.payload.json"), bottest.OctokitHead, info.HeadSHA))
			e.Drain()
			got := bottest.Statuses(r, info.HeadSHA)
			if len(got) != 2 || !strings.HasPrefix(got[1], "error: .sockembot.yml in Codertocat/Hello-World is invalid") {
				t.Fatalf("statuses %q", got)
			}
			if n := len([]rune(strings.TrimPrefix(got[1], "error: "))); n > render.MaxStatusDescription {
				t.Errorf("description is %d characters, GitHub takes %d", n, render.MaxStatusDescription)
			}
		})
	}
}

func TestRepoPolicyUnreadableFailsClosed(t *testing.T) {
	e := bottest.NewHooks(t)
	e.Jira.AddIssue("PAY-7", "In Review")
	r := e.GitHub.AddRepo("Codertocat/Hello-World", "master")
	r.Commit("Initial commit", "Codertocat")
	info := bottest.PRAt(t, r, 2, fakegithub.PR{Title: "PAY-7 Update", Author: "Codertocat", Branch: "changes",
		Reviews: []fakegithub.Review{{User: "hubot", State: "APPROVED"}}}, "")
	e.GitHub.FailNext(1, "/contents/", http.StatusBadGateway)
	e.Deliver("pull_request", bottest.Retarget(bottest.Fixture(t, bottest.Octokit+"pull_request/opened.payload.json"), bottest.OctokitHead, info.HeadSHA))
	e.Drain()
	got := bottest.Statuses(r, info.HeadSHA)
	if len(got) < 2 || !strings.HasPrefix(got[1], "error: .sockembot.yml in Codertocat/Hello-World could not be read") {
		t.Fatalf("statuses %q", got)
	}
}

func TestReconcileFindsMergeNoWebhookAnnounced(t *testing.T) {
	e, r := bottest.NewReconcileHooks(t)
	// atmos/hubot-deploy#32 arrives by webhook as usual.
	hubot := e.GitHub.AddRepo("atmos/hubot-deploy", "master")
	hubot.Commit("Initial commit", "atmos")
	info := bottest.PRAt(t, hubot, 32, fakegithub.PR{Title: "Webhooks events generator", Author: "atmos"}, fakegithub.MergeCommit)
	e.Deliver("pull_request", bottest.Retarget(bottest.Fixture(t, "atmos+hubot-deploy/test/fixtures/pull_requests/pull_request_merged.json"),
		"c95e3c0492c0c0456c396389b97ea486fa32c9af", info.HeadSHA, "d137a85d827990a8075fdab2ef6998bf6b7b9180", info.MergeSHA))
	e.Drain()
	// Two merges into acme/payments whose webhooks never arrived (GitHub does not retry).
	r.MergePR(fakegithub.PR{Title: "PAY-1 refunds", Author: "alice", Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.Squash)
	r.MergePR(fakegithub.PR{Title: "hotfix", Author: "carol"}, fakegithub.MergeCommit)

	n, err := e.App.Merges().Reconcile(e.Ctx)
	if err != nil || n != 2 {
		t.Fatalf("Reconcile = %d, %v; want the 2 unannounced merges", n, err)
	}
	for num, compliant := range map[string]bool{"acme/payments#1": true, "acme/payments#2": false} {
		recs := e.Records(compliance.EvidenceMergeVerdict, num)
		if len(recs) != 1 {
			t.Fatalf("%s: %d verdicts", num, len(recs))
		}
		if ev := bottest.Decode[mergegate.MergeVerdictEvidence](t, recs[0]); ev.Compliant != compliant || ev.Source != "reconcile" {
			t.Errorf("%s: compliant %v source %s", num, ev.Compliant, ev.Source)
		}
	}
	if n := len(e.Records(compliance.EvidenceMergeVerdict, "atmos/hubot-deploy#32")); n != 1 {
		t.Fatalf("the webhook-announced merge was recorded %d times", n)
	}
	msgs := e.Messages()
	if len(msgs) != 3 || !strings.Contains(msgs[1].Text, "found by reconciliation") || !strings.Contains(msgs[1].Text, "acme/payments#1") ||
		!strings.Contains(msgs[1].Text, "compliant: approved by bob · PAY-1 In Progress") {
		t.Fatalf("channel: %+v", msgs)
	}

	// Nothing new: nothing recorded, nothing posted.
	if n, err := e.App.Merges().Reconcile(e.Ctx); err != nil || n != 0 {
		t.Fatalf("second Reconcile = %d, %v", n, err)
	}
	r.MergePR(fakegithub.PR{Title: "PAY-1 more refunds", Author: "alice"}, fakegithub.Rebase)
	if n, err := e.App.Merges().Reconcile(e.Ctx); err != nil || n != 1 {
		t.Fatalf("third Reconcile = %d, %v", n, err)
	}
	if _, ok, _ := e.Store.GetState(e.Ctx, "reconcile.cursor:acme/payments"); !ok {
		t.Fatal("no cursor stored")
	}
}

// A merge that cannot be judged is reported, not skipped: the cursor stays before it and the
// next run records it.
func TestReconcileRetriesMergeItCouldNotJudge(t *testing.T) {
	e, r := bottest.NewReconcileHooks(t)
	e.GitHub.AddRepo("atmos/hubot-deploy", "master")
	r.MergePR(fakegithub.PR{Title: "PAY-1 refunds", Author: "alice"}, fakegithub.Squash)
	r.MergePR(fakegithub.PR{Title: "PAY-1 more refunds", Author: "alice"}, fakegithub.Squash)
	e.GitHub.FailNext(1, "/pulls/1/reviews", http.StatusBadGateway)
	// #1 cannot be judged this time; #2, merged after it, is recorded anyway.
	if n, err := e.App.Merges().Reconcile(e.Ctx); err == nil || !strings.Contains(err.Error(), "acme/payments#1") || n != 1 {
		t.Fatalf("Reconcile = %d, %v; want #2 recorded and an error naming #1", n, err)
	}
	if msgs := e.Messages(); len(msgs) != 2 || !strings.Contains(msgs[0].Text+msgs[1].Text, "could not judge") {
		t.Fatalf("channel: %+v", msgs)
	}
	if n, err := e.App.Merges().Reconcile(e.Ctx); err != nil || n != 1 {
		t.Fatalf("retry: Reconcile = %d, %v; want #1 recorded now", n, err)
	}
	for _, pr := range []string{"acme/payments#1", "acme/payments#2"} {
		if n := len(e.Records(compliance.EvidenceMergeVerdict, pr)); n != 1 {
			t.Fatalf("%s: %d verdicts", pr, n)
		}
	}
}

// A push that may change a repository's policy tells PolicyPushed first, and the app drops its
// kept reads of that policy there: every push to the default branch, even one that then fails,
// and a push to another branch that touches the policy file; no other push.
func TestMergeGatePushTellsPolicyPushed(t *testing.T) {
	e := bottest.NewHooks(t)
	r, info, opened := e.OpenedPR()
	r.SetFile(check.RepoPolicyPath, "approvals:\n  required: 2\n")
	gate := e.App.Merges()
	wired := gate.PolicyPushed
	if wired == nil {
		t.Fatal("the app does not set the merge gate's PolicyPushed")
	}
	var mu sync.Mutex
	var told []string
	gate.PolicyPushed = func(repo string) {
		mu.Lock()
		told = append(told, repo)
		mu.Unlock()
		wired(repo)
	}
	toldSoFar := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(told, ",")
	}
	files, ok := e.App.Checker().Files.(*check.CachedFiles)
	if !ok {
		t.Fatalf("the app's checker reads policies through %T, want *check.CachedFiles", e.App.Checker().Files)
	}
	const contents = "GET /repos/{owner}/{repo}/contents/{path}"
	checkPR := func() {
		t.Helper()
		if code, msg := e.Deliver("pull_request", opened); code != http.StatusAccepted {
			t.Fatalf("opened: %d %s", code, msg)
		}
		e.Drain()
	}

	// Two checks of the pull request read the policy at its base once.
	checkPR()
	if files.Len() == 0 || e.GitHub.Count(contents) != 1 {
		t.Fatalf("first check: %d entries kept, %d policy reads", files.Len(), e.GitHub.Count(contents))
	}
	e.GitHub.ResetLog()
	checkPR()
	if n := e.GitHub.Count(contents); n != 0 {
		t.Fatalf("%d policy reads in the second check at the same base, want 0", n)
	}
	if got := bottest.Statuses(r, info.HeadSHA); len(got) != 4 || !strings.HasPrefix(got[3], "failure: ") {
		t.Fatalf("statuses under the repository policy: %q", got)
	}

	push := bottest.Retarget(bottest.Fixture(t, bottest.Octokit+"push/with-new-branch.payload.json"), "6113728f27ae82c7b1a177c8d03f9e96e0adf246", info.HeadSHA)
	onFeature := bottest.Retarget(push, `"ref": "refs/heads/master"`, `"ref": "refs/heads/feature"`)
	// Another branch, README.md only: nothing to drop.
	e.Deliver("push", onFeature)
	e.Drain()
	if got := toldSoFar(); got != "" || files.Len() == 0 {
		t.Fatalf("a push to another branch not touching the policy: told %q, %d entries left", got, files.Len())
	}
	// Another branch, adding the policy file.
	e.Deliver("push", bottest.Retarget(onFeature, `"added": ["README.md"]`, `"added": [".sockembot.yml"]`))
	e.Drain()
	if got := toldSoFar(); got != "Codertocat/Hello-World" || files.Len() != 0 {
		t.Fatalf("a push touching the policy: told %q, %d entries left", got, files.Len())
	}
	e.GitHub.ResetLog()
	checkPR()
	if n := e.GitHub.Count(contents); n != 1 {
		t.Fatalf("%d policy reads after the push, want 1", n)
	}

	// The default branch: a push that does not touch the policy keeps the cache, one that does
	// clears it, even when the push itself then fails.
	e.Deliver("push", push)
	e.Drain()
	if got := toldSoFar(); got != "Codertocat/Hello-World" {
		t.Fatalf("a push to the default branch not touching the policy: told %q", got)
	}
	e.GitHub.FailNext(1, "/pulls", http.StatusBadGateway)
	e.Deliver("push", bottest.Retarget(push, `"added": ["README.md"]`, `"added": [".sockembot.yml"]`))
	e.Drain()
	if n := e.Pending(); n != 1 {
		t.Fatalf("pending %d: the push was meant to fail", n)
	}
	if got := toldSoFar(); got != "Codertocat/Hello-World,Codertocat/Hello-World" || files.Len() != 0 {
		t.Fatalf("a failing push to the default branch: told %q, %d entries left", got, files.Len())
	}
}
