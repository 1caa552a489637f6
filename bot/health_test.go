package bot_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"sockembot/bot"
	"sockembot/bot/bottest"
	fakeslack "sockembot/integrations/fake/slack"
	slackapi "sockembot/integrations/slack"
)

type healthBody struct {
	Status string `json:"status"`
	Reason string `json:"reason"`
	Slack  *struct {
		State     string    `json:"state"`
		Connected bool      `json:"connected"`
		Since     time.Time `json:"since"`
	} `json:"slack"`
	Database *struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	} `json:"database"`
}

func getHealth(t *testing.T, h http.Handler) (int, healthBody) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	var b healthBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("/healthz is not JSON: %v\n%s", err, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("/healthz Content-Type %q", ct)
	}
	if b.Slack == nil || b.Database == nil {
		t.Fatalf("/healthz does not report both dependencies:\n%s", rec.Body)
	}
	return rec.Code, b
}

// waitHealth polls /healthz until cond holds; the deadline only stops a broken test from hanging.
func waitHealth(t *testing.T, what string, h http.Handler, cond func(int, healthBody) bool) (int, healthBody) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		code, b := getHealth(t, h)
		if cond(code, b) {
			return code, b
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: /healthz %d %+v slack %+v database %+v", what, code, b, *b.Slack, *b.Database)
		}
	}
}

// The HTTP side alone (socket mode never started) is healthy, and says which dependency is what.
func TestHealthzReportsEachDependency(t *testing.T) {
	e := bottest.NewHooks(t)
	code, b := getHealth(t, e.App.Handler())
	if code != http.StatusOK || b.Status != "ok" || b.Reason != "" || b.Slack.State != "not started" || b.Slack.Connected || !b.Database.OK {
		t.Fatalf("healthz %d %+v slack %+v database %+v, want 200 with slack not started and the database ok", code, b, *b.Slack, *b.Database)
	}
	// Through the real server too (the rig serves e.App.Handler()).
	if code, _ := e.Get("/healthz"); code != http.StatusOK {
		t.Fatalf("GET /healthz: %d", code)
	}
}

// A database that does not answer fails the probe, naming it.
func TestHealthzFailsWithoutTheDatabase(t *testing.T) {
	e := bottest.NewHooks(t)
	e.Store.Close()
	code, b := getHealth(t, e.App.Handler())
	if code != http.StatusServiceUnavailable || b.Status != "unhealthy" || b.Database.OK || b.Database.Error == "" ||
		!strings.HasPrefix(b.Reason, "database: ") || strings.Contains(b.Reason, "slack") {
		t.Fatalf("healthz %d %+v database %+v, want 503 naming the database", code, b, *b.Database)
	}
}

// Connected to Slack and the database answering: 200 with both reported. Slack gone: still 200
// for a while (socket mode reconnects by itself), then 503 naming Slack once the outage is longer
// than allowed.
func TestHealthzFailsWhileSlackIsDown(t *testing.T) {
	r := bottest.NewRig(t)
	h := r.App.Handler()
	_, b := waitHealth(t, "socket mode connected", h, func(code int, b healthBody) bool {
		return code == http.StatusOK && b.Slack.State == "connected"
	})
	if b.Status != "ok" || !b.Slack.Connected || b.Slack.Since.IsZero() || !b.Database.OK {
		t.Fatalf("healthy: %+v slack %+v database %+v", b, *b.Slack, *b.Database)
	}

	r.Slack.Close() // the socket closes and every reconnection now fails
	waitHealth(t, "slack down, not yet for long", h, func(code int, b healthBody) bool {
		return b.Slack.State == "down"
	})
	// Well within the minute allowed: still healthy. (The wait above is bounded by 30 s.)
	if code, b := getHealth(t, h); code != http.StatusOK || b.Status != "ok" || b.Slack.Connected {
		t.Fatalf("a short outage failed the probe: %d %+v slack %+v", code, b, *b.Slack)
	}

	r.App.SetSlackDownFor(time.Nanosecond) // the outage is now longer than allowed
	code, b := getHealth(t, h)
	if code != http.StatusServiceUnavailable || b.Status != "unhealthy" || b.Slack.State != "down" || b.Slack.Connected ||
		!strings.HasPrefix(b.Reason, "slack: ") || !b.Database.OK {
		t.Fatalf("healthz %d %+v slack %+v database %+v, want 503 naming slack", code, b, *b.Slack, *b.Database)
	}
}

// Socket mode started but never connected: not a failure until the allowed outage has passed
// since it started, then 503 naming Slack.
func TestHealthzFailsWhenSlackNeverConnects(t *testing.T) {
	e := bottest.NewHooks(t)
	gone := fakeslack.New(fakeslack.Config{})
	gone.Close() // refuses every connection: apps.connections.open fails and is retried
	log := logrus.New()
	log.SetOutput(io.Discard)
	app := &bot.App{
		Config: bot.DefaultConfig(), Store: e.Store, WebhookSecret: []byte(bottest.Secret),
		Slack:     slackapi.New(slackapi.Options{BotToken: gone.BotToken(), AppToken: gone.AppToken(), APIURL: gone.APIURL(), Log: log}),
		Addr:      "127.0.0.1:0",
		Log:       log,
		ReplicaID: "never-connected",
	}
	app.Config.ReleaseChannel = bottest.Channel
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("run: %v", err)
		}
	})

	h := app.Handler()
	code, b := waitHealth(t, "socket mode started", h, func(code int, b healthBody) bool {
		return b.Slack.State != "not started"
	})
	if code != http.StatusOK || b.Slack.State != "connecting" || b.Slack.Connected || b.Slack.Since.IsZero() {
		t.Fatalf("connecting: %d %+v slack %+v, want 200 while the minute has not passed", code, b, *b.Slack)
	}

	app.SetSlackDownFor(time.Nanosecond)
	code, b = getHealth(t, h)
	if code != http.StatusServiceUnavailable || b.Status != "unhealthy" || b.Slack.State != "connecting" ||
		!strings.HasPrefix(b.Reason, "slack: ") || !b.Database.OK {
		t.Fatalf("healthz %d %+v slack %+v database %+v, want 503 naming slack", code, b, *b.Slack, *b.Database)
	}
}
