package github

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"

	gh "github.com/google/go-github/v62/github"
)

// Histories the fake cannot build (stacked pull requests, ranges starting inside a branch), on
// the synthetic history of attribution_bench_test.go.

const outside = "0000000000000000000000000000000000000000" // a commit before the range

// A pull request stacked on another, retargeted to main once the other merged: its head reaches
// the other's commits, which main already has, and only its own are its.
func TestMergedCommitsStackedPullRequests(t *testing.T) {
	h := newSynthHistory()
	a := h.branch("PAY-1 base", "alice", outside, 2)
	b := h.branch("PAY-2 on top", "bob", a[1], 2)
	mA := h.merge(1, outside, a)
	h.merge(2, mA, b)
	checkMerged(t, h)
}

// The other order: the stacked pull request merged into the branch below it, which then merged
// into main. Its merge commit is off main's first-parent chain.
func TestMergedCommitsPullRequestMergedIntoABranch(t *testing.T) {
	h := newSynthHistory()
	a := h.branch("PAY-1 base", "alice", outside, 2)
	b := h.branch("PAY-2 on top", "bob", a[1], 2)
	mB := h.merge(2, a[1], b)
	h.merge(1, outside, append(append(append([]string{}, a...), b...), mB))
	checkMerged(t, h)
}

// A range whose base is a pull request's first commit, on a branch that merged another pull
// request's branch: what the merge brought into the range is the pull request's second commit
// alone, one short of its two, so the range cannot say which commits are its (GitHub is asked).
// The other branch's commit, also below the pull request's head but brought in by the other
// merge, must not make up the count.
func TestMergedCommitsIncompleteIsNotPaddedFromTheBranch(t *testing.T) {
	h := newSynthHistory()
	const b1 = "1111111111111111111111111111111111111111" // the range's base
	a1 := h.commit("PAY-1 other", "alice", outside)
	mA := h.merge(1, outside, []string{a1})
	b2 := h.commit("Merge branch 'alice/pr-1' into bob/pr-2", "bob", b1, a1)
	h.merge(2, mA, []string{b1, b2})
	at := newAttribution(h.commits)
	if got, ok := at.mergedCommits(h.pulls[1]); ok {
		t.Fatalf("#2: %v from a range holding one of its two commits", shas(got))
	}
	if got, ok := at.mergedCommits(h.pulls[0]); !ok || !reflect.DeepEqual(shas(got), []string{a1}) {
		t.Fatalf("#1: %v %v", shas(got), ok)
	}
}

// checkMerged checks that mergedCommits answers each pull request's own commits.
func checkMerged(t *testing.T, h *synthHistory) {
	t.Helper()
	a := newAttribution(h.commits)
	for _, p := range h.pulls {
		got, ok := a.mergedCommits(p)
		if !ok || !reflect.DeepEqual(shas(got), h.own[p.GetNumber()]) {
			t.Errorf("#%d: %v %v, want %v", p.GetNumber(), shas(got), ok, h.own[p.GetNumber()])
		}
	}
}

// mergedCommits is called from concurrent pull request loads; the sweep happens once.
func TestMergedCommitsConcurrent(t *testing.T) {
	h := linearMerges(40)
	a := newAttribution(h.commits)
	var wg sync.WaitGroup
	for _, p := range h.pulls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, ok := a.mergedCommits(p); !ok || !reflect.DeepEqual(shas(got), h.own[p.GetNumber()]) {
				t.Errorf("#%d: %v %v", p.GetNumber(), shas(got), ok)
			}
		}()
	}
	wg.Wait()
}

// On random histories (branches off branches, merges both ways, octopus merges, ranges from any
// commit to main) mergedCommits answers exactly the commits the second parent reaches in the
// range and the first does not, by the definition, for every merge: those on main's
// first-parent chain (the sweep) and those off it (reach).
func TestMergedCommitsMatchesDefinitionOnRandomHistories(t *testing.T) {
	swept, walked := 0, 0
	for seed := uint64(1); seed <= 200; seed++ {
		all, mainTip := randomHistory(rand.New(rand.NewPCG(seed, 7)))
		r := rand.New(rand.NewPCG(seed, 8))
		base := all[r.IntN(len(all))].GetSHA()
		if r.IntN(5) == 0 {
			base = outside
		}
		commits := rangeOf(all, base, mainTip)
		if len(commits) == 0 {
			continue
		}
		a := newAttribution(commits)
		inRange := map[string]*gh.RepositoryCommit{}
		for _, c := range commits {
			inRange[c.GetSHA()] = c
		}
		for n, c := range commits {
			if len(c.Parents) != 2 {
				continue
			}
			want := definition(commits, inRange, c.Parents[1].GetSHA(), c.Parents[0].GetSHA())
			mergedAt := gh.Timestamp{}
			p := &gh.PullRequest{Number: gh.Int(n + 1), MergedAt: &mergedAt, MergeCommitSHA: gh.String(c.GetSHA()),
				Head: &gh.PullRequestBranch{SHA: c.Parents[1].SHA}, Commits: gh.Int(len(want))}
			got, ok := a.mergedCommits(p)
			if !ok || !slices.Equal(shas(got), want) {
				t.Fatalf("seed %d, merge %s: %v %v, want %v", seed, c.GetSHA()[:7], shas(got), ok, want)
			}
			p.Commits = gh.Int(len(want) + 1)
			if got, ok := a.mergedCommits(p); ok {
				t.Fatalf("seed %d, merge %s: %v answered for a pull request with one more commit", seed, c.GetSHA()[:7], shas(got))
			}
			if _, ok := a.brought[a.bySHA[c.GetSHA()]]; ok {
				swept++
			} else {
				walked++
			}
		}
	}
	t.Logf("merges on main's chain %d, off it %d", swept, walked)
	if swept == 0 || walked == 0 {
		t.Fatalf("merges on main's chain %d, off it %d: both kinds should occur", swept, walked)
	}
}

// randomHistory is a history of several branches with commits, branches off branches, merges
// (either way) and octopus merges, oldest first, and main's tip.
func randomHistory(r *rand.Rand) ([]*gh.RepositoryCommit, string) {
	h := newSynthHistory()
	root := h.commit("root", "alice")
	tips := []string{root} // tips[0] is main
	for i := 0; i < 60; i++ {
		b := r.IntN(len(tips))
		switch k := r.IntN(20); {
		case k < 8:
			tips[b] = h.commit(fmt.Sprintf("work %d", i), "alice", tips[b])
		case k < 11:
			tips = append(tips, h.commit(fmt.Sprintf("branch %d", i), "bob", tips[b]))
		case k < 19:
			o := r.IntN(len(tips))
			if o != b && tips[o] != tips[b] {
				tips[b] = h.commit(fmt.Sprintf("merge %d", i), "carol", tips[b], tips[o])
			}
		default:
			o, q := r.IntN(len(tips)), r.IntN(len(tips))
			if o != b && q != b && o != q {
				tips[b] = h.commit(fmt.Sprintf("octopus %d", i), "dave", tips[b], tips[o], tips[q])
			}
		}
	}
	// Land the branches on main.
	for o := 1; o < len(tips); o++ {
		if r.IntN(3) > 0 {
			tips[0] = h.commit(fmt.Sprintf("land %d", o), "erin", tips[0], tips[o])
		}
	}
	return h.commits, tips[0]
}

// rangeOf is what GitHub's compare base...head lists: the commits head reaches and base does
// not, oldest first.
func rangeOf(all []*gh.RepositoryCommit, base, head string) []*gh.RepositoryCommit {
	bySHA := map[string]*gh.RepositoryCommit{}
	for _, c := range all {
		bySHA[c.GetSHA()] = c
	}
	ancestors := func(sha string) map[string]bool {
		seen := map[string]bool{}
		stack := []string{sha}
		for len(stack) > 0 {
			s := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if c := bySHA[s]; c != nil && !seen[s] {
				seen[s] = true
				for _, p := range c.Parents {
					stack = append(stack, p.GetSHA())
				}
			}
		}
		return seen
	}
	in, out := ancestors(head), ancestors(base)
	var commits []*gh.RepositoryCommit
	for _, c := range all {
		if in[c.GetSHA()] && !out[c.GetSHA()] {
			commits = append(commits, c)
		}
	}
	return commits
}

// definition is the range commits reachable from head through range commits and not from
// branch, in range order.
func definition(commits []*gh.RepositoryCommit, inRange map[string]*gh.RepositoryCommit, head, branch string) []string {
	reach := func(sha string) map[string]bool {
		seen := map[string]bool{}
		var visit func(string)
		visit = func(s string) {
			c := inRange[s]
			if c == nil || seen[s] {
				return
			}
			seen[s] = true
			for _, p := range c.Parents {
				visit(p.GetSHA())
			}
		}
		visit(sha)
		return seen
	}
	from, not := reach(head), reach(branch)
	idx := map[string]int{}
	for i, c := range commits {
		idx[c.GetSHA()] = i
	}
	var out []string
	for sha := range from {
		if !not[sha] {
			out = append(out, sha)
		}
	}
	sort.Slice(out, func(i, j int) bool { return idx[out[i]] < idx[out[j]] })
	return out
}
