package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Deploy states as the deploys table holds them. The deploy gate owns what they mean; the store
// knows them only to refuse a typo and to run ClaimConfirm's compare-and-swap.
const (
	stateRequested  = "requested"
	stateRefused    = "refused"
	stateReady      = "ready"
	stateConfirming = "confirming"
	stateDeployed   = "deployed"
	stateCancelled  = "cancelled"
	stateFailed     = "failed"
)

// DeployStates are the states a deploy row may be in.
var DeployStates = []string{stateRequested, stateRefused, stateReady, stateConfirming, stateDeployed, stateCancelled, stateFailed}

func validState(st string) bool { return slices.Contains(DeployStates, st) }

// DeployRow is one row of the deploys table: a deploy request and what became of it, as stored.
// The deploy gate's Deploy is the same record in its own terms.
type DeployRow struct {
	ID                 int64
	Service            string
	Environment        string
	Repo               string
	Ref                string
	HeadSHA            string
	BaseSHA            string
	Requester          string // Slack user id
	Channel            string // Slack channel of the digest message
	TS                 string // Slack ts of the digest message, to thread later events under it
	State              string
	CheckSeq           int64 // evidence seq of the check_run the digest shows
	GitHubDeploymentID int64
	Emergency          bool
	Reason             string
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

const deployCols = "id, service, environment, repo, ref, head_sha, base_sha, requester, channel, ts, state, " +
	"check_seq, github_deployment_id, emergency, reason, created_ns, updated_ns"

func scanDeploy(row interface{ Scan(...any) error }) (DeployRow, error) {
	var d DeployRow
	var created, updated int64
	err := row.Scan(&d.ID, &d.Service, &d.Environment, &d.Repo, &d.Ref, &d.HeadSHA, &d.BaseSHA,
		&d.Requester, &d.Channel, &d.TS, &d.State, &d.CheckSeq, &d.GitHubDeploymentID, &d.Emergency,
		&d.Reason, &created, &updated)
	d.CreatedAt, d.UpdatedAt = fromNanos(created), fromNanos(updated)
	return d, err
}

// CreateDeploy stores a new deploy (State defaults to requested) and returns its id.
func (s *Store) CreateDeploy(ctx context.Context, d DeployRow) (int64, error) {
	if d.State == "" {
		d.State = stateRequested
	}
	if !validState(d.State) {
		return 0, fmt.Errorf("store: create deploy of %s: unknown state %q", d.Service, d.State)
	}
	now := nanos(s.now())
	var id int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO deploys (service, environment, repo, ref, head_sha, base_sha,
			requester, channel, ts, state, check_seq, github_deployment_id, emergency, reason, created_ns, updated_ns)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) RETURNING id`,
			d.Service, d.Environment, d.Repo, d.Ref, d.HeadSHA, d.BaseSHA, d.Requester, d.Channel, d.TS,
			d.State, d.CheckSeq, d.GitHubDeploymentID, d.Emergency, d.Reason, now).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("store: create deploy of %s to %s: %w", d.Service, d.Environment, err)
	}
	return id, nil
}

// GetDeploy returns deploy id, or an error wrapping ErrNotFound.
func (s *Store) GetDeploy(ctx context.Context, id int64) (DeployRow, error) {
	d, err := scanDeploy(s.db.QueryRowContext(ctx, "SELECT "+deployCols+" FROM deploys WHERE id = $1", id))
	if errors.Is(err, sql.ErrNoRows) {
		return DeployRow{}, fmt.Errorf("store: deploy %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return DeployRow{}, fmt.Errorf("store: deploy %d: %w", id, err)
	}
	return d, nil
}

// UpdateDeploy applies fn to deploy id and saves it, atomically: two replicas filling in
// different fields (the digest ts, the GitHub deployment id) cannot overwrite each other. fn must
// not call the store. State changes only through TransitionDeploy, so fn changing State (or ID,
// CreatedAt) is an error.
func (s *Store) UpdateDeploy(ctx context.Context, id int64, fn func(d *DeployRow)) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		d, err := scanDeploy(tx.QueryRowContext(ctx, "SELECT "+deployCols+" FROM deploys WHERE id = $1"+s.forUpdate(), id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		before := d
		fn(&d)
		if d.ID != before.ID || d.State != before.State || !d.CreatedAt.Equal(before.CreatedAt) {
			return errors.New("only TransitionDeploy changes a deploy's state (and nothing changes its id or creation time)")
		}
		_, err = tx.ExecContext(ctx, `UPDATE deploys SET service = $1, environment = $2, repo = $3, ref = $4,
			head_sha = $5, base_sha = $6, requester = $7, channel = $8, ts = $9, check_seq = $10,
			github_deployment_id = $11, emergency = $12, reason = $13, updated_ns = $14 WHERE id = $15`,
			d.Service, d.Environment, d.Repo, d.Ref, d.HeadSHA, d.BaseSHA, d.Requester, d.Channel, d.TS,
			d.CheckSeq, d.GitHubDeploymentID, d.Emergency, d.Reason, nanos(s.now()), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: update deploy %d: %w", id, err)
	}
	return nil
}

// TransitionDeploy moves deploy id from one state to another if, and only if, it is still in
// from. It is a compare-and-swap: when two replicas (or a double click) race to confirm the
// same deploy, exactly one gets ok and creates the GitHub deployment.
func (s *Store) TransitionDeploy(ctx context.Context, id int64, from, to string) (ok bool, err error) {
	if !validState(from) || !validState(to) {
		return false, fmt.Errorf("store: deploy %d: unknown state in %q -> %q", id, from, to)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		var err error
		if ok, err = s.transition(ctx, tx, id, from, to); err != nil || ok {
			return err
		}
		var exists int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM deploys WHERE id = $1", id).Scan(&exists); err != nil {
			return err
		}
		if exists == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: deploy %d %s -> %s: %w", id, from, to, err)
	}
	return ok, nil
}

// ClaimConfirm moves deploy id from ready to confirming, as TransitionDeploy does, unless
// another deploy of the same service to the same environment is confirming: then busy is that
// deploy's id and nothing changes. Check and move are one step across replicas (SQLite's write
// lock; on PostgreSQL an advisory lock per service and environment), so two digests of one
// environment pressed at the same instant cannot both be deployed.
func (s *Store) ClaimConfirm(ctx context.Context, id int64) (ok bool, busy int64, err error) {
	err = s.write(ctx, func(tx *sql.Tx) error {
		var service, env string
		if err := tx.QueryRowContext(ctx, "SELECT service, environment FROM deploys WHERE id = $1", id).Scan(&service, &env); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if s.dialect == Postgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "sockembot confirm "+service+"\n"+env); err != nil {
				return err
			}
		}
		err := tx.QueryRowContext(ctx, "SELECT id FROM deploys WHERE service = $1 AND environment = $2 AND state = $3 AND id <> $4 LIMIT 1",
			service, env, stateConfirming, id).Scan(&busy)
		if err == nil {
			return nil // busy
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		ok, err = s.transition(ctx, tx, id, stateReady, stateConfirming)
		return err
	})
	if err != nil {
		return false, 0, fmt.Errorf("store: claim deploy %d: %w", id, err)
	}
	return ok, busy, nil
}

// transition is the compare-and-swap of TransitionDeploy and ClaimConfirm, inside tx.
func (s *Store) transition(ctx context.Context, tx *sql.Tx, id int64, from, to string) (bool, error) {
	res, err := tx.ExecContext(ctx, "UPDATE deploys SET state = $1, updated_ns = $2 WHERE id = $3 AND state = $4",
		to, nanos(s.now()), id, from)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// DeployByGitHubID finds the deploy behind a GitHub deployment, to thread deployment_status
// webhooks under its digest. The error wraps ErrNotFound for deployments sockembot did not make.
func (s *Store) DeployByGitHubID(ctx context.Context, repo string, ghID int64) (DeployRow, error) {
	d, err := scanDeploy(s.db.QueryRowContext(ctx,
		"SELECT "+deployCols+" FROM deploys WHERE repo = $1 AND github_deployment_id = $2 ORDER BY id DESC LIMIT 1", repo, ghID))
	if errors.Is(err, sql.ErrNoRows) {
		return DeployRow{}, fmt.Errorf("store: deploy of GitHub deployment %s/%d: %w", repo, ghID, ErrNotFound)
	}
	if err != nil {
		return DeployRow{}, fmt.Errorf("store: deploy of GitHub deployment %s/%d: %w", repo, ghID, err)
	}
	return d, nil
}

// DeploysIn lists the deploys in state that last changed before before, oldest first: the
// confirmations a crash interrupted, for example.
func (s *Store) DeploysIn(ctx context.Context, state string, before time.Time) ([]DeployRow, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+deployCols+
		" FROM deploys WHERE state = $1 AND updated_ns < $2 ORDER BY id", state, nanos(before))
	if err != nil {
		return nil, fmt.Errorf("store: deploys %s before %s: %w", state, before, err)
	}
	defer rows.Close()
	var out []DeployRow
	for rows.Next() {
		d, err := scanDeploy(rows)
		if err != nil {
			return nil, fmt.Errorf("store: deploys %s: %w", state, err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// RecentDeploys returns up to n deploys of service to env, newest first.
func (s *Store) RecentDeploys(ctx context.Context, service, env string, n int) ([]DeployRow, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+deployCols+
		" FROM deploys WHERE service = $1 AND environment = $2 ORDER BY id DESC LIMIT $3", service, env, n)
	if err != nil {
		return nil, fmt.Errorf("store: recent deploys of %s to %s: %w", service, env, err)
	}
	defer rows.Close()
	var out []DeployRow
	for rows.Next() {
		d, err := scanDeploy(rows)
		if err != nil {
			return nil, fmt.Errorf("store: recent deploys of %s to %s: %w", service, env, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: recent deploys of %s to %s: %w", service, env, err)
	}
	return out, nil
}
