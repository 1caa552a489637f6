package bot

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

// slackDownFor is how long the Slack connection may be down before /healthz fails: socket mode
// reconnects on its own within seconds (Slack asks for it every few hours), so only a longer
// outage means nobody can /deploy. App.slackDownFor overrides it in tests.
const slackDownFor = time.Minute

// healthDBTimeout bounds the store query /healthz makes.
const healthDBTimeout = 2 * time.Second

// socketState is the Slack socket-mode connection as the runtime last saw it, on the wall clock
// (App.Now may be a fixed clock; an outage is measured in real time).
type socketState struct {
	mu        sync.Mutex
	started   bool      // socket mode has been started
	ever      bool      // it has connected at least once
	connected bool      // it is connected now
	since     time.Time // when it started, last connected or last went down
}

// start records socket mode starting, not yet connected: the outage clock starts here, so a bot
// that never manages to connect fails its probe slackDownFor after it started trying.
func (s *socketState) start(at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started, s.ever, s.connected, s.since = true, false, false, at
}

// set records the connection going up or down; a repeat of the same state (reconnection
// attempts failing one after another) keeps its since.
func (s *socketState) set(connected bool, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.connected != connected {
		s.since = at
	}
	s.started, s.connected = true, connected
	s.ever = s.ever || connected
}

// stop records socket mode ending (RunContext failed, or shutdown): down from now.
func (s *socketState) stop() { s.set(false, time.Now()) }

func (s *socketState) get() (started, ever, connected bool, since time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started, s.ever, s.connected, s.since
}

// health is the /healthz answer.
type health struct {
	Status   string         `json:"status"`           // ok or unhealthy
	Reason   string         `json:"reason,omitempty"` // why unhealthy: "slack: …; database: …"
	Slack    slackHealth    `json:"slack"`
	Database databaseHealth `json:"database"`
}

type slackHealth struct {
	// State is "connected"; "connecting" (started, never connected yet); "down" (was connected,
	// is not); or "not started" (the HTTP side alone, socket mode never run, as in tests).
	State     string    `json:"state"`
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since,omitzero"`
}

type databaseHealth struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// slackDownLimit is how long Slack may be down before /healthz fails.
func (a *App) slackDownLimit() time.Duration {
	if d := time.Duration(a.slackDownFor.Load()); d > 0 {
		return d
	}
	return slackDownFor
}

// serveHealth answers /healthz: each dependency's state, and 503 while the Slack connection has
// been down longer than slackDownFor or the database does not answer. A probe that restarts an
// unhealthy process is then right to: a bot that cannot hear /deploy or write evidence is not
// doing its job. Before socket mode has started (the HTTP side alone) Slack is "not started"
// and never fails the probe.
func (a *App) serveHealth(w http.ResponseWriter, r *http.Request) {
	h := health{Status: "ok", Slack: slackHealth{State: "not started"}}
	var problems []string
	if started, ever, connected, since := a.state.slack.get(); started {
		h.Slack = slackHealth{State: "connected", Connected: connected, Since: since.UTC()}
		if !connected {
			h.Slack.State = "down"
			if !ever {
				h.Slack.State = "connecting"
			}
			if time.Since(since) > a.slackDownLimit() {
				what := "down"
				if !ever {
					what = "not connected"
				}
				problems = append(problems, "slack: socket mode "+what+" since "+since.UTC().Format(time.RFC3339))
			}
		}
	}
	if a.Store == nil {
		h.Database = databaseHealth{Error: "no store"}
	} else {
		ctx, cancel := context.WithTimeout(r.Context(), healthDBTimeout)
		_, err := a.Store.PendingDeliveries(ctx)
		cancel()
		h.Database = databaseHealth{OK: err == nil}
		if err != nil {
			h.Database.Error = err.Error()
		}
	}
	if !h.Database.OK {
		problems = append(problems, "database: "+h.Database.Error)
	}
	code := http.StatusOK
	if len(problems) > 0 {
		h.Status, h.Reason, code = "unhealthy", strings.Join(problems, "; "), http.StatusServiceUnavailable
		a.log().WithField("reason", h.Reason).Warn("healthz: unhealthy")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(h)
}
