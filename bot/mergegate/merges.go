package mergegate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"sockembot/bot/check"
	"sockembot/bot/render"
	"sockembot/compliance"
)

// reconcileLookback is how far back the first reconciliation of a repository looks, when no
// cursor has been stored yet.
const reconcileLookback = 24 * time.Hour

// reconcileOverlap re-reads a little before the cursor: GitHub's list of closed pull requests is
// eventually consistent, so a PR merged just before the last run may only show up now. Merges
// already recorded are skipped, so the overlap costs requests, never duplicates.
const reconcileOverlap = time.Hour

// RecordMerge records the verdict on a merged pull request as frozen evidence and posts the
// merge note. Whether the webhook, a redelivery or the reconciliation job gets there first, on
// any replica, a merge is recorded once. It reports whether this call recorded it.
func (g *Gate) RecordMerge(ctx context.Context, repo string, number int, via string) (bool, error) {
	subject := Subject(repo, number)
	// Under the PR's lock, "no verdict yet" cannot change before this call records one.
	unlock, err := g.Locks.Lock(ctx, subject)
	if err != nil {
		return false, check.Errorf("merge %s: %w", subject, err)
	}
	defer unlock()
	if done, err := g.mergeRecorded(ctx, subject); err != nil {
		return false, err
	} else if done {
		// Recorded before; if its note did not reach Slack then (the delivery is being
		// retried for that), post it now.
		return false, g.postMergeNote(ctx, subject, nil, 0)
	}
	var ev MergeVerdictEvidence
	run, err := g.Checker.Check(ctx, check.Request{
		Repo: repo, PR: number, Policy: g.Config.Policy, Trigger: "merge via " + via,
		Record: func(run check.Run) compliance.Evidence {
			pr := run.Facts.Range.Changes[0].PR
			ev = MergeVerdictEvidence{
				Repo: repo, Number: number, Title: pr.Title, URL: pr.URL, HeadSHA: pr.HeadSHA,
				MergeSHA: pr.MergeSHA, MergedBy: pr.MergedBy, MergedAt: pr.MergedAt,
				Policy: run.Policy, PolicyHash: run.PolicyHash, PolicySource: run.PolicySource, Compliant: run.Report.Compliant,
				Facts: run.Facts, Report: run.Report, Source: via,
			}
			return compliance.Evidence{At: run.At, Kind: compliance.EvidenceMergeVerdict, Repo: repo, Subject: subject, Body: ev}
		},
	})
	if err != nil {
		// Fail closed, loudly: the release channel hears that a merge could not be judged.
		g.postMergeFailure(ctx, subject, err)
		return false, check.Errorf("merge %s: %w", subject, err)
	}
	g.log().WithFields(logrus.Fields{"repo": repo, "pr": number, "compliant": run.Report.Compliant, "source": via, "seq": run.Seq}).Info("merge gate: merge recorded")
	return true, g.postMergeNote(ctx, subject, &ev, run.Seq)
}

// postMergeNote posts the merge note of subject to the release channel unless it was posted
// before. ev nil means: read the verdict back from the evidence.
func (g *Gate) postMergeNote(ctx context.Context, subject string, ev *MergeVerdictEvidence, seq int64) error {
	if g.Config.ReleaseChannel == "" {
		return nil
	}
	return g.Notices.PostOnce(ctx, "merge_note:"+subject, g.Config.ReleaseChannel, "", func() (string, error) {
		if ev == nil {
			rec, found, err := g.Store.LastRecord(ctx, compliance.EvidenceMergeVerdict, subject)
			if err == nil && !found {
				err = compliance.ErrNotFound
			}
			if err != nil {
				return "", check.Errorf("merge %s: read verdict: %w", subject, err)
			}
			ev, seq = new(MergeVerdictEvidence), rec.Seq
			if err := json.Unmarshal(rec.Body, ev); err != nil {
				return "", check.Errorf("merge %s: read verdict %d: %w", subject, rec.Seq, err)
			}
		}
		n := render.MergeNote{Repo: ev.Repo, Number: ev.Number, Title: ev.Title, URL: ev.URL, MergedBy: ev.MergedBy,
			Compliant: ev.Compliant, Reconciled: ev.Source == "reconcile", Seq: seq}
		if len(ev.Report.Changes) > 0 {
			n.Change = ev.Report.Changes[0]
		}
		return render.MergeNoteText(n), nil
	})
}

func (g *Gate) postMergeFailure(ctx context.Context, subject string, err error) {
	if g.Config.ReleaseChannel == "" {
		return
	}
	// Said once per merge, not on every retry of the delivery; retried until Slack takes it.
	perr := g.Notices.PostOnce(ctx, "merge_failure_note:"+subject, g.Config.ReleaseChannel, "", func() (string, error) {
		return render.MergeFailureNote(subject, render.Failure{Doing: "check the merged pull request", Err: err,
			Consequence: "The merge is not treated as compliant; sockembot will try to judge it again."}), nil
	})
	if perr != nil {
		g.log().WithError(perr).Warn("merge gate: post failure note")
	}
}

// mergeRecorded says whether a merge_verdict record exists for subject.
func (g *Gate) mergeRecorded(ctx context.Context, subject string) (bool, error) {
	errFound := errors.New("found")
	err := g.Store.Records(ctx, compliance.EvidenceMergeVerdict, subject, func(compliance.Record) error { return errFound })
	if errors.Is(err, errFound) {
		return true, nil
	}
	if err != nil {
		return false, check.Errorf("merge verdicts of %s: %w", subject, err)
	}
	return false, nil
}

// Reconcile records every merge of a configured repository that no webhook delivered: GitHub
// does not retry failed deliveries, so without this a merge during an outage would leave no
// verdict. It returns how many merges it recorded.
func (g *Gate) Reconcile(ctx context.Context) (int, error) {
	total := 0
	var errs []string
	for _, repo := range g.Config.Repos {
		n, err := g.reconcileRepo(ctx, repo)
		total += n
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return total, fmt.Errorf("reconcile: %s", strings.Join(errs, "; "))
	}
	return total, nil
}

func (g *Gate) reconcileRepo(ctx context.Context, repo string) (int, error) {
	key := "reconcile.cursor:" + repo
	since := g.now().Add(-reconcileLookback)
	if v, ok, err := g.Store.GetState(ctx, key); err != nil {
		return 0, check.Errorf("%s: cursor: %w", repo, err)
	} else if ok {
		if since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return 0, check.Errorf("%s: cursor %q: %w", repo, v, err)
		}
	}
	prs, err := g.GitHub.MergedPullsSince(ctx, repo, since.Add(-reconcileOverlap))
	if err != nil {
		return 0, check.Errorf("%s: merged pull requests: %w", repo, err)
	}
	sort.SliceStable(prs, func(i, j int) bool { return prs[i].MergedAt.Before(prs[j].MergedAt) })
	recorded := 0
	cursor := since
	var failed []error
	for _, pr := range prs {
		done, err := g.mergeRecorded(ctx, Subject(repo, pr.Number))
		if err == nil && !done {
			var first bool
			first, err = g.RecordMerge(ctx, repo, pr.Number, "reconcile")
			if first {
				recorded++
			}
		}
		if err != nil {
			// The cursor stops before the failed merge, so the next run tries it again; the
			// merges after it are still recorded now, so one merge that keeps failing does not
			// hide every later one.
			failed = append(failed, check.Errorf("%s#%d: %w", repo, pr.Number, err))
			continue
		}
		if len(failed) == 0 && pr.MergedAt.After(cursor) {
			cursor = pr.MergedAt
		}
	}
	if err := g.Store.SetState(ctx, key, cursor.UTC().Format(time.RFC3339Nano)); err != nil {
		failed = append(failed, check.Errorf("save %s: %w", key, err))
	}
	return recorded, errors.Join(failed...)
}
