package deploygate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"sockembot/bot/check"
	"sockembot/bot/render"
	"sockembot/compliance"
)

// Click is one press of a button on a message the deploy gate posted.
type Click struct {
	User      string
	Channel   string
	MessageTS string // the message the button is on
	ThreadTS  string // its thread, when the message is a reply
	Actions   []Action
}

// Action is a button pressed: its action id and value.
type Action struct {
	ID    string
	Value string
}

// OnClick handles the digest's Deploy and Cancel buttons; other buttons are not the deploy gate's.
func (g *Gate) OnClick(ctx context.Context, cb Click) error {
	var errs []error
	for _, act := range cb.Actions {
		if act.ID != render.ActionDeploy && act.ID != render.ActionCancel {
			continue
		}
		var id int64
		if _, err := fmt.Sscan(act.Value, &id); err != nil {
			errs = append(errs, fmt.Errorf("button %s: bad deploy id %q", act.ID, act.Value))
			continue
		}
		if act.ID == render.ActionDeploy {
			errs = append(errs, g.confirmDeploy(ctx, cb, id))
		} else {
			errs = append(errs, g.cancelDeploy(ctx, cb, id))
		}
	}
	return errors.Join(errs...)
}

// mayPress says whether user may press a digest's buttons: the requester, or anyone allowed to
// deploy there. On an emergency digest it is anyone allowed to break glass there instead: the
// Deploy button of an emergency carries the override with it.
func (g *Gate) mayPress(ctx context.Context, d Deploy, user, action string) (bool, error) {
	if user == d.Requester {
		return true, nil
	}
	reason := "not the requester nor a deployer"
	allowed := g.mayDeploy
	if d.Emergency {
		// The emergency list alone, as for asking: an emergency deploy may be pressed by
		// whoever could have asked for it.
		reason, allowed = "not the requester nor on the emergency list", g.mayBreakGlass
	}
	ok, err := allowed(ctx, user, d.Environment)
	if err != nil || ok {
		return ok, err
	}
	return false, g.denied(ctx, d.Repo, AttemptDeniedEvidence{Service: d.Service, Environment: d.Environment, User: user, Action: action, Reason: reason, DeployID: d.ID, Channel: d.Channel})
}

// clicked is the deploy whose digest's button cb pressed.
func (g *Gate) clicked(ctx context.Context, cb Click, id int64) (Deploy, error) {
	d, err := g.Store.GetDeploy(ctx, id)
	if err != nil {
		return Deploy{}, err
	}
	if d.TS == "" {
		// Clicked before the digest's ts was saved: the click says where the digest is.
		d.Channel, d.TS = cb.Channel, cb.MessageTS
	}
	return d, nil
}

func (g *Gate) confirmDeploy(ctx context.Context, cb Click, id int64) error {
	user, channel := cb.User, cb.Channel
	d, err := g.clicked(ctx, cb, id)
	if err != nil {
		return err
	}
	if ok, err := g.mayPress(ctx, d, user, "confirm"); err != nil {
		return err
	} else if !ok {
		if d.Emergency {
			return g.ephemeral(ctx, channel, user, fmt.Sprintf("Only %s or someone on the emergency list for *%s* may deploy this emergency.", render.Mention(d.Requester), d.Environment))
		}
		return g.ephemeral(ctx, channel, user, fmt.Sprintf("Only %s or a deployer for *%s* (%s) may deploy this.", render.Mention(d.Requester), d.Environment, g.deployersText(d.Environment)))
	}
	// The person pressing Deploy is the deployer too: they may not be a change's only approver.
	if changes, err := g.soleApprovedBy(ctx, d, user); err != nil {
		return err
	} else if len(changes) > 0 {
		if err := g.denied(ctx, d.Repo, AttemptDeniedEvidence{Service: d.Service, Environment: d.Environment, User: user, Action: "confirm", Channel: channel,
			Reason: string(compliance.RequesterSoleApprover) + ": " + strings.Join(changes, ", "), DeployID: d.ID}); err != nil {
			return err
		}
		return g.ephemeral(ctx, channel, user, fmt.Sprintf("You are the only approver of %s, so you may not also deploy it: someone else must press Deploy.", strings.Join(changes, ", ")))
	}
	if lock, err := g.Store.GetLock(ctx, d.Service, d.Environment); err != nil {
		return err
	} else if lock != nil {
		return g.ephemeral(ctx, channel, user, lockedText(d.Service, d.Environment, lock))
	}
	// The digest's range starts at what ran when it was checked. Another deploy to the same
	// environment since then makes it stale: deploying it would roll that one back unchecked.
	// (One being created right now is the atomic claim's to refuse, below.)
	if newer, err := g.supersededBy(ctx, d); err != nil {
		return err
	} else if newer != nil {
		return g.supersede(ctx, d, *newer, user)
	}
	// The compare-and-swap is what makes Deploy happen once: a double click, or the same click
	// delivered to two replicas, finds the deploy already confirming and stops here. It also
	// holds while another digest of the same environment is being deployed, atomically.
	won, busy, err := g.Store.ClaimConfirm(ctx, id)
	if err != nil {
		return err
	}
	if busy != 0 {
		return g.ephemeral(ctx, channel, user, fmt.Sprintf("Deploy #%d to *%s* is being created right now; wait for it, then run `/deploy` again if this is still needed.", busy, d.Environment))
	}
	if !won {
		now, err := g.Store.GetDeploy(ctx, id)
		if err != nil {
			return err
		}
		return g.ephemeral(ctx, channel, user, fmt.Sprintf("Deploy #%d is already %s: nothing more to do.", id, stateWords(now.State)))
	}
	at := g.now()
	err = check.Safely(func() error { return g.createDeployment(ctx, d, user, at) })
	if err == nil {
		return nil
	}
	cur, gerr := g.Store.GetDeploy(ctx, id)
	if gerr != nil {
		return errors.Join(err, gerr)
	}
	if cur.State != StateConfirming {
		// Deployed and recorded (what failed came after: a Slack post), or refused by the
		// re-check: the deploy's own story is told; this is a problem for the logs.
		return err
	}
	if cur.TS == "" {
		cur.Channel, cur.TS = d.Channel, d.TS
	}
	doing := fmt.Sprintf("create the GitHub deployment of %s %s to %s", d.Service, render.Code(render.Short(d.HeadSHA)), d.Environment)
	footer := fmt.Sprintf("deploy #%d · Deploy pressed by %s", d.ID, render.Mention(user))
	if errors.Is(err, compliance.ErrOutcomeUnknown) {
		// GitHub may still be creating it (a timeout, a 5xx from a proxy): asking at once
		// could miss it. The recover job settles the deploy from GitHub's deployments once no
		// request can still be in flight; Deploy is never pressed twice.
		m := render.FailureMessage(render.Failure{Doing: doing, Err: err,
			Consequence: fmt.Sprintf("GitHub gave no clear answer, so the deployment may or may not exist. sockembot will settle this deploy from GitHub's deployments within %s and say so here. Don't press Deploy again.", stuckAfter+RecoverEvery)},
			footer)
		_, perr := g.postMessage(ctx, cur.Channel, cur.TS, m)
		return perr
	}
	// Nothing was sent, or GitHub refused it: settle it now from the deployments GitHub has.
	m := render.FailureMessage(render.Failure{Doing: doing, Err: err,
		Consequence: "sockembot is checking GitHub's deployments to settle this deploy; this thread will say what became of it. Don't press Deploy again."},
		footer)
	_, perr := g.postMessage(ctx, cur.Channel, cur.TS, m)
	if rerr := g.recoverDeploy(ctx, cur); rerr != nil {
		g.log().WithError(rerr).WithField("deploy_id", d.ID).Error("deploy: settle after a failed confirmation")
		_, p2 := g.post(ctx, cur.Channel, cur.TS, fmt.Sprintf("⏳ GitHub could not say yet whether the deployment exists (%s). sockembot keeps asking and will settle this deploy here within %s.", render.Esc(rerr.Error()), stuckAfter+RecoverEvery))
		return errors.Join(perr, p2)
	}
	after, gerr := g.Store.GetDeploy(ctx, id)
	if gerr != nil {
		return errors.Join(perr, gerr)
	}
	if after.State == StateFailed {
		return errors.Join(perr, g.UpdateDigest(ctx, cur, fmt.Sprintf("⚠️ *Deploy failed* after %s pressed Deploy: nothing was deployed, see the thread.", render.Mention(user))))
	}
	return perr
}

// supersededBy finds another deploy of d's service to d's environment that makes d stale: one
// whose GitHub deployment was created since d was checked.
func (g *Gate) supersededBy(ctx context.Context, d Deploy) (*Deploy, error) {
	recent, err := g.Store.RecentDeploys(ctx, d.Service, d.Environment, 20)
	if err != nil {
		return nil, err
	}
	for _, o := range recent {
		if o.ID == d.ID {
			continue
		}
		// A deploy that went out since d was checked, with a head other than d's base: what
		// runs is no longer where d's range starts. (UpdatedAt also moves on later status
		// changes; a head equal to d's base is what d was checked against, so never stale.)
		if o.State == StateDeployed && o.UpdatedAt.After(d.CreatedAt) && o.HeadSHA != d.BaseSHA {
			return &o, nil
		}
	}
	return nil, nil
}

// supersede refuses a stale digest for good: its range no longer starts at what runs.
func (g *Gate) supersede(ctx context.Context, d, by Deploy, user string) error {
	if ok, err := g.Store.TransitionDeploy(ctx, d.ID, StateReady, StateRefused); err != nil || !ok {
		return err
	}
	if err := g.record(ctx, compliance.EvidenceDeployRefused, d.Repo, Subject(d.ID), DeployRefusedEvidence{
		DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA, BaseSHA: d.BaseSHA,
		Requester: d.Requester, CheckSeq: d.CheckSeq, Reason: fmt.Sprintf("superseded by deploy #%d", by.ID),
	}); err != nil {
		return err
	}
	_, perr := g.post(ctx, d.Channel, d.TS, fmt.Sprintf("⏭️ %s pressed Deploy, but deploy #%d (%s) went to *%s* after this digest was checked: its range no longer starts at what runs there, and deploying it would roll that back unchecked. Nothing was deployed. Run `/deploy` again for a fresh check.",
		render.Mention(user), by.ID, render.Code(render.Short(by.HeadSHA)), d.Environment))
	g.postAnchor(ctx, d)
	return errors.Join(perr, g.UpdateDigest(ctx, d, fmt.Sprintf("⏭️ *Superseded* by deploy #%d: run `/deploy` again", by.ID)))
}

// soleApprovedBy lists the changes of d whose only approver is user (through `people`), when
// separation of duties refuses that in d's environment. The requester was checked with the range
// (and an emergency override covers that finding, on the record). Whoever else presses Deploy is
// checked here, emergency or not: nothing records their finding as overridden, and refusing them
// never blocks the emergency path, since the requester may press Deploy.
func (g *Gate) soleApprovedBy(ctx context.Context, d Deploy, user string) ([]string, error) {
	login := g.requesterLogin(user, d.Environment)
	if user == d.Requester || login == "" {
		return nil, nil
	}
	checked, err := g.checkRun(ctx, d)
	if err != nil {
		return nil, err
	}
	if checked.Policy.SeparationOfDuties.RequesterSoleApprover == compliance.ActionWarn {
		return nil, nil
	}
	var out []string
	for _, c := range compliance.ApplyDuties(checked.Policy, checked.Report, login).Changes {
		for _, v := range c.Violations {
			if v.Code == compliance.RequesterSoleApprover {
				out = append(out, c.Name())
			}
		}
	}
	return out, nil
}

// claim moves deploy id from ready to state. When another click, or the same click on another
// replica, got there first it tells user what became of the deploy and reports false.
func (g *Gate) claim(ctx context.Context, id int64, to State, channel, user, tooLate string) (bool, error) {
	won, err := g.Store.TransitionDeploy(ctx, id, StateReady, to)
	if err != nil || won {
		return won, err
	}
	now, err := g.Store.GetDeploy(ctx, id)
	if err != nil {
		return false, err
	}
	return false, g.ephemeral(ctx, channel, user, fmt.Sprintf("Deploy #%d is already %s: %s", id, stateWords(now.State), tooLate))
}

func (g *Gate) createDeployment(ctx context.Context, d Deploy, user string, at time.Time) error {
	checked, err := g.checkRun(ctx, d)
	if err != nil {
		return err
	}
	report, policyHash, policy, source := checked.Report, checked.PolicyHash, checked.Policy, checked.PolicySource
	rechecked := false
	var recheckNote string
	var recheckOverride *OverrideEvidence
	if at.Sub(d.CreatedAt) > RecheckAfter {
		run, err := g.Checker.Check(ctx, check.Request{Repo: d.Repo, Base: d.BaseSHA, Head: d.HeadSHA, Policy: g.Config.Policy,
			Trigger: fmt.Sprintf("deploy/%d re-check by %s", d.ID, user), RequesterLogin: g.requesterLogin(d.Requester, d.Environment)})
		if err != nil {
			return check.Errorf("re-check %s %s..%s: %w", d.Repo, render.Short(d.BaseSHA), render.Short(d.HeadSHA), err)
		}
		report, policyHash, policy, source, rechecked, d.CheckSeq = run.Report, run.PolicyHash, run.Policy, run.PolicySource, true, run.Seq
		if err := g.Store.UpdateDeploy(ctx, d.ID, func(x *Deploy) { x.CheckSeq = run.Seq }); err != nil {
			return err
		}
		if !report.Compliant && !d.Emergency {
			if _, err := g.Store.TransitionDeploy(ctx, d.ID, StateConfirming, StateRefused); err != nil {
				return err
			}
			if err := g.record(ctx, compliance.EvidenceDeployRefused, d.Repo, Subject(d.ID), DeployRefusedEvidence{
				DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA, BaseSHA: d.BaseSHA,
				Requester: d.Requester, CheckSeq: run.Seq, Reason: "re-check before deploying found violations", Violations: ViolationCodes(report),
			}); err != nil {
				return err
			}
			dg := g.digest(d, report, policyHash)
			dg.Status = fmt.Sprintf("Re-checked when %s pressed Deploy: no longer compliant.", render.Mention(user))
			root, _ := render.DigestMessage(dg)
			_, perr := g.post(ctx, d.Channel, d.TS, fmt.Sprintf("🔁 Re-checked before deploying (the digest was older than %s): *no longer compliant*, deploy refused.\n%s", RecheckAfter, strings.Join(render.ViolationLines(report), "\n")))
			g.postAnchor(ctx, d)
			return errors.Join(perr, g.update(ctx, d.Channel, d.TS, root.Text, root.Blocks...))
		}
		if !report.Compliant {
			// An emergency deploy goes ahead past what the re-check found, but on the record: the
			// override covers the new findings too, and they get retroactive reviews below.
			// Recorded and said once nothing else stops the deploy (a lock, below).
			recheckOverride = &OverrideEvidence{
				DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA,
				By: d.Requester, Reason: d.Reason, CheckSeq: run.Seq, Violations: ViolationCodes(report),
			}
			recheckNote = fmt.Sprintf("🔁 Re-checked before deploying (the digest was older than %s): *no longer compliant*. Deploying under %s's emergency override (_%s_); these are overridden:\n%s",
				RecheckAfter, render.Mention(d.Requester), render.Esc(d.Reason), strings.Join(render.ViolationLines(report), "\n"))
		} else {
			recheckNote = fmt.Sprintf("🔁 Re-checked before deploying (the digest was older than %s): still compliant.", RecheckAfter)
		}
	}
	// The environment may have been locked since Deploy was pressed (a re-check takes a while):
	// a lock holds until the last moment. The deploy goes back to ready for after the unlock.
	if lock, err := g.Store.GetLock(ctx, d.Service, d.Environment); err != nil {
		return err
	} else if lock != nil {
		if _, err := g.Store.TransitionDeploy(ctx, d.ID, StateConfirming, StateReady); err != nil {
			return err
		}
		_, err := g.post(ctx, d.Channel, d.TS, fmt.Sprintf("Not deployed: the environment was locked while %s's Deploy was being handled.\n%s\nPress Deploy again once it is unlocked.",
			render.Mention(user), lockedText(d.Service, d.Environment, lock)))
		return err
	}
	if recheckOverride != nil {
		if err := g.record(ctx, compliance.EvidenceOverride, d.Repo, Subject(d.ID), *recheckOverride); err != nil {
			return err
		}
	}
	if recheckNote != "" {
		if _, err := g.post(ctx, d.Channel, d.TS, recheckNote); err != nil {
			return err
		}
	}
	if err := g.record(ctx, compliance.EvidenceDeployConfirmed, d.Repo, Subject(d.ID), DeployDecisionEvidence{
		DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA, By: user, At: at,
		CheckSeq: d.CheckSeq, Rechecked: rechecked,
	}); err != nil {
		return err
	}
	payload := DeploymentPayload{Sockembot: DeploymentRef{DeployID: d.ID, Service: d.Service, Requester: d.Requester, Deployer: user, CheckSeq: d.CheckSeq, PolicyHash: policyHash}}
	ghID, err := g.GitHub.CreateDeployment(ctx, d.Repo, d.HeadSHA, d.Environment, payload,
		fmt.Sprintf("%s %s via sockembot (deploy #%d)", d.Service, d.Ref, d.ID))
	if err != nil {
		return check.Errorf("create deployment of %s %s to %s: %w", d.Repo, render.Short(d.HeadSHA), d.Environment, err)
	}
	d.GitHubDeploymentID = ghID
	override, _, err := g.recordDeployment(ctx, d, user, ghID, report, policyHash, source)
	if err != nil {
		return err
	}
	when := at.Format("15:04 MST")
	if _, err := g.post(ctx, d.Channel, d.TS, fmt.Sprintf("🚀 %s pressed Deploy at %s. GitHub deployment %d created: %s → *%s*.", render.Mention(user), when, ghID, render.Code(render.Short(d.HeadSHA)), d.Environment)); err != nil {
		return err
	}
	g.postAnchor(ctx, d)
	dg := g.digest(d, report, policyHash)
	dg.Status = fmt.Sprintf("🚀 *Deploying* · GitHub deployment %d · confirmed by %s at %s", ghID, render.Mention(user), when)
	root, _ := render.DigestMessage(dg)
	if err := g.update(ctx, d.Channel, d.TS, root.Text, root.Blocks...); err != nil {
		return err
	}
	if override == nil {
		return nil
	}
	if err := g.Emergencies.Open(ctx, d, report, policy, user, at); err != nil {
		// The deployment exists: say what went wrong with the reviews, not that the deploy failed.
		g.log().WithError(err).WithField("deploy_id", d.ID).Error("retro reviews: open")
		m := render.FailureMessage(render.Failure{Doing: fmt.Sprintf("open the retroactive reviews of deploy #%d", d.ID), Err: err,
			Consequence: "The GitHub deployment was created. The overridden changes still need a second person's review: do it by hand and note it in this thread."})
		_, perr := g.postMessage(ctx, d.Channel, d.TS, m)
		return perr
	}
	return nil
}

// recordDeployment records the GitHub deployment ghID of d as evidence and only then marks d
// deployed: a deploy is never "deployed" without its deployment_created record, whatever
// crashes in between (the recover job settles a deploy still confirming). The record is written
// once per deploy, by whichever of the confirmation and the recover job gets there. It returns
// the override, when an emergency deploy went out past violations.
func (g *Gate) recordDeployment(ctx context.Context, d Deploy, deployer string, ghID int64, report compliance.Report, policyHash, policySource string) (override *Override, moved bool, err error) {
	if err := g.Store.UpdateDeploy(ctx, d.ID, func(x *Deploy) { x.GitHubDeploymentID = ghID }); err != nil {
		return nil, false, err
	}
	if d.Emergency && !report.Compliant {
		override = &Override{By: d.Requester, Reason: d.Reason, At: d.CreatedAt}
	}
	if _, _, err := g.Store.AppendOnce(ctx, compliance.EvidenceDeploymentCreated, Subject(d.ID), compliance.Evidence{
		At: g.now(), Kind: compliance.EvidenceDeploymentCreated, Repo: d.Repo, Subject: Subject(d.ID), Body: DeploymentEvidence{
			DeployID: d.ID, Service: d.Service, Environment: d.Environment, Repo: d.Repo, Ref: d.Ref,
			SHA: d.HeadSHA, BaseSHA: d.BaseSHA, Requester: d.Requester, Deployer: deployer,
			GitHubDeploymentID: ghID, CheckSeq: d.CheckSeq, PolicyHash: policyHash, PolicySource: policySource,
			Report: report, Compliant: report.Compliant, Override: override,
			Channel: d.Channel, ThreadTS: d.TS, ThreadURL: g.permalink(ctx, d),
		}}); err != nil {
		return nil, false, check.Errorf("record %s: %w", compliance.EvidenceDeploymentCreated, err)
	}
	moved, err = g.Store.TransitionDeploy(ctx, d.ID, StateConfirming, StateDeployed)
	return override, moved, err
}

// checkedReport reads back the report a deploy's digest showed, from its check_run evidence:
// the evidence, not memory, is what a confirmation acts on, on whichever replica gets the click.
func (g *Gate) checkedReport(ctx context.Context, d Deploy) (compliance.Report, string, error) {
	ev, err := g.checkRun(ctx, d)
	return ev.Report, ev.PolicyHash, err
}

// UpdateDigest re-renders a deploy's digest with a status line in place of the buttons.
func (g *Gate) UpdateDigest(ctx context.Context, d Deploy, status string) error {
	if d.TS == "" {
		return nil
	}
	report, policyHash, err := g.checkedReport(ctx, d)
	if err != nil {
		return err
	}
	dg := g.digest(d, report, policyHash)
	dg.Status = status
	root, _ := render.DigestMessage(dg)
	return g.update(ctx, d.Channel, d.TS, root.Text, root.Blocks...)
}

func (g *Gate) cancelDeploy(ctx context.Context, cb Click, id int64) error {
	user, channel := cb.User, cb.Channel
	d, err := g.clicked(ctx, cb, id)
	if err != nil {
		return err
	}
	if ok, err := g.mayPress(ctx, d, user, "cancel"); err != nil {
		return err
	} else if !ok {
		who := "a deployer"
		if d.Emergency {
			who = "someone on the emergency list"
		}
		return g.ephemeral(ctx, channel, user, fmt.Sprintf("Only %s or %s for *%s* may cancel this.", render.Mention(d.Requester), who, d.Environment))
	}
	if won, err := g.claim(ctx, id, StateCancelled, channel, user, "it can't be cancelled now."); err != nil || !won {
		return err
	}
	at := g.now()
	if err := g.record(ctx, compliance.EvidenceDeployCancelled, d.Repo, Subject(d.ID), DeployDecisionEvidence{
		DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA, By: user, At: at, CheckSeq: d.CheckSeq,
	}); err != nil {
		return err
	}
	if _, err := g.post(ctx, d.Channel, d.TS, fmt.Sprintf("✋ Cancelled by %s at %s. Nothing was deployed.", render.Mention(user), at.Format("15:04 MST"))); err != nil {
		return err
	}
	g.postAnchor(ctx, d)
	return g.UpdateDigest(ctx, d, fmt.Sprintf("✋ *Cancelled* by %s at %s", render.Mention(user), at.Format("15:04 MST")))
}

func stateWords(s State) string {
	switch s {
	case StateConfirming:
		return "being deployed"
	case StateDeployed:
		return "deployment created (its statuses are in the thread)"
	case StateCancelled:
		return "cancelled"
	case StateRefused:
		return "refused"
	case StateFailed:
		return "failed"
	case StateRequested:
		return "still being checked"
	}
	return string(s)
}
