package bot_test

import (
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"sockembot/bot"
	"sockembot/bot/bottest"
)

// scrape GETs /metrics from h and parses Prometheus's text format.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d\n%s", rec.Code, rec.Body)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, rec.Body)
	}
	return families
}

// sample finds the sample of name with exactly labels; ok is false when there is none.
func sample(families map[string]*dto.MetricFamily, name string, labels map[string]string) (*dto.Metric, bool) {
	f, ok := families[name]
	if !ok {
		return nil, false
	}
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
				match = false
			}
		}
		if match {
			return m, true
		}
	}
	return nil, false
}

// /metrics is Prometheus's text format from the client library: the bot's own series with their
// names, labels, help texts and buckets, each check counted by the status it set, the queue
// depth read from the store, and the Go and process collectors.
func TestMetricsExposition(t *testing.T) {
	e := bottest.NewHooks(t)
	_, _, body := e.OpenedPR()
	if code, msg := e.Deliver("pull_request", body); code != http.StatusAccepted {
		t.Fatalf("delivery: %d %s", code, msg)
	}
	if code, msg := e.Deliver("ping", bottest.Fixture(t, bottest.Octokit+"ping/payload.json")); code != http.StatusOK {
		t.Fatalf("ping: %d %s", code, msg)
	}
	// Without the secret, whatever the event header says, no new series is minted.
	if code, _ := e.Post(e.Server.URL, map[string]string{
		"X-GitHub-Event": "made-up-event-1234", "X-GitHub-Delivery": "d-unsigned", "X-Hub-Signature-256": "sha256=00",
		"Content-Type": "application/json",
	}, []byte(`{}`)); code != http.StatusUnauthorized {
		t.Fatalf("an unsigned delivery answered %d", code)
	}
	before := scrape(t, e.App.MetricsHandler())
	e.Drain()
	families := scrape(t, e.App.MetricsHandler())

	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		m, ok := sample(families, name, labels)
		switch {
		case !ok:
			t.Fatalf("no %s%v in /metrics", name, labels)
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
		return 0
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sockembot_webhook_deliveries_total", map[string]string{"event": "pull_request", "result": "accepted"}, 1},
		{"sockembot_webhook_deliveries_total", map[string]string{"event": "ping", "result": "pong"}, 1},
		{"sockembot_webhook_deliveries_total", map[string]string{"event": "other", "result": "bad_signature"}, 1},
		{"sockembot_webhook_response_seconds", nil, 3},
		{"sockembot_deliveries_processed_total", map[string]string{"result": "ok"}, 1},
		{"sockembot_checks_total", map[string]string{"state": "failure"}, 1}, // the PR has no approval
		{"sockembot_delivery_queue_depth", nil, 0},                           // drained
	} {
		if got := value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got, ok := sample(before, "sockembot_delivery_queue_depth", nil); !ok || got.GetGauge().GetValue() != 1 {
		t.Errorf("queue depth before draining %v, want 1", got)
	}
	for _, m := range families["sockembot_webhook_deliveries_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "event" && !slices.Contains([]string{"pull_request", "pull_request_review", "push", "deployment_status", "ping", "other"}, l.GetValue()) {
				t.Errorf("an unbounded event label %q", l.GetValue())
			}
		}
	}

	help := map[string]string{
		"sockembot_webhook_deliveries_total":   "GitHub webhook deliveries received, by event and outcome.",
		"sockembot_webhook_response_seconds":   "Time from request to response on the webhook endpoint.",
		"sockembot_deliveries_processed_total": "Webhook deliveries taken off the queue, by outcome.",
		"sockembot_checks_total":               "Pull request checks, by the commit status they set.",
		"sockembot_delivery_queue_depth":       "Webhook deliveries persisted but not yet processed, on every replica.",
	}
	types := map[string]dto.MetricType{
		"sockembot_webhook_deliveries_total":   dto.MetricType_COUNTER,
		"sockembot_webhook_response_seconds":   dto.MetricType_HISTOGRAM,
		"sockembot_deliveries_processed_total": dto.MetricType_COUNTER,
		"sockembot_checks_total":               dto.MetricType_COUNTER,
		"sockembot_delivery_queue_depth":       dto.MetricType_GAUGE,
	}
	for name, want := range help {
		f := families[name]
		if f.GetHelp() != want || f.GetType() != types[name] {
			t.Errorf("%s: %s %q, want %s %q", name, f.GetType(), f.GetHelp(), types[name], want)
		}
	}

	h, _ := sample(families, "sockembot_webhook_response_seconds", nil)
	var bounds []float64
	for _, b := range h.GetHistogram().GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
	}
	if want := []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, math.Inf(1)}; !slices.Equal(bounds, want) {
		t.Errorf("response buckets %v, want %v", bounds, want)
	}

	var goFamilies, processFamilies int
	for name := range families {
		switch {
		case strings.HasPrefix(name, "go_"):
			goFamilies++
		case strings.HasPrefix(name, "process_"):
			processFamilies++
		}
	}
	if _, ok := families["go_goroutines"]; !ok || goFamilies == 0 {
		t.Error("no go_ series: the Go collector is missing")
	}
	if processFamilies == 0 {
		t.Error("no process_ series: the process collector is missing")
	}
}

// Each App has a registry of its own: two in one process count apart, and an App that was
// never wired (nor given a store) still serves its metrics.
func TestMetricsPerApp(t *testing.T) {
	e := bottest.NewHooks(t)
	other := e.NewApp(e.Store, "replica-2")
	if code, msg := e.Deliver("ping", bottest.Fixture(t, bottest.Octokit+"ping/payload.json")); code != http.StatusOK {
		t.Fatalf("ping: %d %s", code, msg)
	}
	if m, ok := sample(scrape(t, other.MetricsHandler()), "sockembot_webhook_deliveries_total", map[string]string{"event": "ping", "result": "pong"}); ok {
		t.Errorf("the other App counted this App's delivery: %v", m)
	}
	if _, ok := sample(scrape(t, e.App.MetricsHandler()), "sockembot_webhook_deliveries_total", map[string]string{"event": "ping", "result": "pong"}); !ok {
		t.Error("the delivery was not counted")
	}

	bare := scrape(t, (&bot.App{}).MetricsHandler())
	if _, ok := bare["sockembot_webhook_response_seconds"]; !ok {
		t.Error("a bare App serves no response histogram")
	}
	if _, ok := bare["sockembot_delivery_queue_depth"]; ok {
		t.Error("a queue depth without a store")
	}
}

// A store that cannot answer leaves the queue depth out rather than reporting a wrong value;
// the rest is still served.
func TestMetricsQueueDepthLeftOutWithoutTheStore(t *testing.T) {
	e := bottest.NewHooks(t)
	e.Store.Close()
	families := scrape(t, e.App.MetricsHandler())
	if f, ok := families["sockembot_delivery_queue_depth"]; ok {
		t.Errorf("queue depth reported from a closed store: %v", f)
	}
	if _, ok := families["sockembot_webhook_response_seconds"]; !ok {
		t.Error("the rest of the metrics went with the queue depth")
	}
}

// The metrics are not on the public port: the Handler that serves the webhooks answers 404 for
// /metrics, and the metrics handler serves nothing but /metrics.
func TestMetricsNotOnThePublicPort(t *testing.T) {
	e := bottest.NewHooks(t)
	for _, path := range []string{"/metrics", "/metrics/", "/Metrics", "/healthz/../metrics"} {
		if code, body := e.Get(path); code != http.StatusNotFound || strings.Contains(body, "sockembot_") {
			t.Errorf("public GET %s: %d\n%.200s", path, code, body)
		}
	}
	srv := httptest.NewServer(e.App.MetricsHandler())
	t.Cleanup(srv.Close)
	for _, c := range []struct{ method, path string }{{"GET", "/healthz"}, {"POST", "/webhooks/github"}, {"GET", "/"}} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("metrics listener %s %s: %d, want 404", c.method, c.path, resp.StatusCode)
		}
	}
}

// With a token, a scrape must carry it as a bearer token: anything else is a 401 that shows
// no metric.
func TestMetricsBearerToken(t *testing.T) {
	e := bottest.NewHooks(t)
	e.App.MetricsToken = "m3trics-t0ken"
	srv := httptest.NewServer(e.App.MetricsHandler())
	t.Cleanup(srv.Close)
	get := func(auth []string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
		for _, a := range auth {
			req.Header.Add("Authorization", a)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for name, auth := range map[string][]string{
		"missing":       nil,
		"empty":         {""},
		"wrong token":   {"Bearer not-the-token"},
		"token alone":   {"m3trics-t0ken"},
		"basic scheme":  {"Basic m3trics-t0ken"},
		"prefix of it":  {"Bearer m3trics-t0ke"},
		"longer":        {"Bearer m3trics-t0ken2"},
		"second header": {"Bearer wrong", "Bearer m3trics-t0ken"},
		"empty bearer":  {"Bearer "},
	} {
		code, body := get(auth)
		if code != http.StatusUnauthorized || strings.Contains(body, "sockembot_") || strings.Contains(body, "m3trics-t0ken") {
			t.Errorf("%s: %d\n%.200s", name, code, body)
		}
	}
	if code, body := get([]string{"Bearer m3trics-t0ken"}); code != http.StatusOK || !strings.Contains(body, "sockembot_webhook_response_seconds") {
		t.Errorf("the right token: %d\n%.200s", code, body)
	}
}

// A metrics address that cannot be listened on stops the bot, saying which setting it was,
// rather than run without the metrics someone asked for.
func TestRunStopsWhenTheMetricsAddressIsTaken(t *testing.T) {
	e := bottest.NewHooks(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	e.App.Addr = "127.0.0.1:0"
	e.App.MetricsAddr = busy.Addr().String()
	ctx, cancel := context.WithTimeout(e.Ctx, time.Minute) // a failure guard only
	defer cancel()
	if err := e.App.Run(ctx); err == nil || !strings.Contains(err.Error(), "metrics: listen on "+busy.Addr().String()) || !strings.Contains(err.Error(), "METRICS_ADDR") {
		t.Fatalf("Run with the metrics address taken: %v", err)
	}
}
