package bot_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"sockembot/bot/bottest"
)

type healthBody struct {
	Status   string   `json:"status"`
	Problems []string `json:"problems"`
	Slack    struct {
		State string `json:"state"`
	} `json:"slack"`
	Database struct {
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
	return rec.Code, b
}

// The HTTP side alone (socket mode never started) is healthy, and says which dependency is what.
func TestHealthzReportsEachDependency(t *testing.T) {
	e := bottest.NewHooks(t)
	code, b := getHealth(t, e.App.Handler())
	if code != http.StatusOK || b.Status != "ok" || b.Slack.State != "not started" || !b.Database.OK {
		t.Fatalf("healthz %d %+v, want 200 with slack not started and the database ok", code, b)
	}
}

// A database that does not answer fails the probe, naming it.
func TestHealthzFailsWithoutTheDatabase(t *testing.T) {
	e := bottest.NewHooks(t)
	e.Store.Close()
	code, b := getHealth(t, e.App.Handler())
	if code != http.StatusServiceUnavailable || b.Status != "unhealthy" || b.Database.OK || len(b.Problems) != 1 || !strings.HasPrefix(b.Problems[0], "database:") {
		t.Fatalf("healthz %d %+v, want 503 naming the database", code, b)
	}
}

// Connected to Slack: healthy. Slack gone for longer than allowed: 503, naming Slack.
func TestHealthzFailsWhileSlackIsDown(t *testing.T) {
	r := bottest.NewRig(t)
	r.App.SetSlackDownFor(50 * time.Millisecond)
	h := r.App.Handler()
	r.Until("socket mode connected", func() bool {
		code, b := getHealth(t, h)
		return code == http.StatusOK && b.Slack.State == "connected"
	})
	r.Slack.Close() // every reconnection now fails
	r.Until("healthz failing for slack", func() bool {
		code, b := getHealth(t, h)
		return code == http.StatusServiceUnavailable && b.Slack.State == "down" && len(b.Problems) == 1 && strings.HasPrefix(b.Problems[0], "slack:")
	})
}
