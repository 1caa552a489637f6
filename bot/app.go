package bot

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"
)

// GitHub is everything the bot asks of GitHub. Each part is declared beside the code that uses it
// (deploy.go, merge.go); integrations/github satisfies all of them without knowing.
type GitHub interface {
	RangeGatherer
	PolicyFiles
	deployGitHub
	mergeGitHub
}

// Store is everything the bot keeps: evidence plus the operational state of deploys, deliveries,
// locks and leases. integrations/store satisfies it on SQLite and PostgreSQL.
type Store interface {
	EvidenceWriter
	deployStore
	mergeStore
	retroStore
}

// Jira is what the bot asks of Jira.
type Jira interface {
	TicketSource
	TicketUpdater
}

// App is the running bot: Slack in socket mode, the GitHub webhook endpoint, the delivery
// workers and the scheduled jobs, all sharing one store so several replicas can run at once.
type App struct {
	Config        Config
	GitHub        GitHub
	Jira          Jira
	Store         Store
	Slack         *slack.Client // Web API, with the app-level token set for socket mode
	WebhookSecret []byte
	Addr          string // HTTP listen address, e.g. ":8080"
	Log           *logrus.Logger
	Now           func() time.Time
	ReplicaID     string // names this process in leases and delivery claims

	// DebugSocketMode turns on slack-go's socket-mode debug logging.
	DebugSocketMode bool

	checkerOnce sync.Once
	checker     *Checker
	metrics     metrics
	gate        gateState
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

// Checker is the shared check pipeline, recording into the app's store.
func (a *App) Checker() *Checker {
	a.checkerOnce.Do(func() {
		a.checker = &Checker{GitHub: a.GitHub, Jira: a.Jira, Evidence: a.Store, Files: a.GitHub, Now: a.now}
	})
	return a.checker
}

// Run serves until ctx is done: HTTP (webhooks, health, metrics), Slack socket mode, the webhook
// delivery workers and the scheduler. It returns the first fatal error.
func (a *App) Run(ctx context.Context) error {
	if len(a.WebhookSecret) == 0 {
		return errors.New("GITHUB_WEBHOOK_SECRET is not set: webhooks could not be verified")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 4)
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
	start("http", a.serveHTTP)
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
