package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"sockembot/bot/deploygate"
	"sockembot/bot/mergegate"
	"sockembot/bot/render"
	"sockembot/compliance"
	"time"
)

// Chain is what the summary reads: the evidence, and the chain's head as an anchor.
type Chain interface {
	Records(ctx context.Context, kind, subject string, fn func(compliance.Record) error) error
	Head(ctx context.Context) (seq int64, hash string, err error)
}

// DailySummary counts day (a UTC date) from the evidence: merges and their verdicts, deploys,
// refusals, overrides, direct pushes, violations by kind, and the chain's head. The caller adds
// what is overdue and posts it.
func DailySummary(ctx context.Context, st Chain, day time.Time) (render.Summary, error) {
	from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 1)
	s := render.Summary{Day: from, Violations: map[compliance.Code]int{}}
	inDay := func(r compliance.Record) bool { return !r.At.Before(from) && r.At.Before(to) }
	// A change merged and deployed the same day (or deployed twice) is one change: its
	// violations count once.
	counted := map[string]bool{}
	countViolations := func(rep compliance.Report) {
		for _, c := range rep.Changes {
			for _, v := range c.Violations {
				key := rep.Repo + " " + c.Name() + " " + string(v.Code)
				if !counted[key] {
					counted[key] = true
					s.Violations[v.Code]++
				}
			}
		}
	}

	err := st.Records(ctx, compliance.EvidenceMergeVerdict, "", func(r compliance.Record) error {
		// A merge counts on the day it happened, even when reconciliation recorded it later. It
		// cannot be recorded before it happened (give or take GitHub's clock against ours).
		if r.At.Before(from.Add(-time.Hour)) {
			return nil
		}
		var ev mergegate.MergeVerdictEvidence
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			return fmt.Errorf("merge verdict #%d: %w", r.Seq, err)
		}
		at := ev.MergedAt
		if at.IsZero() {
			at = r.At
		}
		if at.Before(from) || !at.Before(to) {
			return nil
		}
		s.Merges++
		if ev.Compliant {
			s.CompliantMerges++
		} else {
			s.NonCompliantMerges = append(s.NonCompliantMerges, mergegate.Subject(ev.Repo, ev.Number))
		}
		countViolations(ev.Report)
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("daily summary: merges: %w", err)
	}
	err = st.Records(ctx, compliance.EvidenceDeploymentCreated, "", func(r compliance.Record) error {
		if !inDay(r) {
			return nil
		}
		var ev deploygate.DeploymentEvidence
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			return fmt.Errorf("deployment #%d: %w", r.Seq, err)
		}
		s.Deploys++
		if ev.Compliant {
			s.CompliantDeploys++
		}
		if ev.Override != nil {
			s.Overrides++
		}
		countViolations(ev.Report)
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("daily summary: deploys: %w", err)
	}
	err = st.Records(ctx, compliance.EvidenceDeployRefused, "", func(r compliance.Record) error {
		if !inDay(r) {
			return nil
		}
		// Refused as not compliant: not a superseded digest, a failed confirmation or a typo.
		var ev deploygate.DeployRefusedEvidence
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			return fmt.Errorf("deploy refusal #%d: %w", r.Seq, err)
		}
		if len(ev.Violations) > 0 {
			s.RefusedDeploys++
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("daily summary: refused deploys: %w", err)
	}
	err = st.Records(ctx, compliance.EvidenceDirectPush, "", func(r compliance.Record) error {
		if inDay(r) {
			s.DirectPushes++
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("daily summary: direct pushes: %w", err)
	}
	if s.HeadSeq, s.HeadHash, err = st.Head(ctx); err != nil {
		return s, fmt.Errorf("daily summary: %w", err)
	}
	return s, nil
}
