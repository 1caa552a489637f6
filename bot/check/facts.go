package check

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"sockembot/compliance"
)

// FactsStore is where merged pull requests' facts are kept once fetched (the evidence store).
type FactsStore interface {
	// AuthenticRecords calls fn for each record of kind about one of subjects whose MAC checks
	// out; an edited record is an error.
	AuthenticRecords(ctx context.Context, kind string, subjects []string, fn func(compliance.Record) error) error
	// AppendOnce appends e unless (scope, key) was claimed before, on any replica.
	AppendOnce(ctx context.Context, scope, key string, e compliance.Evidence) (compliance.Record, bool, error)
}

// PullFactsVersion is what a pull_request_facts record holds. A record of another version is not
// reused: a later sockembot that needs more facts than were recorded fetches them again.
const PullFactsVersion = 1

// PullFactsEvidence is the body of a pull_request_facts record: a merged pull request's facts
// as sockembot first fetched them, with its reviews as they stood at the merge (a review
// submitted later is left out: it reviewed nothing that was merged). Field names are stored in
// the chain: never rename them.
type PullFactsEvidence struct {
	Version  int                    `json:"version"`
	Repo     string                 `json:"repo"`
	Number   int                    `json:"number"`
	MergeSHA string                 `json:"merge_sha"`
	PR       compliance.PullRequest `json:"pull_request"`
	// Trigger is the check that fetched them ("merge via webhook", "deploy/12 by U0ALICE").
	Trigger string `json:"trigger"`
}

// recordedPulls finds, for the range commits shas of repo, the merged pull requests whose facts
// were recorded, keyed by merge SHA (the oldest record of each wins: it is nearest the merge).
func (c *Checker) recordedPulls(repo string) func(context.Context, []string) (map[string]compliance.RecordedPull, error) {
	return func(ctx context.Context, shas []string) (map[string]compliance.RecordedPull, error) {
		subjects := make([]string, len(shas))
		for i, sha := range shas {
			subjects[i] = compliance.PullFactsSubject(repo, sha)
		}
		out := map[string]compliance.RecordedPull{}
		err := c.Facts.AuthenticRecords(ctx, compliance.EvidencePullFacts, subjects, func(r compliance.Record) error {
			var ev PullFactsEvidence
			if err := json.Unmarshal(r.Body, &ev); err != nil {
				return fmt.Errorf("record %d: %w", r.Seq, err)
			}
			sha := ev.PR.MergeSHA
			switch {
			case ev.Version != PullFactsVersion, ev.Repo != repo, r.Repo != repo, ev.Number != ev.PR.Number, ev.Number <= 0,
				sha == "", ev.MergeSHA != sha, r.Subject != compliance.PullFactsSubject(repo, sha), ev.PR.MergedAt.IsZero():
				return nil // not facts this check can stand on: fetched again
			}
			if _, seen := out[sha]; !seen {
				out[sha] = compliance.RecordedPull{PR: ev.PR, Record: compliance.FactsRecord{Seq: r.Seq, At: r.At}}
			}
			return nil
		})
		return out, err
	}
}

// recordPulls keeps the facts of every merged pull request of rng that was fetched from GitHub
// for this check (not reused), once per merge across checks and replicas.
func (c *Checker) recordPulls(ctx context.Context, repo, trigger string, rng compliance.Range) error {
	for _, ch := range rng.Changes {
		pr := ch.PR
		if ch.Kind != compliance.KindPullRequest || pr == nil || ch.Recorded != nil || pr.MergeSHA == "" || pr.MergedAt.IsZero() || pr.Number <= 0 {
			continue
		}
		kept := *pr
		kept.Reviews = slices.DeleteFunc(slices.Clone(pr.Reviews), func(r compliance.Review) bool { return r.SubmittedAt.After(pr.MergedAt) })
		subject := compliance.PullFactsSubject(repo, pr.MergeSHA)
		_, _, err := c.Facts.AppendOnce(ctx, compliance.EvidencePullFacts, subject, compliance.Evidence{
			At: c.now(), Kind: compliance.EvidencePullFacts, Repo: repo, Subject: subject,
			Body: PullFactsEvidence{Version: PullFactsVersion, Repo: repo, Number: pr.Number, MergeSHA: pr.MergeSHA, PR: kept, Trigger: trigger},
		})
		if err != nil {
			return Errorf("record the facts of %s#%d: %w", repo, pr.Number, err)
		}
	}
	return nil
}
