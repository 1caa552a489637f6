package github

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sockembot/compliance"
	"strconv"
	"time"
)

// retryTransport sits under go-github and hides GitHub's transient failures from it:
//
//   - 5xx and network errors are retried with exponential backoff, at most `retries` times;
//   - an attempt that gets no answer within `timeout` (a stalled connection) counts as a
//     network error;
//   - a secondary rate limit (403/429 with Retry-After) is waited out, as GitHub asks, but for
//     at least minRateLimitWait: "Retry-After: 0" must not turn into a request loop;
//   - a primary rate limit (403/429 with X-RateLimit-Remaining: 0) is waited out until
//     X-RateLimit-Reset;
//   - a successful response that spends the last request of the window (Remaining: 0) is held
//     until the window resets. Otherwise go-github would remember "0 left until T" and refuse
//     every later call locally (checkRateLimitBeforeDo), without asking GitHub again.
//
// Rate-limit waits per request are bounded by maxWait in total; past that the response is
// handed to go-github as is, which reports it as *gh.RateLimitError or *gh.AbuseRateLimitError.
// A request still limited after maxRateLimitRetries waits fails with ErrRateLimited.
// The transport also caps the requests in flight (GitHub's secondary limits punish bursts).
//
// POSTs are retried too, their body replayed: repeating a commit status (last write wins per
// context) is harmless. A request sent with sendOnce is not retried after a 5xx, a network error
// or a timeout: GitHub may have acted on it before the answer was lost, and a second POST
// /deployments is a second deployment (a second comment, a second deployment status). Its caller finds out what happened instead
// (ErrOutcomeUnknown; a deploy is settled from the deployments GitHub has). A rate-limited
// request is always retried: GitHub refused it without acting. So is one that never left because
// no GitHub App credential could be had for it (credentialError), unless GitHub refused the
// credential for good (the App's key, an installation that is gone).
type retryTransport struct {
	base    http.RoundTripper
	slots   chan struct{}
	retries int
	backoff time.Duration
	maxWait time.Duration
	timeout time.Duration // per attempt, until the whole answer is read; 0 means none
}

type sendOnceKey struct{}

// sendOnce marks the requests made with ctx as not to be repeated once sent (see retryTransport).
func sendOnce(ctx context.Context) context.Context {
	return context.WithValue(ctx, sendOnceKey{}, true)
}

// ErrOutcomeUnknown means a request that must not be repeated got no clear answer (a 5xx, a
// network error, a timeout): GitHub may or may not have acted on it. It is the domain's
// compliance.ErrOutcomeUnknown.
var ErrOutcomeUnknown = compliance.ErrOutcomeUnknown

// resetBuffer is added to X-RateLimit-Reset, which has one-second resolution.
const resetBuffer = 250 * time.Millisecond

const (
	// maxRateLimitRetries caps how often one request waits out a rate limit, whatever the
	// waits add up to.
	maxRateLimitRetries = 5
	// minRateLimitWait is the shortest wait before retrying a rate-limited request.
	minRateLimitWait = time.Second
)

// ErrRateLimited means GitHub still answered with a rate limit after maxRateLimitRetries waits.
var ErrRateLimited = errors.New("rate limited")

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	body, err := replayable(req)
	if err != nil {
		return nil, err
	}
	var waited time.Duration
	failures, limits := 0, 0
	for {
		resp, err := t.send(ctx, req, body)

		var wait time.Duration
		once := req.Context().Value(sendOnceKey{}) != nil // not safe to repeat once sent
		switch {
		case err != nil:
			// A request that got no GitHub App credential was never sent: repeating it is safe,
			// unless GitHub refused the credential for good.
			var ce *credentialError
			unsent := errors.As(err, &ce)
			if ctx.Err() != nil || failures >= t.retries || (once && !unsent) || (unsent && ce.permanent) {
				return nil, err
			}
			failures++
			wait = t.backoffFor(failures)
		case resp.StatusCode >= 500:
			if failures >= t.retries || once {
				return resp, nil
			}
			failures++
			wait = t.backoffFor(failures)
		case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests:
			w, limited := rateLimitWait(resp, time.Now())
			if !limited {
				return resp, nil
			}
			if limits >= maxRateLimitRetries {
				discard(resp)
				return nil, fmt.Errorf("%w: HTTP %d again after waiting %d times (%v in all); giving up",
					ErrRateLimited, resp.StatusCode, limits, waited.Round(time.Millisecond))
			}
			// Never retry at once; a short maxWait (tests) shortens the floor so that the
			// retry cap, not the wait bound, is what ends a loop of short waits.
			w = max(w, min(minRateLimitWait, t.maxWait/maxRateLimitRetries))
			if waited+w > t.maxWait {
				return resp, nil
			}
			limits++
			waited += w
			wait = w
		case resp.StatusCode < 300 && resp.Header.Get("X-RateLimit-Remaining") == "0":
			reset, ok := rateReset(resp)
			w := time.Until(reset) + resetBuffer
			if !ok || w <= 0 || waited+w > t.maxWait {
				return resp, nil
			}
			// Read the answer before the wait: the attempt's timeout keeps running.
			if err := buffer(resp); err != nil {
				return nil, err
			}
			if err := sleep(ctx, w); err != nil {
				return nil, err
			}
			return resp, nil
		default:
			return resp, nil
		}
		if resp != nil {
			discard(resp)
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// send makes one attempt, with its own timeout: it covers reading the answer too, so the
// deadline is only released when the body is closed.
func (t *retryTransport) send(ctx context.Context, req *http.Request, body []byte) (*http.Response, error) {
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-t.slots }()
	actx, cancel := ctx, context.CancelFunc(func() {})
	if t.timeout > 0 {
		actx, cancel = context.WithTimeout(ctx, t.timeout)
	}
	attempt := req.Clone(actx)
	if body != nil {
		attempt.Body = io.NopCloser(bytes.NewReader(body))
		attempt.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	resp, err := t.base.RoundTrip(attempt)
	if err != nil {
		cancel()
		if ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %v: %w", t.timeout, err)
		}
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelOnClose releases an attempt's timeout when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// discard drains (a little of) a response that will not be used, so its connection can be
// reused, and closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
}

// buffer reads a response's body into memory.
func buffer(resp *http.Response) error {
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return nil
}

func (t *retryTransport) backoffFor(failures int) time.Duration {
	d := t.backoff << (failures - 1)
	// Jitter keeps parallel requests that failed together from retrying together.
	return d/2 + rand.N(d/2+1)
}

// replayable reads the request body once so each attempt can send it again.
func replayable(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	return io.ReadAll(req.Body)
}

// rateLimitWait says whether a 403/429 is a rate limit and how long to wait, following
// GitHub's guidance: Retry-After if present; else, with X-RateLimit-Remaining: 0, until
// X-RateLimit-Reset; else for a 429, at least a minute. A 403 without these headers is a
// permission error, not a limit.
func rateLimitWait(resp *http.Response, now time.Time) (time.Duration, bool) {
	if v := resp.Header.Get("Retry-After"); v != "" {
		if secs, err := strconv.Atoi(v); err == nil {
			return max(time.Duration(secs)*time.Second, 0), true
		}
		if at, err := http.ParseTime(v); err == nil {
			return max(at.Sub(now), 0), true
		}
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		if reset, ok := rateReset(resp); ok {
			// A reset already past means our clock is ahead of GitHub's: wait a little anyway.
			return max(reset.Sub(now)+resetBuffer, time.Second), true
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return time.Minute, true
	}
	return 0, false
}

func rateReset(resp *http.Response) (time.Time, bool) {
	secs, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil || secs <= 0 {
		return time.Time{}, false
	}
	return time.Unix(secs, 0), true
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
