package bot

import (
	"context"
	"time"
)

// The runtime's internals the external tests (package bot_test) drive directly.

const (
	MaxWebhookBody       = maxWebhookBody
	MaxWebhookReads      = maxWebhookReads
	MaxSmallWebhookReads = maxSmallWebhookReads
	MaxReadsPerAddr      = maxReadsPerAddr
)

var RemoteKey = remoteKey

func (a *App) RunDeliveryWorkers(ctx context.Context) error { return a.runDeliveryWorkers(ctx) }
func (a *App) ServeHTTP(ctx context.Context) error {
	ln, err := a.listenHTTP()
	if err != nil {
		return err
	}
	return serve(ctx, ln, a.Handler())
}
func (a *App) RunScheduler(ctx context.Context) error    { return a.runScheduler(ctx) }
func (a *App) DailySummaryJob(ctx context.Context) error { return a.dailySummaryJob(ctx) }
func (a *App) Replica() string                           { return a.replica() }
func (a *App) Time() time.Time                           { return a.now() }

func (a *App) RunJob(ctx context.Context, name string, ttl time.Duration, run func(context.Context) error) {
	a.runJob(ctx, name, ttl, run)
}

func (a *App) RenewLease(ctx context.Context, name string, ttl time.Duration, lost func()) (stop func()) {
	return a.renewLease(ctx, name, ttl, lost)
}

// SetSlackDownFor changes how long Slack may be down before /healthz fails (slackDownFor), so a
// test need not wait out the minute. Safe while the App runs.
func (a *App) SetSlackDownFor(d time.Duration) { a.slackDownFor.Store(int64(d)) }

// SetWebhookReadTime sets the time every webhook body has to arrive (webhookReadBase), so a test
// need not wait out the seconds.
func (a *App) SetWebhookReadTime(d time.Duration) { a.webhookReadBase.Store(int64(d)) }

// SetWebhookAddrWait sets how long a request over its address's cap waits for room (addrWait).
func (a *App) SetWebhookAddrWait(d time.Duration) { a.webhookAddrWait.Store(int64(d)) }

// WebhookReadsWaiting is how many requests wait for room under their address's cap.
func (a *App) WebhookReadsWaiting() int {
	a.state.init()
	return a.state.readsWaiting()
}

// WebhookReadsInFlight is how many read slots (both pools) are taken now.
func (a *App) WebhookReadsInFlight() int {
	a.state.init()
	return len(a.state.reading) + len(a.state.readingSmall)
}
