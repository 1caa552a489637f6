package bot

import (
	"context"
	"fmt"
	"time"
)

// lockLease bounds how long a replica may hold a lock; a replica that dies holding it delays the
// next run under that key by at most this long.
const lockLease = 2 * time.Minute

// Lock serialises work on key (a pull request's checks, a deploy's statuses), in this process and
// across replicas: a process-local wait first, then a lease row in the shared store, renewed
// while held. The gates use it where two runs side by side could finish out of order (an
// approval dismissed in between would still show green).
func (a *App) Lock(ctx context.Context, key string) (unlock func(), err error) {
	a.state.init()
	mine := make(chan struct{})
	for {
		a.state.mu.Lock()
		busy, ok := a.state.checking[key]
		if !ok {
			a.state.checking[key] = mine
		}
		a.state.mu.Unlock()
		if !ok {
			break
		}
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	local := func() {
		a.state.mu.Lock()
		delete(a.state.checking, key)
		a.state.mu.Unlock()
		close(mine)
	}
	name := "check:" + key
	deadline := time.Now().Add(lockLease + 10*time.Second)
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		got, err := a.Store.AcquireLease(ctx, name, a.replica(), lockLease)
		if err != nil {
			local()
			return nil, fmt.Errorf("lock %s: %w", key, err)
		}
		if got {
			break
		}
		if time.Now().After(deadline) {
			local()
			return nil, fmt.Errorf("lock %s: another replica is still checking it", key)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			local()
			return nil, ctx.Err()
		}
	}
	// Renewed while held: a check slowed by GitHub's rate limits can outlast one lease term.
	stop := a.renewLease(context.WithoutCancel(ctx), name, lockLease, nil)
	return func() {
		stop()
		if err := a.Store.ReleaseLease(context.WithoutCancel(ctx), name, a.replica()); err != nil {
			a.log().WithError(err).WithField("key", key).Warn("lock: release lease")
		}
		local()
	}, nil
}

// renewLease keeps this replica's lease on name alive, renewing it every third of ttl, until
// the returned stop is called. If a renewal finds the lease taken (this replica stalled past
// it), lost is called, and renewing stops.
func (a *App) renewLease(ctx context.Context, name string, ttl time.Duration, lost func()) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			ok, err := a.Store.AcquireLease(ctx, name, a.replica(), ttl)
			if err != nil {
				a.log().WithError(err).WithField("lease", name).Warn("lease: renew")
				continue
			}
			if !ok {
				a.log().WithField("lease", name).Error("lease: lost to another replica")
				if lost != nil {
					lost()
				}
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// PostOnce posts a notice to channel (a thread reply when thread is a message ts) unless one was
// posted under key before, and marks it posted only once Slack took it: a post that fails is made
// again when the work is retried, and one that succeeded is not repeated. (Two replicas racing
// may both post; a notice said twice beats one never said.)
func (a *App) PostOnce(ctx context.Context, key, channel, thread string, text func() (string, error)) error {
	if _, posted, err := a.Store.GetState(ctx, "posted:"+key); err != nil || posted {
		return err
	}
	t, err := text()
	if err != nil {
		return err
	}
	if _, err := a.Slack.Post(ctx, channel, thread, t); err != nil {
		return fmt.Errorf("post %s: %w", key, err)
	}
	return a.Store.SetState(ctx, "posted:"+key, a.now().Format(time.RFC3339))
}
