package github

import (
	"fmt"
	"testing"

	gh "github.com/google/go-github/v62/github"
)

// The merge-queue rules on made-up histories the fake cannot build: each candidate commit is
// checked against what would make it a queue commit of an open pull request.
func TestQueuedLanding(t *testing.T) {
	commit := func(sha, msg string, parents ...string) *gh.RepositoryCommit {
		c := &gh.RepositoryCommit{SHA: gh.String(sha), Commit: &gh.Commit{Message: gh.String(msg)}}
		for _, p := range parents {
			c.Parents = append(c.Parents, &gh.Commit{SHA: gh.String(p)})
		}
		return c
	}
	pr := func(n int, state, head string, merged bool) *prFacts {
		p := &gh.PullRequest{Number: gh.Int(n), State: gh.String(state), Head: &gh.PullRequestBranch{SHA: gh.String(head)}, Commits: gh.Int(1)}
		if merged {
			p.MergedAt = &gh.Timestamp{}
		}
		return &prFacts{pr: p}
	}
	// base ← p1 (PR #1's commit, off the chain) ; base ← m1 = merge(base, p1) ← s2 (squash of #2)
	// ← m3 = merge(s2, x) naming #3 whose head is y ← top
	commits := []*gh.RepositoryCommit{
		commit("p1", "PAY-1 work", "base"),
		commit("side", "Merge pull request #4 from acme/x", "p1", "h4"), // off the chain
		commit("m1", "Merge pull request #1 from acme/pr-1\n\nPAY-1", "base", "p1"),
		commit("s2", "PAY-2 ledger (#2)", "m1"),
		commit("m3", "Merge pull request #3 from acme/pr-3", "s2", "x"),
		commit("top", "PAY-5 fees (#5)", "m3"),
	}
	a := newAttribution(commits)
	a.queue, a.mainline = true, a.firstParents("top")
	if got := fmt.Sprint(len(a.mainline), a.mainline["p1"], a.mainline["side"], a.mainline["m1"]); got != "4 false false true" {
		t.Fatalf("mainline: %v", a.mainline)
	}
	for _, tc := range []struct {
		name string
		f    *prFacts
		sha  string
		want bool
	}{
		{"merge commit of the open PR's head", pr(1, "open", "p1", false), "m1", true},
		{"squash of an open PR", pr(2, "open", "whatever", false), "s2", true},
		{"second parent is not the PR's head", pr(3, "open", "y", false), "m3", false},
		{"closed, not merged", pr(5, "closed", "z", false), "top", false},
		{"merged PR: Gather's rules apply", pr(5, "closed", "z", true), "top", false},
		{"off the first-parent chain", pr(4, "open", "h4", false), "side", false},
		{"a PR's own commit", pr(1, "open", "p1", false), "p1", false},
	} {
		if got := a.queuedLanding(tc.f, a.bySHA[tc.sha]); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// The open PR's commits come off the range through its queue merge commit.
	if cs, ok := a.mergedCommits(pr(1, "open", "p1", false).pr); !ok || len(cs) != 1 || cs[0].GetSHA() != "p1" {
		t.Errorf("commits of queued #1: %v %v", cs, ok)
	}
	if _, ok := a.mergedCommits(pr(3, "open", "y", false).pr); ok {
		t.Error("commits of #3 read off a merge of another head")
	}
	// Outside a merge queue nothing of this counts.
	a.queue = false
	if a.queuedLanding(pr(1, "open", "p1", false), a.bySHA["m1"]) {
		t.Error("Gather attributed a commit to an open pull request")
	}
	if _, ok := a.mergedCommits(pr(1, "open", "p1", false).pr); ok {
		t.Error("Gather read an open pull request's commits off the range")
	}
}
