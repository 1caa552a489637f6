package github

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v62/github"

	"sockembot/compliance"
)

// Gather collects the facts of base..head: every commit GitHub's compare lists, each attributed
// to the merged pull request that brought it in (with the pull request's reviews and commits),
// or else reported as a direct push. Changes come in merge order, oldest first.
//
// Requests are kept few and parallel: pull requests named by their merge message ("Merge pull
// request #N from ...", "Title (#N)") are fetched directly and confirmed by merge_commit_sha;
// a merge commit's pull request commits are read off the range itself; once a pull request's
// commits are known, the range commits that are its commits (or rebased copies of them) are
// attributed without asking again; only the rest are looked up with GET /commits/{sha}/pulls,
// one request per batch of commits a rebase merge wrote together. A merge-commit history costs
// about 2 requests per pull request (the pull request and its reviews).
func (c *Client) Gather(ctx context.Context, repo, base, head string) (compliance.Range, error) {
	return c.gather(ctx, repo, base, head, false, nil)
}

// GatherKnown is Gather that first asks known which of the range's commits are the merge commits
// of pull requests whose facts were recorded before (keyed by merge SHA). Those pull requests
// are not fetched again: their recorded facts are claimed at their merge commit in the range,
// with their commits (by SHA, or as rebased copies), and their Change says which record they
// came from (Change.Recorded). Only the rest of the range is attributed as Gather does. A
// recorded pull request whose merge commit is not in the range is not used. known nil is Gather.
func (c *Client) GatherKnown(ctx context.Context, repo, base, head string, known func(ctx context.Context, mergeSHAs []string) (map[string]compliance.RecordedPull, error)) (compliance.Range, error) {
	return c.gather(ctx, repo, base, head, false, known)
}

// GatherQueue collects the facts of a merge group: base..head on a merge queue branch, whose
// commits are GitHub's merge (or squash) commits of each queued pull request onto the previous
// one, plus, for merge commits, each pull request's own commits. The queued pull requests are
// still OPEN.
//
// It is Gather, which also attributes commits to open pull requests, but only on GitHub's own
// evidence, and only for commits on the group's first-parent chain from head (the ones the queue
// wrote): a merge commit "Merge pull request #N from …" whose second parent is pull request N's
// current head, with N open, belongs to N, and so do N's commits (reachable from its head but
// not from the merge's first parent, or else as GitHub lists them); a single-parent commit whose
// message ends "(#N)", with N open, is N's squash. Two commits that could both be N's are
// ambiguous: neither is. Everything not attributed (a rebase queue's copies, a commit pushed
// onto the queue branch, a message naming a pull request whose head has moved on) is a direct
// push, which the policy fails. A queued pull request's Change carries its facts as an open pull
// request (no merge SHA, no merged_by: see PullRequest), with RangeCommits the group's commits
// that are its.
func (c *Client) GatherQueue(ctx context.Context, repo, base, head string) (compliance.Range, error) {
	return c.gather(ctx, repo, base, head, true, nil)
}

// gather is Gather, with queue GatherQueue, and with known GatherKnown.
func (c *Client) gather(ctx context.Context, repo, base, head string, queue bool, known func(context.Context, []string) (map[string]compliance.RecordedPull, error)) (compliance.Range, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return compliance.Range{}, err
	}
	rng := compliance.Range{Repo: repo, Base: base, Head: head}
	// Pin both ends to SHAs first: a branch that moves between compare pages would otherwise
	// mix two different ranges into one verdict.
	refs, shas := []string{base, head}, make([]string, 2)
	err = forEach(ctx, 2, 2, func(ctx context.Context, i int) error {
		var err error
		shas[i], err = c.resolve(ctx, owner, name, refs[i])
		return err
	})
	if err != nil {
		return compliance.Range{}, err
	}
	rng.BaseSHA, rng.HeadSHA = shas[0], shas[1]

	commits, err := c.compare(ctx, owner, name, rng.BaseSHA, rng.HeadSHA)
	if err != nil {
		return compliance.Range{}, err
	}
	a := newAttribution(commits)
	if queue {
		a.queue, a.mainline = true, a.firstParents(rng.HeadSHA)
	}
	l := c.loader(owner, name)
	l.knownCommits = a.mergedCommits
	if known != nil {
		if err := a.claimRecorded(ctx, l, known); err != nil {
			return compliance.Range{}, err
		}
	}
	if err := c.attributeByHints(ctx, a, l); err != nil {
		return compliance.Range{}, err
	}
	if err := c.attributeByLookup(ctx, a, l, owner, name); err != nil {
		return compliance.Range{}, err
	}
	rng.Changes = a.changes()
	return rng, nil
}

// ResolveRef turns a branch, tag or SHA into a full commit SHA, always asking GitHub: a ref a
// person typed, even a full SHA, is confirmed to exist. ErrNotFound when GitHub has no such ref.
func (c *Client) ResolveRef(ctx context.Context, repo, ref string) (string, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return "", err
	}
	return c.lookupRef(ctx, owner, name, ref)
}

var shaPattern = regexp.MustCompile(`^[0-9a-f]{40}$`)

// resolve turns ref into a full commit SHA with GET /repos/{o}/{r}/commits/{ref}. A full SHA is
// its own answer and costs no request: it is not checked here, so one GitHub does not know fails
// where it is first used (Gather's compare answers 404: ErrNotFound).
func (c *Client) resolve(ctx context.Context, owner, name, ref string) (string, error) {
	if shaPattern.MatchString(ref) {
		return ref, nil
	}
	return c.lookupRef(ctx, owner, name, ref)
}

// lookupRef asks GitHub which commit ref is.
func (c *Client) lookupRef(ctx context.Context, owner, name, ref string) (string, error) {
	sha, _, err := c.gh.Repositories.GetCommitSHA1(ctx, owner, name, ref, "")
	if err != nil {
		// GitHub answers 422 "No commit found for SHA" for an unknown ref on this endpoint.
		if hasStatus(err, 404, 422) {
			err = ErrNotFound
		}
		return "", fmt.Errorf("github: ref %q of %s/%s: %w", ref, owner, name, err)
	}
	sha = strings.TrimSpace(sha)
	if !shaPattern.MatchString(sha) {
		return "", fmt.Errorf("github: ref %q of %s/%s: unexpected answer %.60q", ref, owner, name, sha)
	}
	return sha, nil
}

// ErrHeadBehindBase means head is an ancestor of base (GitHub's compare status "behind"): the
// range deploys nothing and would roll base's newer commits back, which usually means base and
// head were swapped. Gather fails rather than report an empty, compliant range.
var ErrHeadBehindBase = compliance.ErrHeadBehindBase

// compare lists every commit in base...head, oldest first. Those are the commits head has and
// base lacks (for diverged ends, the ones since their merge base); a head behind base is an
// error, see ErrHeadBehindBase.
func (c *Client) compare(ctx context.Context, owner, name, base, head string) ([]*gh.RepositoryCommit, error) {
	total, ahead, behind, status := -1, 0, 0, ""
	commits, err := allPages(ctx, c.concurrency, func(ctx context.Context, opt gh.ListOptions) ([]*gh.RepositoryCommit, *gh.Response, error) {
		cmp, resp, err := c.gh.Repositories.CompareCommits(ctx, owner, name, base, head, &opt)
		if err != nil {
			return nil, resp, err
		}
		if opt.Page == 1 { // page 1 is fetched alone, before the others
			total, ahead, behind, status = cmp.GetTotalCommits(), cmp.GetAheadBy(), cmp.GetBehindBy(), cmp.GetStatus()
		}
		return slimCommits(cmp.Commits), resp, nil
	})
	if err != nil {
		return nil, fmt.Errorf("github: compare %s/%s %s...%s: %w", owner, name, short(base), short(head), notFound(err))
	}
	if status == "behind" || (ahead == 0 && behind > 0) {
		return nil, fmt.Errorf("github: compare %s/%s %s...%s: %w by %d commits: nothing in base..head would be deployed; check the base and head refs (--base and --head: are they swapped?)",
			owner, name, short(base), short(head), ErrHeadBehindBase, behind)
	}
	// A commit missing from the list would escape the policy: fail closed.
	if len(commits) != total {
		return nil, fmt.Errorf("github: compare %s/%s %s...%s: listed %d of %d commits", owner, name, short(base), short(head), len(commits), total)
	}
	return commits, nil
}

var (
	mergeHint  = regexp.MustCompile(`^Merge pull request #(\d+) from `)
	squashHint = regexp.MustCompile(`\(#(\d+)\)\s*$`)
)

// hint is the pull request number a commit's message claims, or 0. GitHub writes
// "Merge pull request #N from owner/branch" for merge commits and "Title (#N)" for squash
// merges. The claim is only a hint: it is confirmed by the pull request's merge_commit_sha.
func hint(c *gh.RepositoryCommit) int {
	first, _, _ := strings.Cut(c.GetCommit().GetMessage(), "\n")
	re := squashHint
	if len(c.Parents) > 1 {
		re = mergeHint
	}
	m := re.FindStringSubmatch(strings.TrimSpace(first))
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// attributeByHints fetches the pull requests named in merge messages, in parallel, and claims
// their commits where GitHub confirms the merge.
func (c *Client) attributeByHints(ctx context.Context, a *attribution, l *prLoader) error {
	var numbers []int
	seen := map[int]bool{}
	for _, rc := range a.commits {
		if n := hint(rc.c); n > 0 && rc.free() && !seen[n] {
			seen[n] = true
			numbers = append(numbers, n)
		}
	}
	err := forEach(ctx, len(numbers), c.concurrency, func(ctx context.Context, i int) error {
		_, err := l.load(ctx, numbers[i])
		if errors.Is(err, ErrNotFound) {
			return nil // "(#12)" naming no pull request is just text; the lookup decides
		}
		return err
	})
	if err != nil {
		return err
	}
	// A merge group writes one commit per queued pull request: two that could be the same open
	// pull request's are ambiguous, and neither is taken.
	landings := map[int]int{}
	if a.queue {
		for _, rc := range a.commits {
			if n := hint(rc.c); n > 0 {
				if f, err := l.load(ctx, n); err == nil && a.queuedLanding(f, rc) {
					landings[n]++
				}
			}
		}
	}
	for _, rc := range a.commits {
		n := hint(rc.c)
		if n == 0 || !rc.free() {
			continue
		}
		f, err := l.load(ctx, n)
		switch {
		case err != nil:
		case f.merged() && f.pr.GetMergeCommitSHA() == rc.sha:
			a.claim(f, rc)
		case landings[n] == 1 && a.queuedLanding(f, rc):
			a.claim(f, rc)
		}
	}
	return nil
}

// attributeByLookup asks GitHub which pull request brought in each commit still unclaimed, in
// waves: one probe per batch, then the answers' commits are claimed before the next wave.
func (c *Client) attributeByLookup(ctx context.Context, a *attribution, l *prLoader, owner, name string) error {
	for {
		probes := a.probes()
		if len(probes) == 0 {
			return nil
		}
		found := make([]*prFacts, len(probes))
		err := forEach(ctx, len(probes), c.concurrency, func(ctx context.Context, i int) error {
			sha := probes[i].rc.sha
			pulls, err := c.pullsWithCommit(ctx, owner, name, sha)
			if err != nil {
				return err
			}
			n := introducedBy(pulls, sha)
			if n == 0 {
				return nil
			}
			f, err := l.load(ctx, n)
			if err != nil {
				return err
			}
			// Only a merged pull request's reviews can cover a commit on the branch; a commit
			// that is merely also on an open pull request was pushed directly.
			if f.merged() {
				found[i] = f
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, p := range probes {
			switch {
			case !p.rc.free():
			case found[i] != nil:
				a.claim(found[i], p.rc)
			default:
				p.rc.direct = true
				// The rest of its batch may be direct pushes too: probe them one by one.
				for _, m := range p.batch {
					m.alone = true
				}
			}
		}
	}
}

// introducedBy picks the merged pull request that brought sha in: the one whose merge commit it
// is, else the earliest merged.
func introducedBy(pulls []*gh.PullRequest, sha string) int {
	var best *gh.PullRequest
	for _, p := range pulls {
		if p.MergedAt == nil {
			continue
		}
		if p.GetMergeCommitSHA() == sha {
			return p.GetNumber()
		}
		if best == nil || p.GetMergedAt().Before(best.GetMergedAt().Time) {
			best = p
		}
	}
	return best.GetNumber()
}

// attribution tracks which change each range commit belongs to.
type attribution struct {
	commits []*rangeCommit // range order, oldest first
	bySHA   map[string]*rangeCommit
	// queue: the range is a merge group, whose commits may also belong to open pull requests
	// (GatherQueue). mainline is the group's first-parent chain from its head: the commits the
	// queue wrote, one per pull request. A pull request's own commits are off it.
	queue    bool
	mainline map[string]bool
	// brought is what each two-parent commit on the first-parent chain from the range's head
	// brought in: the range commits reachable from its second parent but not from its first,
	// oldest first. It is computed once, on first use (see sweep), and nil when the range has
	// no single head. mergedCommits reads it from concurrent pull request loads.
	sweepOnce sync.Once
	brought   map[*rangeCommit][]*rangeCommit
}

// firstParents is the set of range commits on the first-parent chain from sha.
func (a *attribution) firstParents(sha string) map[string]bool {
	out := map[string]bool{}
	for _, rc := range a.firstParentChain(a.bySHA[sha]) {
		out[rc.sha] = true
	}
	return out
}

// firstParentChain is the range commits on the first-parent chain from rc (itself first, then
// its first parent, ...), down to the first commit whose first parent is outside the range (or
// that has none).
func (a *attribution) firstParentChain(rc *rangeCommit) []*rangeCommit {
	var out []*rangeCommit
	on := map[*rangeCommit]bool{}
	for rc != nil && !on[rc] {
		on[rc] = true
		out = append(out, rc)
		if len(rc.c.Parents) == 0 {
			break
		}
		rc = a.bySHA[rc.c.Parents[0].GetSHA()]
	}
	return out
}

// queued says whether f is an open pull request waiting in a merge queue (GatherQueue only).
func (a *attribution) queued(p *gh.PullRequest) bool {
	return a.queue && p.MergedAt == nil && p.GetState() == "open"
}

// queuedLanding says whether rc, whose message names f, is the merge queue's commit of the open
// pull request f: on the group's first-parent chain, a merge commit whose second parent is f's
// current head, or a single-parent (squash) commit. hint has already matched the message to the
// commit's shape.
func (a *attribution) queuedLanding(f *prFacts, rc *rangeCommit) bool {
	if !a.queued(f.pr) || !a.mainline[rc.sha] {
		return false
	}
	switch len(rc.c.Parents) {
	case 1:
		return true
	case 2:
		return rc.c.Parents[1].GetSHA() == f.pr.GetHead().GetSHA()
	}
	return false
}

// queueMerge finds the merge queue's merge commit of the open pull request p: the "Merge pull
// request #N" commit on the group's first-parent chain whose second parent is p's head.
func (a *attribution) queueMerge(p *gh.PullRequest) *rangeCommit {
	for _, rc := range a.commits {
		if a.mainline[rc.sha] && len(rc.c.Parents) == 2 && hint(rc.c) == p.GetNumber() && rc.c.Parents[1].GetSHA() == p.GetHead().GetSHA() {
			return rc
		}
	}
	return nil
}

type rangeCommit struct {
	idx    int
	sha    string
	c      *gh.RepositoryCommit
	pr     *prFacts // the pull request it belongs to: merged, or (GatherQueue) queued
	direct bool     // pushed without a merged pull request
	alone  bool     // probe on its own, not as part of a batch
}

func (rc *rangeCommit) free() bool { return rc.pr == nil && !rc.direct }

func newAttribution(commits []*gh.RepositoryCommit) *attribution {
	a := &attribution{bySHA: map[string]*rangeCommit{}}
	for i, c := range commits {
		rc := &rangeCommit{idx: i, sha: c.GetSHA(), c: c}
		a.commits = append(a.commits, rc)
		a.bySHA[rc.sha] = rc
	}
	return a
}

// claim gives landing (the commit GitHub tied to f) and f's other commits in the range to f.
func (a *attribution) claim(f *prFacts, landing *rangeCommit) {
	if landing.free() {
		landing.pr = f
	}
	// Merge commits keep the pull request's own commits, SHAs unchanged.
	for _, pc := range f.commits {
		if rc := a.bySHA[pc.GetSHA()]; rc != nil && rc.free() {
			rc.pr = f
		}
	}
	// Rebase merges write copies with new SHAs but the same message, author and author date,
	// one after another: walk out from the landing commit while the copies line up.
	m := -1
	for i, pc := range f.commits {
		if rebaseKey(pc) == rebaseKey(landing.c) {
			m = i
		}
	}
	if m < 0 {
		return
	}
	for j, k := landing.idx-1, m-1; j >= 0 && k >= 0; j, k = j-1, k-1 {
		if rc := a.commits[j]; rc.free() && rebaseKey(rc.c) == rebaseKey(f.commits[k]) {
			rc.pr = f
			continue
		}
		break
	}
	for j, k := landing.idx+1, m+1; j < len(a.commits) && k < len(f.commits); j, k = j+1, k+1 {
		if rc := a.commits[j]; rc.free() && rebaseKey(rc.c) == rebaseKey(f.commits[k]) {
			rc.pr = f
			continue
		}
		break
	}
}

// mergedCommits answers a pull request's commits from the range when a merge commit brought it
// in (or, in a merge group, brings it in): they are the commits reachable from the merge's
// second parent (the pull request's head) but not from its first (the branch before the merge).
// It only answers when that set is complete, i.e. has as many commits as GitHub says the pull
// request has; a pull request that started before the range's base falls back to GET
// /pulls/{n}/commits.
//
// For a merge on the first-parent chain from the range's head (a pull request merged into the
// branch the range is of) the set is looked up in brought, which one sweep of the range fills
// for all of them. A merge off that chain (a pull request merged into another branch that was
// merged in later) has its set computed on its own with reach, which walks the range below it.
// Both give the same set. Safe for concurrent use.
func (a *attribution) mergedCommits(p *gh.PullRequest) ([]*gh.RepositoryCommit, bool) {
	var m *rangeCommit
	switch {
	case p.MergedAt != nil:
		m = a.bySHA[p.GetMergeCommitSHA()]
	case a.queued(p): // a merge queue's merge commit of an open pull request
		m = a.queueMerge(p)
	}
	if m == nil || len(m.c.Parents) != 2 || m.c.Parents[1].GetSHA() != p.GetHead().GetSHA() {
		return nil, false
	}
	a.sweepOnce.Do(a.sweep)
	out, swept := a.brought[m] // shared: read only
	if !swept {
		branch := a.reach(m.c.Parents[0].GetSHA())
		for sha := range a.reach(p.GetHead().GetSHA()) {
			if !branch[sha] {
				out = append(out, a.bySHA[sha])
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].idx < out[j].idx })
	}
	if len(out) != p.GetCommits() {
		return nil, false
	}
	commits := make([]*gh.RepositoryCommit, len(out))
	for i, rc := range out {
		commits[i] = rc.c
	}
	return commits, true
}

// reach is the set of range commits reachable from sha (itself included). Walking only inside
// the range is exact: an ancestor of a commit outside the range is outside it too. It costs a
// walk of everything below sha in the range: mergedCommits uses it only for merges that sweep
// does not cover.
func (a *attribution) reach(sha string) map[string]bool {
	seen := map[string]bool{}
	stack := []string{sha}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		rc := a.bySHA[s]
		if rc == nil || seen[s] {
			continue
		}
		seen[s] = true
		for _, p := range rc.c.Parents {
			stack = append(stack, p.GetSHA())
		}
	}
	return seen
}

// sweep fills brought in one pass over the range, in time and memory linear in its commits and
// parent links (reach per merge is quadratic: each walks the whole range below its merge).
//
// Below, reach(x) is the range commits reachable from x through range commits, as reach has it.
// sweep goes up the first-parent chain from the range's head, oldest commit first, keeping seen:
// the union of reach(c) over the chain commits c gone up so far. Arriving at chain commit m, seen
// is therefore reach(m's first parent), which is the chain commit gone up last or, for the
// chain's oldest commit, a commit outside the range (or none), which reaches nothing. From m's
// second parent, sweep walks into unseen range commits only, adding each to seen. That walk finds
// exactly reach(second parent) minus reach(first parent): it enters no commit of seen, and it
// finds every other commit c the second parent reaches, because no commit on a path from the
// second parent down to c inside the range is in seen (seen holds the range commits below each
// of its commits, so c would be in seen too). That set is what brought keeps for a two-parent m.
// An octopus merge's further parents are walked the same way, so that with m itself added seen
// is reach(m) for the next commit up. Each range commit is entered at most once in all.
func (a *attribution) sweep() {
	head := a.rangeHead()
	if head == nil {
		return
	}
	chain := a.firstParentChain(head)
	a.brought = make(map[*rangeCommit][]*rangeCommit, len(chain))
	seen := make([]bool, len(a.commits)) // by idx
	var stack []*rangeCommit
	enter := func(sha string) {
		if rc := a.bySHA[sha]; rc != nil && !seen[rc.idx] {
			seen[rc.idx] = true
			stack = append(stack, rc)
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		m := chain[i]
		for k := 1; k < len(m.c.Parents); k++ {
			var found []*rangeCommit
			enter(m.c.Parents[k].GetSHA())
			for len(stack) > 0 {
				rc := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				found = append(found, rc)
				for _, p := range rc.c.Parents {
					enter(p.GetSHA())
				}
			}
			if len(m.c.Parents) == 2 {
				sort.Slice(found, func(i, j int) bool { return found[i].idx < found[j].idx })
				a.brought[m] = found
			}
		}
		seen[m.idx] = true
	}
}

// rangeHead is the one range commit that is no range commit's parent (GitHub's compare lists
// head and commits head reaches), or nil when there is not exactly one.
func (a *attribution) rangeHead() *rangeCommit {
	parent := make([]bool, len(a.commits)) // by idx
	for _, rc := range a.commits {
		for _, p := range rc.c.Parents {
			if pc := a.bySHA[p.GetSHA()]; pc != nil {
				parent[pc.idx] = true
			}
		}
	}
	var head *rangeCommit
	for _, rc := range a.commits {
		if !parent[rc.idx] {
			if head != nil {
				return nil
			}
			head = rc
		}
	}
	return head
}

// rebaseKey is what a rebased copy keeps of the commit it copies: message, author (the GitHub
// account; recorded facts keep no e-mail) and author date.
func rebaseKey(c *gh.RepositoryCommit) string {
	return c.GetCommit().GetMessage() + "\x00" + c.GetAuthor().GetLogin() + "\x00" + c.GetCommit().GetAuthor().GetDate().UTC().Format(time.RFC3339)
}

// batchKey groups the commits one rebase merge wrote: same committer, same commit time.
func batchKey(c *gh.RepositoryCommit) string {
	if len(c.Parents) > 1 {
		return ""
	}
	cm := c.GetCommit().GetCommitter()
	return cm.GetEmail() + "\x00" + cm.GetDate().UTC().Format(time.RFC3339)
}

type probe struct {
	rc    *rangeCommit
	batch []*rangeCommit // the older commits of its batch, not probed this wave
}

// probes picks the commits to look up next: the newest commit of each batch of adjacent free
// commits (a rebase merge's last copy is its merge_commit_sha), and every commit marked alone.
func (a *attribution) probes() []probe {
	var out []probe
	for i := len(a.commits) - 1; i >= 0; i-- {
		rc := a.commits[i]
		if !rc.free() {
			continue
		}
		if n := len(out); n > 0 && !rc.alone {
			p := &out[n-1]
			last := p.rc
			if len(p.batch) > 0 {
				last = p.batch[len(p.batch)-1]
			}
			if !p.rc.alone && last.idx == rc.idx+1 && batchKey(rc.c) != "" && batchKey(rc.c) == batchKey(p.rc.c) {
				p.batch = append(p.batch, rc)
				continue
			}
		}
		out = append(out, probe{rc: rc})
	}
	return out
}

// changes turns the attribution into Changes, ordered by the position of each change's newest
// commit (its merge), oldest first.
func (a *attribution) changes() []compliance.Change {
	type entry struct {
		last int
		ch   compliance.Change
	}
	var entries []*entry
	byPR := map[int]*entry{}
	for _, rc := range a.commits {
		if rc.pr == nil {
			push := toCommit(rc.c)
			entries = append(entries, &entry{last: rc.idx, ch: compliance.Change{
				Kind: compliance.KindDirectPush, Push: &push, RangeCommits: []string{rc.sha},
			}})
			continue
		}
		n := rc.pr.pr.GetNumber()
		e := byPR[n]
		if e == nil {
			pr := rc.pr.toCompliance()
			e = &entry{ch: compliance.Change{Kind: compliance.KindPullRequest, PR: &pr}}
			if rc.pr.recorded != nil {
				rec := rc.pr.recorded.Record
				e.ch.Recorded = &rec
			}
			byPR[n] = e
			entries = append(entries, e)
		}
		e.ch.RangeCommits = append(e.ch.RangeCommits, rc.sha)
		e.last = rc.idx
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].last < entries[j].last })
	out := make([]compliance.Change, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.ch)
	}
	return out
}
