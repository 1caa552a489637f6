package github_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	fakegithub "sockembot/integrations/fake/github"
	"sockembot/integrations/github"
)

const (
	routeCreateCheckRun = "POST /repos/{owner}/{repo}/check-runs"
	routeUpdateCheckRun = "PATCH /repos/{owner}/{repo}/check-runs/{id}"
)

var recheckButton = []fakegithub.CheckRunAction{{Label: "Re-check", Description: "Check tickets and approvals again", Identifier: github.RecheckAction}}

func TestCheckRunStartAndFinish(t *testing.T) {
	s := appFake(t)
	r := s.AddRepo("acme/payments", "main")
	sha := r.Commit("initial", "alice")
	c := newClient(t, s, github.Options{App: appAuth(s)})
	ctx := context.Background()

	id, err := c.StartCheckRun(ctx, "acme/payments", sha, "sockembot")
	if err != nil || id == 0 {
		t.Fatalf("start: %d, %v", id, err)
	}
	runs := r.CheckRuns(sha)
	if len(runs) != 1 || runs[0].ID != id || runs[0].Status != "in_progress" || runs[0].Name != "sockembot" || runs[0].AppID != s.AppID() {
		t.Fatalf("started: %+v", runs)
	}
	if err := c.FinishCheckRun(ctx, "acme/payments", sha, "sockembot", id, "failure", "Missing ticket", "**PAY-?** not found", true); err != nil {
		t.Fatal(err)
	}
	got := r.CheckRuns(sha)[0]
	if got.Status != "completed" || got.Conclusion != "failure" || got.Title != "Missing ticket" || got.Summary != "**PAY-?** not found" ||
		!reflect.DeepEqual(got.Actions, recheckButton) {
		t.Errorf("failure: %+v", got)
	}
	if n := utf8.RuneCountInString(recheckButton[0].Description); n > 40 {
		t.Errorf("button description has %d characters", n)
	}

	// Re-checked: a new run, this time green, without the button.
	id2, err := c.StartCheckRun(ctx, "acme/payments", sha, "sockembot")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.FinishCheckRun(ctx, "acme/payments", sha, "sockembot", id2, "success", "", "All changes comply", false); err != nil {
		t.Fatal(err)
	}
	runs = r.CheckRuns(sha)
	if len(runs) != 2 || runs[1].ID != id2 || runs[1].Conclusion != "success" || runs[1].Title != "sockembot" || len(runs[1].Actions) != 0 {
		t.Errorf("success: %+v", runs)
	}
	checkAuth(t, s)
}

func TestFinishCheckRunClipsAndCreates(t *testing.T) {
	s := appFake(t)
	r := s.AddRepo("acme/payments", "main")
	sha := r.Commit("initial", "alice")
	c := newClient(t, s, github.Options{App: appAuth(s)})
	ctx := context.Background()

	// Starting it failed (id 0): the verdict is a new, completed run. The fake, like GitHub,
	// refuses a summary over 65,535 characters: it is clipped on a rune boundary.
	long := strings.Repeat("é", 70000)
	title := strings.Repeat("t", 1000)
	if err := c.FinishCheckRun(ctx, "acme/payments", sha, "sockembot", 0, "neutral", title, long, true); err != nil {
		t.Fatal(err)
	}
	runs := r.CheckRuns(sha)
	if len(runs) != 1 || runs[0].Status != "completed" || runs[0].Conclusion != "neutral" || !reflect.DeepEqual(runs[0].Actions, recheckButton) {
		t.Fatalf("created completed: %+v", runs)
	}
	if n := utf8.RuneCountInString(runs[0].Summary); n != 65535 || !utf8.ValidString(runs[0].Summary) || !strings.HasSuffix(runs[0].Summary, "…") {
		t.Errorf("summary of %d characters", n)
	}
	if n := utf8.RuneCountInString(runs[0].Title); n > 255 {
		t.Errorf("title of %d characters", n)
	}
	if n, m := s.Count(routeCreateCheckRun), s.Count(routeUpdateCheckRun); n != 1 || m != 0 {
		t.Errorf("creates %d, updates %d", n, m)
	}

	// A run GitHub no longer knows: created anew.
	if err := c.FinishCheckRun(ctx, "acme/payments", sha, "sockembot", 987654321, "success", "ok", "fine", false); err != nil {
		t.Fatal(err)
	}
	if runs := r.CheckRuns(sha); len(runs) != 2 || runs[1].Conclusion != "success" {
		t.Errorf("after a 404: %+v", runs)
	}

	// Not a conclusion: refused before anything is sent.
	before := s.Total()
	if err := c.FinishCheckRun(ctx, "acme/payments", sha, "sockembot", 0, "passed", "t", "s", false); err == nil {
		t.Error("conclusion \"passed\" accepted")
	}
	if s.Total() != before {
		t.Error("a request was sent for an invalid conclusion")
	}
}

// A user's token cannot write check runs: GitHub's 403 is the error.
func TestCheckRunsNeedAnApp(t *testing.T) {
	s, _, sha := oneCommitRepo(t, fakegithub.Options{})
	c := newClient(t, s, github.Options{})
	ctx := context.Background()
	if _, err := c.StartCheckRun(ctx, "acme/payments", sha, "sockembot"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("start with a token: %v", err)
	}
	if err := c.FinishCheckRun(ctx, "acme/payments", sha, "sockembot", 0, "success", "t", "s", true); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("finish with a token: %v", err)
	}
}

func TestReviewProtectionRule(t *testing.T) {
	s := appFake(t)
	r := s.AddRepo("acme/payments", "main")
	sha := r.Commit("initial", "alice")
	s.AddRepo("acme/ledger", "main").Commit("initial", "carol")
	c := newClient(t, s, github.Options{App: appAuth(s)})
	ctx := context.Background()

	run := r.WaitingRun("production", sha, "main", "alice")
	if err := c.ReviewProtectionRule(ctx, "acme/payments", run.CallbackURL, "production", "approved", "PAY-1 approved by bob"); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 70000)
	run2 := r.WaitingRun("production", sha, "main", "mallory")
	// Owner and name are case-insensitive.
	if err := c.ReviewProtectionRule(ctx, "ACME/payments", run2.CallbackURL, "production", "rejected", long); err != nil {
		t.Fatal(err)
	}
	got := s.ProtectionReviews()
	want := []fakegithub.ProtectionReview{
		{Repo: "acme/payments", RunID: run.RunID, Environment: "production", State: "approved", Comment: "PAY-1 approved by bob", AppID: s.AppID()},
		{Repo: "acme/payments", RunID: run2.RunID, Environment: "production", State: "rejected", Comment: got[len(got)-1].Comment, AppID: s.AppID()},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("reviews\n got %+v\nwant %+v", got, want)
	}
	if n := utf8.RuneCountInString(got[1].Comment); n != 65535 {
		t.Errorf("comment of %d characters", n)
	}
	checkAuth(t, s)

	// The installation token only goes to GitHub, for this repository's run.
	run3 := r.WaitingRun("production", sha, "main", "alice")
	good := run3.CallbackURL
	api := strings.TrimSuffix(s.URL(), "/")
	before := s.Total()
	for name, cb := range map[string]string{
		"another host":         strings.Replace(good, "127.0.0.1", "localhost", 1),
		"attacker host":        "https://evil.example/api/v3/repos/acme/payments/actions/runs/1/deployment_protection_rule",
		"another scheme":       strings.Replace(good, "http://", "https://", 1),
		"user info":            strings.Replace(good, "http://", "http://x:y@", 1),
		"another repository":   strings.Replace(good, "/acme/payments/", "/acme/ledger/", 1),
		"another owner":        strings.Replace(good, "/acme/payments/", "/evil/payments/", 1),
		"not a run":            api + "/repos/acme/payments/actions/runs/abc/deployment_protection_rule",
		"another endpoint":     api + "/repos/acme/payments/actions/runs/1/approve",
		"dot segments":         api + "/repos/acme/payments/actions/runs/1/deployment_protection_rule/../../../../../ledger/actions/runs/1/deployment_protection_rule",
		"escaped slash":        api + "/repos/acme%2Fpayments/x/actions/runs/1/deployment_protection_rule",
		"query":                good + "?next=https://evil.example",
		"outside the API base": strings.Replace(good, "/api/v3/", "/", 1),
		"relative":             "/api/v3/repos/acme/payments/actions/runs/1/deployment_protection_rule",
		"empty":                "",
	} {
		if err := c.ReviewProtectionRule(ctx, "acme/payments", cb, "production", "approved", "ok"); err == nil {
			t.Errorf("%s: callback %q followed", name, cb)
		}
	}
	if err := c.ReviewProtectionRule(ctx, "acme/payments", good, "production", "maybe", "ok"); err == nil {
		t.Error("state \"maybe\" accepted")
	}
	if err := c.ReviewProtectionRule(ctx, "acme/payments", good, "", "approved", "ok"); err == nil {
		t.Error("no environment accepted")
	}
	if n := s.Total() - before; n != 0 {
		t.Errorf("%d requests made for refused callbacks", n)
	}
	if len(s.ProtectionReviews()) != 2 {
		t.Error("a refused callback was reviewed")
	}
}

func TestReviewProtectionRuleNeedsAnApp(t *testing.T) {
	s, r, sha := oneCommitRepo(t, fakegithub.Options{})
	run := r.WaitingRun("production", sha, "main", "alice")
	c := newClient(t, s, github.Options{})
	if err := c.ReviewProtectionRule(context.Background(), "acme/payments", run.CallbackURL, "production", "approved", "ok"); err == nil ||
		!strings.Contains(err.Error(), "403") {
		t.Errorf("with a token: %v", err)
	}
	if n := s.Count("POST /repos/{owner}/{repo}/actions/runs/{id}/deployment_protection_rule"); n != 1 {
		t.Errorf("sent %d times, want once (a 403 is not retried)", n)
	}
}
