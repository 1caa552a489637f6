// Package fakejira is a small, real Jira REST server for tests and `sockembot demo`. It answers
// in one of two dialects: Jira Cloud (enhanced /search/jql with nextPageToken, the old /search
// removed with 410 Gone) or Jira Data Center (/rest/api/2/search with startAt and total). JSON is
// shaped on the go-jira and JRJC samples in testdata/. State is guarded by one mutex and
// read through methods that return copies.
package fakejira

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Mode is the Jira deployment the server imitates.
type Mode int

const (
	Cloud Mode = iota
	DataCenter
)

func (m Mode) String() string {
	if m == Cloud {
		return "Cloud"
	}
	return "DataCenter"
}

// Options configure a Server. The zero value is an anonymous Jira Cloud.
type Options struct {
	Mode Mode
	// Latency delays every response, to make batching and parallelism measurable.
	Latency time.Duration
	// User and Token, when set, are required on every request: Basic user:token in Cloud mode
	// (API tokens), "Bearer token" in Data Center mode (personal access tokens). Only Token
	// matters in Data Center mode.
	User, Token string
	// Version is what serverInfo reports ("1001.0.0-SNAPSHOT" for Cloud, "9.12.2" otherwise).
	Version string
	// DeploymentType overrides serverInfo's deploymentType in Data Center mode: older releases
	// say "Server", newer ones "DataCenter". Default "Server".
	DeploymentType string
	// ContextPath mounts the API under a prefix such as "/jira", as Data Center installs often
	// are; it catches clients that build absolute paths.
	ContextPath string
	// PageLimit caps issues per search page below the API's own cap (100 for Cloud
	// /search/jql, 1000 for Data Center), as Cloud does when it returns fewer than asked.
	PageLimit int
}

// Issue is one issue held by the fake.
type Issue struct {
	ID      string
	Key     string
	Summary string
	Status  string
	// StatusCategory is the category key: "new", "indeterminate", "done" or "undefined".
	StatusCategory string
	// Transitions offered on the issue; nil means DefaultTransitions.
	Transitions []Transition
}

// Transition is a workflow transition offered on an issue.
type Transition struct {
	ID   string
	Name string
	To   string // target status name
}

// DefaultTransitions are the global transitions of Jira's simplified software workflow.
var DefaultTransitions = []Transition{
	{ID: "11", Name: "To Do", To: "To Do"},
	{ID: "21", Name: "In Progress", To: "In Progress"},
	{ID: "31", Name: "Done", To: "Done"},
}

// Comment is a comment added through the API.
type Comment struct {
	ID    string
	Issue string
	Body  string
}

// PerformedTransition is one transition done through the API.
type PerformedTransition struct {
	Issue        string
	TransitionID string
	Name         string
	From, To     string
}

// Request is one request seen, after its response was written.
type Request struct {
	Method string
	Path   string // as received, context path included
	// Route is the ServeMux pattern that matched ("GET /rest/api/2/issue/{key}"), or "" when
	// none did (404).
	Route  string
	Query  url.Values
	Body   string
	Status int
	// AuthScheme is "Basic", "Bearer" or "": the scheme only, never the credential.
	AuthScheme string
}

// Server is a running fake Jira.
type Server struct {
	opts Options
	mux  *http.ServeMux
	srv  *httptest.Server

	mu          sync.Mutex
	latency     time.Duration
	outage      bool
	failNext    int
	vague       bool
	inFlight    int
	peak        int
	projects    map[string]string // key -> name
	issues      map[string]*Issue // key -> issue
	statuses    map[string]status // lower-case name -> status
	nextIssueID int
	nextStatus  int
	comments    []Comment
	performed   []PerformedTransition
	requests    []Request
}

type status struct {
	id, name, category string
}

// Statuses Jira ships with, and the category each belongs to.
var builtinStatuses = []status{
	{"1", "Open", "new"},
	{"3", "In Progress", "indeterminate"},
	{"4", "Reopened", "new"},
	{"5", "Resolved", "done"},
	{"6", "Closed", "done"},
	{"10000", "To Do", "new"},
	{"10001", "Done", "done"},
	{"10002", "Backlog", "new"},
	{"10003", "In Review", "indeterminate"},
	{"10004", "Code Review", "indeterminate"},
	{"10005", "Deployed", "done"},
}

// category is a Jira status category; ids, names and colours as in all_statuscategories.json.
type category struct {
	ID        int
	Key       string
	ColorName string
	Name      string
}

var categories = map[string]category{
	"undefined":     {1, "undefined", "medium-gray", "No Category"},
	"new":           {2, "new", "blue-gray", "To Do"},
	"indeterminate": {4, "indeterminate", "yellow", "In Progress"},
	"done":          {3, "done", "green", "Done"},
}

// New starts a fake Jira. Close it when done.
func New(opts Options) *Server {
	opts.ContextPath = strings.TrimRight(opts.ContextPath, "/")
	if opts.ContextPath != "" && !strings.HasPrefix(opts.ContextPath, "/") {
		opts.ContextPath = "/" + opts.ContextPath
	}
	s := &Server{
		opts:        opts,
		latency:     opts.Latency,
		projects:    map[string]string{},
		issues:      map[string]*Issue{},
		statuses:    map[string]status{},
		nextIssueID: 10000,
		nextStatus:  10100,
	}
	for _, st := range builtinStatuses {
		s.statuses[strings.ToLower(st.name)] = st
	}
	s.routes()
	s.srv = httptest.NewServer(s)
	return s
}

// URL is the Jira base URL, context path included, without a trailing slash.
func (s *Server) URL() string { return s.srv.URL + s.opts.ContextPath }

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Mode is the deployment the server imitates.
func (s *Server) Mode() Mode { return s.opts.Mode }

// AddProject adds a project; the name defaults to the key.
func (s *Server) AddProject(key string, name ...string) {
	n := key
	if len(name) > 0 {
		n = name[0]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.projects[strings.ToUpper(key)] = n
}

// AddIssue adds (or replaces) an issue in a status, creating its project if needed. The
// category comes from the status (see SetStatusCategory); a status the fake has never heard of
// gets Jira's "No Category" ("undefined").
func (s *Server) AddIssue(key, statusName string) {
	s.PutIssue(Issue{Key: key, Summary: "Summary of " + strings.ToUpper(key), Status: statusName})
}

// PutIssue adds or replaces an issue. An empty StatusCategory is derived from the status; an
// explicit one also becomes that status's category for every issue.
func (s *Server) PutIssue(is Issue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is.Key = strings.ToUpper(is.Key)
	proj := projectOf(is.Key)
	if _, ok := s.projects[proj]; !ok {
		s.projects[proj] = proj
	}
	st := s.statusLocked(is.Status, is.StatusCategory)
	is.Status, is.StatusCategory = st.name, st.category
	if old, ok := s.issues[is.Key]; ok && is.ID == "" {
		is.ID = old.ID
	}
	if is.ID == "" {
		is.ID = strconv.Itoa(s.nextIssueID)
		s.nextIssueID++
	}
	is.Transitions = append([]Transition(nil), is.Transitions...)
	s.issues[is.Key] = &is
}

// SetStatusCategory says which category a status belongs to ("new", "indeterminate", "done",
// "undefined"), adding the status if it is new. Issues already in it follow.
func (s *Server) SetStatusCategory(statusName, categoryKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.statusLocked(statusName, categoryKey)
	for _, is := range s.issues {
		if strings.EqualFold(is.Status, st.name) {
			is.StatusCategory = st.category
		}
	}
}

// SetTransitions replaces the transitions offered on an issue.
func (s *Server) SetTransitions(key string, ts []Transition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if is, ok := s.issues[strings.ToUpper(key)]; ok {
		is.Transitions = append([]Transition{}, ts...)
	}
}

// statusLocked finds or creates a status; a non-empty category overrides the known one.
func (s *Server) statusLocked(name, categoryKey string) status {
	st, ok := s.statuses[strings.ToLower(name)]
	if !ok {
		st = status{id: strconv.Itoa(s.nextStatus), name: name, category: "undefined"}
		s.nextStatus++
	}
	if categoryKey != "" {
		if _, known := categories[categoryKey]; known {
			st.category = categoryKey
		}
	}
	s.statuses[strings.ToLower(name)] = st
	return st
}

// SetLatency changes the delay added to every response.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetOutage makes every request fail with 503 until turned off.
func (s *Server) SetOutage(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outage = on
}

// FailNext makes the next n requests fail with 500.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

// SetVagueErrors makes a search that Jira would reject for missing keys answer 400 with a
// message naming none of them, as a proxy or an unexpected wording would.
func (s *Server) SetVagueErrors(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vague = on
}

// PeakInFlight is the most requests that were being served at once.
func (s *Server) PeakInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// Issue returns a copy of one issue.
func (s *Server) Issue(key string) (Issue, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is, ok := s.issues[strings.ToUpper(key)]
	if !ok {
		return Issue{}, false
	}
	c := *is
	c.Transitions = append([]Transition(nil), is.Transitions...)
	return c, true
}

// Projects returns the project keys, sorted.
func (s *Server) Projects() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.projects))
	for k := range s.projects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Comments returns the comments added, in order.
func (s *Server) Comments() []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Comment(nil), s.comments...)
}

// Performed returns the transitions done, in order.
func (s *Server) Performed() []PerformedTransition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]PerformedTransition(nil), s.performed...)
}

// Requests returns every request seen, in order of completion.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Count is how many requests matched a route pattern, e.g. "POST /rest/api/3/search/jql".
func (s *Server) Count(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.Route == route {
			n++
		}
	}
	return n
}

// Counts is the number of requests per route ("" for requests no route matched).
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]int{}
	for _, r := range s.requests {
		m[r.Route]++
	}
	return m
}

// ResetRequests forgets the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// ServeHTTP applies latency, faults and auth, then dispatches to the API routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}

	s.mu.Lock()
	delay, outage := s.latency, s.outage
	fail := s.failNext > 0
	if fail {
		s.failNext--
	}
	s.inFlight++
	s.peak = max(s.peak, s.inFlight)
	s.mu.Unlock()

	inner := r
	if p := s.opts.ContextPath; p != "" {
		if !strings.HasPrefix(r.URL.Path, p+"/") {
			inner = nil
		} else {
			u := *r.URL
			u.Path = strings.TrimPrefix(r.URL.Path, p)
			u.RawPath = ""
			inner = r.Clone(r.Context())
			inner.URL = &u
		}
	}
	route := ""
	if inner != nil {
		_, route = s.mux.Handler(inner)
	}
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.inFlight--
		s.requests = append(s.requests, Request{
			Method: r.Method, Path: r.URL.Path, Route: route, Query: r.URL.Query(),
			Body: string(body), Status: rec.status, AuthScheme: authScheme(r),
		})
	}()

	if !sleep(r.Context(), delay) {
		return
	}
	switch {
	case outage:
		writeError(rec, http.StatusServiceUnavailable, "Service Unavailable")
	case fail:
		writeError(rec, http.StatusInternalServerError, "Internal server error")
	case !s.authorized(r):
		writeError(rec, http.StatusUnauthorized, "You are not authenticated. Authentication required to perform this operation.")
	case inner == nil:
		http.NotFound(rec, r)
	default:
		s.mux.ServeHTTP(rec, inner)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Server) authorized(r *http.Request) bool {
	if s.opts.User == "" && s.opts.Token == "" {
		return true
	}
	if s.opts.Mode == Cloud {
		u, p, ok := r.BasicAuth()
		return ok && u == s.opts.User && p == s.opts.Token
	}
	return r.Header.Get("Authorization") == "Bearer "+s.opts.Token
}

func authScheme(r *http.Request) string {
	a := r.Header.Get("Authorization")
	if i := strings.IndexByte(a, ' '); i > 0 {
		return a[:i]
	}
	return ""
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func projectOf(key string) string {
	if i := strings.LastIndexByte(key, '-'); i > 0 {
		return key[:i]
	}
	return key
}
