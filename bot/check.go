package bot

import (
	"context"
	"fmt"
	"time"

	"sockembot/compliance"
	"sockembot/integrations/store"
)

// RangeGatherer is what the check needs from GitHub.
type RangeGatherer interface {
	Gather(ctx context.Context, repo, base, head string) (compliance.Range, error)
}

// TicketSource is what the check needs from Jira.
type TicketSource interface {
	Projects(ctx context.Context) ([]string, error)
	Tickets(ctx context.Context, keys []string) (map[string]compliance.Ticket, error)
}

// EvidenceWriter is the part of the store every step that leaves evidence uses.
type EvidenceWriter interface {
	Append(ctx context.Context, e store.Evidence) (store.Record, error)
}

// Checker runs one compliance check: gather, evaluate, record. It decides nothing itself.
type Checker struct {
	GitHub RangeGatherer
	Jira   TicketSource
	// Evidence is optional: without a store the check still runs (the CLI in a CI job).
	Evidence EvidenceWriter
	// Files, when set, is where a repository's own policy (.sockembot.yml) is read from.
	Files PolicyFiles
	Now   func() time.Time
}

// CheckRun is the recorded outcome of one check.
type CheckRun struct {
	Report       compliance.Report
	Policy       compliance.Policy
	PolicyHash   string
	PolicySource string // "global", or "OWNER/NAME/.sockembot.yml"
	Seq          int64  // evidence sequence number, 0 when not recorded
	At           time.Time
}

// CheckRunEvidence is the body of a check_run evidence record: everything needed to re-derive
// the verdict later, frozen as it was seen.
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

// Check gathers base..head of repo, evaluates it under the policy that applies to repo (its own
// .sockembot.yml, else p) and records the run. Any error, or a
// panic anywhere below, comes back as an error: a check that could not run is never a pass.
func (c *Checker) Check(ctx context.Context, repo, base, head string, p compliance.Policy, trigger string) (run CheckRun, err error) {
	return c.CheckDeploy(ctx, repo, base, head, p, trigger, "")
}

// CheckDeploy is Check for a deploy to production requested by the GitHub user requesterLogin
// ("" when unknown): the report also carries the separation-of-duties finding
// (compliance.ApplyDuties), so the recorded verdict is the one the deploy gate acts on.
func (c *Checker) CheckDeploy(ctx context.Context, repo, base, head string, p compliance.Policy, trigger, requesterLogin string) (run CheckRun, err error) {
	err = Safely(func() error {
		var e error
		run, e = c.check(ctx, repo, base, head, p, trigger, requesterLogin)
		return e
	})
	return run, err
}

func (c *Checker) check(ctx context.Context, repo, base, head string, p compliance.Policy, trigger, requesterLogin string) (CheckRun, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	p, source, err := c.PolicyFor(ctx, repo, p)
	if err != nil {
		return CheckRun{}, err
	}
	if err := p.Validate(); err != nil {
		return CheckRun{}, fmt.Errorf("policy: %w", err)
	}
	// GitHub and the Jira project list are independent: fetch them at once.
	type projects struct {
		keys []string
		err  error
	}
	pc := make(chan projects, 1)
	go func() {
		keys, err := c.Jira.Projects(ctx)
		pc <- projects{keys, err}
	}()
	rng, err := c.GitHub.Gather(ctx, repo, base, head)
	pr := <-pc
	if err != nil {
		return CheckRun{}, fmt.Errorf("gather %s %s..%s: %w", repo, base, head, err)
	}
	if pr.err != nil {
		return CheckRun{}, fmt.Errorf("jira projects: %w", pr.err)
	}
	facts := compliance.Facts{Range: rng, JiraProjects: pr.keys, Tickets: map[string]compliance.Ticket{}}
	if keys := compliance.LookupKeys(p, rng, pr.keys); len(keys) > 0 {
		facts.Tickets, err = c.Jira.Tickets(ctx, keys)
		if err != nil {
			return CheckRun{}, fmt.Errorf("jira tickets: %w", err)
		}
	}
	report := compliance.ApplyDuties(p, compliance.Evaluate(p, facts), requesterLogin)
	run := CheckRun{Report: report, Policy: p, PolicyHash: compliance.PolicyHash(p), PolicySource: source, At: now().UTC()}
	if c.Evidence != nil {
		rec, err := c.Evidence.Append(ctx, store.Evidence{
			At: run.At, Kind: store.KindCheckRun, Repo: repo, Subject: rng.HeadSHA,
			Body: CheckRunEvidence{
				Repo: repo, Base: base, Head: head, BaseSHA: rng.BaseSHA, HeadSHA: rng.HeadSHA,
				Policy: p, PolicyHash: run.PolicyHash, PolicySource: source, Compliant: report.Compliant,
				Facts: facts, Report: report, Trigger: trigger, RequesterLogin: requesterLogin,
			},
		})
		if err != nil {
			// Unrecorded evidence is a failed check: the audit trail must not have holes.
			return CheckRun{}, fmt.Errorf("record check run: %w", err)
		}
		run.Seq = rec.Seq
	}
	return run, nil
}
