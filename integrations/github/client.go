// Package github is sockembot's GitHub adapter, built on go-github: it gathers the facts of a
// release range or a merge group (commits, the pull requests they came from, reviews), writes
// commit statuses, check runs, comments and deployments, answers deployment protection rules,
// and checks and decodes webhooks.
//
// It works against github.com and GitHub Enterprise Server (BaseURL ending in /api/v3/), with a
// token or as a GitHub App (installation tokens minted and renewed by ghinstallation), retries
// transient failures, waits out rate limits within a bound, and fails closed: a fact it could not
// fetch is an error, never an empty answer.
package github

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v62/github"

	"sockembot/compliance"
	"sockembot/integrations/internal/scrub"
)

// ErrNotFound means GitHub has no such ref, pull request or repository (404, or 422 "No commit
// found" for a ref). Callers tell it apart from an outage with errors.Is; it is the domain's
// compliance.ErrNotFound.
var ErrNotFound = compliance.ErrNotFound

// DefaultBaseURL is github.com's REST API.
const DefaultBaseURL = "https://api.github.com/"

// Options configure a Client. Zero values take the defaults.
type Options struct {
	BaseURL    string       // default DefaultBaseURL; GitHub Enterprise: https://host/api/v3/
	Token      string       // sent as a Bearer token; never logged or put in errors
	HTTPClient *http.Client // its Transport (if any) carries the requests; default http.DefaultTransport
	// App makes the Client act as a GitHub App instead of with Token (set one of them, or
	// neither for anonymous access).
	App *AppAuth
	// Concurrency caps requests in flight, for all callers of this Client. Default 12: GitHub
	// allows 100 concurrent requests per token or installation (its secondary rate limit); what
	// counts against the hourly budget is the number of requests, which concurrency does not
	// change.
	Concurrency int
	// MaxRateLimitWait bounds how long one request may wait for rate limits. Default 2m.
	MaxRateLimitWait time.Duration
	// Retries for 5xx and network errors. Default 3; negative means none.
	Retries int
	// Backoff before the first retry, doubled each time. Default 500ms.
	Backoff time.Duration
	// Timeout bounds each attempt of a request, from connecting until the answer is read. An
	// attempt that times out is retried like a network error (see Retries). Default 60s.
	// Rate-limit waits and retries are not counted in it: set HTTPClient.Timeout (or use a
	// context deadline) to bound a whole call.
	Timeout time.Duration
}

// Client talks to one GitHub (or GitHub Enterprise) instance. It is safe for concurrent use.
type Client struct {
	gh          *gh.Client
	concurrency int
	auditLimit  int        // 0: AuditLimit (tests lower it)
	app         *appRouter // nil unless Options.App

	selfMu sync.Mutex
	// self is who sockembot acts as: the token's login ("" for an installation token given as
	// Options.Token, which has no user), or "<slug>[bot]" for Options.App. nil until known.
	self *string
}

// New builds a Client. It refuses both a Token and an App, and an App whose settings or key are
// unusable (the error never quotes the key).
func New(o Options) (*Client, error) {
	if o.Token != "" && o.App != nil {
		return nil, errors.New("github: both a token (GITHUB_TOKEN) and a GitHub App (GITHUB_APP_ID) are configured: set one")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 12
	}
	if o.MaxRateLimitWait <= 0 {
		o.MaxRateLimitWait = 2 * time.Minute
	}
	switch {
	case o.Retries == 0:
		o.Retries = 3
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	hc := &http.Client{}
	if o.HTTPClient != nil {
		copied := *o.HTTPClient
		hc = &copied
	}
	base := hc.Transport
	if base == nil {
		// http.DefaultTransport keeps 2 idle connections per host: with more requests in
		// flight than that, every extra one would open (and TLS-handshake) a new connection.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = o.Concurrency
		// A GitHub that accepts the connection and then stalls must not hang a check.
		t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		t.TLSHandshakeTimeout = 10 * time.Second
		t.ResponseHeaderTimeout = 30 * time.Second
		base = t
	}
	// As a GitHub App: go-github → retryTransport → scrub → appRouter → ghinstallation → base.
	// Installation tokens and the JWT are scrubbed from error bodies below ghinstallation, where
	// the request still carries them (credentialScrub).
	var app *appRouter
	if o.App != nil {
		var err error
		if app, err = newAppRouter(o.App, base, o.Timeout); err != nil {
			return nil, err
		}
		base = app
	}
	// Error bodies are scrubbed of the token before go-github reads them into its errors.
	secrets := []string{o.Token}
	base = &scrub.Transport{Base: base, Secrets: secrets}
	hc.Transport = &retryTransport{
		base: base, slots: make(chan struct{}, o.Concurrency),
		retries: o.Retries, backoff: o.Backoff, maxWait: o.MaxRateLimitWait, timeout: o.Timeout,
	}
	client := gh.NewClient(hc)
	if o.Token != "" {
		client = client.WithAuthToken(o.Token)
	}
	if o.BaseURL != "" && o.BaseURL != DefaultBaseURL {
		var err error
		// WithEnterpriseURLs appends /api/v3/ when missing, which is where GHES serves the API.
		if client, err = client.WithEnterpriseURLs(o.BaseURL, o.BaseURL); err != nil {
			return nil, fmt.Errorf("github: base URL: %w", err)
		}
	}
	if app != nil {
		app.init(client.BaseURL)
	}
	return &Client{gh: client, concurrency: o.Concurrency, app: app}, nil
}

func splitRepo(repo string) (owner, name string, err error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("github: repository %q is not owner/name", repo)
	}
	return owner, name, nil
}

// hasStatus reports whether err is a GitHub API error with one of the given HTTP statuses.
func hasStatus(err error, codes ...int) bool {
	var er *gh.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil {
		return false
	}
	for _, c := range codes {
		if er.Response.StatusCode == c {
			return true
		}
	}
	return false
}

// notFound turns a 404 into ErrNotFound and leaves other errors alone.
func notFound(err error) error {
	if hasStatus(err, http.StatusNotFound) {
		return ErrNotFound
	}
	return err
}

const perPage = 100 // GitHub's maximum

// allPages fetches every page of a list. When GitHub says how many pages there are (Link
// rel="last"), pages 2..last are fetched in parallel; otherwise it follows rel="next".
func allPages[T any](ctx context.Context, limit int, fetch func(ctx context.Context, opt gh.ListOptions) ([]T, *gh.Response, error)) ([]T, error) {
	first, resp, err := fetch(ctx, gh.ListOptions{Page: 1, PerPage: perPage})
	if err != nil {
		return nil, err
	}
	if resp.NextPage == 0 {
		return first, nil
	}
	if resp.LastPage == 0 {
		out := first
		for next := resp.NextPage; next != 0; {
			items, r, err := fetch(ctx, gh.ListOptions{Page: next, PerPage: perPage})
			if err != nil {
				return nil, err
			}
			out = append(out, items...)
			next = r.NextPage
		}
		return out, nil
	}
	pages := make([][]T, resp.LastPage-1)
	err = forEach(ctx, len(pages), limit, func(ctx context.Context, i int) error {
		items, _, err := fetch(ctx, gh.ListOptions{Page: i + 2, PerPage: perPage})
		pages[i] = items
		return err
	})
	if err != nil {
		return nil, err
	}
	out := first
	for _, p := range pages {
		out = append(out, p...)
	}
	return out, nil
}

// forEach runs fn(0..n-1) with at most limit running at once, and returns the first error
// (cancelling the others' context).
func forEach(ctx context.Context, n, limit int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		slots = make(chan struct{}, max(limit, 1))
	)
	for i := 0; i < n; i++ {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-slots }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}(i)
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// memo runs a function once per key and shares the result with concurrent callers, so a
// pull request is never fetched twice in one gather.
type memo[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]*memoCall[V]
}

type memoCall[V any] struct {
	done chan struct{}
	v    V
	err  error
}

func (m *memo[K, V]) do(k K, f func() (V, error)) (V, error) {
	m.mu.Lock()
	if m.m == nil {
		m.m = map[K]*memoCall[V]{}
	}
	if c, ok := m.m[k]; ok {
		m.mu.Unlock()
		<-c.done
		return c.v, c.err
	}
	c := &memoCall[V]{done: make(chan struct{})}
	m.m[k] = c
	m.mu.Unlock()
	c.v, c.err = f()
	close(c.done)
	return c.v, c.err
}
