package fakegithub

import (
	"fmt"
	"time"
)

// MergeGroup is a merge queue's group: the commits GitHub's merge queue wrote on its temporary
// branch, to be tested before they land (the merge_group event's base_sha, head_sha, base_ref,
// head_ref).
type MergeGroup struct {
	BaseSHA string // the default branch's tip the group was built on
	HeadSHA string // the tip of the queue branch
	BaseRef string // "refs/heads/<default branch>"
	HeadRef string // "refs/heads/gh-readonly-queue/<default branch>/pr-<number>-<base sha>"
}

// MergeQueueBot is the account GitHub reports as merged_by of a pull request its merge queue
// landed.
const MergeQueueBot = "github-merge-queue[bot]"

type queue struct {
	base   string
	branch string
	prs    []*pull
	landed [][]string // per pull request, what lands with it (its queue commit last)
}

// QueuePRs puts open pull requests numbers, in that order, in the merge queue and returns the
// group GitHub's merge queue builds for them: from the default branch's tip (which does not
// move), for each pull request the commits merging it with method would write (a merge
// commit "Merge pull request #N from <owner>/<branch>" whose second parent is the PR's head,
// a squash commit "<title> (#N)", or rebased copies), committed by web-flow, on the branch
// gh-readonly-queue/<default>/pr-<last number>-<base sha>. The pull requests stay open; GET
// /commits/{sha}/pulls knows no pull request for the queue's own commits. MergeQueued lands
// the group.
func (r *Repo) QueuePRs(method MergeMethod, numbers ...int) MergeGroup {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if len(numbers) == 0 {
		panic("fakegithub: QueuePRs needs at least one pull request")
	}
	base := r.branches[r.defaultBranch]
	at := r.s.tick()
	q := &queue{base: base}
	tip := base
	for _, n := range numbers {
		p, ok := r.pulls[n]
		if !ok || p.merged {
			panic(fmt.Sprintf("fakegithub: no open pull request %s#%d to queue", r.FullName(), n))
		}
		landed := r.land(p, method, tip, at)
		q.prs = append(q.prs, p)
		q.landed = append(q.landed, landed)
		tip = landed[len(landed)-1]
	}
	q.branch = fmt.Sprintf("gh-readonly-queue/%s/pr-%d-%s", r.defaultBranch, numbers[len(numbers)-1], base)
	r.branches[q.branch] = tip
	r.queues[tip] = q
	return MergeGroup{BaseSHA: base, HeadSHA: tip, BaseRef: "refs/heads/" + r.defaultBranch, HeadRef: "refs/heads/" + q.branch}
}

// MergeQueued lands a group QueuePRs built, as the merge queue does once its checks pass: the
// default branch moves to g.HeadSHA, each pull request is merged with merge_commit_sha its own
// queue commit and merged_by MergeQueueBot, and the queue branch is deleted. It panics if the
// default branch moved since the group was built (GitHub would rebuild the group).
func (r *Repo) MergeQueued(g MergeGroup) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	q, ok := r.queues[g.HeadSHA]
	if !ok {
		panic(fmt.Sprintf("fakegithub: no merge group with head %s in %s", g.HeadSHA, r.FullName()))
	}
	if r.branches[r.defaultBranch] != q.base {
		panic(fmt.Sprintf("fakegithub: %s moved since the merge group %s was built", r.defaultBranch, g.HeadSHA))
	}
	at := r.s.tick()
	for i, p := range q.prs {
		r.markMerged(p, q.landed[i], MergeQueueBot, at)
	}
	r.branches[r.defaultBranch] = g.HeadSHA
	delete(r.branches, q.branch)
	delete(r.queues, g.HeadSHA)
}

func (r *Repo) markMerged(p *pull, landed []string, by string, at time.Time) {
	p.merged, p.landed, p.mergedBy = true, landed, by
	p.mergeSHA = landed[len(landed)-1]
	p.mergedAt, p.updatedAt = at, at
}
