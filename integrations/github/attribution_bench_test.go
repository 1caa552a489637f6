package github

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"reflect"
	"syscall"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"
)

// Range attribution on its own, without HTTP: a synthetic history of merge-commit pull
// requests, as fakegithub's MergeCommit writes it, read off the range the way Gather does.
//
// Run with: go test -run '^$' -bench BenchmarkAttribution -benchmem ./integrations/github/
//
// ms-CPU/op is the process's CPU time (user + system, from getrusage, so the garbage
// collector's work on other threads counts too) divided by the number of iterations.

// synthHistory builds range commits (oldest first, like GitHub's compare) and pull requests.
type synthHistory struct {
	seq     int
	at      time.Time
	commits []*gh.RepositoryCommit
	pulls   []*gh.PullRequest
	own     map[int][]string // pull request number → its own commits, oldest first
}

func newSynthHistory() *synthHistory {
	return &synthHistory{at: time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC), own: map[int][]string{}}
}

// commit adds a range commit with parents (first parent first) and returns its SHA.
func (h *synthHistory) commit(msg, author string, parents ...string) string {
	h.seq++
	h.at = h.at.Add(time.Minute)
	sum := sha1.Sum(fmt.Appendf(nil, "%d\x00%s\x00%v", h.seq, msg, parents))
	sha := hex.EncodeToString(sum[:])
	date := gh.Timestamp{Time: h.at}
	c := &gh.RepositoryCommit{
		SHA:    gh.String(sha),
		Author: &gh.User{Login: gh.String(author)},
		Commit: &gh.Commit{Message: gh.String(msg), Author: &gh.CommitAuthor{Date: &date}, Committer: &gh.CommitAuthor{Date: &date}},
	}
	for _, p := range parents {
		c.Parents = append(c.Parents, &gh.Commit{SHA: gh.String(p)})
	}
	h.commits = append(h.commits, c)
	return sha
}

// branch adds n commits chained from base (which may be outside the range) and returns them.
func (h *synthHistory) branch(title, author, base string, n int) []string {
	var out []string
	parent := base
	for i := 1; i <= n; i++ {
		parent = h.commit(fmt.Sprintf("%s: part %d", title, i), author, parent)
		out = append(out, parent)
	}
	return out
}

// merge adds GitHub's merge commit of pull request number (whose own commits are own, the last
// its head) onto tip, records the merged pull request, and returns the merge commit's SHA.
func (h *synthHistory) merge(number int, tip string, own []string) string {
	head := own[len(own)-1]
	m := h.commit(fmt.Sprintf("Merge pull request #%d from acme/pr-%d\n\nchange %d", number, number, number), "bob", tip, head)
	mergedAt := gh.Timestamp{Time: h.at}
	h.pulls = append(h.pulls, &gh.PullRequest{
		Number: gh.Int(number), State: gh.String("closed"), MergedAt: &mergedAt, MergeCommitSHA: gh.String(m),
		Head: &gh.PullRequestBranch{SHA: gh.String(head)}, Commits: gh.Int(len(own)),
	})
	h.own[number] = own
	return m
}

// linearMerges is prs pull requests of 3 commits each, each branched from the tip of main and
// merged with a merge commit, on top of a base outside the range.
func linearMerges(prs int) *synthHistory {
	h := newSynthHistory()
	tip := "0000000000000000000000000000000000000000" // the range's base
	for n := 1; n <= prs; n++ {
		tip = h.merge(n, tip, h.branch(fmt.Sprintf("PAY-%d change", n), "alice", tip, 3))
	}
	return h
}

func shas(commits []*gh.RepositoryCommit) []string {
	out := make([]string, len(commits))
	for i, c := range commits {
		out[i] = c.GetSHA()
	}
	return out
}

func TestMergedCommitsLinearHistory(t *testing.T) {
	h := linearMerges(50)
	a := newAttribution(h.commits)
	for _, p := range h.pulls {
		got, ok := a.mergedCommits(p)
		if !ok || !reflect.DeepEqual(shas(got), h.own[p.GetNumber()]) {
			t.Fatalf("#%d: %v %v, want %v", p.GetNumber(), shas(got), ok, h.own[p.GetNumber()])
		}
	}
}

func BenchmarkAttribution(b *testing.B) {
	for _, prs := range []int{200, 800, 1600} {
		b.Run(fmt.Sprintf("prs=%d", prs), func(b *testing.B) {
			h := linearMerges(prs)
			b.ReportAllocs()
			before := cpuTime(b)
			for b.Loop() {
				a := newAttribution(h.commits)
				for _, p := range h.pulls {
					commits, ok := a.mergedCommits(p)
					if !ok || len(commits) != 3 {
						b.Fatalf("#%d: %d commits, %v", p.GetNumber(), len(commits), ok)
					}
					a.claim(&prFacts{pr: p, commits: commits}, a.bySHA[p.GetMergeCommitSHA()])
				}
			}
			b.ReportMetric(float64(cpuTime(b)-before)/float64(time.Millisecond)/float64(b.N), "ms-CPU/op")
		})
	}
}

// cpuTime is the CPU time (user + system) the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
