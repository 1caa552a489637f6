package mergegate_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"sockembot/bot/bottest"
	"sockembot/bot/mergegate"
	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
)

// The App mode tests run the bot as the fake GitHub's App: installation tokens from a JWT signed
// with the App's key, check runs, merge queues. The payloads are octokit's real examples,
// retargeted at what the fake minted.

// appPR is Codertocat/Hello-World#2 with ticket PAY-1 and no approval yet, opened in an App-mode
// rig; opened is octokit's pull_request "opened" payload for it.
func appPR(t *testing.T) (*bottest.Hooks, *fakegithub.Repo, fakegithub.PRInfo, []byte) {
	t.Helper()
	e := bottest.NewAppHooks(t)
	e.Jira.AddIssue("PAY-1", "In Progress")
	r := e.GitHub.AddRepo("Codertocat/Hello-World", "master")
	r.Commit("Initial commit", "Codertocat")
	info := bottest.PRAt(t, r, 2, fakegithub.PR{Title: "PAY-1 Update the README with new information.", Author: "Codertocat", Branch: "changes"}, "")
	opened := bottest.Retarget(bottest.Fixture(t, bottest.Octokit+"pull_request/opened.payload.json"), bottest.OctokitHead, info.HeadSHA)
	return e, r, info, opened
}

// lastRun is the newest sockembot check run on sha.
func lastRun(t *testing.T, r *fakegithub.Repo, sha string) fakegithub.CheckRun {
	t.Helper()
	var runs []fakegithub.CheckRun
	for _, cr := range r.CheckRuns(sha) {
		if cr.Name == mergegate.CheckRunName {
			runs = append(runs, cr)
		}
	}
	if len(runs) == 0 {
		t.Fatalf("no %s check run on %s", mergegate.CheckRunName, sha)
	}
	return runs[len(runs)-1]
}

// onlyInstallationTokens fails when any repository call reached the fake without an installation
// token.
func onlyInstallationTokens(t *testing.T, e *bottest.Hooks) {
	t.Helper()
	n := 0
	for _, rq := range e.GitHub.Requests() {
		if strings.Contains(rq.Path, "/repos/") && !strings.HasSuffix(rq.Path, "/installation") {
			n++
			if rq.Auth != "installation" || rq.Status == http.StatusUnauthorized {
				t.Errorf("%s %s sent with auth %q (status %d), want an installation token", rq.Method, rq.Path, rq.Auth, rq.Status)
			}
		}
	}
	if n == 0 {
		t.Fatal("no repository call was made")
	}
}

// In App mode a pull request gets the check run `sockembot` (in progress, then the verdict with a
// table of changes and the fix for each violation, and a Re-check button) as well as the status
// and Clippy's comment; every repository call carries an installation token.
func TestAppModeCheckRunOnPullRequests(t *testing.T) {
	e, r, info, opened := appPR(t)
	if code, msg := e.Deliver("pull_request", opened); code != http.StatusAccepted {
		t.Fatalf("opened: %d %s", code, msg)
	}
	e.Drain()
	cr := lastRun(t, r, info.HeadSHA)
	if cr.Status != "completed" || cr.Conclusion != "failure" || cr.AppID != e.GitHub.AppID() {
		t.Fatalf("check run %+v, want completed failure by the App", cr)
	}
	if cr.Title != "Not compliant: no independent approval" {
		t.Errorf("title %q", cr.Title)
	}
	for _, want := range []string{"| Change | Tickets | Approved by | Verdict |", "#2", "PAY-1 (In Progress)", "❌ no independent approval",
		"`missing_approval`", "Fix: get an approving review from someone who is not an author"} {
		if !strings.Contains(cr.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, cr.Summary)
		}
	}
	if len(cr.Actions) != 1 || cr.Actions[0].Identifier != mergegate.RecheckAction || cr.Actions[0].Label != "Re-check" {
		t.Errorf("actions %+v, want the Re-check button", cr.Actions)
	}
	if n := e.GitHub.Count("POST /repos/{owner}/{repo}/check-runs"); n != 1 {
		t.Errorf("%d check runs created, want 1 (started in progress, then completed)", n)
	}
	if got := bottest.Statuses(r, info.HeadSHA); len(got) != 2 || !strings.HasPrefix(got[1], "failure: ") {
		t.Errorf("statuses %q: App mode keeps the commit status", got)
	}
	if c := r.Comments(2); len(c) != 1 || c[0].User != "sockembot[bot]" {
		t.Errorf("comments %+v: want Clippy's, by the App's bot user", c)
	}

	// Bob approves; Re-check is pressed on the check run (octokit's requested_action example,
	// made into this repository's run): the check run turns green.
	r.AddReview(2, fakegithub.Review{User: "bob", State: "APPROVED"})
	body := bottest.Retarget(bottest.Fixture(t, bottest.Octokit+"check_run/requested_action.payload.json"),
		"lgtm|26764", mergegate.RecheckAction, "electron/electron", "Codertocat/Hello-World", "26764", "2",
		"5bd5f196a46b8222fb7484f05faba41a73cf34bd", info.HeadSHA, `"name": "API Review"`, `"name": "sockembot"`,
		"25811", fmt.Sprint(e.GitHub.AppID()))
	if code, msg := e.Deliver("check_run", body); code != http.StatusAccepted {
		t.Fatalf("requested_action: %d %s", code, msg)
	}
	e.Drain()
	cr = lastRun(t, r, info.HeadSHA)
	if cr.Conclusion != "success" || cr.Title != "Compliant: approved by bob · PAY-1 In Progress" {
		t.Fatalf("after Re-check: %s %q", cr.Conclusion, cr.Title)
	}
	recs := e.Records(compliance.EvidenceCheckRun, info.HeadSHA)
	if len(recs) != 2 || !strings.HasPrefix(bottest.Decode[map[string]any](t, recs[1])["trigger"].(string), "check_run.requested_action by ") {
		t.Errorf("%d check_run records; the re-check must be recorded with its trigger", len(recs))
	}

	// The check suite re-requested (octokit's example is this very pull request) checks again.
	suite := bottest.Retarget(bottest.Fixture(t, bottest.Octokit+"check_suite/rerequested.payload.json"),
		bottest.OctokitHead, info.HeadSHA, "29310", fmt.Sprint(e.GitHub.AppID()))
	if code, msg := e.Deliver("check_suite", suite); code != http.StatusAccepted {
		t.Fatalf("check_suite: %d %s", code, msg)
	}
	e.Drain()
	if n := len(e.Records(compliance.EvidenceCheckRun, info.HeadSHA)); n != 3 {
		t.Errorf("%d check_run records after the suite was re-requested, want 3", n)
	}
	onlyInstallationTokens(t, e)
}

// check_run events that are not a Re-check of sockembot's own run change nothing: another App's
// run, the run's own created/completed events, another button.
func TestAppModeIgnoresOtherCheckRunEvents(t *testing.T) {
	e, r, info, _ := appPR(t)
	base := bottest.Fixture(t, bottest.Octokit+"check_run/requested_action.payload.json")
	retarget := func(pairs ...string) []byte {
		all := append([]string{"electron/electron", "Codertocat/Hello-World", "26764", "2", "5bd5f196a46b8222fb7484f05faba41a73cf34bd", info.HeadSHA}, pairs...)
		return bottest.Retarget(base, all...)
	}
	for name, body := range map[string][]byte{
		"another App's run":   retarget("lgtm|26764", mergegate.RecheckAction, `"name": "API Review"`, `"name": "sockembot"`),
		"another run's name":  retarget("lgtm|26764", mergegate.RecheckAction, "25811", fmt.Sprint(e.GitHub.AppID())),
		"another button":      retarget(`"name": "API Review"`, `"name": "sockembot"`, "25811", fmt.Sprint(e.GitHub.AppID())),
		"the run was created": retarget(`"action": "requested_action"`, `"action": "created"`, `"name": "API Review"`, `"name": "sockembot"`, "25811", fmt.Sprint(e.GitHub.AppID())),
	} {
		if code, msg := e.Deliver("check_run", body); code != http.StatusAccepted {
			t.Fatalf("%s: %d %s", name, code, msg)
		}
	}
	e.Drain()
	if n := len(e.Records(compliance.EvidenceCheckRun, "")); n != 0 {
		t.Errorf("%d checks ran, want none", n)
	}
	if runs := r.CheckRuns(info.HeadSHA); len(runs) != 0 {
		t.Errorf("check runs written: %+v", runs)
	}
}

// mergeGroupPayload is octokit's merge_group example retargeted at group g of repo.
func mergeGroupPayload(t *testing.T, repo string, g fakegithub.MergeGroup, action string) []byte {
	t.Helper()
	return bottest.Retarget(bottest.Fixture(t, bottest.Octokit+"merge_group/checks_requested.payload.json"),
		"2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d", g.HeadSHA, "380387fbc80638b734a49e1be1c4dfec1c01b33c", g.BaseSHA,
		"refs/heads/gh-readonly-queue/main/pr-104-929f8209d40f77f4abc622a499c93a83babdbe64", g.HeadRef,
		"octo-org/octo-repo", repo, `"action": "checks_requested"`, `"action": "`+action+`"`)
}

// A merge queue's group is checked as a whole: success on its head only when every queued pull
// request is compliant, recorded as evidence; one non-compliant pull request fails the group.
func TestMergeQueueGroups(t *testing.T) {
	for _, method := range []fakegithub.MergeMethod{fakegithub.MergeCommit, fakegithub.Squash} {
		t.Run(string(method), func(t *testing.T) {
			e := bottest.NewAppHooks(t)
			e.Jira.AddIssue("PAY-1", "In Progress")
			e.Jira.AddIssue("PAY-2", "In Progress")
			r := e.GitHub.AddRepo("octo-org/octo-repo", "main")
			r.Commit("Initial commit", "alice")
			good1 := r.OpenPR(fakegithub.PR{Title: "PAY-1 Refunds", Author: "alice", Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}})
			good2 := r.OpenPR(fakegithub.PR{Title: "PAY-2 Receipts", Author: "carol", Reviews: []fakegithub.Review{{User: "dave", State: "APPROVED"}}})
			bad := r.OpenPR(fakegithub.PR{Title: "Tweak retries", Author: "mallory"})

			g := r.QueuePRs(method, good1.Number, good2.Number)
			if code, msg := e.Deliver("merge_group", mergeGroupPayload(t, r.FullName(), g, "checks_requested")); code != http.StatusAccepted {
				t.Fatalf("merge_group: %d %s", code, msg)
			}
			e.Drain()
			cr := lastRun(t, r, g.HeadSHA)
			if cr.Conclusion != "success" || cr.Title != "Compliant: all 2 changes meet the change policy" {
				t.Fatalf("compliant group: %s %q\n%s", cr.Conclusion, cr.Title, cr.Summary)
			}
			if got := bottest.Statuses(r, g.HeadSHA); len(got) != 2 || !strings.HasPrefix(got[1], "success: ") {
				t.Errorf("statuses on the group %q", got)
			}
			recs := e.Records(compliance.EvidenceMergeGroupVerdict, mergegate.MergeGroupSubject(r.FullName(), g.HeadSHA))
			if len(recs) != 1 {
				t.Fatalf("%d merge_group_verdict records, want 1", len(recs))
			}
			ev := bottest.Decode[mergegate.MergeGroupEvidence](t, recs[0])
			if !ev.Compliant || fmt.Sprint(ev.PullRequests) != fmt.Sprint([]int{good1.Number, good2.Number}) || ev.BaseSHA != g.BaseSHA || ev.HeadRef != g.HeadRef {
				t.Errorf("evidence %+v", ev)
			}

			g2 := r.QueuePRs(method, good1.Number, bad.Number)
			e.Deliver("merge_group", mergeGroupPayload(t, r.FullName(), g2, "checks_requested"))
			e.Drain()
			cr = lastRun(t, r, g2.HeadSHA)
			if cr.Conclusion != "failure" || !strings.Contains(cr.Title, "1 of 2 changes") || !strings.Contains(cr.Summary, fmt.Sprintf("#%d", bad.Number)) {
				t.Fatalf("group with a non-compliant PR: %s %q\n%s", cr.Conclusion, cr.Title, cr.Summary)
			}

			// The queue drops the failed group: recorded, nothing else.
			before := len(r.CheckRuns(""))
			destroyed := mergeGroupPayload(t, r.FullName(), g2, "destroyed")
			var m map[string]any
			if err := json.Unmarshal(destroyed, &m); err != nil {
				t.Fatal(err)
			}
			m["reason"] = "invalidated"
			destroyed, _ = json.Marshal(m)
			e.Deliver("merge_group", destroyed)
			e.Drain()
			d := e.Records(compliance.EvidenceMergeGroupDestroyed, mergegate.MergeGroupSubject(r.FullName(), g2.HeadSHA))
			if len(d) != 1 || bottest.Decode[mergegate.MergeGroupDestroyedEvidence](t, d[0]).Reason != "invalidated" {
				t.Errorf("destroyed records %+v", d)
			}
			if len(r.CheckRuns("")) != before {
				t.Error("a destroyed group got a check run")
			}
			onlyInstallationTokens(t, e)
		})
	}
}

// A merge group whose check cannot run fails closed: the check run is a failure with the report.
func TestMergeQueueGroupFailsClosed(t *testing.T) {
	e := bottest.NewAppHooks(t)
	r := e.GitHub.AddRepo("octo-org/octo-repo", "main")
	r.Commit("Initial commit", "alice")
	pr := r.OpenPR(fakegithub.PR{Title: "PAY-1 Refunds", Author: "alice"})
	g := r.QueuePRs(fakegithub.MergeCommit, pr.Number)
	e.GitHub.FailNext(10, "/compare/", http.StatusInternalServerError)
	e.Deliver("merge_group", mergeGroupPayload(t, r.FullName(), g, "checks_requested"))
	e.Drain()
	cr := lastRun(t, r, g.HeadSHA)
	if cr.Conclusion != "failure" || !strings.HasPrefix(cr.Title, "Could not check: ") || !strings.Contains(cr.Summary, "not** treated as compliant") {
		t.Fatalf("check run %s %q\n%s", cr.Conclusion, cr.Title, cr.Summary)
	}
	if got := bottest.Statuses(r, g.HeadSHA); len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "error: ") {
		t.Errorf("statuses %q", got)
	}
}

// In token mode there are no check runs: a merge group gets the commit status on its head.
func TestMergeQueueGroupInTokenMode(t *testing.T) {
	e := bottest.NewHooks(t)
	e.Jira.AddIssue("PAY-1", "In Progress")
	r := e.GitHub.AddRepo("octo-org/octo-repo", "main")
	r.Commit("Initial commit", "alice")
	pr := r.OpenPR(fakegithub.PR{Title: "PAY-1 Refunds", Author: "alice", Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}})
	g := r.QueuePRs(fakegithub.MergeCommit, pr.Number)
	e.Deliver("merge_group", mergeGroupPayload(t, r.FullName(), g, "checks_requested"))
	e.Drain()
	if got := bottest.Statuses(r, g.HeadSHA); len(got) != 2 || got[1] != "success: the change in the queue is compliant" {
		t.Fatalf("statuses %q", got)
	}
	if n := e.GitHub.Count("POST /repos/{owner}/{repo}/check-runs"); n != 0 {
		t.Errorf("%d check runs attempted in token mode", n)
	}
}
