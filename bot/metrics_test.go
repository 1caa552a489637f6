package bot_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"sockembot/bot/bottest"
)

// /metrics is Prometheus's text format from the client library: the bot's own series, each
// check counted by the status it set, and the Go and process collectors.
func TestMetricsExposition(t *testing.T) {
	e := bottest.NewHooks(t)
	_, _, body := e.OpenedPR()
	if code, msg := e.Deliver("pull_request", body); code != http.StatusAccepted {
		t.Fatalf("delivery: %d %s", code, msg)
	}
	e.Drain()
	code, text := e.Get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, text)
	}
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		f, ok := families[name]
		if !ok {
			t.Fatalf("no %s in /metrics", name)
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
		t.Fatalf("no %s%v in /metrics", name, labels)
		return 0
	}
	if v := value("sockembot_webhook_deliveries_total", map[string]string{"event": "pull_request", "result": "accepted"}); v != 1 {
		t.Errorf("accepted deliveries %v, want 1", v)
	}
	if v := value("sockembot_deliveries_processed_total", map[string]string{"result": "ok"}); v != 1 {
		t.Errorf("processed deliveries %v, want 1", v)
	}
	if v := value("sockembot_checks_total", map[string]string{"state": "failure"}); v != 1 {
		t.Errorf("failing checks %v, want 1 (the PR has no approval)", v)
	}
	if v := value("sockembot_delivery_queue_depth", nil); v != 0 {
		t.Errorf("queue depth %v, want 0 after draining", v)
	}
	if v := value("sockembot_webhook_response_seconds", nil); v != 1 {
		t.Errorf("response time samples %v, want 1", v)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := families[name]; !ok {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}
}
