package bot

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// Handler is the bot's public HTTP surface: the GitHub webhook endpoint and a liveness probe.
// It is what Run serves on a.Addr and what tests drive through httptest. The metrics are not here
// (a 404): they say what the bot is doing to anyone who asks, so they have a listener of their
// own (MetricsHandler, on MetricsAddr).
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.serveHealth)
	mux.HandleFunc("POST /webhooks/github", a.serveWebhook)
	return recoverHTTP(a, mux)
}

// MetricsHandler serves the Prometheus metrics on GET /metrics, and nothing else. With
// MetricsToken set, a scrape must send "Authorization: Bearer TOKEN" (compared in constant
// time) or gets a 401.
func (a *App) MetricsHandler() http.Handler {
	metrics := a.metrics.handler(a)
	token := a.MetricsToken
	want := []byte("Bearer " + token)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sockembot metrics"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		metrics.ServeHTTP(w, r)
	})
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

	// reading and readingSmall bound the webhook bodies read at once (see serveWebhook);
	// readsByAddr counts the requests being read per remote address (remoteKey), under mu.
	reading, readingSmall chan struct{}
	readsByAddr           map[string]*addrReads

	slack socketState // the Slack connection, for /healthz
}

// maxWebhookReads is how many large webhook bodies (over smallWebhookBody, or of unannounced
// length) are read at once; maxSmallWebhookReads how many small ones; maxReadsPerAddr how many
// of either one remote address may have being read (or waiting for a slot) at once, and
// addrWait how long a request over that waits for one of them to end before it is refused.
// The wait absorbs a burst of honest deliveries from one address, each read in milliseconds;
// a slow sender's reads take seconds, so its extra requests are refused after addrWait without
// ever taking or queueing for a slot.
const (
	maxWebhookReads      = 8
	maxSmallWebhookReads = 64
	smallWebhookBody     = 1 << 20
	maxReadsPerAddr      = 4
	addrWait             = time.Second
)

// addrReads is one address's requests being read (n) and waiting for room (waiting); freed is
// closed (and replaced) whenever a read ends, waking the waiting ones.
type addrReads struct {
	n, waiting int
	freed      chan struct{}
}

func (s *runtimeState) init() {
	s.once.Do(func() {
		s.ready = make(chan struct{})
		s.kick = make(chan struct{}, 1)
		s.checking = map[string]chan struct{}{}
		s.reading = make(chan struct{}, maxWebhookReads)
		s.readingSmall = make(chan struct{}, maxSmallWebhookReads)
		s.readsByAddr = map[string]*addrReads{}
	})
}

// startRead counts one more request being read from addr, waiting up to wait (or until ctx ends)
// while addr has maxReadsPerAddr already; false means it did not get in. An address
// leaves the map once nothing of it is read or waiting, so the map holds at most one entry per
// request being read or waiting.
func (s *runtimeState) startRead(ctx context.Context, addr string, wait time.Duration) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.readsByAddr[addr]
	if r == nil {
		r = &addrReads{freed: make(chan struct{})}
		s.readsByAddr[addr] = r
	}
	for r.n >= maxReadsPerAddr {
		freed := r.freed
		r.waiting++
		s.mu.Unlock()
		var gaveUp bool
		select {
		case <-freed:
		case <-timer.C:
			gaveUp = true
		case <-ctx.Done():
			gaveUp = true
		}
		s.mu.Lock()
		r.waiting--
		if gaveUp {
			s.forget(addr, r)
			return false
		}
	}
	r.n++
	return true
}

func (s *runtimeState) endRead(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.readsByAddr[addr]
	r.n--
	close(r.freed)
	r.freed = make(chan struct{})
	s.forget(addr, r)
}

// forget drops addr's entry once nothing of it is read or waiting. Called under mu.
func (s *runtimeState) forget(addr string, r *addrReads) {
	if r.n == 0 && r.waiting == 0 {
		delete(s.readsByAddr, addr)
	}
}

// readsWaiting is how many requests are waiting for room under their address's cap.
func (s *runtimeState) readsWaiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.readsByAddr {
		n += r.waiting
	}
	return n
}

// Listening is closed once Run is accepting connections; ListenAddr then gives the address.
func (a *App) Listening() <-chan struct{} {
	a.state.init()
	return a.state.ready
}

// ListenAddr is the address Run bound (host:port), "" before Listening is closed.
func (a *App) ListenAddr() string {
	select {
	case <-a.Listening():
		return a.state.addr
	default:
		return ""
	}
}

// listenHTTP binds a.Addr (default :8080) for Handler and says where (Listening, ListenAddr).
func (a *App) listenHTTP() (net.Listener, error) {
	addr := a.Addr
	if addr == "" {
		addr = ":8080"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http: listen on %s: %w", addr, err)
	}
	a.state.init()
	a.state.addr = ln.Addr().String()
	close(a.state.ready)
	a.log().WithField("addr", a.state.addr).Info("http: listening")
	return ln, nil
}

// listenMetrics binds a.MetricsAddr for MetricsHandler; with no MetricsAddr it binds nothing
// (nil, nil).
func (a *App) listenMetrics() (net.Listener, error) {
	if a.MetricsAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", a.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w (METRICS_ADDR; \"off\" turns the listener off)", a.MetricsAddr, err)
	}
	a.log().WithFields(logrus.Fields{"addr": ln.Addr().String(), "token": a.MetricsToken != ""}).Info("metrics: listening")
	return ln, nil
}

// serve serves h on ln until ctx is done, then shuts down gracefully.
func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// An outer bound: the webhook handler gives each body far less (webhookReadTime).
		ReadTimeout:  60 * time.Second,
		WriteTimeout: 60 * time.Second,
		IdleTimeout:  120 * time.Second,
	}
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
