package bot

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// responseBuckets are the upper bounds (seconds) of the webhook response-time histogram. GitHub
// gives up after 10 s, so the interesting range is well below it.
var responseBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// metrics are the App's Prometheus metrics, on a registry of its own (several Apps may share a
// process: replicas in one test), with the Go and process collectors. They are made at first use,
// so an App works whether it was wired or not.
type metrics struct {
	once       sync.Once
	registry   *prometheus.Registry
	deliveries *prometheus.CounterVec
	response   prometheus.Histogram
	processed  *prometheus.CounterVec
	checks     *prometheus.CounterVec
}

func (m *metrics) init(a *App) {
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
		m.registry.MustRegister(m.deliveries, m.response, m.processed, m.checks, queueDepth{a},
			collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	})
}

func (m *metrics) delivery(a *App, event, result string, took time.Duration) {
	m.init(a)
	m.deliveries.WithLabelValues(event, result).Inc()
	m.response.Observe(took.Seconds())
}

func (m *metrics) processedDelivery(a *App, result string) {
	m.init(a)
	m.processed.WithLabelValues(result).Inc()
}

func (m *metrics) handler(a *App) http.Handler {
	m.init(a)
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := q.a.Store.PendingDeliveries(ctx)
	if err != nil {
		q.a.log().WithError(err).Warn("metrics: queue depth")
		return
	}
	ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(n))
}
