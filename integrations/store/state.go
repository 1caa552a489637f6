package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Once reports whether this is the first time (scope, key) is seen, across every replica on the
// database. Slack retries an envelope it thinks was not acknowledged, and GitHub redelivers
// webhooks; both must act once.
func (s *Store) Once(ctx context.Context, scope, key string) (first bool, err error) {
	err = s.write(ctx, func(tx *sql.Tx) error {
		first, err = s.claim(ctx, tx, scope, key)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: once %s/%s: %w", scope, key, err)
	}
	return first, nil
}

// claim inserts (scope, key) into once_keys in tx; first is false if it was there already.
func (s *Store) claim(ctx context.Context, tx *sql.Tx, scope, key string) (first bool, err error) {
	res, err := tx.ExecContext(ctx, "INSERT INTO once_keys (scope, k, at_ns) VALUES ($1, $2, $3) ON CONFLICT (scope, k) DO NOTHING",
		scope, key, nanos(s.now()))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Prune forgets what only guards against duplicates and is long past its use: once keys, marks
// of notices posted, and the payloads of processed webhook deliveries from before before. Slack and GitHub redeliver
// within minutes or days, never months. Evidence is never pruned. It returns the rows removed.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			"DELETE FROM once_keys WHERE at_ns < $1",
			"DELETE FROM deliveries WHERE state = 'done' AND done_ns < $1",
		} {
			res, err := tx.ExecContext(ctx, q, nanos(before))
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += k
		}
		// Marks of notices posted (see the runtime's PostOnce): their value is when, in UTC RFC 3339,
		// which sorts as text.
		res, err := tx.ExecContext(ctx, "DELETE FROM kv WHERE k LIKE 'posted:%' AND v < $1", before.UTC().Format(time.RFC3339))
		if err != nil {
			return err
		}
		k, err := res.RowsAffected()
		n += k
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: prune before %s: %w", before.Format(time.RFC3339), err)
	}
	return n, nil
}

// Delivery retry policy: a failed delivery waits DeliveryBackoff, doubling each attempt up to
// MaxDeliveryBackoff, and is marked dead after MaxDeliveryAttempts claims.
const (
	MaxDeliveryAttempts = 8
	DeliveryBackoff     = 30 * time.Second
	MaxDeliveryBackoff  = 30 * time.Minute
)

// Delivery is a queued webhook delivery.
type Delivery struct {
	ID        string // X-GitHub-Delivery
	Event     string // X-GitHub-Event
	Payload   []byte
	Attempts  int // claims so far, this one included
	LastError string
}

// EnqueueDelivery queues d unless a delivery with its id was queued before (a GitHub redelivery),
// in which case fresh is false and nothing changes.
func (s *Store) EnqueueDelivery(ctx context.Context, d Delivery) (fresh bool, err error) {
	if d.ID == "" {
		return false, errors.New("store: enqueue delivery: id is empty")
	}
	if d.Payload == nil {
		d.Payload = []byte{}
	}
	now := nanos(s.now())
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO deliveries (id, event, payload, state, due_ns, created_ns)
			VALUES ($1, $2, $3, 'pending', $4, $4) ON CONFLICT (id) DO NOTHING`, d.ID, d.Event, d.Payload, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		fresh = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: enqueue delivery %s: %w", d.ID, err)
	}
	return fresh, nil
}

// ClaimDelivery hands worker the oldest due delivery for lease, or nil when none is due. A
// delivery whose worker died (the lease ran out without CompleteDelivery) becomes due again, so
// a webhook acknowledged to GitHub just before a crash is still processed.
func (s *Store) ClaimDelivery(ctx context.Context, worker string, lease time.Duration) (*Delivery, error) {
	now := s.now()
	skipLocked := ""
	if s.dialect == Postgres {
		// Workers on other replicas pass over rows being claimed instead of queueing behind them.
		skipLocked = " FOR UPDATE SKIP LOCKED"
	}
	var d *Delivery
	err := s.write(ctx, func(tx *sql.Tx) error {
		// A delivery that keeps killing its worker never reaches CompleteDelivery; retire it here.
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = 'dead', last_error = 'lease expired on the last attempt'
			WHERE state = 'pending' AND due_ns <= $1 AND attempts >= $2`, nanos(now), MaxDeliveryAttempts); err != nil {
			return err
		}
		var got Delivery
		err := tx.QueryRowContext(ctx, `UPDATE deliveries SET attempts = attempts + 1, worker = $1, due_ns = $2
			WHERE id = (SELECT id FROM deliveries WHERE state = 'pending' AND due_ns <= $3 AND attempts < $4
			            ORDER BY due_ns LIMIT 1`+skipLocked+`)
			RETURNING id, event, payload, attempts, last_error`,
			worker, nanos(now.Add(lease)), nanos(now), MaxDeliveryAttempts).
			Scan(&got.ID, &got.Event, &got.Payload, &got.Attempts, &got.LastError)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		d = &got
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim delivery for %s: %w", worker, err)
	}
	return d, nil
}

// ErrStaleClaim means a CompleteDelivery came from a claim that is no longer current: its lease
// ran out and another worker claimed the delivery (or finished it). The outcome is dropped, so a
// slow worker's late failure cannot put finished work back in the queue.
var ErrStaleClaim = errors.New("the claim is no longer current")

// CompleteDelivery records the outcome of the claim of delivery id that was attempt number
// attempt (Delivery.Attempts): done when procErr is nil, otherwise due again after a backoff, or
// dead after MaxDeliveryAttempts.
func (s *Store) CompleteDelivery(ctx context.Context, id string, attempt int, procErr error) error {
	now := s.now()
	err := s.write(ctx, func(tx *sql.Tx) error {
		var attempts int
		var state string
		err := tx.QueryRowContext(ctx, "SELECT attempts, state FROM deliveries WHERE id = $1"+s.forUpdate(), id).Scan(&attempts, &state)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if attempts != attempt || state != "pending" {
			return ErrStaleClaim
		}
		if procErr == nil {
			_, err = tx.ExecContext(ctx, "UPDATE deliveries SET state = 'done', last_error = '', done_ns = $1 WHERE id = $2", nanos(now), id)
			return err
		}
		state = "pending"
		if attempts >= MaxDeliveryAttempts {
			state = "dead"
		}
		msg := procErr.Error()
		if len(msg) > 2000 {
			msg = msg[:2000]
		}
		_, err = tx.ExecContext(ctx, "UPDATE deliveries SET state = $1, due_ns = $2, last_error = $3 WHERE id = $4",
			state, nanos(now.Add(deliveryBackoff(attempts))), msg, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: complete delivery %s: %w", id, err)
	}
	return nil
}

func deliveryBackoff(attempts int) time.Duration {
	d := DeliveryBackoff
	for i := 1; i < attempts && d < MaxDeliveryBackoff; i++ {
		d *= 2
	}
	return min(d, MaxDeliveryBackoff)
}

// DeliveryState is where delivery id stands: "pending" (queued, being processed or waiting to
// retry), "done" or "dead" (given up after MaxDeliveryAttempts); the error wraps ErrNotFound for
// a delivery never queued.
func (s *Store) DeliveryState(ctx context.Context, id string) (string, error) {
	var state string
	err := s.db.QueryRowContext(ctx, "SELECT state FROM deliveries WHERE id = $1", id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: delivery %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("store: delivery %s: %w", id, err)
	}
	return state, nil
}

// PendingDeliveries counts deliveries not yet done or dead (queued, in progress or waiting to
// retry): a growing number means the workers are not keeping up or something keeps failing.
func (s *Store) PendingDeliveries(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'").Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count pending deliveries: %w", err)
	}
	return n, nil
}

// EnvLock is a hold on deploys of a service to an environment (a freeze, an incident).
type EnvLock struct {
	Service     string
	Environment string
	By          string
	Reason      string
	At          time.Time
}

// Lock takes the lock on service/env for by. When someone already holds it, ok is false and
// existing says who, why and since when.
func (s *Store) Lock(ctx context.Context, service, env, by, reason string) (ok bool, existing *EnvLock, err error) {
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO env_locks (service, environment, locked_by, reason, at_ns)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (service, environment) DO NOTHING`, service, env, by, reason, nanos(s.now()))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			ok = true
			return nil
		}
		existing, err = getLock(ctx, tx, service, env)
		return err
	})
	if err != nil {
		return false, nil, fmt.Errorf("store: lock %s in %s: %w", service, env, err)
	}
	return ok, existing, nil
}

// Unlock releases the lock on service/env; was says whether there was one.
func (s *Store) Unlock(ctx context.Context, service, env string) (was bool, err error) {
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM env_locks WHERE service = $1 AND environment = $2", service, env)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		was = n > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: unlock %s in %s: %w", service, env, err)
	}
	return was, nil
}

// GetLock returns the lock on service/env, or nil when it is not locked.
func (s *Store) GetLock(ctx context.Context, service, env string) (*EnvLock, error) {
	l, err := getLock(ctx, s.db, service, env)
	if err != nil {
		return nil, fmt.Errorf("store: lock of %s in %s: %w", service, env, err)
	}
	return l, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getLock(ctx context.Context, q querier, service, env string) (*EnvLock, error) {
	l := EnvLock{Service: service, Environment: env}
	var at int64
	err := q.QueryRowContext(ctx, "SELECT locked_by, reason, at_ns FROM env_locks WHERE service = $1 AND environment = $2",
		service, env).Scan(&l.By, &l.Reason, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	l.At = fromNanos(at)
	return &l, nil
}

// AcquireLease makes holder the only holder of name for ttl, so a scheduled job runs on one
// replica. It succeeds when the lease is free, expired, or already holder's (a renewal).
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := s.now()
	var ok bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO leases (name, holder, until_ns) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ns = excluded.until_ns
			WHERE leases.holder = excluded.holder OR leases.until_ns <= $4`,
			name, holder, nanos(now.Add(ttl)), nanos(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		ok = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: lease %s for %s: %w", name, holder, err)
	}
	return ok, nil
}

// ReleaseLease gives up holder's lease on name (on shutdown), so another replica need not wait
// for it to expire. Releasing a lease someone else holds does nothing.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM leases WHERE name = $1 AND holder = $2", name, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: release lease %s for %s: %w", name, holder, err)
	}
	return nil
}

// GetState reads a small piece of bookkeeping, such as a reconciliation cursor.
func (s *Store) GetState(ctx context.Context, key string) (value string, found bool, err error) {
	err = s.db.QueryRowContext(ctx, "SELECT v FROM kv WHERE k = $1", key).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store: state %s: %w", key, err)
	}
	return value, true, nil
}

// SetState writes a small piece of bookkeeping.
func (s *Store) SetState(ctx context.Context, key, value string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v, updated_ns) VALUES ($1, $2, $3)
			ON CONFLICT (k) DO UPDATE SET v = excluded.v, updated_ns = excluded.updated_ns`, key, value, nanos(s.now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: set state %s: %w", key, err)
	}
	return nil
}
