package mergegate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"

	"sockembot/bot/check"
	"sockembot/bot/render"
	"sockembot/compliance"
)

// Check run conclusions as the GitHub API spells them.
const (
	ConclusionSuccess   = "success"
	ConclusionFailure   = "failure"
	ConclusionCancelled = "cancelled"
)

// pending marks sha as being checked: the pending commit status and, in App mode, check run
// CheckRunName in progress, whose id it returns (0 when there is none). Neither is fatal: the
// verdict is what counts, and it is published whether or not these got through.
func (g *Gate) pending(ctx context.Context, log *logrus.Entry, repo, sha string) int64 {
	if err := g.GitHub.SetStatus(ctx, repo, sha, StatusPending, StatusContext, "checking tickets and approvals…", ""); err != nil {
		log.WithError(err).Warn("merge gate: pending status")
	}
	if !g.Config.CheckRuns {
		return 0
	}
	id, err := g.GitHub.StartCheckRun(ctx, repo, sha, CheckRunName)
	if err != nil {
		log.WithError(err).Warn("merge gate: start check run")
		return 0
	}
	return id
}

// publish sets the verdict on sha: the commit status (state, description) and, in App mode, the
// check run (runID, or a new one) with a title and the summary of report.
func (g *Gate) publish(ctx context.Context, repo, sha string, runID int64, state, description string, report compliance.Report, intro string) error {
	if err := g.GitHub.SetStatus(ctx, repo, sha, state, StatusContext, description, ""); err != nil {
		return check.Errorf("set status: %w", err)
	}
	if !g.Config.CheckRuns {
		return nil
	}
	conclusion := ConclusionFailure
	if state == StatusSuccess {
		conclusion = ConclusionSuccess
	}
	if err := g.GitHub.FinishCheckRun(ctx, repo, sha, CheckRunName, runID, conclusion,
		render.CheckRunTitle(report), render.CheckRunSummary(intro, report), true); err != nil {
		return check.Errorf("check run: %w", err)
	}
	return nil
}

// publishError fails sha closed: the error status and, in App mode, a failed check run with the
// failure report, so whoever looks at the pull request sees why.
func (g *Gate) publishError(ctx context.Context, repo, sha string, runID int64, cause error) error {
	var errs []error
	if err := g.GitHub.SetStatus(ctx, repo, sha, StatusError, StatusContext, statusErrorDescription(cause), ""); err != nil {
		errs = append(errs, check.Errorf("set error status: %w", err))
	}
	if g.Config.CheckRuns {
		title := render.TruncateRunes("Could not check: "+strings.Join(strings.Fields(statusErrorDescription(cause)), " "), 200)
		summary := "sockembot could not finish this check, so the change is **not** treated as compliant. " +
			"Fix what the error names (or wait for GitHub or Jira to recover) and press **Re-check**.\n\n" + indentCode(render.Failure{Doing: "check", Err: cause}.Text())
		if err := g.GitHub.FinishCheckRun(ctx, repo, sha, CheckRunName, runID, ConclusionFailure, title, summary, true); err != nil {
			errs = append(errs, check.Errorf("check run: %w", err))
		}
	}
	return errors.Join(errs...)
}

// supersede closes the check run started on old, a head the pull request has moved on from.
func (g *Gate) supersede(ctx context.Context, log *logrus.Entry, repo, old string, runID int64, head string) {
	summary := fmt.Sprintf("The pull request moved to `%s` while this commit was being checked; the verdict is on that commit.", render.Short(head))
	if err := g.GitHub.FinishCheckRun(ctx, repo, old, CheckRunName, runID, ConclusionCancelled, "Superseded by a newer commit", summary, false); err != nil {
		log.WithError(err).Warn("merge gate: close superseded check run")
	}
}

// indentCode makes text a markdown code block by indentation, which nothing inside it can end.
func indentCode(text string) string {
	text = render.TruncateRunes(text, 20000)
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "    " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// mdSource names the policy that decided, for a check run's summary.
func mdSource(source string) string {
	if source == "" || source == check.GlobalPolicySource {
		return "the global policy"
	}
	return "`" + strings.ReplaceAll(source, "`", "'") + "`"
}

// OnCheckRun re-runs sockembot's check when someone presses Re-check on its check run
// (requested_action) or asks GitHub to re-run it (rerequested). Other Apps' check runs, and
// sockembot's own created and completed events, are ignored.
func (g *Gate) OnCheckRun(ctx context.Context, ev compliance.CheckRunEvent) error {
	if ev.Name != CheckRunName || !g.ownApp(ev.AppID) {
		return nil
	}
	switch {
	case ev.Action == "rerequested":
	case ev.Action == "requested_action" && ev.RequestedAction == RecheckAction:
	default:
		return nil
	}
	return g.recheck(ctx, ev.Repo, ev.HeadSHA, ev.PullRequests, fmt.Sprintf("check_run.%s by %s", ev.Action, ev.Sender))
}

// OnCheckSuite re-runs the check when the whole check suite of sockembot is re-requested.
func (g *Gate) OnCheckSuite(ctx context.Context, ev compliance.CheckSuiteEvent) error {
	if ev.Action != "rerequested" || !g.ownApp(ev.AppID) {
		return nil
	}
	return g.recheck(ctx, ev.Repo, ev.HeadSHA, ev.PullRequests, "check_suite.rerequested by "+ev.Sender)
}

func (g *Gate) ownApp(id int64) bool {
	return g.Config.AppID == 0 || id == 0 || id == g.Config.AppID
}

// recheck checks sha again: as a merge group's head when one was recorded there, else as the head
// of each pull request GitHub named.
func (g *Gate) recheck(ctx context.Context, repo, sha string, prs []int, trigger string) error {
	if ev, found, err := g.mergeGroupAt(ctx, repo, sha); err != nil {
		return err
	} else if found {
		_, err := g.CheckMergeGroup(ctx, compliance.MergeGroupEvent{Action: "checks_requested", Repo: repo,
			BaseSHA: ev.BaseSHA, HeadSHA: ev.HeadSHA, BaseRef: ev.BaseRef, HeadRef: ev.HeadRef}, trigger)
		return err
	}
	if len(prs) == 0 {
		// GitHub names no pull request for a fork's head: its next push, edit or review checks it.
		g.log().WithFields(logrus.Fields{"repo": repo, "sha": sha}).Warn("merge gate: re-check of a commit GitHub names no pull request for, and no merge group: nothing to check")
		return nil
	}
	var errs []error
	for _, n := range prs {
		if _, err := g.CheckPullRequest(ctx, repo, n, sha, trigger); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// MergeGroupEvidence is the body of a merge_group_verdict record: the verdict on a merge queue's
// group with every fact it rests on. Field names are stored in the chain: never rename them.
type MergeGroupEvidence struct {
	Repo         string            `json:"repo"`
	BaseSHA      string            `json:"base_sha"`
	HeadSHA      string            `json:"head_sha"`
	BaseRef      string            `json:"base_ref"`
	HeadRef      string            `json:"head_ref"`
	PullRequests []int             `json:"pull_requests"`
	Policy       compliance.Policy `json:"policy"`
	PolicyHash   string            `json:"policy_hash"`
	PolicySource string            `json:"policy_source,omitempty"`
	Compliant    bool              `json:"compliant"`
	Facts        compliance.Facts  `json:"facts"`
	Report       compliance.Report `json:"report"`
	Trigger      string            `json:"trigger"`
}

// MergeGroupDestroyedEvidence is the body of a merge_group_destroyed record.
type MergeGroupDestroyedEvidence struct {
	Repo    string `json:"repo"`
	BaseSHA string `json:"base_sha"`
	HeadSHA string `json:"head_sha"`
	HeadRef string `json:"head_ref"`
	Reason  string `json:"reason"` // merged, invalidated, dequeued
	Sender  string `json:"sender,omitempty"`
}

// MergeGroupSubject names a merge group in evidence and locks: "acme/payments@<head sha>".
func MergeGroupSubject(repo, head string) string { return repo + "@" + head }

// OnMergeGroup checks a merge queue's group when the queue asks for its checks, and records a
// group the queue dropped.
func (g *Gate) OnMergeGroup(ctx context.Context, ev compliance.MergeGroupEvent) error {
	switch ev.Action {
	case "checks_requested":
		_, err := g.CheckMergeGroup(ctx, ev, "merge_group.checks_requested")
		return err
	case "destroyed":
		subject := MergeGroupSubject(ev.Repo, ev.HeadSHA)
		_, _, err := g.Store.AppendOnce(ctx, compliance.EvidenceMergeGroupDestroyed, subject, compliance.Evidence{
			At: g.now(), Kind: compliance.EvidenceMergeGroupDestroyed, Repo: ev.Repo, Subject: subject,
			Body: MergeGroupDestroyedEvidence{Repo: ev.Repo, BaseSHA: ev.BaseSHA, HeadSHA: ev.HeadSHA, HeadRef: ev.HeadRef, Reason: ev.Reason, Sender: ev.Sender},
		})
		if err != nil {
			return check.Errorf("record merge group %s: %w", subject, err)
		}
		return nil
	}
	return nil
}

// CheckMergeGroup checks every change in a merge group (base_sha..head_sha: GitHub's merge of
// each queued pull request onto the one before) and publishes the verdict on head_sha: success
// only if every change is compliant. The queue waits for it, so a group with one non-compliant
// pull request never lands. The verdict is recorded as evidence, like a merge verdict.
func (g *Gate) CheckMergeGroup(ctx context.Context, ev compliance.MergeGroupEvent, trigger string) (check.Run, error) {
	subject := MergeGroupSubject(ev.Repo, ev.HeadSHA)
	log := g.log().WithFields(logrus.Fields{"repo": ev.Repo, "merge_group": ev.HeadRef, "trigger": trigger})
	unlock, err := g.Locks.Lock(ctx, subject)
	if err != nil {
		return check.Run{}, check.Errorf("check merge group %s: %w", subject, err)
	}
	defer unlock()
	runID := g.pending(ctx, log, ev.Repo, ev.HeadSHA)
	run, err := g.Checker.Check(ctx, check.Request{
		Repo: ev.Repo, Base: ev.BaseSHA, Head: ev.HeadSHA, Queue: true, Policy: g.Config.Policy, Trigger: trigger,
		Record: func(run check.Run) compliance.Evidence {
			var prs []int
			for _, c := range run.Report.Changes {
				if c.Number != 0 {
					prs = append(prs, c.Number)
				}
			}
			return compliance.Evidence{At: run.At, Kind: compliance.EvidenceMergeGroupVerdict, Repo: ev.Repo, Subject: subject, Body: MergeGroupEvidence{
				Repo: ev.Repo, BaseSHA: ev.BaseSHA, HeadSHA: ev.HeadSHA, BaseRef: ev.BaseRef, HeadRef: ev.HeadRef, PullRequests: prs,
				Policy: run.Policy, PolicyHash: run.PolicyHash, PolicySource: run.PolicySource, Compliant: run.Report.Compliant,
				Facts: run.Facts, Report: run.Report, Trigger: trigger,
			}}
		},
	})
	if err != nil {
		g.checked(StatusError)
		if perr := g.publishError(ctx, ev.Repo, ev.HeadSHA, runID, err); perr != nil {
			err = errors.Join(err, perr)
		}
		return run, check.Errorf("check merge group %s: %w", subject, err)
	}
	state := StatusFailure
	if run.Report.Compliant {
		state = StatusSuccess
	}
	g.checked(state)
	bad := render.NonCompliant(run.Report)
	description := fmt.Sprintf("all %d changes in the queue are compliant", len(run.Report.Changes))
	if len(run.Report.Changes) == 1 {
		description = "the change in the queue is compliant"
	}
	if len(bad) > 0 {
		description = "not compliant: " + strings.Join(bad, ", ")
	}
	intro := fmt.Sprintf("Merge queue group `%s`: `%s..%s`, judged by %s (policy `%s`). The group lands only if every change in it is compliant.",
		strings.ReplaceAll(strings.TrimPrefix(ev.HeadRef, "refs/heads/"), "`", "'"), render.Short(ev.BaseSHA), render.Short(ev.HeadSHA), mdSource(run.PolicySource), render.Short(run.PolicyHash))
	if err := g.publish(ctx, ev.Repo, ev.HeadSHA, runID, state, render.TruncateRunes(description, render.MaxStatusDescription), run.Report, intro); err != nil {
		return run, check.Errorf("merge group %s: %w", subject, err)
	}
	log.WithFields(logrus.Fields{"state": state, "seq": run.Seq}).Info("merge gate: merge group checked")
	return run, nil
}

// mergeGroupAt reads back the newest recorded merge group whose head is sha.
func (g *Gate) mergeGroupAt(ctx context.Context, repo, sha string) (MergeGroupEvidence, bool, error) {
	rec, found, err := g.Store.LastRecord(ctx, compliance.EvidenceMergeGroupVerdict, MergeGroupSubject(repo, sha))
	if err != nil || !found {
		return MergeGroupEvidence{}, false, err
	}
	var ev MergeGroupEvidence
	if err := json.Unmarshal(rec.Body, &ev); err != nil {
		return MergeGroupEvidence{}, false, check.Errorf("merge group %s: read record %d: %w", MergeGroupSubject(repo, sha), rec.Seq, err)
	}
	return ev, true, nil
}
