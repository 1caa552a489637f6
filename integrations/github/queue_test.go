package github_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	"sockembot/integrations/github"
)

// queueWant is "#N:sha7,..." for what a merge group holds of an open pull request: its own
// commits and its queue commit (merge), or just the queue commit (squash).
func queueWant(t *testing.T, c *github.Client, r *fakegithub.Repo, g fakegithub.MergeGroup, method fakegithub.MergeMethod, info fakegithub.PRInfo) string {
	t.Helper()
	rng, err := c.Gather(context.Background(), r.FullName(), g.BaseSHA, g.HeadSHA)
	if err != nil {
		t.Fatal(err)
	}
	// Gather (not queue) reports every queue commit as a direct push: find this PR's.
	var landing string
	for _, ch := range rng.Changes {
		if ch.Kind == compliance.KindDirectPush {
			msg := ch.Push.Message
			if strings.HasPrefix(msg, fmt.Sprintf("Merge pull request #%d from ", info.Number)) ||
				strings.Contains(strings.SplitN(msg, "\n", 2)[0], fmt.Sprintf("(#%d)", info.Number)) {
				landing = ch.Push.SHA
			}
		}
	}
	if landing == "" {
		t.Fatalf("no queue commit of #%d in %v", info.Number, summary(rng.Changes))
	}
	var shas []string
	if method == fakegithub.MergeCommit {
		for _, s := range info.Commits {
			shas = append(shas, s[:7])
		}
	}
	shas = append(shas, landing[:7])
	return fmt.Sprintf("#%d:%s", info.Number, strings.Join(shas, ","))
}

func TestGatherQueue(t *testing.T) {
	for _, method := range []fakegithub.MergeMethod{fakegithub.MergeCommit, fakegithub.Squash} {
		t.Run(string(method), func(t *testing.T) {
			s := newFake(t, fakegithub.Options{})
			r := s.AddRepo("acme/payments", "main")
			r.Commit("initial", "alice")
			pr1 := r.OpenPR(fakegithub.PR{Title: "PAY-1 refunds", Body: "Fixes PAY-1", Author: "alice", Commits: 2,
				Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}})
			// Not compliant (no review): the facts say so, the policy decides.
			pr2 := r.OpenPR(fakegithub.PR{Title: "PAY-2 ledger", Author: "dave", Commits: 1})
			pr3 := r.OpenPR(fakegithub.PR{Title: "PAY-3 fees", Author: "erin", Commits: 3,
				Reviews: []fakegithub.Review{{User: "frank", State: "CHANGES_REQUESTED", OnCommit: 1}, {User: "frank", State: "APPROVED"}}})
			g := r.QueuePRs(method, pr1.Number, pr2.Number, pr3.Number)
			c := newClient(t, s, github.Options{})
			ctx := context.Background()

			s.ResetLog()
			rng, err := c.GatherQueue(ctx, "acme/payments", g.BaseSHA, g.HeadSHA)
			if err != nil {
				t.Fatal(err)
			}
			if rng.BaseSHA != g.BaseSHA || rng.HeadSHA != g.HeadSHA {
				t.Errorf("range ends %s..%s", rng.BaseSHA, rng.HeadSHA)
			}
			if method == fakegithub.MergeCommit {
				// The merge commits show each pull request's commits: no list fetched.
				if n := s.Count(routePullCommits); n != 0 {
					t.Errorf("listed PR commits %d times", n)
				}
			}
			if n := s.Count(routeCommitPulls); n != 0 {
				t.Errorf("%d commit→pulls lookups; every commit has a queue commit naming its PR", n)
			}
			got := summary(rng.Changes)

			// Gather on the same range trusts no open pull request: every commit is a push.
			plain, err := c.Gather(ctx, "acme/payments", g.BaseSHA, g.HeadSHA)
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range plain.Changes {
				if ch.Kind != compliance.KindDirectPush {
					t.Errorf("Gather attributed %v to open #%d", ch.RangeCommits, ch.PR.Number)
				}
			}
			var want []string
			for _, pr := range []fakegithub.PRInfo{pr1, pr2, pr3} {
				want = append(want, queueWant(t, c, r, g, method, pr))
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("changes\n got %v\nwant %v", got, want)
			}

			// Each queued pull request's facts are those of the open pull request.
			for i, pr := range []fakegithub.PRInfo{pr1, pr2, pr3} {
				open, err := c.PullRequest(ctx, "acme/payments", pr.Number)
				if err != nil {
					t.Fatal(err)
				}
				if got := rng.Changes[i].PR; !reflect.DeepEqual(*got, *open.PR) {
					t.Errorf("#%d in the queue:\n %+v\nopen:\n %+v", pr.Number, *got, *open.PR)
				}
			}
			if p := rng.Changes[0].PR; p.MergeSHA != "" || !p.MergedAt.IsZero() || p.MergedBy != "" || p.HeadSHA != pr1.HeadSHA ||
				len(p.Reviews) != 1 || p.Reviews[0].CommitID != pr1.HeadSHA || p.Body != "Fixes PAY-1" {
				t.Errorf("open PR facts: %+v", p)
			}
			if p := rng.Changes[1].PR; len(p.Reviews) != 0 {
				t.Errorf("unreviewed PR: %+v", p.Reviews)
			}

			// Once the queue lands, Gather attributes the same commits to the merged PRs.
			r.MergeQueued(g)
			merged, err := c.Gather(ctx, "acme/payments", g.BaseSHA, "main")
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(merged.Changes); !reflect.DeepEqual(got, want) {
				t.Errorf("after landing: %v, want %v", got, want)
			}
			if by := merged.Changes[0].PR.MergedBy; by != fakegithub.MergeQueueBot {
				t.Errorf("merged by %q", by)
			}
		})
	}
}

// A commit no queue wrote for a pull request stays a direct push, even one whose message names
// a queued pull request.
func TestGatherQueueDirectPushes(t *testing.T) {
	for _, method := range []fakegithub.MergeMethod{fakegithub.MergeCommit, fakegithub.Squash} {
		t.Run(string(method), func(t *testing.T) {
			s := newFake(t, fakegithub.Options{})
			r := s.AddRepo("acme/payments", "main")
			base := r.Commit("initial", "alice")
			pr1 := r.OpenPR(fakegithub.PR{Title: "PAY-1 refunds", Author: "alice", Commits: 2})
			pr2 := r.OpenPR(fakegithub.PR{Title: "PAY-2 ledger", Author: "dave", Commits: 1})
			sneak := r.Commit("PAY-9 sneak in", "mallory")
			g := r.QueuePRs(method, pr1.Number, pr2.Number)
			c := newClient(t, s, github.Options{})
			ctx := context.Background()

			rng, err := c.GatherQueue(ctx, "acme/payments", base, g.HeadSHA)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"push:" + sneak[:7], queueWant(t, c, r, g, method, pr1), queueWant(t, c, r, g, method, pr2)}
			if got := summary(rng.Changes); !reflect.DeepEqual(got, want) {
				t.Fatalf("changes\n got %v\nwant %v", got, want)
			}
		})
	}

	// A pushed commit whose message claims a queued pull request's squash: two commits could
	// each be #1's, so neither is.
	s := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	base := r.Commit("initial", "alice")
	pr1 := r.OpenPR(fakegithub.PR{Title: "PAY-1 refunds", Author: "alice", Commits: 1,
		Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}})
	forged := r.Commit("PAY-1 refunds (#1)", "mallory")
	g := r.QueuePRs(fakegithub.Squash, pr1.Number)
	c := newClient(t, s, github.Options{})
	rng, err := c.GatherQueue(context.Background(), "acme/payments", base, g.HeadSHA)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"push:" + forged[:7], "push:" + g.HeadSHA[:7]}
	if got := summary(rng.Changes); !reflect.DeepEqual(got, want) {
		t.Fatalf("forged squash message: %v, want %v", got, want)
	}
}
