package bot

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// responseBuckets are the upper bounds (seconds) of the webhook response-time histogram. GitHub
// gives up after 10 s, so the interesting range is well below it.
var responseBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// queueDepthTimeout bounds the store query behind sockembot_delivery_queue_depth at scrape time.
const queueDepthTimeout = 2 * time.Second

// metrics are the App's Prometheus metrics, on a registry of its own (several Apps may share a
// process: replicas in one test), with the Go and process collectors. They are made at first
// use, so an App counts and serves them whether it was wired or not.
type metrics struct {
	once       sync.Once
	registry   *prometheus.Registry
	deliveries *prometheus.CounterVec
	response   prometheus.Histogram
	processed  *prometheus.CounterVec
	checks     *prometheus.CounterVec

	depthOnce sync.Once // the queue depth collector, registered with the first handler
}

func (m *metrics) init() {
	m.once.Do(func() {
		m.registry = prometheus.NewRegistry()
		m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sockembot_webhook_deliveries_total",
			Help: "GitHub webhook deliveries received, by event and outcome.",
		}, []string{"event", "result"})
		m.response = prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sockembot_webhook_response_seconds",
			Help:    "Time from request to response on the webhook endpoint.",
			Buckets: responseBuckets,
		})
		m.processed = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sockembot_deliveries_processed_total",
			Help: "Webhook deliveries taken off the queue, by outcome.",
		}, []string{"result"})
		m.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sockembot_checks_total",
			Help: "Pull request checks, by the commit status they set.",
		}, []string{"state"})
		m.registry.MustRegister(m.deliveries, m.response, m.processed, m.checks,
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	})
}

// delivery counts one webhook request by its (bounded, see metricEvent) event and outcome, and
// how long the answer took.
func (m *metrics) delivery(event, result string, took time.Duration) {
	m.init()
	m.deliveries.WithLabelValues(event, result).Inc()
	m.response.Observe(took.Seconds())
}

// processedDelivery counts one delivery taken off the queue by its outcome.
func (m *metrics) processedDelivery(result string) {
	m.init()
	m.processed.WithLabelValues(result).Inc()
}

// check counts one pull request check by the commit status it set (mergegate.Gate.Checked).
func (m *metrics) check(state string) {
	m.init()
	m.checks.WithLabelValues(state).Inc()
}

// handler serves the registry. The queue depth is asked of a's store at scrape time, so its
// collector joins the registry here, once, however many handlers are made.
func (m *metrics) handler(a *App) http.Handler {
	m.init()
	m.depthOnce.Do(func() { m.registry.MustRegister(queueDepth{a}) })
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorLog: promLog{a}})
}

// promLog sends promhttp's errors (a collector failing, a broken write) to the App's log.
type promLog struct{ a *App }

func (l promLog) Println(v ...any) {
	l.a.log().WithField("component", "metrics").Warn(strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

// queueDepth reports the deliveries persisted but not yet processed, asked of the store at
// scrape time. When the store cannot answer, the gauge is left out rather than reported wrong.
type queueDepth struct{ a *App }

var queueDepthDesc = prometheus.NewDesc("sockembot_delivery_queue_depth",
	"Webhook deliveries persisted but not yet processed, on every replica.", nil, nil)

func (q queueDepth) Describe(ch chan<- *prometheus.Desc) { ch <- queueDepthDesc }

func (q queueDepth) Collect(ch chan<- prometheus.Metric) {
	if q.a.Store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), queueDepthTimeout)
	defer cancel()
	n, err := q.a.Store.PendingDeliveries(ctx)
	if err != nil {
		q.a.log().WithError(err).Warn("metrics: queue depth")
		return
	}
	ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(n))
}
