package github

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// retryTransport sits under go-github and hides GitHub's transient failures from it:
//
//   - 5xx and network errors are retried with exponential backoff, at most `retries` times;
//   - a secondary rate limit (403/429 with Retry-After) is waited out, as GitHub asks;
//   - a primary rate limit (403/429 with X-RateLimit-Remaining: 0) is waited out until
//     X-RateLimit-Reset;
//   - a successful response that spends the last request of the window (Remaining: 0) is held
//     until the window resets. Otherwise go-github would remember "0 left until T" and refuse
//     every later call locally (checkRateLimitBeforeDo), without asking GitHub again.
//
// Rate-limit waits per request are bounded by maxWait in total; past that the response is
// handed to go-github as is, which reports it as *gh.RateLimitError or *gh.AbuseRateLimitError.
// The transport also caps the requests in flight (GitHub's secondary limits punish bursts).
//
// POSTs are retried too, their body replayed. If GitHub did act on a request whose answer was
// lost, the repeat is harmless here: a commit status is last-write-wins per context, comments
// are upserted by marker, and a second deployment of the same SHA is superseded by the next.
type retryTransport struct {
	base    http.RoundTripper
	slots   chan struct{}
	retries int
	backoff time.Duration
	maxWait time.Duration
}

// resetBuffer is added to X-RateLimit-Reset, which has one-second resolution.
const resetBuffer = 250 * time.Millisecond

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	body, err := replayable(req)
	if err != nil {
		return nil, err
	}
	var waited time.Duration
	failures := 0
	for {
		attempt := req.Clone(ctx)
		if body != nil {
			attempt.Body = io.NopCloser(bytes.NewReader(body))
			attempt.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		resp, err := t.send(ctx, attempt)

		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil || failures >= t.retries {
				return nil, err
			}
			failures++
			wait = t.backoffFor(failures)
		case resp.StatusCode >= 500:
			if failures >= t.retries {
				return resp, nil
			}
			failures++
			wait = t.backoffFor(failures)
		case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests:
			w, limited := rateLimitWait(resp, time.Now())
			if !limited || waited+w > t.maxWait {
				return resp, nil
			}
			waited += w
			wait = w
		case resp.StatusCode < 300 && resp.Header.Get("X-RateLimit-Remaining") == "0":
			reset, ok := rateReset(resp)
			w := time.Until(reset) + resetBuffer
			if !ok || w <= 0 || waited+w > t.maxWait {
				return resp, nil
			}
			if err := sleep(ctx, w); err != nil {
				resp.Body.Close()
				return nil, err
			}
			return resp, nil
		default:
			return resp, nil
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

func (t *retryTransport) send(ctx context.Context, req *http.Request) (*http.Response, error) {
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-t.slots }()
	return t.base.RoundTrip(req)
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
