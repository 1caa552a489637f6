package bot

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// slackDownFor is how long the Slack connection may be down before /healthz fails: socket mode
// reconnects on its own within seconds (Slack asks for it every few hours), so only a longer
// outage means nobody can /deploy.
const slackDownFor = time.Minute

// socketState is the Slack socket-mode connection as the runtime last saw it.
type socketState struct {
	mu        sync.Mutex
	started   bool
	connected bool
	since     time.Time // when it last connected or went down
}

// set records the connection going up or down (a repeat of the same state keeps its since).
func (s *socketState) set(connected bool, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.connected != connected {
		s.since = at
	}
	s.started, s.connected = true, connected
}

func (s *socketState) get() (started, connected bool, since time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started, s.connected, s.since
}

// health is the /healthz answer.
type health struct {
	Status   string         `json:"status"` // ok or unhealthy
	Problems []string       `json:"problems,omitempty"`
	Slack    slackHealth    `json:"slack"`
	Database databaseHealth `json:"database"`
}

type slackHealth struct {
	// State is "connected", "down" or "not started" (the HTTP side alone, as in tests).
	State string    `json:"state"`
	Since time.Time `json:"since,omitzero"`
}

type databaseHealth struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// serveHealth answers /healthz: each dependency's state, and 503 while the Slack connection has
// been down longer than slackDownFor or the database does not answer. A probe that restarts an
// unhealthy process is then right to: a bot that cannot hear /deploy or write evidence is not
// doing its job.
func (a *App) serveHealth(w http.ResponseWriter, r *http.Request) {
	h := health{Status: "ok", Slack: slackHealth{State: "not started"}}
	downFor := slackDownFor
	if a.slackDownFor > 0 {
		downFor = a.slackDownFor
	}
	if started, connected, since := a.state.slack.get(); started {
		h.Slack = slackHealth{State: "connected", Since: since.UTC()}
		if !connected {
			h.Slack.State = "down"
			if time.Since(since) > downFor {
				h.Problems = append(h.Problems, "slack: socket mode has been down since "+since.UTC().Format(time.RFC3339))
			}
		}
	}
	if a.Store == nil {
		h.Database = databaseHealth{Error: "no store"}
	} else {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		_, err := a.Store.PendingDeliveries(ctx)
		cancel()
		h.Database = databaseHealth{OK: err == nil}
		if err != nil {
			h.Database.Error = err.Error()
		}
	}
	if !h.Database.OK {
		h.Problems = append(h.Problems, "database: "+h.Database.Error)
	}
	code := http.StatusOK
	if len(h.Problems) > 0 {
		h.Status, code = "unhealthy", http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(h)
}
