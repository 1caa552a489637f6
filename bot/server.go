package bot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Handler is the bot's HTTP surface: the GitHub webhook endpoint, a liveness probe and the
// Prometheus metrics. It is what serveHTTP serves and what tests drive through httptest.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.serveHealth)
	mux.Handle("GET /metrics", a.metrics.handler(a))
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

	slack socketState // the Slack connection, for /healthz
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
