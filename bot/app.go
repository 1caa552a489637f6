// Package bot is sockembot's runtime: the Slack socket-mode loop (ack at once, dedupe, dispatch),
// the HTTP server (GitHub webhooks, health, metrics), the durable webhook queue and its workers,
// the scheduler and the leases that let several replicas share one store. It decides nothing
// about compliance: it wires the adapters into the gates (bot/mergegate, bot/deploygate,
// bot/emergency, bot/rollout, all checking through bot/check) and hands them events.
package bot

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"sockembot/bot/check"
	"sockembot/bot/deploygate"
	"sockembot/bot/emergency"
	"sockembot/bot/mergegate"
	"sockembot/bot/rollout"
	slackapi "sockembot/integrations/slack"
	"sockembot/integrations/store"
)

// GitHub is everything the gates ask of GitHub; integrations/github satisfies it.
type GitHub interface {
	check.GitHub
	check.PolicyFiles
	mergegate.GitHub
	deploygate.GitHub
}

// Jira is everything the gates ask of Jira; integrations/jira satisfies it.
type Jira interface {
	check.Jira
	rollout.Jira
}

// App is the running bot: Slack in socket mode, the GitHub webhook endpoint, the delivery
// workers and the scheduled jobs, all sharing one store so several replicas can run at once.
type App struct {
	Config        Config
	GitHub        GitHub
	Jira          Jira
	Store         *store.Store
	Slack         *slackapi.Client
	WebhookSecret []byte
	// GitHubAppID is set when sockembot runs as a GitHub App: the merge gate then publishes its
	// verdicts as check runs too, and acts on check_run events of this App's runs only.
	GitHubAppID int64
	Addr        string // HTTP listen address, e.g. ":8080"
	Log         *logrus.Logger
	Now         func() time.Time
	ReplicaID   string // names this process in leases and delivery claims

	// MetricsAddr is where /metrics is served, e.g. "127.0.0.1:9090"; "" serves it nowhere.
	MetricsAddr string
	// MetricsToken, when set, is the bearer token a scrape of /metrics must send.
	MetricsToken string

	// DebugSocketMode turns on slack-go's socket-mode debug logging.
	DebugSocketMode bool

	// slackDownFor (nanoseconds), when above 0, replaces the constant of that name: how long
	// Slack may be down before /healthz fails. Tests shorten it while the App runs, hence atomic.
	slackDownFor atomic.Int64
	// webhookReadBase (nanoseconds), when above 0, is the time every webhook body has to arrive,
	// whatever its length, in place of webhookReadTime's rule. Tests shorten it.
	webhookReadBase atomic.Int64
	// webhookAddrWait (nanoseconds), when above 0, replaces addrWait. Tests lengthen it.
	webhookAddrWait atomic.Int64

	wireOnce    sync.Once
	checker     *check.Checker
	merges      *mergegate.Gate
	deploys     *deploygate.Gate
	emergencies *emergency.Reviews
	rollouts    *rollout.Rollout
	metrics     metrics
	state       runtimeState
}

func (a *App) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

func (a *App) log() *logrus.Logger {
	if a.Log == nil {
		a.Log = logrus.New()
	}
	return a.Log
}

// wire builds the gates from the adapters, once, at the first event (not before: the App's
// fields are set until then).
func (a *App) wire() {
	a.wireOnce.Do(func() {
		// The policy file at a commit never changes: each check of the same base reads it once.
		files := check.NewCachedFiles(a.GitHub, 0)
		a.checker = &check.Checker{GitHub: a.GitHub, Jira: a.Jira, Evidence: a.Store, Facts: a.Store, Files: files, Now: a.now}
		a.merges = &mergegate.Gate{
			Config: mergegate.Config{ReleaseChannel: a.Config.ReleaseChannel, Repos: a.Config.Repos(), Policy: a.Config.Policy,
				CheckRuns: a.GitHubAppID != 0, AppID: a.GitHubAppID},
			GitHub:  a.GitHub,
			Checker: a.checker,
			Store:   a.Store,
			Locks:   a,
			Notices: a,
			Log:     a.log(),
			Now:     a.now,
			Checked: a.metrics.check,
			// Belt and braces: what a push may have changed is not kept.
			PolicyPushed: files.Invalidate,
		}
		a.emergencies = &emergency.Reviews{
			Config: emergency.Config{EmergencyChannel: a.Config.EmergencyChannel, People: a.Config.People, Reviewers: a.Config.retroReviewers()},
			Slack:  a.Slack, Store: a.Store, Log: a.log(), Now: a.now,
		}
		a.deploys = &deploygate.Gate{
			Config:      a.Config.deployConfig(),
			GitHub:      a.GitHub,
			Slack:       a.Slack,
			Store:       deployStore{a.Store},
			Checker:     a.checker,
			Locks:       a,
			Notices:     a,
			Emergencies: a.emergencies,
			Log:         a.log(),
			Now:         a.now,
		}
		a.rollouts = &rollout.Rollout{
			ReleaseChannel: a.Config.ReleaseChannel,
			Slack:          a.Slack, Jira: a.Jira, Store: deployStore{a.Store}, Digests: a.deploys,
			Locks: a, Notices: a, Log: a.log(), Now: a.now,
		}
	})
}

// Checker is the one check path, recording into the app's store.
func (a *App) Checker() *check.Checker { a.wire(); return a.checker }

// Merges is the merge gate.
func (a *App) Merges() *mergegate.Gate { a.wire(); return a.merges }

// Deploys is the deploy gate.
func (a *App) Deploys() *deploygate.Gate { a.wire(); return a.deploys }

// Emergencies is the break-glass path and its retroactive reviews.
func (a *App) Emergencies() *emergency.Reviews { a.wire(); return a.emergencies }

// Rollouts follows deployments once GitHub has them.
func (a *App) Rollouts() *rollout.Rollout { a.wire(); return a.rollouts }

// Run serves until ctx is done: HTTP (webhooks, health), metrics, Slack socket mode, the webhook
// delivery workers and the scheduler. It returns the first fatal error.
func (a *App) Run(ctx context.Context) error {
	if len(a.WebhookSecret) == 0 {
		return errors.New("GITHUB_WEBHOOK_SECRET is not set: webhooks could not be verified")
	}
	a.wire()
	// Both addresses are bound before anything starts: one that is taken stops the bot at once,
	// with that error, whatever else would have failed next.
	httpLn, err := a.listenHTTP()
	if err != nil {
		return err
	}
	metricsLn, err := a.listenMetrics()
	if err != nil {
		httpLn.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 5)
	var wg sync.WaitGroup
	start := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
				a.log().WithError(err).WithField("component", name).Error("component stopped")
				errs <- err
				cancel()
			}
		}()
	}
	start("http", func(ctx context.Context) error { return serve(ctx, httpLn, a.Handler()) })
	if metricsLn != nil {
		start("metrics", func(ctx context.Context) error { return serve(ctx, metricsLn, a.MetricsHandler()) })
	}
	start("slack", a.runSocketMode)
	start("deliveries", a.runDeliveryWorkers)
	start("scheduler", a.runScheduler)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}
