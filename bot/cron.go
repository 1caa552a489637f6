package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"

	"sockembot/compliance"
	"sockembot/integrations/store"
)

// pruneAfter is how long dedupe keys and processed webhook payloads are kept.
const pruneAfter = 90 * 24 * time.Hour

// reconcileLookback is how far back the first reconciliation of a repository looks, when no
// cursor has been stored yet.
const reconcileLookback = 24 * time.Hour

// reconcileOverlap re-reads a little before the cursor: GitHub's list of closed pull requests is
// eventually consistent, so a PR merged just before the last run may only show up now. Merges
// already recorded are skipped, so the overlap costs requests, never duplicates.
const reconcileOverlap = time.Hour

// recoverSchedule is when interrupted confirmations are looked for (see RecoverInterrupted),
// every recoverInterval.
const (
	recoverSchedule = "*/5 * * * *"
	recoverInterval = 5 * time.Minute
)

// runScheduler runs the scheduled jobs until ctx is done. Each run takes a lease in the shared
// store first, so with several replicas exactly one of them does the work.
func (a *App) runScheduler(ctx context.Context) error {
	// A run still going when its next tick comes (a slow GitHub) is not started twice.
	c := cron.New(cron.WithLocation(time.UTC), cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	jobs := []struct {
		name, spec string
		ttl        time.Duration
		run        func(context.Context) error
	}{
		{"reconcile", a.Config.Schedules.Reconcile, 5 * time.Minute, func(ctx context.Context) error {
			_, err := a.Reconcile(ctx)
			return err
		}},
		// Settling confirmations a crash interrupted is not optional: it always runs.
		{"recover", recoverSchedule, 5 * time.Minute, func(ctx context.Context) error {
			_, err := a.RecoverInterrupted(ctx)
			return err
		}},
		{"daily_summary", a.Config.Schedules.DailySummary, time.Hour, a.dailySummaryJob},
	}
	for _, j := range jobs {
		if j.spec == "" {
			continue // turned off in the config
		}
		if _, err := c.AddFunc(j.spec, func() { a.runJob(ctx, j.name, j.ttl, j.run) }); err != nil {
			return fmt.Errorf("scheduler: %s schedule %q: %w", j.name, j.spec, err)
		}
	}
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	return ctx.Err()
}

// runJob runs one scheduled job if this replica wins its lease. The lease is not released at
// the end: it expires on its own, so a replica whose clock ticks a moment later does not run the
// same tick again.
func (a *App) runJob(ctx context.Context, name string, ttl time.Duration, run func(context.Context) error) {
	log := a.log().WithFields(logrus.Fields{"job": name, "replica": a.replica()})
	ok, err := a.Store.AcquireLease(ctx, "job:"+name, a.replica(), ttl)
	if err != nil {
		log.WithError(err).Error("scheduler: lease")
		return
	}
	if !ok {
		log.Debug("scheduler: another replica holds the lease")
		return
	}
	// Renewed while the job runs, and the job is stopped if another replica took the lease.
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := a.renewLease(ctx, "job:"+name, ttl, cancel)
	defer stop()
	if err := Safely(func() error { return run(jctx) }); err != nil {
		log.WithError(err).Error("scheduler: job failed")
	}
}

// Reconcile records every merge of a configured repository that no webhook delivered: GitHub
// does not retry failed deliveries, so without this a merge during an outage would leave no
// verdict. It returns how many merges it recorded.
func (a *App) Reconcile(ctx context.Context) (int, error) {
	total := 0
	var errs []string
	for _, repo := range a.serviceRepos() {
		n, err := a.reconcileRepo(ctx, repo)
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

func (a *App) reconcileRepo(ctx context.Context, repo string) (int, error) {
	key := "reconcile.cursor:" + repo
	since := a.now().Add(-reconcileLookback)
	if v, ok, err := a.Store.GetState(ctx, key); err != nil {
		return 0, fmt.Errorf("%s: cursor: %w", repo, err)
	} else if ok {
		if since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return 0, fmt.Errorf("%s: cursor %q: %w", repo, v, err)
		}
	}
	prs, err := a.GitHub.MergedPullsSince(ctx, repo, since.Add(-reconcileOverlap))
	if err != nil {
		return 0, fmt.Errorf("%s: merged pull requests: %w", repo, err)
	}
	sort.SliceStable(prs, func(i, j int) bool { return prs[i].MergedAt.Before(prs[j].MergedAt) })
	recorded := 0
	cursor := since
	var failed []error
	for _, pr := range prs {
		done, err := a.mergeRecorded(ctx, mergeSubject(repo, pr.Number))
		if err == nil && !done {
			var first bool
			first, err = a.RecordMerge(ctx, repo, pr.Number, "reconcile")
			if first {
				recorded++
			}
		}
		if err != nil {
			// The cursor stops before the failed merge, so the next run tries it again; the
			// merges after it are still recorded now, so one merge that keeps failing does not
			// hide every later one.
			failed = append(failed, fmt.Errorf("%s#%d: %w", repo, pr.Number, err))
			continue
		}
		if len(failed) == 0 && pr.MergedAt.After(cursor) {
			cursor = pr.MergedAt
		}
	}
	if err := a.saveCursor(ctx, key, cursor); err != nil {
		failed = append(failed, err)
	}
	return recorded, errors.Join(failed...)
}

func (a *App) saveCursor(ctx context.Context, key string, t time.Time) error {
	if err := a.Store.SetState(ctx, key, t.UTC().Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("save %s: %w", key, err)
	}
	return nil
}

// serviceRepos are the configured repositories, each once, in a stable order.
func (a *App) serviceRepos() []string {
	seen := map[string]bool{}
	var repos []string
	for _, s := range a.Config.Services {
		if s.Repo != "" && !seen[s.Repo] {
			seen[s.Repo] = true
			repos = append(repos, s.Repo)
		}
	}
	sort.Strings(repos)
	return repos
}

// dailySummaryJob posts yesterday's summary once, however many replicas and restarts there are.
func (a *App) dailySummaryJob(ctx context.Context) error {
	day := a.now().Truncate(24*time.Hour).AddDate(0, 0, -1)
	const key = "daily_summary.last"
	last, _, err := a.Store.GetState(ctx, key)
	if err != nil {
		return fmt.Errorf("daily summary: %w", err)
	}
	if last == day.Format(time.DateOnly) {
		return nil
	}
	if _, err := a.DailySummary(ctx, day); err != nil {
		return err
	}
	if err := a.Store.SetState(ctx, key, day.Format(time.DateOnly)); err != nil {
		return err
	}
	// Housekeeping rides on the daily job: dedupe keys and processed payloads are kept for
	// pruneAfter, evidence forever.
	_, err = a.Store.Prune(ctx, a.now().Add(-pruneAfter))
	return err
}

// Summary is one day of the gates in numbers.
type Summary struct {
	Day                time.Time
	Merges             int
	CompliantMerges    int
	Deploys            int
	CompliantDeploys   int
	DirectPushes       int
	RefusedDeploys     int                     // deploy requests refused as not compliant
	Violations         map[compliance.Code]int // by kind, each change's violation counted once across merges and deploys
	NonCompliantMerges []string                // repo#n
	Overrides          int                     // emergency deploys past violations
	// OverdueReviews are the retroactive reviews still open past their deadline, as of when
	// the summary was made.
	OverdueReviews []string
	// The evidence chain's newest record when the summary was made: posted to Slack, it is an
	// anchor kept outside the database for `audit verify --anchor`.
	HeadSeq  int64
	HeadHash string
}

// DailySummary posts the summary of day (a UTC date) to the release channel and returns it.
func (a *App) DailySummary(ctx context.Context, day time.Time) (Summary, error) {
	from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 1)
	s := Summary{Day: from, Violations: map[compliance.Code]int{}}
	inDay := func(r store.Record) bool { return !r.At.Before(from) && r.At.Before(to) }
	// A change merged and deployed the same day (or deployed twice) is one change: its
	// violations count once.
	counted := map[string]bool{}
	countViolations := func(rep compliance.Report) {
		for _, c := range rep.Changes {
			for _, v := range c.Violations {
				key := rep.Repo + " " + changeName(c) + " " + string(v.Code)
				if !counted[key] {
					counted[key] = true
					s.Violations[v.Code]++
				}
			}
		}
	}

	err := a.Store.Records(ctx, store.KindMergeVerdict, "", func(r store.Record) error {
		// A merge counts on the day it happened, even when reconciliation recorded it later. It
		// cannot be recorded before it happened (give or take GitHub's clock against ours).
		if r.At.Before(from.Add(-time.Hour)) {
			return nil
		}
		var ev MergeVerdictEvidence
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
			s.NonCompliantMerges = append(s.NonCompliantMerges, mergeSubject(ev.Repo, ev.Number))
		}
		countViolations(ev.Report)
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("daily summary: merges: %w", err)
	}
	err = a.Store.Records(ctx, store.KindDeploymentCreated, "", func(r store.Record) error {
		if !inDay(r) {
			return nil
		}
		var ev store.DeploymentEvidence
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
	err = a.Store.Records(ctx, store.KindDeployRefused, "", func(r store.Record) error {
		if !inDay(r) {
			return nil
		}
		// Refused as not compliant: not a superseded digest, a failed confirmation or a typo.
		var ev deployRefusedEvidence
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
	err = a.Store.Records(ctx, store.KindDirectPush, "", func(r store.Record) error {
		if inDay(r) {
			s.DirectPushes++
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("daily summary: direct pushes: %w", err)
	}
	if s.HeadSeq, s.HeadHash, err = a.Store.Head(ctx); err != nil {
		return s, fmt.Errorf("daily summary: %w", err)
	}
	now := a.now()
	overdue, err := a.overdueRetroReviews(ctx, now)
	if err != nil {
		return s, fmt.Errorf("daily summary: retroactive reviews: %w", err)
	}
	s.OverdueReviews = overdueLines(overdue, now)
	if a.Config.ReleaseChannel != "" {
		if _, err := a.post(ctx, a.Config.ReleaseChannel, "", SummaryText(s)); err != nil {
			return s, fmt.Errorf("daily summary: post: %w", err)
		}
	}
	if err := a.remindOverdue(ctx, overdue, now); err != nil {
		return s, fmt.Errorf("daily summary: reminders: %w", err)
	}
	return s, nil
}

// SummaryText renders a summary for the release channel.
func SummaryText(s Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*Daily summary for %s*\n", s.Day.Format("Mon 2 Jan 2006"))
	fmt.Fprintf(&b, "Merges: %d (%d compliant, %d not) · Deploys: %d (%d compliant) · Refused as non-compliant: %d · Direct pushes: %d\n",
		s.Merges, s.CompliantMerges, s.Merges-s.CompliantMerges, s.Deploys, s.CompliantDeploys, s.RefusedDeploys, s.DirectPushes)
	if len(s.Violations) == 0 {
		b.WriteString("Violations: none")
	} else {
		codes := make([]string, 0, len(s.Violations))
		for c := range s.Violations {
			codes = append(codes, string(c))
		}
		sort.Slice(codes, func(i, j int) bool {
			ci, cj := s.Violations[compliance.Code(codes[i])], s.Violations[compliance.Code(codes[j])]
			if ci != cj {
				return ci > cj
			}
			return codes[i] < codes[j]
		})
		parts := make([]string, len(codes))
		for i, c := range codes {
			parts[i] = fmt.Sprintf("%s ×%d", c, s.Violations[compliance.Code(c)])
		}
		b.WriteString("Violations: " + strings.Join(parts, " · "))
	}
	if len(s.NonCompliantMerges) > 0 {
		b.WriteString("\nMerged without meeting the policy: " + strings.Join(s.NonCompliantMerges, ", "))
	}
	if s.Overrides > 0 {
		fmt.Fprintf(&b, "\nEmergency overrides: %d", s.Overrides)
	}
	if len(s.OverdueReviews) > 0 {
		fmt.Fprintf(&b, "\n*Overdue retroactive reviews (%d):*\n%s", len(s.OverdueReviews), strings.Join(s.OverdueReviews, "\n"))
	}
	if s.HeadHash != "" {
		fmt.Fprintf(&b, "\nEvidence chain head: record %d, hash `%s` (an anchor: `sockembot audit verify --anchor %d:%s`)", s.HeadSeq, s.HeadHash, s.HeadSeq, s.HeadHash)
	}
	return b.String()
}
