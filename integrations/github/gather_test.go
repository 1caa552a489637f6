package github_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	"sockembot/integrations/github"
)

// Route patterns of the fake's request log.
const (
	routePull        = "GET /repos/{owner}/{repo}/pulls/{number}"
	routeReviews     = "GET /repos/{owner}/{repo}/pulls/{number}/reviews"
	routePullCommits = "GET /repos/{owner}/{repo}/pulls/{number}/commits"
	routeCommitPulls = "GET /repos/{owner}/{repo}/commits/{sha}/pulls"
	routeCompare     = "GET /repos/{owner}/{repo}/compare/{basehead}"
	routeStatus      = "POST /repos/{owner}/{repo}/statuses/{sha}"
	routeDeployments = "POST /repos/{owner}/{repo}/deployments"
)

func newFake(t testing.TB, opts fakegithub.Options) *fakegithub.Server {
	t.Helper()
	s := fakegithub.New(opts)
	t.Cleanup(s.Close)
	return s
}

// newClient points a real Client at the fake, under its /api/v3/ base path.
func newClient(t testing.TB, s *fakegithub.Server, o github.Options) *github.Client {
	t.Helper()
	o.BaseURL = s.URL()
	if o.Backoff == 0 {
		o.Backoff = time.Millisecond
	}
	c, err := github.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// summary renders changes as "#N:sha7,sha7" or "push:sha7", oldest first.
func summary(changes []compliance.Change) []string {
	var out []string
	for _, ch := range changes {
		var shas []string
		for _, s := range ch.RangeCommits {
			shas = append(shas, s[:7])
		}
		switch ch.Kind {
		case compliance.KindPullRequest:
			out = append(out, fmt.Sprintf("#%d:%s", ch.PR.Number, strings.Join(shas, ",")))
		case compliance.KindDirectPush:
			out = append(out, "push:"+strings.Join(shas, ","))
		}
	}
	return out
}

func prWant(info fakegithub.PRInfo) string {
	var shas []string
	for _, s := range info.Landed {
		shas = append(shas, s[:7])
	}
	return fmt.Sprintf("#%d:%s", info.Number, strings.Join(shas, ","))
}

func TestGatherAttributesEachMergeStyle(t *testing.T) {
	for _, method := range []fakegithub.MergeMethod{fakegithub.MergeCommit, fakegithub.Squash, fakegithub.Rebase} {
		t.Run(string(method), func(t *testing.T) {
			s := newFake(t, fakegithub.Options{})
			r := s.AddRepo("acme/payments", "main")
			r.Commit("initial", "alice")
			r.Tag("v1.0.0")
			pr1 := r.MergePR(fakegithub.PR{Title: "PAY-1 add refunds", Author: "alice", MergedBy: "bob", Commits: 3,
				Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, method)
			hotfix := r.Commit("PAY-2 hotfix straight to main", "carol")
			pr2 := r.MergePR(fakegithub.PR{Title: "PAY-3 ledger", Author: "dave", Commits: 2,
				Reviews: []fakegithub.Review{{User: "erin", State: "APPROVED", OnCommit: 1}}}, method)
			r.Tag("v1.1.0")

			c := newClient(t, s, github.Options{})
			rng, err := c.Gather(context.Background(), "acme/payments", "v1.0.0", "v1.1.0")
			if err != nil {
				t.Fatal(err)
			}
			want := []string{prWant(pr1), "push:" + hotfix[:7], prWant(pr2)}
			if got := summary(rng.Changes); !reflect.DeepEqual(got, want) {
				t.Fatalf("changes\n got %v\nwant %v", got, want)
			}
			if rng.HeadSHA != pr2.MergeSHA || rng.Base != "v1.0.0" || len(rng.BaseSHA) != 40 {
				t.Errorf("range ends: %+v", rng)
			}

			got := rng.Changes[0].PR
			if got.Title != "PAY-1 add refunds" || got.Author != "alice" || got.MergedBy != "bob" ||
				got.HeadSHA != pr1.HeadSHA || got.MergeSHA != pr1.MergeSHA || got.HeadBranch != "alice/pr-1" ||
				!strings.HasSuffix(got.URL, "/acme/payments/pull/1") || !got.MergedAt.Equal(pr1.MergedAt) {
				t.Errorf("PR facts: %+v", got)
			}
			if len(got.Reviews) != 1 || got.Reviews[0] != (compliance.Review{User: "bob", State: "APPROVED", CommitID: pr1.HeadSHA, SubmittedAt: got.Reviews[0].SubmittedAt, Association: "MEMBER"}) || got.Reviews[0].SubmittedAt.IsZero() {
				t.Errorf("reviews: %+v", got.Reviews)
			}
			if len(got.Commits) != 3 || got.Commits[2].SHA != pr1.HeadSHA || got.Commits[0].Author != "alice" ||
				got.Commits[0].Message != "PAY-1 add refunds: part 1" || got.Commits[0].AuthoredAt.IsZero() {
				t.Errorf("PR commits: %+v", got.Commits)
			}
			if stale := rng.Changes[2].PR.Reviews[0]; stale.CommitID != pr2.Commits[0] || stale.CommitID == pr2.HeadSHA {
				t.Errorf("review left on an older commit reports %s", stale.CommitID)
			}
			push := rng.Changes[1].Push
			if push == nil || push.SHA != hotfix || push.Author != "carol" || push.Committer != "carol" {
				t.Errorf("direct push: %+v", push)
			}
			if n := s.Count(routePull); n != 2 {
				t.Errorf("fetched pull requests %d times, want once each (2)", n)
			}
		})
	}
}

func TestGatherMixedStylesInMergeOrder(t *testing.T) {
	s := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	base := r.Commit("initial", "alice")
	var want []string
	add := func(info fakegithub.PRInfo) { want = append(want, prWant(info)) }
	add(r.MergePR(fakegithub.PR{Title: "PAY-1 a", Author: "alice", Commits: 2}, fakegithub.Rebase))
	add(r.MergePR(fakegithub.PR{Title: "PAY-2 b", Author: "bob", Commits: 3}, fakegithub.Rebase))
	add(r.MergePR(fakegithub.PR{Title: "PAY-3 c", Author: "carol", Commits: 2}, fakegithub.Squash))
	want = append(want, "push:"+r.Commit("unreviewed", "mallory")[:7])
	want = append(want, "push:"+r.Commit("unreviewed again", "mallory")[:7])
	add(r.MergePR(fakegithub.PR{Title: "PAY-4 d", Author: "dave", Commits: 1}, fakegithub.MergeCommit))
	add(r.MergePR(fakegithub.PR{Title: "PAY-5 e", Author: "erin", Commits: 2}, fakegithub.Rebase))
	// An unmapped author (no GitHub account for the e-mail) is still a direct push.
	want = append(want, "push:"+r.Commit("from a laptop", "")[:7])

	c := newClient(t, s, github.Options{})
	rng, err := c.Gather(context.Background(), "acme/payments", base, "main")
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(rng.Changes); !reflect.DeepEqual(got, want) {
		t.Fatalf("changes\n got %v\nwant %v", got, want)
	}
	if last := rng.Changes[len(rng.Changes)-1].Push; last.Author != "" {
		t.Errorf("unmapped author reported as %q", last.Author)
	}
	// Rebased pull requests cost one lookup each (their last copy), direct pushes one each.
	if n := s.Count(routeCommitPulls); n != 3+3 {
		t.Errorf("commit→pulls lookups: %d, want 6 (3 rebased PRs + 3 pushes)", n)
	}
}

func TestGatherDoesNotTrustMessageHints(t *testing.T) {
	s := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	r.Commit("initial", "alice")
	pr1 := r.MergePR(fakegithub.PR{Title: "PAY-1 real", Author: "alice", Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.Squash)
	base := r.Tag("base")
	// Messages that claim reviewed pull requests, pushed directly.
	fake1 := r.Commit("PAY-9 sneak in (#1)", "mallory")
	fake2 := r.Commit("PAY-9 sneak in more (#404)", "mallory")

	c := newClient(t, s, github.Options{})
	rng, err := c.Gather(context.Background(), "acme/payments", base, "main")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"push:" + fake1[:7], "push:" + fake2[:7]}
	if got := summary(rng.Changes); !reflect.DeepEqual(got, want) {
		t.Fatalf("changes %v, want %v (PR #1 was merged as %s)", got, want, pr1.MergeSHA[:7])
	}
}

func TestGatherFetchesEveryReviewPage(t *testing.T) {
	s := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	base := r.Commit("initial", "alice")
	reviews := make([]fakegithub.Review, 130)
	for i := range reviews {
		reviews[i] = fakegithub.Review{User: "bot", State: "COMMENTED"}
	}
	reviews[119] = fakegithub.Review{User: "carol", State: "APPROVED"}
	r.MergePR(fakegithub.PR{Title: "PAY-1 chatty", Author: "alice", Reviews: reviews}, fakegithub.MergeCommit)

	c := newClient(t, s, github.Options{})
	rng, err := c.Gather(context.Background(), "acme/payments", base, "main")
	if err != nil {
		t.Fatal(err)
	}
	got := rng.Changes[0].PR.Reviews
	if len(got) != 130 || got[119].User != "carol" || got[119].State != "APPROVED" {
		t.Fatalf("got %d reviews; approval on page 2 missing", len(got))
	}
	if n := s.Count(routeReviews); n != 2 {
		t.Errorf("review pages fetched: %d, want 2", n)
	}
}

func TestGatherPaginatesCompare(t *testing.T) {
	s := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	base := r.Commit("initial", "alice")
	var want []string
	for i := 0; i < 45; i++ {
		want = append(want, prWant(r.MergePR(fakegithub.PR{Title: fmt.Sprintf("PAY-%d", i), Author: "alice", Commits: 3}, fakegithub.MergeCommit)))
	}
	want = append(want, "push:"+r.Commit("last", "bob")[:7])

	c := newClient(t, s, github.Options{})
	rng, err := c.Gather(context.Background(), "acme/payments", base, "main")
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(rng.Changes); !reflect.DeepEqual(got, want) {
		t.Fatalf("changes over 181 commits:\n got %v\nwant %v", got, want)
	}
	if n := s.Count(routeCompare); n != 2 {
		t.Errorf("compare pages: %d, want 2", n)
	}
}

// The "≤ 4 requests per pull request" budget, counted on the fake (not timed).
func TestGatherRequestBudget(t *testing.T) {
	for _, method := range []fakegithub.MergeMethod{fakegithub.MergeCommit, fakegithub.Squash, fakegithub.Rebase} {
		t.Run(string(method), func(t *testing.T) {
			const prs = 20
			s := newFake(t, fakegithub.Options{})
			r := s.AddRepo("acme/payments", "main")
			base := r.Commit("initial", "alice")
			for i := 1; i <= prs; i++ {
				r.MergePR(fakegithub.PR{Title: fmt.Sprintf("PAY-%d change", i), Author: "alice", Commits: 3,
					Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, method)
			}
			c := newClient(t, s, github.Options{})
			rng, err := c.Gather(context.Background(), "acme/payments", base, "main")
			if err != nil {
				t.Fatal(err)
			}
			if len(rng.Changes) != prs {
				t.Fatalf("%d changes, want %d", len(rng.Changes), prs)
			}
			total := s.Total()
			// Rebase merges carry no PR number in any message: one commit→pulls lookup each.
			budget := 4 * prs
			if method == fakegithub.Rebase {
				budget += 3 // 2 ref resolutions + 1 compare page on top of 4 per PR
			}
			if total > budget {
				t.Errorf("%d requests for %d PRs (%.2f per PR): %v", total, prs, float64(total)/prs, s.Counts())
			}
			if n := s.Count(routePull); n != prs {
				t.Errorf("GET pull %d times for %d PRs", n, prs)
			}
			if method == fakegithub.MergeCommit {
				// Hints find every PR, and merge commits show their commits: nothing else to ask.
				if n, m := s.Count(routeCommitPulls), s.Count(routePullCommits); n+m != 0 {
					t.Errorf("commit→pulls %d, PR commit lists %d; want 0", n, m)
				}
			}
			t.Logf("%s: %d requests, %.2f per PR", method, total, float64(total)/prs)
		})
	}
}

func TestGatherUnknownRefIsErrNotFound(t *testing.T) {
	s := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	r.Commit("initial", "alice")
	c := newClient(t, s, github.Options{})
	_, err := c.Gather(context.Background(), "acme/payments", "v9.9.9", "main")
	if !errors.Is(err, github.ErrNotFound) || !strings.Contains(err.Error(), "v9.9.9") {
		t.Fatalf("err = %v, want ErrNotFound naming the ref", err)
	}
	if _, err := c.PullRequest(context.Background(), "acme/payments", 7); !errors.Is(err, github.ErrNotFound) {
		t.Errorf("missing PR: %v", err)
	}
	if _, err := c.Gather(context.Background(), "not-a-repo", "a", "b"); err == nil {
		t.Error("malformed repo accepted")
	}
}

func TestGatherFailsClosedOnTruncatedPullCommits(t *testing.T) {
	s := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	base := r.Commit("initial", "alice")
	// Squashed: the PR's commits are not in the range, only GitHub's list (capped at 250) has them.
	r.MergePR(fakegithub.PR{Title: "PAY-1 huge", Author: "alice", Commits: 260}, fakegithub.Squash)
	c := newClient(t, s, github.Options{})
	if _, err := c.Gather(context.Background(), "acme/payments", base, "main"); err == nil || !strings.Contains(err.Error(), "250 of 260") {
		t.Fatalf("err = %v; GitHub lists only 250 commits of a PR, which must not pass silently", err)
	}
}

func TestGatherTakesMergedCommitsFromTheRange(t *testing.T) {
	s := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	base := r.Commit("initial", "alice")
	huge := r.MergePR(fakegithub.PR{Title: "PAY-1 huge", Author: "alice", Commits: 260}, fakegithub.MergeCommit)
	small := r.MergePR(fakegithub.PR{Title: "PAY-2 small", Author: "bob", Commits: 3}, fakegithub.MergeCommit)
	c := newClient(t, s, github.Options{})

	// A merge commit shows exactly which commits it brought in: no need to list them again,
	// and no 250-commit cap.
	rng, err := c.Gather(context.Background(), "acme/payments", base, "main")
	if err != nil {
		t.Fatal(err)
	}
	if got := rng.Changes[0].PR.Commits; len(got) != 260 || got[259].SHA != huge.HeadSHA || got[0].SHA != huge.Commits[0] {
		t.Fatalf("huge PR: %d commits", len(got))
	}
	if n := s.Count(routePullCommits); n != 0 {
		t.Errorf("listed PR commits %d times", n)
	}

	// Starting the range inside PR #2 leaves one of its commits out: the list is fetched.
	s.ResetLog()
	rng, err = c.Gather(context.Background(), "acme/payments", small.Commits[0], "main")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{fmt.Sprintf("#2:%s,%s,%s", small.Commits[1][:7], small.Commits[2][:7], small.MergeSHA[:7])}
	if got := summary(rng.Changes); !reflect.DeepEqual(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	if got := rng.Changes[0].PR.Commits; len(got) != 3 || got[0].SHA != small.Commits[0] {
		t.Errorf("PR #2 commits: %+v", got)
	}
	if n := s.Count(routePullCommits); n != 1 {
		t.Errorf("listed PR commits %d times, want 1", n)
	}
}

func TestGatherEmptyRange(t *testing.T) {
	s := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	sha := r.Commit("initial", "alice")
	c := newClient(t, s, github.Options{})
	rng, err := c.Gather(context.Background(), "acme/payments", "main", sha)
	if err != nil || len(rng.Changes) != 0 || rng.BaseSHA != sha || rng.HeadSHA != sha {
		t.Fatalf("identical ends: %+v, %v", rng, err)
	}
}

// Swapped --base and --head: head is an ancestor of base, so GitHub's compare lists no commits
// (status "behind"). That must fail the check, not pass it as a release with no changes.
func TestGatherReversedRangeIsAnError(t *testing.T) {
	s := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	r.Commit("initial", "alice")
	r.Tag("v1.0.0")
	r.MergePR(fakegithub.PR{Title: "PAY-1 add refunds", Author: "alice", Commits: 2}, fakegithub.MergeCommit)
	r.Commit("PAY-2 hotfix", "carol")
	r.Tag("v1.1.0")
	c := newClient(t, s, github.Options{})

	rng, err := c.Gather(context.Background(), "acme/payments", "v1.1.0", "v1.0.0")
	if !errors.Is(err, github.ErrHeadBehindBase) || !strings.Contains(err.Error(), "behind base by 4 commits") ||
		!strings.Contains(err.Error(), "swapped") {
		t.Fatalf("reversed range: %+v, err %v; want ErrHeadBehindBase by 4 commits", rng, err)
	}
	if errors.Is(err, github.ErrNotFound) {
		t.Errorf("reversed range reported as not found: %v", err)
	}

	// The right way round it is the release it should be.
	if rng, err := c.Gather(context.Background(), "acme/payments", "v1.0.0", "v1.1.0"); err != nil || len(rng.Changes) != 2 {
		t.Fatalf("forward range: %d changes, %v", len(rng.Changes), err)
	}
	// Diverged ends are a range too: the commits head has since the merge base.
	open := r.OpenPR(fakegithub.PR{Title: "PAY-3 wip", Author: "dave", Commits: 2})
	r.Commit("PAY-4 later on main", "erin")
	rng, err = c.Gather(context.Background(), "acme/payments", "main", open.HeadRef)
	want := []string{"push:" + open.Commits[0][:7], "push:" + open.Commits[1][:7]}
	if err != nil || !reflect.DeepEqual(summary(rng.Changes), want) {
		t.Fatalf("diverged range: %v, %v; want %v", summary(rng.Changes), err, want)
	}
}

func TestPullRequestForMergeGate(t *testing.T) {
	s := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	r.Commit("initial", "alice")
	open := r.OpenPR(fakegithub.PR{Title: "PAY-7 open", Body: "Fixes PAY-7", Author: "alice", Commits: 2,
		Reviews: []fakegithub.Review{{User: "bob", State: "CHANGES_REQUESTED", OnCommit: 1}, {User: "bob", State: "APPROVED"}}})
	c := newClient(t, s, github.Options{})
	ch, err := c.PullRequest(context.Background(), "acme/payments", open.Number)
	if err != nil {
		t.Fatal(err)
	}
	pr := ch.PR
	if ch.Kind != compliance.KindPullRequest || pr.Body != "Fixes PAY-7" || pr.HeadSHA != open.HeadSHA ||
		pr.MergeSHA != "" || !pr.MergedAt.IsZero() || pr.MergedBy != "" || len(pr.Reviews) != 2 ||
		pr.Reviews[0].CommitID != open.Commits[0] || !reflect.DeepEqual(ch.RangeCommits, open.Commits) {
		t.Fatalf("open PR: %+v", pr)
	}
}
