// Package fakegithub is a small, real HTTP server that answers like the GitHub REST API for the
// handful of endpoints sockembot uses. It is mounted under /api/v3/, as GitHub Enterprise Server
// is, so a client that builds absolute URLs wrongly fails against it. Response bodies are shaped
// on recorded GitHub responses (see testdata/ at the repository root), and the fake's own tests decode
// both through go-github to prove it.
//
// Tests and `sockembot demo` build a history with the Repo builder (direct commits, pull requests
// merged by merge commit, squash or rebase), point a client at URL(), inject faults (latency,
// 5xx, secondary and primary rate limits) and inspect what the client did: the request log,
// commit statuses, comments and deployments written.
//
// With Options.App the fake is the host of a GitHub App (see app.go): the client signs a JWT with
// AppPrivateKeyPEM, exchanges it for an installation token, and only that token opens the
// repository endpoints. In that mode it also answers the App-only endpoints: check runs
// (checks.go) and the review of a deployment protection rule (actions.go). Merge queues are
// modelled by the Repo builder (queue.go).
package fakegithub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Token, when set, must be sent as "Authorization: Bearer <token>" (or "token <token>");
	// other requests get 401 like GitHub's "Bad credentials".
	Token string
	// App, when set, makes the fake require GitHub App authentication: a JWT signed with
	// AppPrivateKeyPEM on the App endpoints, an installation token on every other one. Token
	// is then ignored, and BotLogin is App.Slug+"[bot]".
	App *AppOptions
	// Latency is added to every request before it is answered (see also SetLatency).
	Latency time.Duration
	// Start is the first instant of the fake's synthetic clock, used for commit, review and
	// merge times; every event advances it by a minute. Default 2024-03-01T09:00:00Z.
	Start time.Time
	// BotLogin is the user that comments, statuses and deployments created through the API are
	// attributed to. Default "sockembot[bot]"; with App, App.Slug+"[bot]".
	BotLogin string
	// RateLimit is the primary rate limit per window (X-RateLimit-Limit). Default 5000.
	RateLimit int
	// PublicURL, when set, is the address the fake names itself by in the links it returns
	// (html_url, url, compare links), e.g. "http://github.example", instead of its listener's
	// 127.0.0.1:port: a client that dials the listener for that host gets links that are the
	// same on every run (the demo does this).
	PublicURL string
}

// Request is one request the server received.
type Request struct {
	Method string
	Path   string // URL path, including the /api/v3 prefix
	Query  string
	Route  string // e.g. "GET /repos/{owner}/{repo}/pulls/{number}"; "unknown" when none matched
	Status int
	// Auth is the credential the request carried, as the fake judged it: "token" (Options.Token),
	// "jwt" (a valid App JWT), "installation" (a valid, unexpired installation token the fake
	// issued) or "none" (no credential, or none of those).
	Auth string
}

// Server is a running fake. All state is guarded by one mutex; accessors return copies.
type Server struct {
	srv  *httptest.Server
	opts Options

	mu        sync.Mutex
	repos     map[string]*Repo
	clock     time.Time
	nextID    int64
	latency   time.Duration
	failures  []failure
	secondary struct{ n, status int }
	rate      struct {
		limit, remaining int
		reset            time.Time
	}
	log []Request

	// GitHub App mode (app.go); app is nil in token mode.
	app          *AppOptions
	installs     map[string]int64 // lower-case owner → installation id
	installOwner map[int64]string // installation id → owner, as first spelled
	tokens       map[string]*installToken
	tokensIssued int
	reviews      []ProtectionReview
}

type failure struct {
	path   string
	n      int
	status int
	after  bool // act on the request first, then answer status (an answer lost on the way back)
}

// APIPrefix is where the fake mounts the REST API, like GitHub Enterprise Server.
const APIPrefix = "/api/v3"

// New starts a server. Close it when done.
func New(opts Options) *Server {
	if opts.Start.IsZero() {
		opts.Start = time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	}
	if opts.BotLogin == "" {
		opts.BotLogin = "sockembot[bot]"
	}
	if opts.RateLimit <= 0 {
		opts.RateLimit = 5000
	}
	var app *AppOptions
	if opts.App != nil {
		a := *opts.App
		if a.ID == 0 {
			a.ID = 4242
		}
		if a.Slug == "" {
			a.Slug = "sockembot"
		}
		if a.TokenTTL <= 0 {
			a.TokenTTL = time.Hour
		}
		app, opts.App = &a, &a
		opts.BotLogin = a.Slug + "[bot]"
	}
	s := &Server{
		opts:         opts,
		repos:        map[string]*Repo{},
		clock:        opts.Start.UTC(),
		nextID:       1000000,
		latency:      opts.Latency,
		app:          app,
		installs:     map[string]int64{},
		installOwner: map[int64]string{},
		tokens:       map[string]*installToken{},
	}
	s.rate.limit = opts.RateLimit
	s.rate.remaining = opts.RateLimit
	s.rate.reset = time.Now().Add(time.Hour).Truncate(time.Second)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the API base URL to give a client, ending in "/api/v3/".
func (s *Server) URL() string { return s.srv.URL + APIPrefix + "/" }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// htmlBase is the web URL of the fake (GitHub Enterprise serves both from one host).
func (s *Server) htmlBase() string {
	if s.opts.PublicURL != "" {
		return strings.TrimSuffix(s.opts.PublicURL, "/")
	}
	return s.srv.URL
}

func (s *Server) apiBase() string { return s.htmlBase() + APIPrefix }

// SetLatency changes the delay added to each request.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// FailNext makes the next n requests whose path contains pathSubstr ("" matches all) fail with
// status (500, 502, 503 ...).
func (s *Server) FailNext(n int, pathSubstr string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{path: pathSubstr, n: n, status: status})
}

// LoseNextAnswer makes the next n writes (not GETs) whose path contains pathSubstr take effect and then
// answer status instead of their real reply, as when a proxy in front of GitHub times out after
// GitHub acted (a deployment created, its 201 lost).
func (s *Server) LoseNextAnswer(n int, pathSubstr string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{path: pathSubstr, n: n, status: status, after: true})
}

// SecondaryRateLimit makes the next n requests hit GitHub's secondary rate limit: status 403
// (with GitHub's secondary-rate-limit documentation_url) or 429, and "Retry-After: 1".
func (s *Server) SecondaryRateLimit(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secondary.n, s.secondary.status = n, status
}

// SetRateLimit sets the primary rate limit window: remaining requests, and when the window
// resets (rounded up to a whole second, as X-RateLimit-Reset is in seconds). With remaining 2,
// two more requests succeed (the second answering X-RateLimit-Remaining: 0) and the rest get
// 403 "API rate limit exceeded" until the reset.
func (s *Server) SetRateLimit(remaining int, resetIn time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rate.remaining = remaining
	reset := time.Now().Add(resetIn)
	if t := reset.Truncate(time.Second); t.Before(reset) {
		reset = t.Add(time.Second)
	}
	s.rate.reset = reset
}

// Requests returns the request log.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// Total is the number of requests received.
func (s *Server) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.log)
}

// Count is the number of requests received for a route pattern such as
// "GET /repos/{owner}/{repo}/pulls/{number}".
func (s *Server) Count(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.log {
		if r.Route == route {
			n++
		}
	}
	return n
}

// Counts returns the number of requests per route pattern.
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]int{}
	for _, r := range s.log {
		m[r.Route]++
	}
	return m
}

// ResetLog forgets the requests received so far.
func (s *Server) ResetLog() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
}

// Now is the fake's synthetic clock (the time the next event will get).
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clock
}

// tick advances the synthetic clock; callers hold s.mu.
func (s *Server) tick() time.Time {
	s.clock = s.clock.Add(time.Minute)
	return s.clock
}

func (s *Server) newID() int64 {
	s.nextID++
	return s.nextID
}

// reply is what a handler answers. Handlers run with s.mu held.
type reply struct {
	status int
	body   any    // encoded as JSON
	text   string // sent as is when body is nil
	header http.Header
}

func jsonReply(status int, body any) reply { return reply{status: status, body: body} }

func notFound() reply {
	return jsonReply(http.StatusNotFound, obj{
		"message":           "Not Found",
		"documentation_url": "https://docs.github.com/rest",
	})
}

func unprocessable(msg string) reply {
	return jsonReply(http.StatusUnprocessableEntity, obj{
		"message":           msg,
		"documentation_url": "https://docs.github.com/rest",
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	entry := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Route: "unknown"}
	rt, params := match(r.Method, r.URL.Path)
	if rt != nil {
		entry.Route = rt.name()
	}

	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
		}
	}

	s.mu.Lock()
	rep, auth := s.answer(r, rt, params)
	entry.Status, entry.Auth = rep.status, auth
	s.log = append(s.log, entry)
	reqID := len(s.log)
	s.mu.Unlock()

	// Replies are built from fresh maps of immutable values, so they encode outside the lock.
	body := []byte(rep.text)
	if rep.body != nil {
		var err error
		if body, err = json.Marshal(rep.body); err != nil {
			rep.status, body = http.StatusInternalServerError, []byte(`{"message":"fake: encode failed"}`)
		}
	}

	h := w.Header()
	for k, v := range rep.header {
		h[k] = v
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")
	h.Set("X-GitHub-Request-Id", fmt.Sprintf("FAKE:%d", reqID))
	w.WriteHeader(rep.status)
	_, _ = w.Write(body)
}

// answer applies auth, faults and the rate limit, then the route. Called with s.mu held. It
// also returns what credential the request carried (Request.Auth).
func (s *Server) answer(r *http.Request, rt *route, params map[string]string) (reply, string) {
	auth := "none"
	switch {
	case s.app != nil:
		var refused *reply
		if auth, refused = s.appAuth(r, rt, params); refused != nil {
			return *refused, auth
		}
	case s.opts.Token != "":
		h := r.Header.Get("Authorization")
		if h != "Bearer "+s.opts.Token && h != "token "+s.opts.Token {
			return badCredentials(), auth
		}
		auth = "token"
	}
	return s.answerAuthenticated(r, rt, params), auth
}

func badCredentials() reply {
	return jsonReply(http.StatusUnauthorized, obj{
		"message":           "Bad credentials",
		"documentation_url": "https://docs.github.com/rest",
	})
}

// answerAuthenticated applies faults and the rate limit, then the route.
func (s *Server) answerAuthenticated(r *http.Request, rt *route, params map[string]string) reply {
	var lost *failure
	for i := range s.failures {
		f := &s.failures[i]
		if f.after && r.Method == http.MethodGet {
			continue // a lost answer matters for writes
		}
		if f.n > 0 && strings.Contains(r.URL.Path, f.path) {
			f.n--
			if f.after {
				lost = f
				break
			}
			return s.withRate(jsonReply(f.status, obj{"message": http.StatusText(f.status)}))
		}
	}
	if s.secondary.n > 0 {
		s.secondary.n--
		rep := jsonReply(s.secondary.status, obj{
			"message":           "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
			"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
		})
		rep.header = http.Header{"Retry-After": {"1"}}
		return s.withRate(rep)
	}
	now := time.Now()
	if !now.Before(s.rate.reset) {
		s.rate.remaining = s.rate.limit
		s.rate.reset = now.Add(time.Hour).Truncate(time.Second)
	}
	if s.rate.remaining <= 0 {
		return s.withRate(jsonReply(http.StatusForbidden, obj{
			"message":           "API rate limit exceeded for user ID 1.",
			"documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting",
		}))
	}
	s.rate.remaining--
	var rep reply
	if rt == nil {
		rep = notFound()
	} else {
		rep = rt.handle(s, r, params)
	}
	if lost != nil {
		rep = jsonReply(lost.status, obj{"message": http.StatusText(lost.status)})
	}
	return s.withRate(rep)
}

// withRate adds the X-RateLimit-* headers GitHub sends on every REST response.
func (s *Server) withRate(rep reply) reply {
	if rep.header == nil {
		rep.header = http.Header{}
	}
	rep.header.Set("X-RateLimit-Limit", strconv.Itoa(s.rate.limit))
	rep.header.Set("X-RateLimit-Remaining", strconv.Itoa(max(s.rate.remaining, 0)))
	rep.header.Set("X-RateLimit-Used", strconv.Itoa(s.rate.limit-max(s.rate.remaining, 0)))
	rep.header.Set("X-RateLimit-Reset", strconv.FormatInt(s.rate.reset.Unix(), 10))
	rep.header.Set("X-RateLimit-Resource", "core")
	return rep
}

// route is one endpoint. In patterns, {ref}, {basehead} and {path} match one or more path
// segments (refs may contain slashes); other {params} match exactly one.
type route struct {
	method  string
	pattern string
	handle  func(s *Server, r *http.Request, p map[string]string) reply
}

func (rt *route) name() string { return rt.method + " " + rt.pattern }

var multiSegment = map[string]bool{"ref": true, "basehead": true, "path": true}

var routes []*route

func init() {
	routes = []*route{
		{"GET", "/user", (*Server).getUser},
		{"GET", "/app", (*Server).getApp},
		{"GET", "/app/installations", (*Server).listInstallations},
		{"GET", "/app/installations/{id}", (*Server).getInstallation},
		{"POST", "/app/installations/{id}/access_tokens", (*Server).createInstallationToken},
		{"GET", "/repos/{owner}/{repo}/installation", (*Server).getRepoInstallation},
		{"GET", "/repos/{owner}/{repo}", (*Server).getRepo},
		{"GET", "/repos/{owner}/{repo}/compare/{basehead}", (*Server).compare},
		{"GET", "/repos/{owner}/{repo}/commits", (*Server).listCommits},
		{"GET", "/repos/{owner}/{repo}/git/trees/{sha}", (*Server).getTree},
		{"GET", "/repos/{owner}/{repo}/commits/{sha}/pulls", (*Server).commitPulls},
		{"GET", "/repos/{owner}/{repo}/commits/{ref}/statuses", (*Server).listStatuses},
		{"GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs", (*Server).listCheckRuns},
		{"GET", "/repos/{owner}/{repo}/commits/{ref}", (*Server).getCommit},
		{"GET", "/repos/{owner}/{repo}/pulls", (*Server).listPulls},
		{"GET", "/repos/{owner}/{repo}/pulls/{number}", (*Server).getPull},
		{"GET", "/repos/{owner}/{repo}/pulls/{number}/reviews", (*Server).listReviews},
		{"GET", "/repos/{owner}/{repo}/pulls/{number}/commits", (*Server).listPullCommits},
		{"POST", "/repos/{owner}/{repo}/statuses/{sha}", (*Server).createStatus},
		{"GET", "/repos/{owner}/{repo}/issues/{number}/comments", (*Server).listComments},
		{"POST", "/repos/{owner}/{repo}/issues/{number}/comments", (*Server).createComment},
		{"PATCH", "/repos/{owner}/{repo}/issues/comments/{id}", (*Server).editComment},
		{"GET", "/repos/{owner}/{repo}/deployments", (*Server).listDeployments},
		{"POST", "/repos/{owner}/{repo}/deployments", (*Server).createDeployment},
		{"GET", "/repos/{owner}/{repo}/deployments/{id}/statuses", (*Server).listDeploymentStatuses},
		{"POST", "/repos/{owner}/{repo}/deployments/{id}/statuses", (*Server).createDeploymentStatus},
		{"GET", "/repos/{owner}/{repo}/contents/{path}", (*Server).getContents},
		{"POST", "/repos/{owner}/{repo}/check-runs", (*Server).createCheckRun},
		{"GET", "/repos/{owner}/{repo}/check-runs/{id}", (*Server).getCheckRun},
		{"PATCH", "/repos/{owner}/{repo}/check-runs/{id}", (*Server).updateCheckRun},
		{"POST", "/repos/{owner}/{repo}/actions/runs/{id}/deployment_protection_rule", (*Server).reviewProtectionRule},
	}
}

// match finds the route for a request path (which must start with APIPrefix).
func match(method, path string) (*route, map[string]string) {
	rest, ok := strings.CutPrefix(path, APIPrefix+"/")
	if !ok {
		return nil, nil
	}
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	for _, rt := range routes {
		if rt.method != method {
			continue
		}
		params := map[string]string{}
		if matchSegs(strings.Split(strings.TrimPrefix(rt.pattern, "/"), "/"), segs, params) {
			return rt, params
		}
	}
	return nil, nil
}

func matchSegs(pat, segs []string, params map[string]string) bool {
	if len(pat) == 0 {
		return len(segs) == 0
	}
	p := pat[0]
	if !strings.HasPrefix(p, "{") {
		return len(segs) > 0 && segs[0] == p && matchSegs(pat[1:], segs[1:], params)
	}
	name := strings.Trim(p, "{}")
	if !multiSegment[name] {
		if len(segs) == 0 || segs[0] == "" || !matchSegs(pat[1:], segs[1:], params) {
			return false
		}
		params[name] = segs[0]
		return true
	}
	for n := 1; n <= len(segs); n++ {
		if matchSegs(pat[1:], segs[n:], params) {
			params[name] = strings.Join(segs[:n], "/")
			return true
		}
	}
	return false
}

// paginate applies GitHub's page/per_page (default 30, max 100) to n items and sets a Link
// header like GitHub's (next, last, first, prev). It returns the slice bounds to send.
func paginate(r *http.Request, n int, rep *reply) (lo, hi int) {
	q := r.URL.Query()
	per, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || per <= 0 {
		per = 30
	}
	per = min(per, 100)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page <= 0 {
		page = 1
	}
	last := max(1, (n+per-1)/per)
	lo = min((page-1)*per, n)
	hi = min(lo+per, n)

	link := func(p int, rel string) string {
		q.Set("page", strconv.Itoa(p))
		return fmt.Sprintf(`<http://%s%s?%s>; rel="%s"`, r.Host, r.URL.Path, q.Encode(), rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"), link(min(page-1, last), "prev"))
	}
	if len(links) > 0 {
		if rep.header == nil {
			rep.header = http.Header{}
		}
		rep.header.Set("Link", strings.Join(links, ", "))
	}
	return lo, hi
}
