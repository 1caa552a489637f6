package bot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Handler is the bot's HTTP surface: the GitHub webhook endpoint, a liveness probe and the
// Prometheus metrics. It is what serveHTTP serves and what tests drive through httptest.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		depth := int64(-1)
		if a.Store != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			n, err := a.Store.PendingDeliveries(ctx)
			cancel()
			if err == nil {
				depth = n
			} else {
				a.log().WithError(err).Warn("metrics: queue depth")
			}
		}
		a.metrics.write(w, depth)
	})
	mux.HandleFunc("POST /webhooks/github", a.serveWebhook)
	return recoverHTTP(a, mux)
}

// recoverHTTP answers 500 instead of dropping the connection when a handler panics, so one bad
// request can never take the endpoint (or the process) down.
func recoverHTTP(a *App, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.log().WithField("path", r.URL.Path).Errorf("http handler panic: %v", v)
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// runtimeState is the process-local state of the runtime: where the HTTP server ended up
// listening (Addr may ask for port 0), the signal that wakes the delivery workers, and the keys
// locked right now (see Lock).
type runtimeState struct {
	once  sync.Once
	ready chan struct{}
	addr  string
	kick  chan struct{}

	mu       sync.Mutex
	checking map[string]chan struct{} // repo#n → closed when that check ends

	// reading and readingSmall bound the webhook bodies read at once (see serveWebhook).
	reading, readingSmall chan struct{}
}

// maxWebhookReads is how many large webhook bodies (over smallWebhookBody, or of unannounced
// length) are read at once; maxSmallWebhookReads how many small ones.
const (
	maxWebhookReads      = 8
	maxSmallWebhookReads = 64
	smallWebhookBody     = 1 << 20
)

func (s *runtimeState) init() {
	s.once.Do(func() {
		s.ready = make(chan struct{})
		s.kick = make(chan struct{}, 1)
		s.checking = map[string]chan struct{}{}
		s.reading = make(chan struct{}, maxWebhookReads)
		s.readingSmall = make(chan struct{}, maxSmallWebhookReads)
	})
}

// Listening is closed once serveHTTP is accepting connections; ListenAddr then gives the address.
func (a *App) Listening() <-chan struct{} {
	a.state.init()
	return a.state.ready
}

// ListenAddr is the address serveHTTP bound (host:port), "" before Listening is closed.
func (a *App) ListenAddr() string {
	select {
	case <-a.Listening():
		return a.state.addr
	default:
		return ""
	}
}

// serveHTTP serves Handler on a.Addr until ctx is done, then shuts down gracefully.
func (a *App) serveHTTP(ctx context.Context) error {
	addr := a.Addr
	if addr == "" {
		addr = ":8080"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http: listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// A 25 MB delivery on a slow link still fits; a client that trickles bytes does not
		// hold a connection forever.
		ReadTimeout:  60 * time.Second,
		WriteTimeout: 60 * time.Second,
		IdleTimeout:  120 * time.Second,
	}
	a.state.init()
	a.state.addr = ln.Addr().String()
	close(a.state.ready)
	a.log().WithField("addr", a.state.addr).Info("http: listening")

	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http: serve: %w", err)
	}
	return nil
}

// metrics are a handful of counters written in the Prometheus text exposition format by hand:
// four series do not justify the client library and its dependency tree.
type metrics struct {
	mu         sync.Mutex
	deliveries map[[2]string]int64 // {event, result} → count
	checks     map[string]int64    // commit status state → count
	processed  map[string]int64    // delivery processing result → count
	response   histogram
}

// responseBuckets are the upper bounds (seconds) of the webhook response-time histogram. GitHub
// gives up after 10 s, so the interesting range is well below it.
var responseBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

type histogram struct {
	counts []int64 // per bucket, not cumulative; len(responseBuckets)+1 with +Inf last
	sum    float64
	n      int64
}

func (m *metrics) delivery(event, result string, took time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deliveries == nil {
		m.deliveries = map[[2]string]int64{}
	}
	m.deliveries[[2]string{event, result}]++
	if m.response.counts == nil {
		m.response.counts = make([]int64, len(responseBuckets)+1)
	}
	s := took.Seconds()
	i := sort.SearchFloat64s(responseBuckets, s)
	m.response.counts[i]++
	m.response.sum += s
	m.response.n++
}

func (m *metrics) check(state string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.checks == nil {
		m.checks = map[string]int64{}
	}
	m.checks[state]++
}

func (m *metrics) processedDelivery(result string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.processed == nil {
		m.processed = map[string]int64{}
	}
	m.processed[result]++
}

// write renders the metrics; queueDepth < 0 means the store could not be asked.
func (m *metrics) write(w io.Writer, queueDepth int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder

	b.WriteString("# HELP sockembot_webhook_deliveries_total GitHub webhook deliveries received, by event and outcome.\n")
	b.WriteString("# TYPE sockembot_webhook_deliveries_total counter\n")
	keys := make([][2]string, 0, len(m.deliveries))
	for k := range m.deliveries {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "sockembot_webhook_deliveries_total{event=\"%s\",result=\"%s\"} %d\n", escapeLabel(k[0]), escapeLabel(k[1]), m.deliveries[k])
	}

	b.WriteString("# HELP sockembot_webhook_response_seconds Time from request to response on the webhook endpoint.\n")
	b.WriteString("# TYPE sockembot_webhook_response_seconds histogram\n")
	var cum int64
	for i, le := range responseBuckets {
		if m.response.counts != nil {
			cum += m.response.counts[i]
		}
		fmt.Fprintf(&b, "sockembot_webhook_response_seconds_bucket{le=\"%g\"} %d\n", le, cum)
	}
	fmt.Fprintf(&b, "sockembot_webhook_response_seconds_bucket{le=\"+Inf\"} %d\n", m.response.n)
	fmt.Fprintf(&b, "sockembot_webhook_response_seconds_sum %g\n", m.response.sum)
	fmt.Fprintf(&b, "sockembot_webhook_response_seconds_count %d\n", m.response.n)

	b.WriteString("# HELP sockembot_deliveries_processed_total Webhook deliveries taken off the queue, by outcome.\n")
	b.WriteString("# TYPE sockembot_deliveries_processed_total counter\n")
	writeCounterMap(&b, "sockembot_deliveries_processed_total", "result", m.processed)

	b.WriteString("# HELP sockembot_checks_total Pull request checks, by the commit status they set.\n")
	b.WriteString("# TYPE sockembot_checks_total counter\n")
	writeCounterMap(&b, "sockembot_checks_total", "state", m.checks)

	if queueDepth >= 0 {
		b.WriteString("# HELP sockembot_delivery_queue_depth Webhook deliveries persisted but not yet processed, on every replica.\n")
		b.WriteString("# TYPE sockembot_delivery_queue_depth gauge\n")
		fmt.Fprintf(&b, "sockembot_delivery_queue_depth %d\n", queueDepth)
	}
	io.WriteString(w, b.String())
}

func writeCounterMap(b *strings.Builder, name, label string, m map[string]int64) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(b, "%s{%s=\"%s\"} %d\n", name, label, escapeLabel(k), m[k])
	}
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
