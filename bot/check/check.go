// Package check is sockembot's one check path, for a release range and for a single pull
// request alike: policy → gather (GitHub and Jira's projects in parallel) → tickets → evaluate →
// record. It decides nothing itself (compliance.Evaluate does) and publishes nothing (the gates
// do). A check that could not run, for any reason including a panic in an adapter, is an error:
// never a pass.
package check

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"sockembot/compliance"
)

// GitHub is what a check reads from GitHub.
type GitHub interface {
	// GatherKnown collects base..head, reusing the facts known finds for the merge commits in
	// it (nil: fetch everything).
	GatherKnown(ctx context.Context, repo, base, head string, known func(ctx context.Context, mergeSHAs []string) (map[string]compliance.RecordedPull, error)) (compliance.Range, error)
	// GatherQueue is Gather for a merge queue's group: base..head holds GitHub's merge (or
	// squash) commits of pull requests that are still open, each confirmed against its head.
	GatherQueue(ctx context.Context, repo, base, head string) (compliance.Range, error)
	PullRequest(ctx context.Context, repo string, number int) (compliance.Change, error)
	// ResolveRef turns a branch, tag or short SHA into a commit SHA.
	ResolveRef(ctx context.Context, repo, ref string) (string, error)
}

// Jira is what a check reads from Jira.
type Jira interface {
	Projects(ctx context.Context) ([]string, error)
	Tickets(ctx context.Context, keys []string) (map[string]compliance.Ticket, error)
}

// Evidence is where a check's record goes.
type Evidence interface {
	Append(ctx context.Context, e compliance.Evidence) (compliance.Record, error)
}

// Checker runs checks.
type Checker struct {
	GitHub GitHub
	Jira   Jira
	// Evidence is optional: without a store the check still runs (the CLI in a CI job).
	Evidence Evidence
	// Files, when set, is where a repository's own policy (.sockembot.yml) is read from.
	Files PolicyFiles
	// Facts, when set, keeps the facts of each merged pull request the first time a check
	// fetches them, and gives them to later checks of ranges that contain its merge commit, so
	// they are not fetched again (ticket statuses are always read live, and the verdict is
	// evaluated anew under the policy in force).
	Facts FactsStore
	Now   func() time.Time
}

// Request is one check: the range Base..Head of Repo, or, with PR set, that pull request as it
// is now.
type Request struct {
	Repo       string
	Base, Head string
	PR         int
	// Queue says Base..Head is a merge queue's group (merge_group): its pull requests are
	// queued, not merged yet.
	Queue bool
	// Policy is the global policy (with its owners and floor); the repository's own
	// .sockembot.yml, as it is at the base, replaces it, raised to the floor where looser.
	Policy  compliance.Policy
	Trigger string // what asked for the check, recorded with it ("cli", "deploy/12 by U0ALICE")
	// RequesterLogin is the GitHub login of whoever deploys to production, for separation of
	// duties (compliance.ApplyDuties); "" when it does not apply.
	RequesterLogin string
	// Record, when set, makes the evidence record of the run instead of a check_run (a merge
	// verdict records the facts in its own terms).
	Record func(Run) compliance.Evidence
}

// Run is the outcome of one check.
type Run struct {
	Facts        compliance.Facts
	Report       compliance.Report
	Policy       compliance.Policy
	PolicyHash   string
	PolicySource string // "global", or "OWNER/NAME/.sockembot.yml@SHA[ raised to the policy floor (...)]"
	Seq          int64  // evidence sequence number, 0 when not recorded
	At           time.Time
}

// Change is the verdict on the one pull request of a PR check.
func (r Run) Change() compliance.ChangeReport {
	if len(r.Report.Changes) == 0 {
		return compliance.ChangeReport{}
	}
	return r.Report.Changes[0]
}

// CheckRunEvidence is the body of a check_run record: everything needed to re-derive the verdict
// later, frozen as it was seen. Field names are stored in the chain: never rename them.
type CheckRunEvidence struct {
	Repo         string            `json:"repo"`
	Base         string            `json:"base"`
	Head         string            `json:"head"`
	BaseSHA      string            `json:"base_sha"`
	HeadSHA      string            `json:"head_sha"`
	Policy       compliance.Policy `json:"policy"`
	PolicyHash   string            `json:"policy_hash"`
	PolicySource string            `json:"policy_source,omitempty"`
	Compliant    bool              `json:"compliant"`
	Facts        compliance.Facts  `json:"facts"`
	Report       compliance.Report `json:"report"`
	Trigger      string            `json:"trigger"`
	// RequesterLogin is the deploy requester's GitHub login when separation of duties applied.
	RequesterLogin string `json:"requester_login,omitempty"`
}

// Check runs req: the policy that applies to the repository, every fact gathered, the verdict,
// and the record. Any error, or a panic anywhere below (in any goroutine of the check), comes
// back as an error: a check that could not run is never a pass.
func (c *Checker) Check(ctx context.Context, req Request) (run Run, err error) {
	err = Safely(func() error {
		var e error
		run, e = c.check(ctx, req)
		return e
	})
	return run, err
}

func (c *Checker) check(ctx context.Context, req Request) (Run, error) {
	facts, pol, err := c.gather(ctx, req)
	if err != nil {
		return Run{}, err
	}
	// A change is judged by the policy in force before it: at the release's base, or at the
	// pull request's base commit; never by one a change in the range writes.
	if pol == nil {
		at := facts.Range.BaseSHA
		if req.PR != 0 {
			at = facts.Range.Changes[0].PR.BaseSHA
		}
		pol = new(policyRead)
		pol.p, pol.source, pol.err = c.PolicyAt(ctx, req.Repo, at, req.Policy)
	}
	if pol.err != nil {
		return Run{}, Trace(pol.err)
	}
	p, source := pol.p, pol.source
	if err := p.Validate(); err != nil {
		return Run{}, Errorf("policy: %w", err)
	}
	if err := c.tickets(ctx, p, &facts); err != nil {
		return Run{}, err
	}
	if c.Facts != nil {
		if err := c.recordPulls(ctx, req.Repo, req.Trigger, facts.Range); err != nil {
			return Run{}, err
		}
	}
	report := compliance.ApplyDuties(p, compliance.Evaluate(p, facts), req.RequesterLogin)
	run := Run{Facts: facts, Report: report, Policy: p, PolicyHash: compliance.PolicyHash(p), PolicySource: source, At: c.now()}
	if c.Evidence == nil {
		return run, nil
	}
	e := compliance.Evidence{
		At: run.At, Kind: compliance.EvidenceCheckRun, Repo: req.Repo, Subject: facts.Range.HeadSHA,
		Body: CheckRunEvidence{
			Repo: req.Repo, Base: facts.Range.Base, Head: facts.Range.Head, BaseSHA: facts.Range.BaseSHA, HeadSHA: facts.Range.HeadSHA,
			Policy: p, PolicyHash: run.PolicyHash, PolicySource: source, Compliant: report.Compliant,
			Facts: facts, Report: report, Trigger: req.Trigger, RequesterLogin: req.RequesterLogin,
		},
	}
	if req.Record != nil {
		e = req.Record(run)
	}
	rec, err := c.Evidence.Append(ctx, e)
	if err != nil {
		// Unrecorded evidence is a failed check: the audit trail must not have holes.
		return Run{}, Errorf("record %s: %w", e.Kind, err)
	}
	run.Seq = rec.Seq
	return run, nil
}

// policyRead is the policy in force, its source, or why it could not be read.
type policyRead struct {
	p      compliance.Policy
	source string
	err    error
}

// gather fetches the range (or the pull request) from GitHub, Jira's project list, and which
// changes edit the policy file. For a range, both ends are pinned to commits first, so the
// policy in force at the base and the commits that changed the policy file up to the head are
// read at the same time as the range; pol is then that policy (nil: read it after).
func (c *Checker) gather(ctx context.Context, req Request) (compliance.Facts, *policyRead, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	projects := background(func() ([]string, error) { return c.Jira.Projects(ctx) })
	var (
		policy  func() (policyRead, error)
		touched func() ([]string, error)
		names   = req
	)
	if req.PR == 0 && c.Files != nil {
		shas, err := c.pin(ctx, req.Repo, req.Base, req.Head)
		if err != nil {
			return compliance.Facts{}, nil, err
		}
		req.Base, req.Head = shas[0], shas[1]
		policy = background(func() (policyRead, error) {
			p, source, err := c.PolicyAt(ctx, req.Repo, req.Base, req.Policy)
			return policyRead{p: p, source: source}, err
		})
		touched = background(func() ([]string, error) { return c.Files.PathCommits(ctx, req.Repo, req.Head, RepoPolicyPath) })
	}
	rng, err := c.gatherGitHub(ctx, req)
	keys, perr := projects()
	if err != nil {
		return compliance.Facts{}, nil, err
	}
	if perr != nil {
		return compliance.Facts{}, nil, Errorf("jira projects: %w", perr)
	}
	if req.PR == 0 {
		rng.Base, rng.Head = names.Base, names.Head // as asked, not as pinned
	}
	if c.Files != nil {
		if touched == nil { // a pull request: its head is known only now
			touched = func() ([]string, error) { return c.Files.PathCommits(ctx, rng.Repo, rng.HeadSHA, RepoPolicyPath) }
		}
		shas, err := touched()
		if err != nil {
			return compliance.Facts{}, nil, Errorf("find changes to %s: %w", RepoPolicyPath, err)
		}
		if err := c.policyEdits(ctx, &rng, shas); err != nil {
			return compliance.Facts{}, nil, err
		}
	}
	var pol *policyRead
	if policy != nil {
		// Waited for here, while the context is live.
		r, err := policy()
		r.err = err
		pol = &r
	}
	return compliance.Facts{Range: rng, JiraProjects: keys, Tickets: map[string]compliance.Ticket{}}, pol, nil
}

// pin resolves base and head to commit SHAs, at the same time (a full SHA is its own answer).
func (c *Checker) pin(ctx context.Context, repo, base, head string) ([2]string, error) {
	refs := [2]string{base, head}
	var shas [2]string
	var waits [2]func() (string, error)
	for i, ref := range refs {
		if fullSHA.MatchString(ref) {
			shas[i] = ref
			continue
		}
		waits[i] = background(func() (string, error) { return c.GitHub.ResolveRef(ctx, repo, ref) })
	}
	for i, wait := range waits {
		if wait == nil {
			continue
		}
		var err error
		if shas[i], err = wait(); err != nil {
			return shas, Errorf("gather %s %s..%s: resolve %s: %w", repo, base, head, refs[i], err)
		}
	}
	return shas, nil
}

// fullSHA is a full commit SHA: it names one commit, with its tree and history, forever.
var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// background runs fn in a goroutine of its own, a panic there recovered into the error like the
// rest of the check's, and returns the wait for its result.
func background[T any](fn func() (T, error)) func() (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		r.err = Safely(func() error {
			var err error
			r.v, err = fn()
			return err
		})
		ch <- r
	}()
	return func() (T, error) {
		r := <-ch
		return r.v, r.err
	}
}

// tickets reads from Jira every ticket the changes reference, as p counts references.
func (c *Checker) tickets(ctx context.Context, p compliance.Policy, facts *compliance.Facts) error {
	if keys := compliance.LookupKeys(p, facts.Range, facts.JiraProjects); len(keys) > 0 {
		var err error
		if facts.Tickets, err = c.Jira.Tickets(ctx, keys); err != nil {
			return Errorf("jira tickets: %w", err)
		}
	}
	return nil
}

// gatherGitHub reads the range, or the one pull request (a range of exactly that change).
func (c *Checker) gatherGitHub(ctx context.Context, req Request) (compliance.Range, error) {
	if req.PR == 0 {
		var known func(context.Context, []string) (map[string]compliance.RecordedPull, error)
		if c.Facts != nil {
			known = c.recordedPulls(req.Repo)
		}
		gather := func(ctx context.Context, repo, base, head string) (compliance.Range, error) {
			return c.GitHub.GatherKnown(ctx, repo, base, head, known)
		}
		if req.Queue {
			gather = c.GitHub.GatherQueue
		}
		rng, err := gather(ctx, req.Repo, req.Base, req.Head)
		if err != nil {
			return compliance.Range{}, Errorf("gather %s %s..%s: %w", req.Repo, req.Base, req.Head, err)
		}
		return rng, nil
	}
	change, err := c.GitHub.PullRequest(ctx, req.Repo, req.PR)
	if err != nil {
		return compliance.Range{}, Errorf("pull request %s#%d: %w", req.Repo, req.PR, err)
	}
	if change.PR == nil {
		return compliance.Range{}, Errorf("pull request %s#%d: GitHub returned no pull request facts", req.Repo, req.PR)
	}
	return compliance.Range{
		Repo: req.Repo, Head: fmt.Sprintf("#%d", req.PR), HeadSHA: change.PR.HeadSHA,
		Changes: []compliance.Change{change},
	}, nil
}

func (c *Checker) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}
