package github_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"

	fakegithub "sockembot/integrations/fake/github"
	"sockembot/integrations/github"
)

func oneCommitRepo(t *testing.T, opts fakegithub.Options) (*fakegithub.Server, *fakegithub.Repo, string) {
	t.Helper()
	s := newFake(t, opts)
	r := s.AddRepo("acme/payments", "main")
	sha := r.Commit("initial", "alice")
	return s, r, sha
}

func TestServerErrorsAreRetried(t *testing.T) {
	s, r, _ := oneCommitRepo(t, fakegithub.Options{})
	r.MergePR(fakegithub.PR{Title: "PAY-1", Author: "alice"}, fakegithub.MergeCommit)
	c := newClient(t, s, github.Options{Retries: 3})

	s.FailNext(2, "/pulls/1/reviews", http.StatusInternalServerError)
	s.FailNext(1, "/pulls/1/commits", http.StatusBadGateway)
	ch, err := c.PullRequest(context.Background(), "acme/payments", 1)
	if err != nil || ch.PR.Number != 1 || len(ch.PR.Commits) != 1 {
		t.Fatalf("PullRequest after transient 5xx: %v", err)
	}
	if r, c := s.Count(routeReviews), s.Count(routePullCommits); r != 3 || c != 2 {
		t.Errorf("reviews sent %d times (want 2 failures + 1), commits %d (want 1 failure + 1)", r, c)
	}
}

func TestPersistentServerErrorIsAnError(t *testing.T) {
	s, _, _ := oneCommitRepo(t, fakegithub.Options{})
	c := newClient(t, s, github.Options{Retries: 3})
	s.FailNext(100, "/commits/", http.StatusBadGateway)
	_, err := c.ResolveRef(context.Background(), "acme/payments", "main")
	if err == nil || errors.Is(err, github.ErrNotFound) {
		t.Fatalf("err = %v, want an outage error (not ErrNotFound)", err)
	}
	if n := s.Total(); n != 4 {
		t.Errorf("%d attempts, want 1 + 3 retries", n)
	}
}

// A POST whose answer is a 5xx may have been acted on (a deployment created, its answer lost):
// it is not sent again. A rate-limited POST was refused without acting: it is, body and all.
func TestPostIsNotRepeatedAfterAServerError(t *testing.T) {
	s, _, sha := oneCommitRepo(t, fakegithub.Options{})
	c := newClient(t, s, github.Options{Retries: 3})
	s.FailNext(1, "/deployments", http.StatusBadGateway)
	if _, err := c.CreateDeployment(context.Background(), "acme/payments", sha, "production", map[string]string{"k": "v"}, "d"); !errors.Is(err, github.ErrOutcomeUnknown) {
		t.Fatalf("a 502 on POST /deployments: %v, want ErrOutcomeUnknown", err)
	}
	if n := s.Count(routeDeployments); n != 1 {
		t.Errorf("POST /deployments sent %d times after a 502, want once", n)
	}
}

// A commit status is safe to repeat (last write wins): its POST is retried after a 5xx.
func TestStatusPostIsRetriedAfterAServerError(t *testing.T) {
	s, r, sha := oneCommitRepo(t, fakegithub.Options{})
	c := newClient(t, s, github.Options{})
	s.FailNext(2, "/statuses/", http.StatusServiceUnavailable)
	if err := c.SetStatus(context.Background(), "acme/payments", sha, "success", "sockembot/merge", "all good", "https://example.com/r/1"); err != nil {
		t.Fatal(err)
	}
	if got := r.Statuses(sha); len(got) != 1 || got[0].Description != "all good" {
		t.Fatalf("statuses after the retried POST: %+v", got)
	}
	if n := s.Count(routeStatus); n != 3 {
		t.Errorf("POST sent %d times, want 3", n)
	}
}

func TestRateLimitedPostIsReplayed(t *testing.T) {
	s, r, sha := oneCommitRepo(t, fakegithub.Options{})
	c := newClient(t, s, github.Options{MaxRateLimitWait: 5 * time.Second})
	s.SecondaryRateLimit(1, http.StatusForbidden)
	if err := c.SetStatus(context.Background(), "acme/payments", sha, "success", "sockembot/merge", "all good", "https://example.com/r/1"); err != nil {
		t.Fatal(err)
	}
	got := r.Statuses(sha)
	if len(got) != 1 || got[0].Description != "all good" || got[0].Context != "sockembot/merge" || got[0].TargetURL != "https://example.com/r/1" {
		t.Fatalf("statuses after the replayed POST: %+v", got)
	}
	if n := s.Count(routeStatus); n != 2 {
		t.Errorf("POST sent %d times, want 2 (limited, then replayed)", n)
	}
}

func TestSecondaryRateLimitIsWaitedOut(t *testing.T) {
	for _, status := range []int{http.StatusForbidden, http.StatusTooManyRequests} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			s, _, sha := oneCommitRepo(t, fakegithub.Options{})
			c := newClient(t, s, github.Options{MaxRateLimitWait: 5 * time.Second})
			s.SecondaryRateLimit(1, status)
			got, err := c.ResolveRef(context.Background(), "acme/payments", "main")
			if err != nil || got != sha {
				t.Fatalf("ResolveRef = %q, %v", got, err)
			}
			if n := s.Total(); n != 2 {
				t.Errorf("%d requests, want 2", n)
			}
		})
	}
}

func TestPrimaryRateLimitWaitsForReset(t *testing.T) {
	s, _, sha := oneCommitRepo(t, fakegithub.Options{})
	c := newClient(t, s, github.Options{MaxRateLimitWait: 10 * time.Second})
	s.SetRateLimit(0, time.Second)
	name, got, err := c.DefaultBranch(context.Background(), "acme/payments")
	if err != nil || name != "main" || got != sha {
		t.Fatalf("DefaultBranch = %q %q, %v", name, got, err)
	}
}

// A 200 that spends the last request of the window makes go-github refuse the next call
// locally until the reset. The client must wait instead of failing.
func TestLimitExhaustedBySuccessThenReset(t *testing.T) {
	s, _, sha := oneCommitRepo(t, fakegithub.Options{})
	ctx := context.Background()

	// The trap, shown with a bare go-github client: the second call never reaches the server.
	bare, err := gh.NewClient(nil).WithEnterpriseURLs(s.URL(), s.URL())
	if err != nil {
		t.Fatal(err)
	}
	s.SetRateLimit(1, 2*time.Second)
	if _, _, err := bare.Repositories.GetCommitSHA1(ctx, "acme", "payments", "main", ""); err != nil {
		t.Fatal(err)
	}
	before := s.Total()
	_, _, err = bare.Repositories.GetCommitSHA1(ctx, "acme", "payments", "main", "")
	var rle *gh.RateLimitError
	if !errors.As(err, &rle) || s.Total() != before {
		t.Fatalf("bare go-github: err %v, requests %d→%d; the trap this test guards against is gone", err, before, s.Total())
	}

	c := newClient(t, s, github.Options{MaxRateLimitWait: 10 * time.Second})
	s.SetRateLimit(1, time.Second)
	for i := 0; i < 2; i++ {
		if got, err := c.ResolveRef(ctx, "acme/payments", "main"); err != nil || got != sha {
			t.Fatalf("call %d: %q, %v", i+1, got, err)
		}
	}
}

func TestRateLimitWaitIsBounded(t *testing.T) {
	t.Run("primary", func(t *testing.T) {
		s, _, _ := oneCommitRepo(t, fakegithub.Options{})
		c := newClient(t, s, github.Options{MaxRateLimitWait: 500 * time.Millisecond})
		s.SetRateLimit(0, time.Minute)
		start := time.Now()
		_, err := c.ResolveRef(context.Background(), "acme/payments", "main")
		var rle *gh.RateLimitError
		if !errors.As(err, &rle) {
			t.Fatalf("err = %T %v, want *gh.RateLimitError", err, err)
		}
		// Not a timing assertion on speed: it proves the client did not sleep out the minute.
		if time.Since(start) > 30*time.Second {
			t.Errorf("waited %v", time.Since(start))
		}
		// Later calls fail too (go-github remembers the limit) rather than hang.
		if _, err := c.ResolveRef(context.Background(), "acme/payments", "main"); !errors.As(err, &rle) {
			t.Errorf("second call: %v", err)
		}
	})
	t.Run("secondary", func(t *testing.T) {
		s, _, _ := oneCommitRepo(t, fakegithub.Options{})
		c := newClient(t, s, github.Options{MaxRateLimitWait: 500 * time.Millisecond})
		s.SecondaryRateLimit(5, http.StatusForbidden)
		_, err := c.ResolveRef(context.Background(), "acme/payments", "main")
		var abuse *gh.AbuseRateLimitError
		if !errors.As(err, &abuse) {
			t.Fatalf("err = %T %v, want *gh.AbuseRateLimitError", err, err)
		}
		if n := s.Total(); n != 1 {
			t.Errorf("%d requests; a Retry-After beyond the bound should not be retried", n)
		}
	})
}

func TestTokenIsSentButNeverInErrors(t *testing.T) {
	const token = "ghp_VerySecretTokenValue123"
	s, _, sha := oneCommitRepo(t, fakegithub.Options{Token: token})
	c := newClient(t, s, github.Options{Token: token, Retries: 1})
	if got, err := c.ResolveRef(context.Background(), "acme/payments", "main"); err != nil || got != sha {
		t.Fatalf("with the token: %q, %v", got, err)
	}
	s.FailNext(10, "", http.StatusInternalServerError)
	_, err := c.Gather(context.Background(), "acme/payments", "main", "main")
	if err == nil || strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "VerySecret") {
		t.Fatalf("error %q", err)
	}
	wrong := newClient(t, s, github.Options{Token: "ghp_wrong-token"})
	_, err = wrong.ResolveRef(context.Background(), "acme/payments", "main")
	if err == nil || strings.Contains(err.Error(), "ghp_wrong-token") {
		t.Fatalf("bad credentials error %q", err)
	}
}

func TestEnterpriseBaseURLWithoutAPIPath(t *testing.T) {
	s, _, sha := oneCommitRepo(t, fakegithub.Options{})
	// GitHub Enterprise users often configure the host only; the API lives under /api/v3/.
	c, err := github.New(github.Options{BaseURL: strings.TrimSuffix(s.URL(), "api/v3/")})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.ResolveRef(context.Background(), "acme/payments", "main"); err != nil || got != sha {
		t.Fatalf("ResolveRef = %q, %v", got, err)
	}
}

// A server answering "Retry-After: 0" forever must not get a request loop: each retry waits a
// little, and after a few the client gives up saying it was rate limited.
func TestRetryAfterZeroIsBounded(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusForbidden} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(status)
				fmt.Fprint(w, `{"message":"You have exceeded a secondary rate limit.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`)
			}))
			defer srv.Close()
			c, err := github.New(github.Options{BaseURL: srv.URL, MaxRateLimitWait: 500 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.ResolveRef(context.Background(), "acme/payments", "main")
			if !errors.Is(err, github.ErrRateLimited) || !strings.Contains(err.Error(), "rate limited") {
				t.Fatalf("err = %v, want ErrRateLimited", err)
			}
			if n := requests.Load(); n != 6 {
				t.Errorf("%d requests, want 1 + 5 retries", n)
			}
		})
	}
}

// A GitHub that accepts the connection and never answers must not hang the client: each attempt
// times out, is retried like a network error, and the call fails.
func TestStalledServerTimesOut(t *testing.T) {
	var requests atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select {
		case <-r.Context().Done(): // the client gave up on this attempt
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	var once sync.Once
	stop := func() { once.Do(func() { close(release) }) }
	t.Cleanup(stop) // before srv.Close, which waits for the handlers

	c, err := github.New(github.Options{BaseURL: srv.URL, Timeout: 200 * time.Millisecond, Retries: 2, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ResolveRef(context.Background(), "acme/payments", "main")
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 200ms") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if errors.Is(err, github.ErrNotFound) {
		t.Errorf("timeout reported as not found: %v", err)
	}
	stop()
	srv.Close() // waits for every request to have reached its handler and ended
	if n := requests.Load(); n != 3 {
		t.Errorf("%d attempts, want 1 + 2 retries", n)
	}
}

// A proxy's error page that echoes the request (Authorization header included) must not put the
// token into any error of the chain: failure reports print every wrapped cause.
func TestTokenEchoedInAnErrorIsScrubbed(t *testing.T) {
	const token = "ghp_s3cretTOKENvalue0123456789"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"message":"blocked by gateway, Authorization: %s","documentation_url":"https://docs.github.com/rest"}`, r.Header.Get("Authorization"))
	}))
	defer echo.Close()
	c, err := github.New(github.Options{BaseURL: echo.URL + "/api/v3/", Token: token, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ResolveRef(context.Background(), "acme/payments", "main")
	if err == nil {
		t.Fatal("no error from a 403")
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if strings.Contains(e.Error(), token[:12]) {
			t.Fatalf("the token is in the error chain: %q", e.Error())
		}
	}
	if !strings.Contains(err.Error(), "[REDACTED]") {
		t.Errorf("error %q does not show the redaction", err)
	}
}

// A deployment request that never reached GitHub (nothing listens) is not an unclear outcome:
// nothing can exist, and the deploy may be settled at once.
func TestDeploymentNotSentIsNotUnclear(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	c, err := github.New(github.Options{BaseURL: url + "/api/v3/", Token: "t", Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateDeployment(context.Background(), "acme/payments", strings.Repeat("a", 40), "production", nil, "d")
	if err == nil || errors.Is(err, github.ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want a plain error: the request was never sent", err)
	}
}
