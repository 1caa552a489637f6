package bot

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	"sockembot/integrations/store"
)

const octokitHead = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"

// A non-compliant pull request gets a failing status and one comment, kept up to date across
// pushes and reviews rather than repeated.
func TestMergeGateNonCompliantPullRequest(t *testing.T) {
	e := newGateEnv(t)
	r, info, opened := openedPR(t, e)

	if code, msg := e.deliver("pull_request", opened); code != http.StatusAccepted {
		t.Fatalf("opened: %d %s", code, msg)
	}
	if got := r.Statuses(info.HeadSHA); len(got) != 0 {
		t.Fatalf("processed before the 2xx: %v", got)
	}
	e.drain()
	got := statuses(r, info.HeadSHA)
	want := []string{"pending: checking tickets and approvals…", "failure: no Jira ticket · no independent approval"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("statuses:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	comments := r.Comments(2)
	if len(comments) != 1 {
		t.Fatalf("%d comments, want 1", len(comments))
	}
	c := comments[0]
	for _, want := range []string{commentMarker, violationHeading, "**missing_ticket**", "**missing_approval**",
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
		if code, msg := e.deliver(d.event, retarget(fixture(t, octokit+d.file), octokitHead, info.HeadSHA)); code != http.StatusAccepted {
			t.Fatalf("%s: %d %s", d.file, code, msg)
		}
	}
	e.drain()
	got = statuses(r, info.HeadSHA)
	if len(got) != 10 || got[9] != want[1] {
		t.Fatalf("after 4 more checks, statuses:\n%s", strings.Join(got, "\n"))
	}
	comments = r.Comments(2)
	if len(comments) != 1 {
		t.Fatalf("%d comments after re-checks, want the one comment edited", len(comments))
	}
	if n := e.gh.Count("POST /repos/{owner}/{repo}/issues/{number}/comments"); n != 1 {
		t.Errorf("comment created %d times, want once", n)
	}
	recs := e.records(store.KindCheckRun, info.HeadSHA)
	if len(recs) != 5 {
		t.Fatalf("%d check_run records, want one per check (5)", len(recs))
	}
	ev := decodeBody[CheckRunEvidence](t, recs[4])
	if ev.Compliant || ev.Trigger != "pull_request_review.dismissed" || ev.Repo != "Codertocat/Hello-World" || ev.HeadSHA != info.HeadSHA ||
		len(ev.Facts.Range.Changes) != 1 || ev.Facts.Range.Changes[0].PR.Number != 2 {
		t.Errorf("check_run evidence: %+v", ev)
	}
	if n := e.pending(); n != 0 {
		t.Errorf("%d deliveries left", n)
	}
}

// A real approving review delivery (google/github-owners-bot) on a PR with a ticket in
// progress turns the status green, and the earlier violation comment says it is fixed.
func TestMergeGateApprovedReviewTurnsGreen(t *testing.T) {
	e := newGateEnv(t)
	e.jira.AddIssue("PAY-11", "In Progress")
	r := e.gh.AddRepo("erwinmombay/github-owners-bot-test-repo", "master")
	r.Commit("Initial commit", "erwinmombay")
	info := prAt(t, r, 35, fakegithub.PR{
		Title: "Update file.txt", Body: "Refs PAY-11", Author: "ampprojectbot", Branch: "ampprojectbot-patch-3",
		Reviews: []fakegithub.Review{{User: "erwinmombay", State: "APPROVED"}},
	}, "")
	// sockembot flagged this PR earlier, before the approval.
	r.AddComment(35, "erwinmombay", "LGTM once the ticket is linked")
	r.AddComment(35, "sockembot[bot]", commentMarker+"\n"+violationHeading+"\n- **missing_approval**: ...")

	body := retarget(fixture(t, "google+github-owners-bot/test/fixtures/actions/pull_request_review.35.submitted.json"),
		"9272f18514cbd3fa935b3ced62ae1c2bf6efa76d", info.HeadSHA)
	if code, msg := e.deliver("pull_request_review", body); code != http.StatusAccepted {
		t.Fatalf("review: %d %s", code, msg)
	}
	e.drain()
	got := statuses(r, info.HeadSHA)
	if len(got) != 2 || got[1] != "success: approved by erwinmombay · PAY-11 In Progress" {
		t.Fatalf("statuses %q", got)
	}
	comments := r.Comments(35)
	if len(comments) != 2 || !strings.Contains(comments[1].Body, fixedHeading) || strings.Contains(comments[1].Body, "missing_approval") {
		t.Fatalf("comments after the fix: %+v", comments)
	}
	if comments[0].Body != "LGTM once the ticket is linked" {
		t.Fatal("someone else's comment was touched")
	}
	// Checked again while still compliant: the comment is left alone.
	e.deliver("pull_request_review", body)
	e.drain()
	if n := e.gh.Count("PATCH /repos/{owner}/{repo}/issues/comments/{id}"); n != 1 {
		t.Fatalf("comment edited %d times, want once", n)
	}
}

// A compliant PR that was never flagged gets the green status and no comment at all.
func TestMergeGateCompliantPullRequestGetsNoComment(t *testing.T) {
	e := newGateEnv(t)
	e.jira.AddIssue("PAY-7", "In Review")
	r := e.gh.AddRepo("Codertocat/Hello-World", "master")
	r.Commit("Initial commit", "Codertocat")
	info := prAt(t, r, 2, fakegithub.PR{
		Title: "PAY-7 Update the README with new information.", Author: "Codertocat", Branch: "changes",
		Reviews: []fakegithub.Review{{User: "hubot", State: "APPROVED"}},
	}, "")
	e.deliver("pull_request", retarget(fixture(t, octokit+"pull_request/opened.payload.json"), octokitHead, info.HeadSHA))
	e.drain()
	if got := statuses(r, info.HeadSHA); len(got) != 2 || got[1] != "success: approved by hubot · PAY-7 In Review" {
		t.Fatalf("statuses %q", got)
	}
	if c := r.Comments(2); len(c) != 0 {
		t.Fatalf("comments on a compliant PR: %+v", c)
	}
}

// An approval given before the last push does not count (the prow fixture is a real approval
// of kubernetes/kubernetes#66686; here the PR got another commit after it).
func TestMergeGateStaleApproval(t *testing.T) {
	e := newGateEnv(t)
	e.jira.AddIssue("PAY-3", "In Progress")
	r := e.gh.AddRepo("kubernetes/kubernetes", "master")
	r.Commit("Initial commit", "k8s-ci-robot")
	const n = 66686
	info := prAt(t, r, n, fakegithub.PR{
		Title: "PAY-3 test image for a release 1.7 based sample-apiserver", Author: "dims",
		Branch: "test-image-for-a-release-1.7-based-sample-apiserver", Commits: 2,
		Reviews: []fakegithub.Review{{User: "luxas", State: "APPROVED", OnCommit: 1}},
	}, "")
	body := retarget(fixture(t, "kubernetes-sigs+prow/cmd/phony/examples/review_approve_submitted.json"),
		"90680e35391e777b5d1e49ad0c9dd7c4946bb459", info.HeadSHA)
	if code, msg := e.deliver("pull_request_review", body); code != http.StatusAccepted {
		t.Fatalf("review: %d %s", code, msg)
	}
	e.drain()
	got := statuses(r, info.HeadSHA)
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
	e := newGateEnv(t)
	r, info, _ := openedPR(t, e)
	e.gh.SetLatency(5 * time.Millisecond) // long enough for checks to interleave if they could
	apps := []*App{e.app, e.app, e.newApp(e.openStore(), "replica-2"), e.newApp(e.openStore(), "replica-3")}
	var wg sync.WaitGroup
	for i, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.CheckPullRequest(e.ctx, r.FullName(), 2, info.HeadSHA, "test"); err != nil {
				t.Errorf("check %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	got := statuses(r, info.HeadSHA)
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
	e := newGateEnv(t)
	r, info, body := openedPR(t, e)
	e.jira.SetOutage(true)
	e.deliver("pull_request", body)
	e.drain()
	got := statuses(r, info.HeadSHA)
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
	if n := e.pending(); n != 1 {
		t.Fatalf("pending %d: the delivery must stay queued for a retry", n)
	}
	_, m := e.get("/metrics")
	if !strings.Contains(m, `sockembot_checks_total{state="error"} 1`) {
		t.Errorf("metrics:\n%s", m)
	}
}

// The real merged-PR delivery from atmos/hubot-deploy: the verdict is frozen as evidence and
// the release channel hears about it, once, however it is redelivered.
func TestMergeGateRecordsMergeVerdict(t *testing.T) {
	e := newGateEnv(t)
	r := e.gh.AddRepo("atmos/hubot-deploy", "master")
	r.Commit("Initial commit", "atmos")
	info := prAt(t, r, 32, fakegithub.PR{
		Title: "Webhooks events generator", Author: "atmos", Branch: "webhooks-events-generator", Commits: 3,
	}, fakegithub.MergeCommit)
	body := retarget(fixture(t, "atmos+hubot-deploy/test/fixtures/pull_requests/pull_request_merged.json"),
		"c95e3c0492c0c0456c396389b97ea486fa32c9af", info.HeadSHA,
		"d137a85d827990a8075fdab2ef6998bf6b7b9180", info.MergeSHA)
	if code, msg := e.deliverID("pull_request", "merged-1", body); code != http.StatusAccepted {
		t.Fatalf("merged: %d %s", code, msg)
	}
	// GitHub's "Redeliver" sends the same delivery id; a second hook (org + repo) another one.
	e.deliverID("pull_request", "merged-1", body)
	e.deliverID("pull_request", "merged-2", body)
	e.drain()

	recs := e.records(store.KindMergeVerdict, "atmos/hubot-deploy#32")
	if len(recs) != 1 {
		t.Fatalf("%d merge_verdict records, want 1", len(recs))
	}
	ev := decodeBody[MergeVerdictEvidence](t, recs[0])
	if ev.Compliant || ev.MergeSHA != info.MergeSHA || ev.HeadSHA != info.HeadSHA || ev.MergedBy != "atmos" ||
		ev.Source != "webhook" || ev.PolicyHash == "" || len(ev.Report.Changes) != 1 || len(ev.Facts.Range.Changes[0].PR.Commits) != 3 {
		t.Fatalf("verdict evidence: %+v", ev)
	}
	msgs := e.channel()
	if len(msgs) != 1 {
		t.Fatalf("%d channel messages, want 1: %+v", len(msgs), msgs)
	}
	for _, want := range []string{"atmos/hubot-deploy#32", "Webhooks events generator", "by atmos", "NOT compliant", "no Jira ticket", "no independent approval"} {
		if !strings.Contains(msgs[0].Text, want) {
			t.Errorf("merge note lacks %q: %s", want, msgs[0].Text)
		}
	}
	// A closed, unmerged PR is not a merge.
	e.deliver("pull_request", fixture(t, octokit+"pull_request/closed.payload.json"))
	e.drain()
	if n := len(e.records(store.KindMergeVerdict, "")); n != 1 || len(e.channel()) != 1 {
		t.Fatalf("closed without merge recorded something: %d verdicts", n)
	}
}

// A merge note Slack did not take is posted when the merge comes again (a retried delivery or
// a second hook); the verdict is still recorded once.
func TestMergeGateMergeNoteSurvivesASlackFailure(t *testing.T) {
	e := newGateEnv(t)
	r := e.gh.AddRepo("atmos/hubot-deploy", "master")
	r.Commit("Initial commit", "atmos")
	info := prAt(t, r, 32, fakegithub.PR{Title: "Webhooks events generator", Author: "atmos", Branch: "webhooks-events-generator", Commits: 3}, fakegithub.MergeCommit)
	body := retarget(fixture(t, "atmos+hubot-deploy/test/fixtures/pull_requests/pull_request_merged.json"),
		"c95e3c0492c0c0456c396389b97ea486fa32c9af", info.HeadSHA,
		"d137a85d827990a8075fdab2ef6998bf6b7b9180", info.MergeSHA)
	e.slack.NotInChannel(gateChannel)
	e.deliverID("pull_request", "merged-1", body)
	e.drain()
	if n := e.pending(); n != 1 || len(e.channel()) != 0 {
		t.Fatalf("pending %d, %d notes: the delivery must stay queued when its note failed", n, len(e.channel()))
	}
	e.slack.Invite(gateChannel)
	e.deliverID("pull_request", "merged-2", body)
	e.drain()
	if n := len(e.records(store.KindMergeVerdict, "atmos/hubot-deploy#32")); n != 1 {
		t.Fatalf("%d verdicts, want 1", n)
	}
	if msgs := e.channel(); len(msgs) != 1 || !strings.Contains(msgs[0].Text, "atmos/hubot-deploy#32") {
		t.Fatalf("notes: %+v, want the merge note once", msgs)
	}
	e.deliverID("pull_request", "merged-3", body)
	e.drain()
	if len(e.channel()) != 1 {
		t.Fatalf("%d notes after a third delivery, want still 1", len(e.channel()))
	}
}

// The webhook, a second hook and the reconciliation job on other replicas all reach one merge
// at once: one verdict, one note.
func TestMergeGateRecordsConcurrentMergeOnce(t *testing.T) {
	e := newGateEnv(t)
	r := e.gh.AddRepo("atmos/hubot-deploy", "master")
	r.Commit("Initial commit", "atmos")
	prAt(t, r, 32, fakegithub.PR{Title: "Webhooks events generator", Author: "atmos"}, fakegithub.Squash)
	e.gh.SetLatency(2 * time.Millisecond)
	apps := []*App{e.app, e.app, e.newApp(e.openStore(), "replica-2"), e.newApp(e.openStore(), "replica-3")}
	var wg sync.WaitGroup
	var recorded atomic.Int32
	for _, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first, err := a.RecordMerge(e.ctx, r.FullName(), 32, "reconcile")
			if err != nil {
				t.Error(err)
			}
			if first {
				recorded.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := len(e.records(store.KindMergeVerdict, "atmos/hubot-deploy#32")); n != 1 || recorded.Load() != 1 || len(e.channel()) != 1 {
		t.Fatalf("%d verdicts, %d recorders, %d notes; want 1 each", n, recorded.Load(), len(e.channel()))
	}
}

// A push of commits that came through a PR is quiet; a commit straight onto the default branch
// raises the alert and is recorded.
func TestMergeGateDirectPush(t *testing.T) {
	e := newGateEnv(t)

	// prow's push: PR #1476 merged into kubernetes/test-infra with a merge commit.
	ti := e.gh.AddRepo("kubernetes/test-infra", "master")
	before := ti.Commit("Initial commit", "rmmh")
	pr := prAt(t, ti, 1476, fakegithub.PR{Title: "Reenable kops-aws for batch jobs in split mode", Author: "rmmh", Branch: "reenable"}, fakegithub.MergeCommit)
	push := retarget(fixture(t, "kubernetes-sigs+prow/cmd/phony/examples/push.json"),
		"1876a0f562a44b5193020075bb8825553b0c4102", before,
		"fc7fcc627c2b1418698de23122a1c7a9fe3cc9df", pr.Commits[0],
		"ff7b7646f056f5c60f382ace1381353df8d218ef", pr.MergeSHA)
	if code, msg := e.deliver("push", push); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, msg)
	}
	// Tag deletions are not pushes to the default branch.
	e.deliver("push", fixture(t, octokit+"push/payload.json"))
	e.drain()
	if n := len(e.records(store.KindDirectPush, "")); n != 0 || len(e.channel()) != 0 {
		t.Fatalf("merged PR commits reported as direct pushes: %d records, %+v", n, e.channel())
	}

	// octokit's push creating master with one commit no PR brought in.
	hw := e.gh.AddRepo("Codertocat/Hello-World", "master")
	sha := hw.Commit("Initial commit", "Codertocat")
	body := retarget(fixture(t, octokit+"push/with-new-branch.payload.json"), "6113728f27ae82c7b1a177c8d03f9e96e0adf246", sha)
	if code, msg := e.deliver("push", body); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, msg)
	}
	e.drain()
	recs := e.records(store.KindDirectPush, sha)
	if len(recs) != 1 {
		t.Fatalf("%d direct_push records, want 1", len(recs))
	}
	ev := decodeBody[DirectPushEvidence](t, recs[0])
	if ev.Repo != "Codertocat/Hello-World" || ev.Ref != "refs/heads/master" || ev.Author != "Codertocat" || ev.Pusher != "Codertocat" || ev.Message != "Initial commit" {
		t.Fatalf("direct push evidence: %+v", ev)
	}
	msgs := e.channel()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "Direct push to Codertocat/Hello-World `master` by Codertocat") ||
		!strings.Contains(msgs[0].Text, sha[:7]+"` Initial commit") {
		t.Fatalf("alert: %+v", msgs)
	}
}

// The same push from two hooks, or a delivery retried after its alert failed: each commit is
// recorded once and the alert is posted once, when Slack takes it.
func TestMergeGateDirectPushRecordedAndAlertedOnce(t *testing.T) {
	e := newGateEnv(t)
	hw := e.gh.AddRepo("Codertocat/Hello-World", "master")
	sha := hw.Commit("Initial commit", "Codertocat")
	body := retarget(fixture(t, octokit+"push/with-new-branch.payload.json"), "6113728f27ae82c7b1a177c8d03f9e96e0adf246", sha)
	e.slack.NotInChannel(gateChannel)
	e.deliverID("push", "push-1", body)
	e.drain()
	if n := e.pending(); n != 1 {
		t.Fatalf("pending %d: the push must stay queued when its alert failed", n)
	}
	e.slack.Invite(gateChannel)
	e.deliverID("push", "push-2", body)
	e.deliverID("push", "push-3", body)
	e.drain()
	if n := len(e.records(store.KindDirectPush, sha)); n != 1 {
		t.Fatalf("%d direct_push records for one commit, want 1", n)
	}
	if msgs := e.channel(); len(msgs) != 1 || !strings.Contains(msgs[0].Text, "Direct push to Codertocat/Hello-World") {
		t.Fatalf("alerts: %+v, want one", msgs)
	}
}

// When GitHub cannot say which PR a pushed commit belongs to, the push is not waved through.
func TestMergeGateDirectPushFailsClosed(t *testing.T) {
	e := newGateEnv(t)
	hw := e.gh.AddRepo("Codertocat/Hello-World", "master")
	sha := hw.Commit("Initial commit", "Codertocat")
	e.gh.FailNext(1, "/pulls", http.StatusBadGateway)
	e.deliver("push", retarget(fixture(t, octokit+"push/with-new-branch.payload.json"), "6113728f27ae82c7b1a177c8d03f9e96e0adf246", sha))
	e.drain()
	if n := e.pending(); n != 1 {
		t.Fatalf("pending %d: the push must be retried", n)
	}
}

// deployment_status deliveries reach the deploy thread's handler; one for a deployment
// sockembot did not create is processed without error.
func TestMergeGateDeploymentStatusIsHandedOn(t *testing.T) {
	e := newGateEnv(t)
	e.gh.AddRepo("Codertocat/Hello-World", "master")
	if code, msg := e.deliver("deployment_status", fixture(t, octokit+"deployment_status/payload.json")); code != http.StatusAccepted {
		t.Fatalf("deployment_status: %d %s", code, msg)
	}
	e.drain()
	if n := e.pending(); n != 0 {
		t.Fatalf("deployment_status delivery failed (%d pending)", n)
	}
}

func TestStatusDescription(t *testing.T) {
	ok := compliantChange()
	if got := StatusDescription(ok); got != "approved by bob · PAY-11 In Progress" {
		t.Errorf("compliant: %q", got)
	}
	bad := ok
	bad.Compliant = false
	bad.Violations = []compliance.Violation{
		{Code: "ticket_status", Message: "PAY-11 is in status To Do; allowed: any status outside the To Do category"},
		{Code: "changes_requested", Message: "carol requested changes and has not approved since"},
		{Code: "ticket_not_found", Message: "PAY-99 was not found in Jira"},
	}
	bad.Tickets[0].Status = "To Do"
	if got := StatusDescription(bad); got != "PAY-11 To Do · changes requested by carol · PAY-99 not in Jira" {
		t.Errorf("failure: %q", got)
	}
	long := ok
	for i := 0; i < 40; i++ {
		long.Tickets = append(long.Tickets, long.Tickets[0])
	}
	if got := StatusDescription(long); len([]rune(got)) != maxStatusDescription || !strings.HasSuffix(got, "…") {
		t.Errorf("long description: %d runes", len([]rune(got)))
	}
}
