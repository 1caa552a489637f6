package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"sockembot/integrations/store"
)

// stuckAfter is how long a confirmation may stay in flight before the recover job looks at
// it: well past handlerTimeout, so no live handler is still working on it.
const stuckAfter = 3 * handlerTimeout

// RecoverInterrupted settles confirmations a crash cut short. A deploy left "confirming" either
// got its GitHub deployment (found by the deploy id in its payload: then it is recorded as
// deployed) or did not (then it failed, and nothing was deployed). Either way the thread says
// so. Deploy is never pressed again on anyone's behalf. It returns how many it settled.
func (a *App) RecoverInterrupted(ctx context.Context) (int, error) {
	stuck, err := a.Store.DeploysIn(ctx, store.StateConfirming, a.now().Add(-stuckAfter))
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, d := range stuck {
		if err := a.recoverDeploy(ctx, d); err != nil {
			errs = append(errs, fmt.Errorf("deploy %d: %w", d.ID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func (a *App) recoverDeploy(ctx context.Context, d store.Deploy) error {
	payloads, err := a.GitHub.DeploymentPayloads(ctx, d.Repo, d.HeadSHA, d.Environment)
	if err != nil {
		return err
	}
	var ghID int64
	for id, raw := range payloads {
		var p deploymentPayload
		if json.Unmarshal(raw, &p) == nil && p.Sockembot.DeployID == d.ID && id > ghID {
			ghID = id
		}
	}
	if ghID == 0 {
		if ok, err := a.Store.TransitionDeploy(ctx, d.ID, store.StateConfirming, store.StateFailed); err != nil || !ok {
			return err
		}
		if err := a.record(ctx, store.KindDeployRefused, d.Repo, deploySubject(d.ID), deployRefusedEvidence{
			DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA, BaseSHA: d.BaseSHA,
			Requester: d.Requester, CheckSeq: d.CheckSeq, Reason: "GitHub has no deployment for it: interrupted, or the request never reached GitHub",
		}); err != nil {
			return err
		}
		_, err := a.post(ctx, d.Channel, d.TS, "⚠️ GitHub has no deployment for this deploy (the request was interrupted, or never reached GitHub): *nothing was deployed*. Run `/deploy` again to retry.")
		return errors.Join(err, a.updateRoot(ctx, d, "⚠️ *Deploy failed*: nothing was deployed, see the thread."))
	}
	check, err := a.checkRun(ctx, d)
	if err != nil {
		return err
	}
	deployer, at := d.Requester, d.UpdatedAt
	if rec, found, err := a.Store.LastRecord(ctx, store.KindDeployConfirmed, deploySubject(d.ID)); err != nil {
		return err
	} else if found {
		var ev deployDecisionEvidence
		if err := json.Unmarshal(rec.Body, &ev); err == nil {
			deployer, at = ev.By, ev.At
		}
	}
	override, moved, err := a.recordDeployment(ctx, d, deployer, ghID, check.Report, check.PolicyHash, check.PolicySource)
	if err != nil || !moved {
		return err // !moved: settled already, by the confirmation or another pass
	}
	if _, err := a.post(ctx, d.Channel, d.TS, fmt.Sprintf("🔁 This deploy was interrupted after GitHub created deployment %d; sockembot has now recorded it. Its statuses will follow here.", ghID)); err != nil {
		return err
	}
	d.GitHubDeploymentID = ghID
	if err := a.updateRoot(ctx, d, fmt.Sprintf("🚀 *Deploying* · GitHub deployment %d · confirmed by %s", ghID, mention(deployer))); err != nil {
		return err
	}
	if override != nil {
		return a.openRetroReviews(ctx, d, check.Report, check.Policy, deployer, at)
	}
	return nil
}
