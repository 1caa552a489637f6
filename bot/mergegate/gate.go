// Package mergegate is sockembot's merge gate: pull request, review and push events from
// GitHub's webhooks become checks of each pull request (check.Checker), a commit status that
// branch protection requires, one comment with Clippy on a pull request that is not compliant,
// a frozen verdict for every merge, and an alert for every commit pushed past review. The
// reconcile job records merges no webhook announced.
package mergegate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"sockembot/bot/check"
	"sockembot/bot/render"
	"sockembot/compliance"
)

// StatusContext is the commit status branch protection requires. Renaming it silently unblocks
// every repository that requires the old name, so it is a constant, not configuration.
const StatusContext = "sockembot/compliance"

// CheckRunName is the check run of the merge gate in GitHub App mode, required like the status.
// Like StatusContext, it is a constant: renaming it would unblock every repository requiring it.
const CheckRunName = "sockembot"

// RecheckAction is the identifier of the check run's Re-check button.
const RecheckAction = "recheck"

// Commit status states as the GitHub API spells them.
const (
	StatusPending = "pending"
	StatusSuccess = "success"
	StatusFailure = "failure"
	StatusError   = "error"
)

// GitHub is what the merge gate asks of GitHub.
type GitHub interface {
	SetStatus(ctx context.Context, repo, sha, state, statusContext, description, targetURL string) error
	UpsertComment(ctx context.Context, repo string, number int, marker, body string) (id int64, created bool, err error)
	FindComment(ctx context.Context, repo string, number int, marker string) (id int64, body string, found bool, err error)
	MergedPullsSince(ctx context.Context, repo string, since time.Time) ([]compliance.PullRequest, error)
	PullsForCommit(ctx context.Context, repo, sha, base string) ([]int, error)
	// StartCheckRun creates check run name on headSHA, in progress (GitHub App mode only).
	StartCheckRun(ctx context.Context, repo, headSHA, name string) (int64, error)
	// FinishCheckRun completes check run id (or creates it completed when id is 0) with a
	// conclusion, a title and a markdown summary, and a Re-check button when recheck is set.
	FinishCheckRun(ctx context.Context, repo, headSHA, name string, id int64, conclusion, title, summary string, recheck bool) error
}

// Store is what the merge gate keeps: the evidence it reads back, and the reconcile cursors.
type Store interface {
	Records(ctx context.Context, kind, subject string, fn func(compliance.Record) error) error
	LastRecord(ctx context.Context, kind, subject string) (compliance.Record, bool, error)
	AppendOnce(ctx context.Context, scope, key string, e compliance.Evidence) (compliance.Record, bool, error)
	GetState(ctx context.Context, key string) (string, bool, error)
	SetState(ctx context.Context, key, value string) error
}

// Locks serialises work on one key across goroutines and replicas (the runtime's leases).
type Locks interface {
	Lock(ctx context.Context, key string) (unlock func(), err error)
}

// Notices posts a Slack notice once per key, retried until Slack takes it.
type Notices interface {
	PostOnce(ctx context.Context, key, channel, thread string, text func() (string, error)) error
}

// Config is the part of sockembot.yaml the merge gate reads.
type Config struct {
	ReleaseChannel string            // merge notes and direct-push alerts; "" posts nothing
	Repos          []string          // the repositories reconcile looks at
	Policy         compliance.Policy // the global policy
	// CheckRuns (GitHub App mode) publishes each verdict as check run CheckRunName as well as
	// the commit status: a check run is bound to the App, so branch protection can require it
	// from that source and nobody else can forge it.
	CheckRuns bool
	// AppID is sockembot's GitHub App id; check_run events of other Apps' runs are ignored.
	AppID int64
}

// Gate is the merge gate.
type Gate struct {
	Config  Config
	GitHub  GitHub
	Checker *check.Checker
	Store   Store
	Locks   Locks
	Notices Notices
	Log     *logrus.Logger
	Now     func() time.Time
	// Checked, when set, counts each verdict by the commit status it set (for /metrics).
	Checked func(state string)
	// PolicyPushed, when set, is told of each push, to any ref, that may have changed repo's
	// policy file (check.RepoPolicyPath): one whose commits touch it, or whose commits list no
	// paths at all (GitHub leaves them out of very large pushes). OnPush calls it first,
	// whatever happens next. The bot drops its cached reads of the repository's policy there
	// (check.CachedFiles.Invalidate): belt and braces, as those are kept by commit SHA.
	PolicyPushed func(repo string)
}

// MergeVerdictEvidence is the body of a merge_verdict record: the verdict at the moment of the
// merge with every fact it rests on, so an auditor can re-derive it without asking GitHub again.
// Field names are stored in the chain: never rename them.
type MergeVerdictEvidence struct {
	Repo       string            `json:"repo"`
	Number     int               `json:"number"`
	Title      string            `json:"title"`
	URL        string            `json:"url"`
	HeadSHA    string            `json:"head_sha"`
	MergeSHA   string            `json:"merge_sha"`
	MergedBy   string            `json:"merged_by"`
	MergedAt   time.Time         `json:"merged_at"`
	Policy     compliance.Policy `json:"policy"`
	PolicyHash string            `json:"policy_hash"`
	// PolicySource is "global" or the repository's own policy file.
	PolicySource string            `json:"policy_source,omitempty"`
	Compliant    bool              `json:"compliant"`
	Facts        compliance.Facts  `json:"facts"`
	Report       compliance.Report `json:"report"`
	// Source says how sockembot learned of the merge: "webhook" or "reconcile".
	Source string `json:"source"`
}

// DirectPushEvidence is the body of a direct_push record: one commit that reached the default
// branch without a pull request.
type DirectPushEvidence struct {
	Repo      string `json:"repo"`
	Ref       string `json:"ref"`
	SHA       string `json:"sha"`
	Message   string `json:"message"`
	Author    string `json:"author"`
	Committer string `json:"committer"`
	Pusher    string `json:"pusher"`
	Compare   string `json:"compare"`
}

func (g *Gate) now() time.Time {
	if g.Now != nil {
		return g.Now().UTC()
	}
	return time.Now().UTC()
}

func (g *Gate) log() *logrus.Logger {
	if g.Log == nil {
		g.Log = logrus.New()
	}
	return g.Log
}

func (g *Gate) checked(state string) {
	if g.Checked != nil {
		g.Checked(state)
	}
}

// Subject names a pull request in evidence and locks: "acme/payments#12".
func Subject(repo string, number int) string { return fmt.Sprintf("%s#%d", repo, number) }

// OnPullRequest checks a pull request that was opened or changed, and records a merge.
func (g *Gate) OnPullRequest(ctx context.Context, ev compliance.PullRequestEvent) error {
	switch ev.Action {
	case "closed":
		if !ev.Merged {
			return nil
		}
		_, err := g.RecordMerge(ctx, ev.Repo, ev.Number, "webhook")
		return err
	case "opened", "reopened", "synchronize", "edited", "ready_for_review":
		if ev.State == "closed" {
			return nil // edited after it was closed: nothing left to gate
		}
		_, err := g.CheckPullRequest(ctx, ev.Repo, ev.Number, ev.HeadSHA, "pull_request."+ev.Action)
		return err
	}
	return nil
}

// OnReview checks a pull request again when a review is submitted or dismissed.
func (g *Gate) OnReview(ctx context.Context, ev compliance.ReviewEvent) error {
	// A review on a closed pull request changes nothing that can still be merged.
	if ev.PRState == "closed" {
		return nil
	}
	switch ev.Action {
	case "submitted", "dismissed":
		_, err := g.CheckPullRequest(ctx, ev.Repo, ev.Number, ev.HeadSHA, "pull_request_review."+ev.Action)
		return err
	}
	return nil
}

// CheckPullRequest checks one open pull request and publishes the verdict: the commit status
// on its head and, when it is not compliant, the comment. headSHA (from the webhook) gets the
// pending status at once; the verdict goes on the head the facts were read at.
func (g *Gate) CheckPullRequest(ctx context.Context, repo string, number int, headSHA, trigger string) (check.Run, error) {
	log := g.log().WithFields(logrus.Fields{"repo": repo, "pr": number, "trigger": trigger})
	// Two checks of one pull request running side by side can finish out of order and leave the
	// older facts' verdict on the commit: one at a time, the last to finish read the newest.
	unlock, err := g.Locks.Lock(ctx, Subject(repo, number))
	if err != nil {
		return check.Run{}, check.Errorf("check %s#%d: %w", repo, number, err)
	}
	defer unlock()
	var runID int64
	if headSHA != "" {
		runID = g.pending(ctx, log, repo, headSHA)
	}
	run, err := g.Checker.Check(ctx, check.Request{Repo: repo, PR: number, Policy: g.Config.Policy, Trigger: trigger})
	if err != nil {
		// Fail closed: a check that could not run leaves the required status at error (and the
		// check run at failure), which branch protection treats as not passing.
		g.checked(StatusError)
		if headSHA != "" {
			if perr := g.publishError(ctx, repo, headSHA, runID, err); perr != nil {
				err = errors.Join(err, perr)
			}
		}
		return run, check.Errorf("check %s#%d: %w", repo, number, err)
	}
	cr := run.Change()
	state := StatusFailure
	if cr.Compliant {
		state = StatusSuccess
	}
	g.checked(state)
	head := run.Facts.Range.HeadSHA
	if runID != 0 && head != headSHA {
		// The pull request moved while it was checked: the run on the old head is closed, and
		// the verdict goes on the head the facts were read at.
		g.supersede(ctx, log, repo, headSHA, runID, head)
		runID = 0
	}
	intro := fmt.Sprintf("Pull request #%d checked at `%s` against the change policy (%s, policy `%s`).", number, render.Short(head), mdSource(run.PolicySource), render.Short(run.PolicyHash))
	if err := g.publish(ctx, repo, head, runID, state, render.StatusDescription(cr), run.Report, intro); err != nil {
		return run, check.Errorf("check %s#%d: %w", repo, number, err)
	}
	if err := g.publishComment(ctx, repo, number, head, cr); err != nil {
		return run, check.Errorf("check %s#%d: %w", repo, number, err)
	}
	log.WithFields(logrus.Fields{"state": state, "head": render.Short(head)}).Info("merge gate: checked")
	return run, nil
}

// statusErrorDescription is the commit status description of a check that could not run: a bad
// repository policy is named as such, so the author knows which file to fix.
func statusErrorDescription(err error) string {
	msg := "check could not run: " + err.Error()
	var pfe *check.PolicyFileError
	if errors.As(err, &pfe) {
		msg = pfe.Error()
	}
	return render.TruncateRunes(strings.Join(strings.Fields(msg), " "), render.MaxStatusDescription)
}

// publishComment keeps the one sockembot comment on the pull request in step with the verdict.
func (g *Gate) publishComment(ctx context.Context, repo string, number int, head string, cr compliance.ChangeReport) error {
	if !cr.Compliant {
		if _, _, err := g.GitHub.UpsertComment(ctx, repo, number, render.CommentMarker, render.PRComment(head, cr, StatusContext)); err != nil {
			return check.Errorf("comment: %w", err)
		}
		return nil
	}
	// A compliant PR that was never flagged gets no comment: noise teaches people to ignore it.
	_, body, found, err := g.GitHub.FindComment(ctx, repo, number, render.CommentMarker)
	if err != nil {
		return check.Errorf("find comment: %w", err)
	}
	if !found || strings.Contains(body, render.FixedHeading) {
		return nil
	}
	if _, _, err := g.GitHub.UpsertComment(ctx, repo, number, render.CommentMarker, render.FixedComment(head, cr)); err != nil {
		return check.Errorf("comment: %w", err)
	}
	return nil
}
