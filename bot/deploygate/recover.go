package deploygate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sockembot/bot/check"
	"sockembot/bot/render"
	"sockembot/compliance"
)

// stuckAfter is how long a confirmation may stay in flight before the recover job looks at
// it: well past HandlerTimeout, so no live handler is still working on it.
const stuckAfter = 3 * HandlerTimeout

// RecoverInterrupted settles confirmations a crash cut short. A deploy left "confirming" either
// got its GitHub deployment (found by the deploy id in its payload: then it is recorded as
// deployed) or did not (then it failed, and nothing was deployed). Either way the thread says
// so. Deploy is never pressed again on anyone's behalf. It returns how many it settled.
func (g *Gate) RecoverInterrupted(ctx context.Context) (int, error) {
	stuck, err := g.Store.DeploysIn(ctx, StateConfirming, g.now().Add(-stuckAfter))
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, d := range stuck {
		if err := g.recoverDeploy(ctx, d); err != nil {
			errs = append(errs, check.Errorf("deploy %d: %w", d.ID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func (g *Gate) recoverDeploy(ctx context.Context, d Deploy) error {
	payloads, err := g.GitHub.DeploymentPayloads(ctx, d.Repo, d.HeadSHA, d.Environment)
	if err != nil {
		return err
	}
	var ghID int64
	for id, raw := range payloads {
		var p DeploymentPayload
		if json.Unmarshal(raw, &p) == nil && p.Sockembot.DeployID == d.ID && id > ghID {
			ghID = id
		}
	}
	if ghID == 0 {
		if ok, err := g.Store.TransitionDeploy(ctx, d.ID, StateConfirming, StateFailed); err != nil || !ok {
			return err
		}
		if err := g.record(ctx, compliance.EvidenceDeployRefused, d.Repo, Subject(d.ID), DeployRefusedEvidence{
			DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA, BaseSHA: d.BaseSHA,
			Requester: d.Requester, CheckSeq: d.CheckSeq, Reason: "GitHub has no deployment for it: interrupted, or the request never reached GitHub",
		}); err != nil {
			return err
		}
		_, err := g.post(ctx, d.Channel, d.TS, "⚠️ GitHub has no deployment for this deploy (the request was interrupted, or never reached GitHub): *nothing was deployed*. Run `/deploy` again to retry.")
		g.postAnchor(ctx, d)
		return errors.Join(err, g.UpdateDigest(ctx, d, "⚠️ *Deploy failed*: nothing was deployed, see the thread."))
	}
	checked, err := g.checkRun(ctx, d)
	if err != nil {
		return err
	}
	deployer, at := d.Requester, d.UpdatedAt
	if rec, found, err := g.Store.LastRecord(ctx, compliance.EvidenceDeployConfirmed, Subject(d.ID)); err != nil {
		return err
	} else if found {
		var ev DeployDecisionEvidence
		if err := json.Unmarshal(rec.Body, &ev); err == nil {
			deployer, at = ev.By, ev.At
		}
	}
	override, moved, err := g.recordDeployment(ctx, d, deployer, ghID, checked.Report, checked.PolicyHash, checked.PolicySource)
	if err != nil || !moved {
		return err // !moved: settled already, by the confirmation or another pass
	}
	if _, err := g.post(ctx, d.Channel, d.TS, fmt.Sprintf("🔁 This deploy was interrupted after GitHub created deployment %d; sockembot has now recorded it. Its statuses will follow here.", ghID)); err != nil {
		return err
	}
	g.postAnchor(ctx, d)
	d.GitHubDeploymentID = ghID
	if err := g.UpdateDigest(ctx, d, fmt.Sprintf("🚀 *Deploying* · GitHub deployment %d · confirmed by %s", ghID, render.Mention(deployer))); err != nil {
		return err
	}
	if override != nil {
		return g.Emergencies.Open(ctx, d, checked.Report, checked.Policy, deployer, at)
	}
	return nil
}
