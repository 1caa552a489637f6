package bot

import (
	"context"
	"time"

	"sockembot/bot/deploygate"
	"sockembot/integrations/store"
)

// deployStore is the evidence store in the deploy gate's terms: the deploys table holds rows,
// the gate works with its own Deploy and State. This is the one place they are translated.
type deployStore struct{ *store.Store }

func toRow(d deploygate.Deploy) store.DeployRow {
	return store.DeployRow{
		ID: d.ID, Service: d.Service, Environment: d.Environment, Repo: d.Repo, Ref: d.Ref,
		HeadSHA: d.HeadSHA, BaseSHA: d.BaseSHA, Requester: d.Requester, Channel: d.Channel, TS: d.TS,
		State: string(d.State), CheckSeq: d.CheckSeq, GitHubDeploymentID: d.GitHubDeploymentID,
		Emergency: d.Emergency, Reason: d.Reason, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
	}
}

func fromRow(r store.DeployRow) deploygate.Deploy {
	return deploygate.Deploy{
		ID: r.ID, Service: r.Service, Environment: r.Environment, Repo: r.Repo, Ref: r.Ref,
		HeadSHA: r.HeadSHA, BaseSHA: r.BaseSHA, Requester: r.Requester, Channel: r.Channel, TS: r.TS,
		State: deploygate.State(r.State), CheckSeq: r.CheckSeq, GitHubDeploymentID: r.GitHubDeploymentID,
		Emergency: r.Emergency, Reason: r.Reason, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

func fromRows(rs []store.DeployRow, err error) ([]deploygate.Deploy, error) {
	if err != nil {
		return nil, err
	}
	out := make([]deploygate.Deploy, len(rs))
	for i, r := range rs {
		out[i] = fromRow(r)
	}
	return out, nil
}

func (s deployStore) CreateDeploy(ctx context.Context, d deploygate.Deploy) (int64, error) {
	return s.Store.CreateDeploy(ctx, toRow(d))
}

func (s deployStore) GetDeploy(ctx context.Context, id int64) (deploygate.Deploy, error) {
	r, err := s.Store.GetDeploy(ctx, id)
	return fromRow(r), err
}

func (s deployStore) UpdateDeploy(ctx context.Context, id int64, fn func(d *deploygate.Deploy)) error {
	return s.Store.UpdateDeploy(ctx, id, func(r *store.DeployRow) {
		d := fromRow(*r)
		fn(&d)
		*r = toRow(d)
	})
}

func (s deployStore) TransitionDeploy(ctx context.Context, id int64, from, to deploygate.State) (bool, error) {
	return s.Store.TransitionDeploy(ctx, id, string(from), string(to))
}

func (s deployStore) DeploysIn(ctx context.Context, state deploygate.State, before time.Time) ([]deploygate.Deploy, error) {
	return fromRows(s.Store.DeploysIn(ctx, string(state), before))
}

func (s deployStore) DeployByGitHubID(ctx context.Context, repo string, ghID int64) (deploygate.Deploy, error) {
	r, err := s.Store.DeployByGitHubID(ctx, repo, ghID)
	return fromRow(r), err
}

func (s deployStore) RecentDeploys(ctx context.Context, service, env string, n int) ([]deploygate.Deploy, error) {
	return fromRows(s.Store.RecentDeploys(ctx, service, env, n))
}

func toLock(l *store.EnvLock) *deploygate.Lock {
	if l == nil {
		return nil
	}
	return &deploygate.Lock{Service: l.Service, Environment: l.Environment, By: l.By, Reason: l.Reason, At: l.At}
}

func (s deployStore) Lock(ctx context.Context, service, env, by, reason string) (bool, *deploygate.Lock, error) {
	ok, existing, err := s.Store.Lock(ctx, service, env, by, reason)
	return ok, toLock(existing), err
}

func (s deployStore) GetLock(ctx context.Context, service, env string) (*deploygate.Lock, error) {
	l, err := s.Store.GetLock(ctx, service, env)
	return toLock(l), err
}
