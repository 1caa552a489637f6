package jira_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	fakejira "sockembot/integrations/fake/jira"
	"sockembot/integrations/jira"
)

const routeProjects = "GET /rest/api/2/project"

// clock is a settable clock for the projects cache.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// gate holds every request to the project list until released (or its context is done), and
// says when one has arrived: the test then knows a fetch is in flight.
type gate struct {
	arrived chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{arrived: make(chan struct{}, 100), release: make(chan struct{})} }

func (g *gate) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/rest/api/2/project") {
		g.arrived <- struct{}{}
		select {
		case <-g.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// waitFor polls cond until it holds (the test fails after 10 s): it waits for goroutines to
// reach a state, it does not time them.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestProjectsKeptForTheTTL(t *testing.T) {
	s := fakejira.New(fakejira.Options{})
	defer s.Close()
	s.AddProject("PAY")
	clk := newClock()
	c := client(t, s, jira.Options{Now: clk.Now})
	ctx := context.Background()
	for range 2 {
		if got, err := c.Projects(ctx); err != nil || strings.Join(got, ",") != "PAY" {
			t.Fatalf("%v %v", got, err)
		}
	}
	if n := s.Count(routeProjects); n != 1 {
		t.Fatalf("%d project requests for two calls, want 1", n)
	}
	s.AddProject("OPS")
	clk.Advance(jira.DefaultProjectsTTL - time.Second)
	if got, _ := c.Projects(ctx); strings.Join(got, ",") != "PAY" || s.Count(routeProjects) != 1 {
		t.Fatalf("within the TTL: %v, %d requests", got, s.Count(routeProjects))
	}
	clk.Advance(time.Second)
	if got, err := c.Projects(ctx); err != nil || strings.Join(got, ",") != "OPS,PAY" || s.Count(routeProjects) != 2 {
		t.Fatalf("after the TTL: %v %v, %d requests", got, err, s.Count(routeProjects))
	}
	// A TTL of its own.
	c = client(t, s, jira.Options{Now: clk.Now, ProjectsTTL: time.Minute})
	s.ResetRequests()
	c.Projects(ctx)
	clk.Advance(time.Minute)
	c.Projects(ctx)
	if n := s.Count(routeProjects); n != 2 {
		t.Fatalf("ProjectsTTL 1m: %d requests a minute apart, want 2", n)
	}
}

func TestProjectsTTLNegativeFetchesEveryTime(t *testing.T) {
	s := fakejira.New(fakejira.Options{})
	defer s.Close()
	s.AddProject("PAY")
	c := client(t, s, jira.Options{ProjectsTTL: -1})
	for range 3 {
		if _, err := c.Projects(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Count(routeProjects); n != 3 {
		t.Fatalf("%d requests for three calls with the cache off, want 3", n)
	}
}

func TestForgetProjects(t *testing.T) {
	s := fakejira.New(fakejira.Options{})
	defer s.Close()
	s.AddProject("PAY")
	c := client(t, s, jira.Options{})
	ctx := context.Background()
	c.Projects(ctx)
	s.AddProject("OPS")
	c.ForgetProjects()
	if got, err := c.Projects(ctx); err != nil || strings.Join(got, ",") != "OPS,PAY" || s.Count(routeProjects) != 2 {
		t.Fatalf("after ForgetProjects: %v %v, %d requests", got, err, s.Count(routeProjects))
	}
}

func TestProjectsErrorNotKept(t *testing.T) {
	s := fakejira.New(fakejira.Options{})
	defer s.Close()
	s.AddProject("PAY")
	c := client(t, s, jira.Options{})
	ctx := context.Background()
	s.FailNext(1)
	if got, err := c.Projects(ctx); err == nil || got != nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("a 500: %v %v", got, err)
	}
	if got, err := c.Projects(ctx); err != nil || strings.Join(got, ",") != "PAY" {
		t.Fatalf("after the 500: %v %v", got, err)
	}
	c.Projects(ctx)
	if n := s.Count(routeProjects); n != 2 {
		t.Fatalf("%d requests: the failure was kept, or the answer after it was not", n)
	}
}

func TestProjectsAnswerIsTheCallersCopy(t *testing.T) {
	s := fakejira.New(fakejira.Options{})
	defer s.Close()
	s.AddProject("OPS")
	s.AddProject("PAY")
	c := client(t, s, jira.Options{})
	ctx := context.Background()
	first, _ := c.Projects(ctx)
	first[0] = "UTF"
	_ = append(first[:1], "SHA")
	if got, _ := c.Projects(ctx); strings.Join(got, ",") != "OPS,PAY" {
		t.Fatalf("a caller's edit reached the next answer: %v", got)
	}
}

// Twenty callers arriving while the list is being fetched wait for that one fetch.
func TestProjectsConcurrentCallersShareOneFetch(t *testing.T) {
	s := fakejira.New(fakejira.Options{})
	defer s.Close()
	s.AddProject("PAY")
	g := newGate()
	c := client(t, s, jira.Options{HTTPClient: &http.Client{Transport: g}})
	const callers = 20
	var wg sync.WaitGroup
	got := make([][]string, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = c.Projects(context.Background())
		}()
	}
	<-g.arrived
	waitFor(t, "20 callers on the fetch", func() bool { return jira.ProjectsWaiters(c) == callers })
	close(g.release)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || strings.Join(got[i], ",") != "PAY" {
			t.Fatalf("caller %d: %v %v", i, got[i], errs[i])
		}
	}
	got[0][0] = "XXX"
	if got[1][0] != "PAY" {
		t.Fatal("two callers share one slice")
	}
	if n := s.Count(routeProjects); n != 1 {
		t.Fatalf("%d project requests for %d concurrent callers, want 1", n, callers)
	}
}

// A caller that gives up does not fail the others waiting for the same fetch; when the last
// one gives up the fetch is cancelled and nothing is kept.
func TestProjectsCallerGivingUp(t *testing.T) {
	s := fakejira.New(fakejira.Options{})
	defer s.Close()
	s.AddProject("PAY")
	g := newGate()
	c := client(t, s, jira.Options{HTTPClient: &http.Client{Transport: g}})

	ctxA, cancelA := context.WithCancel(context.Background())
	errA := make(chan error, 1)
	go func() { _, err := c.Projects(ctxA); errA <- err }()
	<-g.arrived
	type answer struct {
		keys []string
		err  error
	}
	b := make(chan answer, 1)
	go func() { keys, err := c.Projects(context.Background()); b <- answer{keys, err} }()
	waitFor(t, "the second caller on the fetch", func() bool { return jira.ProjectsWaiters(c) == 2 })
	cancelA()
	if err := <-errA; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that gave up: %v", err)
	}
	if n := jira.ProjectsWaiters(c); n != 1 {
		t.Fatalf("%d waiters after one left, want 1", n)
	}
	close(g.release)
	if got := <-b; got.err != nil || strings.Join(got.keys, ",") != "PAY" {
		t.Fatalf("the caller that stayed: %v %v", got.keys, got.err)
	}
	if n := s.Count(routeProjects); n != 1 {
		t.Fatalf("%d requests, want the one shared", n)
	}

	// Everyone gives up: the fetch is cancelled, nothing is kept, the next call fetches.
	g = newGate()
	c = client(t, s, jira.Options{HTTPClient: &http.Client{Transport: g}})
	ctx, cancel := context.WithCancel(context.Background())
	errA = make(chan error, 1)
	go func() { _, err := c.Projects(ctx); errA <- err }()
	<-g.arrived
	cancel()
	if err := <-errA; !errors.Is(err, context.Canceled) {
		t.Fatalf("the only caller gave up: %v", err)
	}
	close(g.release)
	if got, err := c.Projects(context.Background()); err != nil || strings.Join(got, ",") != "PAY" {
		t.Fatalf("after a cancelled fetch: %v %v", got, err)
	}
	if n := len(g.arrived); n != 1 {
		t.Fatalf("%d more requests after the cancelled one, want 1", n)
	}
}
