package bot

import (
	"context"
	"time"
)

// The runtime's internals the external tests (package bot_test) drive directly.

const (
	MaxWebhookBody  = maxWebhookBody
	MaxWebhookReads = maxWebhookReads
)

func (a *App) RunDeliveryWorkers(ctx context.Context) error { return a.runDeliveryWorkers(ctx) }
func (a *App) ServeHTTP(ctx context.Context) error          { return a.serveHTTP(ctx) }
func (a *App) RunScheduler(ctx context.Context) error       { return a.runScheduler(ctx) }
func (a *App) DailySummaryJob(ctx context.Context) error    { return a.dailySummaryJob(ctx) }
func (a *App) Replica() string                              { return a.replica() }
func (a *App) Time() time.Time                              { return a.now() }

func (a *App) RunJob(ctx context.Context, name string, ttl time.Duration, run func(context.Context) error) {
	a.runJob(ctx, name, ttl, run)
}

func (a *App) RenewLease(ctx context.Context, name string, ttl time.Duration, lost func()) (stop func()) {
	return a.renewLease(ctx, name, ttl, lost)
}

// SetSlackDownFor changes how long Slack may be down before /healthz fails (slackDownFor), so a
// test need not wait out the minute. Safe while the App runs.
func (a *App) SetSlackDownFor(d time.Duration) { a.slackDownFor.Store(int64(d)) }
