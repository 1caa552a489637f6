package check_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"sockembot/bot/check"
	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	fakejira "sockembot/integrations/fake/jira"
	"sockembot/integrations/github"
)

const (
	routeContents = "GET /repos/{owner}/{repo}/contents/{path}"
	routeTree     = "GET /repos/{owner}/{repo}/git/trees/{sha}"
	routeCommits  = "GET /repos/{owner}/{repo}/commits"
)

// policyRepo is acme/payments with a policy file written by its second commit, read through
// the real GitHub client; before is the first commit (no policy), at the second.
type policyRepo struct {
	g          *fakegithub.Server
	r          *fakegithub.Repo
	gh         *github.Client
	before, at string
}

func newPolicyRepo(t *testing.T) policyRepo {
	t.Helper()
	g := fakegithub.New(fakegithub.Options{})
	t.Cleanup(g.Close)
	r := g.AddRepo("acme/payments", "main")
	before := r.Commit("initial", "alice")
	at := r.CommitFiles("PAY-1 two approvals", "alice", map[string]string{check.RepoPolicyPath: "approvals: {required: 2}\n"})
	gh, err := github.New(github.Options{BaseURL: g.URL(), Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	g.ResetLog()
	return policyRepo{g: g, r: r, gh: gh, before: before, at: at}
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

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

func readPolicy(t *testing.T, f check.PolicyFiles, ref string) string {
	t.Helper()
	data, found, err := f.File(context.Background(), "acme/payments", check.RepoPolicyPath, ref)
	if err != nil {
		t.Fatalf("File at %s: %v", ref, err)
	}
	if !found {
		return "<absent>"
	}
	return string(data)
}

func TestCachedFilesSecondReadAtASHAIsFree(t *testing.T) {
	w := newPolicyRepo(t)
	c := check.NewCachedFiles(w.gh, 0)
	ctx := context.Background()
	if got := readPolicy(t, c, w.at); got != "approvals: {required: 2}\n" {
		t.Fatalf("first read: %q", got)
	}
	commits, err := c.PathCommits(ctx, "acme/payments", w.at, check.RepoPolicyPath)
	if err != nil || len(commits) != 1 || commits[0] != w.at {
		t.Fatalf("PathCommits: %v %v", commits, err)
	}
	if n := w.g.Total(); n != 2 {
		t.Fatalf("%d requests for the first reads, want 2 (%v)", n, w.g.Counts())
	}
	w.g.ResetLog()

	data, _, _ := c.File(ctx, "acme/payments", check.RepoPolicyPath, w.at)
	data[0] = 'X' // the caller's copy
	if got := readPolicy(t, c, w.at); got != "approvals: {required: 2}\n" {
		t.Fatalf("second read: %q", got)
	}
	commits, err = c.PathCommits(ctx, "acme/payments", w.at, check.RepoPolicyPath)
	if err != nil || len(commits) != 1 || commits[0] != w.at {
		t.Fatalf("second PathCommits: %v %v", commits, err)
	}
	commits[0] = "edited"
	if again, _ := c.PathCommits(ctx, "acme/payments", w.at, check.RepoPolicyPath); again[0] != w.at {
		t.Fatalf("a caller's edit reached the next answer: %v", again)
	}
	if n := w.g.Total(); n != 0 {
		t.Fatalf("%d requests for answers already read at a commit SHA, want 0 (%v)", n, w.g.Counts())
	}
	// The same repository spelled otherwise is the same repository.
	if _, _, err := c.File(ctx, "Acme/Payments", check.RepoPolicyPath, w.at); err != nil || w.g.Total() != 0 {
		t.Fatalf("other spelling: %v, %d requests", err, w.g.Total())
	}
	if n := c.Len(); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
}

// A policy file confirmed absent at a commit (a 404, then the tree) stays absent there.
func TestCachedFilesAbsenceIsKept(t *testing.T) {
	w := newPolicyRepo(t)
	c := check.NewCachedFiles(w.gh, 0)
	if got := readPolicy(t, c, w.before); got != "<absent>" {
		t.Fatalf("before the policy: %q", got)
	}
	if w.g.Count(routeContents) != 1 || w.g.Count(routeTree) != 1 {
		t.Fatalf("absence not confirmed by the tree: %v", w.g.Counts())
	}
	w.g.ResetLog()
	if got := readPolicy(t, c, w.before); got != "<absent>" || w.g.Total() != 0 {
		t.Fatalf("second read: %q, %d requests", got, w.g.Total())
	}
}

// A branch (or a tag, a short SHA) moves or is not a commit's full name: it is
// asked every time.
func TestCachedFilesRefsThatAreNotCommitSHAsPassThrough(t *testing.T) {
	w := newPolicyRepo(t)
	c := check.NewCachedFiles(w.gh, 0)
	ctx := context.Background()
	w.r.Tag("v1")
	for _, ref := range []string{"main", "v1", w.at[:7]} {
		w.g.ResetLog()
		for range 2 {
			if got := readPolicy(t, c, ref); got != "approvals: {required: 2}\n" {
				t.Fatalf("%s: %q", ref, got)
			}
			if _, err := c.PathCommits(ctx, "acme/payments", ref, check.RepoPolicyPath); err != nil {
				t.Fatalf("%s: %v", ref, err)
			}
		}
		if w.g.Count(routeContents) != 2 || w.g.Count(routeCommits) != 2 {
			t.Fatalf("%s: %v, want every call asked", ref, w.g.Counts())
		}
	}
	// The branch moves: the next read sees it.
	w.r.CommitFiles("PAY-2 three approvals", "alice", map[string]string{check.RepoPolicyPath: "approvals: {required: 3}\n"})
	if got := readPolicy(t, c, "main"); got != "approvals: {required: 3}\n" {
		t.Fatalf("main after a push: %q", got)
	}
	if n := c.Len(); n != 0 {
		t.Fatalf("%d entries kept for refs that are not commit SHAs", n)
	}
}

func TestCachedFilesErrorsAreNotKept(t *testing.T) {
	w := newPolicyRepo(t)
	c := check.NewCachedFiles(w.gh, 0)
	ctx := context.Background()
	w.g.FailNext(1, "/contents/", http.StatusInternalServerError)
	if _, found, err := c.File(ctx, "acme/payments", check.RepoPolicyPath, w.at); err == nil || found {
		t.Fatalf("a 500 read as %v, %v", found, err)
	}
	w.g.FailNext(1, "/commits", http.StatusBadGateway)
	if got, err := c.PathCommits(ctx, "acme/payments", w.at, check.RepoPolicyPath); err == nil || got != nil {
		t.Fatalf("a 502 read as %v, %v", got, err)
	}
	// A 404 whose tree cannot be read is doubt, not absence: an error, not kept either.
	w.g.FailNext(1, "/contents/", http.StatusNotFound)
	w.g.FailNext(1, "/git/trees/", http.StatusInternalServerError)
	if _, found, err := c.File(ctx, "acme/payments", check.RepoPolicyPath, w.before); err == nil || found {
		t.Fatalf("an unconfirmed 404 read as %v, %v", found, err)
	}
	if n := c.Len(); n != 0 {
		t.Fatalf("%d entries kept after errors", n)
	}
	w.g.ResetLog()
	if got := readPolicy(t, c, w.at); got != "approvals: {required: 2}\n" {
		t.Fatalf("after the 500: %q", got)
	}
	if got, err := c.PathCommits(ctx, "acme/payments", w.at, check.RepoPolicyPath); err != nil || len(got) != 1 {
		t.Fatalf("after the 502: %v %v", got, err)
	}
	if got := readPolicy(t, c, w.before); got != "<absent>" {
		t.Fatalf("after the unconfirmed 404: %q", got)
	}
	if w.g.Count(routeContents) != 2 || w.g.Count(routeCommits) != 1 {
		t.Fatalf("the failures were kept: %v", w.g.Counts())
	}
}

func TestCachedFilesInvalidate(t *testing.T) {
	w := newPolicyRepo(t)
	other := w.g.AddRepo("acme/billing", "main")
	otherSHA := other.CommitFiles("policy", "alice", map[string]string{check.RepoPolicyPath: "approvals: {required: 1}\n"})
	c := check.NewCachedFiles(w.gh, 0)
	ctx := context.Background()
	readPolicy(t, c, w.at)
	c.PathCommits(ctx, "acme/payments", w.at, check.RepoPolicyPath)
	if _, _, err := c.File(ctx, "acme/billing", check.RepoPolicyPath, otherSHA); err != nil {
		t.Fatal(err)
	}
	w.g.ResetLog()
	c.Invalidate("ACME/payments") // as a push might spell it
	readPolicy(t, c, w.at)
	c.PathCommits(ctx, "acme/payments", w.at, check.RepoPolicyPath)
	c.File(ctx, "acme/billing", check.RepoPolicyPath, otherSHA)
	if w.g.Count(routeContents) != 1 || w.g.Count(routeCommits) != 1 || w.g.Total() != 2 {
		t.Fatalf("after Invalidate: %v, want acme/payments read again and acme/billing kept", w.g.Counts())
	}
}

func TestCachedFilesTTLAndBound(t *testing.T) {
	w := newPolicyRepo(t)
	clk := &clock{t: time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)}
	c := check.NewCachedFiles(w.gh, time.Minute)
	c.Now = clk.Now
	readPolicy(t, c, w.at)
	clk.Advance(time.Minute - time.Second)
	readPolicy(t, c, w.at)
	if n := w.g.Count(routeContents); n != 1 {
		t.Fatalf("%d reads within the TTL, want 1", n)
	}
	clk.Advance(time.Second)
	readPolicy(t, c, w.at)
	if n := w.g.Count(routeContents); n != 2 {
		t.Fatalf("%d reads after the TTL, want 2", n)
	}

	// At most MaxEntries are kept; the oldest goes first.
	w.g.ResetLog()
	c = check.NewCachedFiles(w.gh, 0)
	c.MaxEntries = 2
	third := w.r.Commit("third", "alice")
	for _, sha := range []string{w.before, w.at, third} {
		readPolicy(t, c, sha)
	}
	if n := c.Len(); n != 2 {
		t.Fatalf("%d entries, bound 2", n)
	}
	w.g.ResetLog()
	readPolicy(t, c, third)
	readPolicy(t, c, w.at)
	if n := w.g.Total(); n != 0 {
		t.Fatalf("the newest two entries were not kept: %v", w.g.Counts())
	}
	readPolicy(t, c, w.before)
	if n := w.g.Count(routeContents); n != 1 {
		t.Fatalf("the oldest entry was not the one dropped: %v", w.g.Counts())
	}

	// A negative TTL keeps nothing.
	w.g.ResetLog()
	c = check.NewCachedFiles(w.gh, -1)
	readPolicy(t, c, w.at)
	readPolicy(t, c, w.at)
	if n := w.g.Count(routeContents); n != 2 || c.Len() != 0 {
		t.Fatalf("TTL -1: %d reads, %d entries", n, c.Len())
	}
}

// Twenty checks reading the same policy at once make one request.
func TestCachedFilesConcurrentReadsShareOneFetch(t *testing.T) {
	w := newPolicyRepo(t)
	w.g.SetLatency(50 * time.Millisecond) // so that they overlap; the count holds either way
	c := check.NewCachedFiles(w.gh, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, found, err := c.File(context.Background(), "acme/payments", check.RepoPolicyPath, w.at)
			if err == nil && (!found || string(data) != "approvals: {required: 2}\n") {
				err = errors.New("wrong answer " + string(data))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := w.g.Count(routeContents); n != 1 {
		t.Fatalf("%d requests for 20 concurrent reads, want 1", n)
	}
}

// A check that gives up does not fail another waiting for the same read.
func TestCachedFilesCallerGivingUp(t *testing.T) {
	w := newPolicyRepo(t)
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	c := check.NewCachedFiles(holdFiles{w.gh, arrived, release}, 0)
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, _, err := c.File(ctx, "acme/payments", check.RepoPolicyPath, w.at)
		gaveUp <- err
	}()
	<-arrived
	stayed := make(chan string, 1)
	go func() { stayed <- readPolicy(t, c, w.at) }()
	// The second caller either joins the read in flight or, if it comes after the first gave
	// up, starts its own: either way it gets the file.
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that gave up: %v", err)
	}
	close(release)
	if got := <-stayed; got != "approvals: {required: 2}\n" {
		t.Fatalf("the caller that stayed: %q", got)
	}
	w.g.ResetLog()
	readPolicy(t, c, w.at)
	if n := w.g.Total(); n != 0 {
		t.Fatalf("the read that finished was not kept: %v", w.g.Counts())
	}
}

// holdFiles holds each File call until release, saying when one has arrived.
type holdFiles struct {
	*github.Client
	arrived chan<- struct{}
	release <-chan struct{}
}

func (h holdFiles) File(ctx context.Context, repo, path, ref string) ([]byte, bool, error) {
	h.arrived <- struct{}{}
	select {
	case <-h.release:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	return h.Client.File(ctx, repo, path, ref)
}

// A panic in the wrapped reader fails the read (closed, with the stack where it was raised),
// and is not kept.
func TestCachedFilesPanicIsAnError(t *testing.T) {
	w := newPolicyRepo(t)
	c := check.NewCachedFiles(panicFile{w.gh}, 0)
	for range 2 {
		_, _, err := c.File(context.Background(), "acme/payments", check.RepoPolicyPath, w.at)
		var pe *check.PanicError
		if !errors.As(err, &pe) || !strings.Contains(pe.StackTrace(), "sockembot/bot/check/check_test.go") {
			t.Fatalf("err %v (%T), want a *check.PanicError raised in the test's reader", err, err)
		}
	}
}

// The checks of a release and of the next one from the same base read the policy, and the
// commits that changed it, once.
func TestCheckerReadsThePolicyOncePerCommit(t *testing.T) {
	g := fakegithub.New(fakegithub.Options{})
	t.Cleanup(g.Close)
	j := fakejira.New(fakejira.Options{Mode: fakejira.Cloud})
	t.Cleanup(j.Close)
	j.AddIssue("PAY-1", "In Progress")
	r := g.AddRepo("acme/payments", "main")
	r.CommitFiles("PAY-1 one approval", "alice", map[string]string{check.RepoPolicyPath: "approvals: {required: 1}\n"})
	base := r.Tag("v1")
	approved := []fakegithub.Review{{User: "bob", State: "APPROVED"}}
	r.MergePR(fakegithub.PR{Title: "PAY-1 refunds", Author: "alice", Reviews: approved}, fakegithub.Squash)
	gc, jc := clients(t, g, j)
	c := &check.Checker{GitHub: gc, Jira: jc, Files: check.NewCachedFiles(gc, 0)}
	req := check.Request{Repo: "acme/payments", Base: base, Head: "main", Policy: compliance.DefaultPolicy()}
	policyReads := func() int {
		n := g.Count(routeContents) + g.Count(routeTree)
		for _, rq := range g.Requests() {
			if rq.Route == routeCommits && strings.Contains(rq.Query, "path=") {
				n++
			}
		}
		return n
	}
	first, err := c.Check(context.Background(), req)
	if err != nil || !first.Report.Compliant || !strings.HasPrefix(first.PolicySource, "acme/payments/.sockembot.yml@") {
		t.Fatalf("first check: %v %v %s", first.Report.Compliant, err, first.PolicySource)
	}
	if n := policyReads(); n != 2 {
		t.Fatalf("%d policy reads in the first check, want 2 (the file, the commits that changed it): %v", n, g.Counts())
	}
	g.ResetLog()
	second, err := c.Check(context.Background(), req)
	if err != nil || second.PolicySource != first.PolicySource || second.PolicyHash != first.PolicyHash {
		t.Fatalf("second check: %v %s", err, second.PolicySource)
	}
	if n := policyReads(); n != 0 {
		t.Fatalf("%d policy reads in the second check of the same commits, want 0: %v", n, g.Counts())
	}
}
