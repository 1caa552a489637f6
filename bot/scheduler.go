package bot

import (
	"context"
	"fmt"
	"sockembot/bot/audit"
	"sockembot/bot/check"
	"sockembot/bot/emergency"
	"sockembot/bot/render"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"
)

// pruneAfter is how long dedupe keys and processed webhook payloads are kept.
const pruneAfter = 90 * 24 * time.Hour

// recoverSchedule is when interrupted confirmations are looked for (see
// deploygate.RecoverInterrupted): every deploygate.RecoverEvery.
const recoverSchedule = "*/5 * * * *"

// runScheduler runs the scheduled jobs until ctx is done. Each run takes a lease in the shared
// store first, so with several replicas exactly one of them does the work.
func (a *App) runScheduler(ctx context.Context) error {
	a.wire()
	// A run still going when its next tick comes (a slow GitHub) is not started twice.
	c := cron.New(cron.WithLocation(time.UTC), cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	jobs := []struct {
		name, spec string
		ttl        time.Duration
		run        func(context.Context) error
	}{
		{"reconcile", a.Config.Schedules.Reconcile, 5 * time.Minute, func(ctx context.Context) error {
			_, err := a.merges.Reconcile(ctx)
			return err
		}},
		// Settling confirmations a crash interrupted is not optional: it always runs.
		{"recover", recoverSchedule, 5 * time.Minute, func(ctx context.Context) error {
			_, err := a.deploys.RecoverInterrupted(ctx)
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
	if err := check.Safely(func() error { return run(jctx) }); err != nil {
		log.WithError(err).Error("scheduler: job failed")
	}
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

// DailySummary posts the summary of day (a UTC date) to the release channel, reminds the
// requesters of overdue retroactive reviews in their threads, and returns the summary.
func (a *App) DailySummary(ctx context.Context, day time.Time) (render.Summary, error) {
	a.wire()
	s, err := audit.DailySummary(ctx, a.Store, day)
	if err != nil {
		return s, err
	}
	now := a.now()
	overdue, err := a.emergencies.OverdueRetroReviews(ctx, now)
	if err != nil {
		return s, fmt.Errorf("daily summary: retroactive reviews: %w", err)
	}
	s.OverdueReviews = emergency.OverdueLines(overdue, now)
	if a.Config.ReleaseChannel != "" {
		if _, err := a.Slack.Post(ctx, a.Config.ReleaseChannel, "", render.SummaryText(s)); err != nil {
			return s, fmt.Errorf("daily summary: post: %w", err)
		}
	}
	if err := a.emergencies.RemindOverdue(ctx, overdue, now); err != nil {
		return s, fmt.Errorf("daily summary: reminders: %w", err)
	}
	return s, nil
}
