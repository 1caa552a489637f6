package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"sockembot/compliance"
	"sockembot/integrations/github"
	"sockembot/integrations/store"
)

// onInteraction handles the digest's Deploy and Cancel buttons.
func (a *App) onInteraction(ctx context.Context, cb slack.InteractionCallback) error {
	if cb.Type != slack.InteractionTypeBlockActions {
		return nil
	}
	var errs []error
	for _, act := range cb.ActionCallback.BlockActions {
		if act.ActionID == actionRetroApprove {
			errs = append(errs, a.approveRetro(ctx, cb, act.Value))
			continue
		}
		if act.ActionID != actionDeploy && act.ActionID != actionCancel {
			continue
		}
		var id int64
		if _, err := fmt.Sscan(act.Value, &id); err != nil {
			errs = append(errs, fmt.Errorf("button %s: bad deploy id %q", act.ActionID, act.Value))
			continue
		}
		if act.ActionID == actionDeploy {
			errs = append(errs, a.confirmDeploy(ctx, cb, id))
		} else {
			errs = append(errs, a.cancelDeploy(ctx, cb, id))
		}
	}
	return errors.Join(errs...)
}

// mayPress says whether user may press a digest's buttons: the requester, or anyone allowed to
// deploy there. On an emergency digest it is anyone allowed to break glass there instead: the
// Deploy button of an emergency carries the override with it.
func (a *App) mayPress(ctx context.Context, d store.Deploy, user, action string) (bool, error) {
	if user == d.Requester {
		return true, nil
	}
	reason := "not the requester nor a deployer"
	check := a.mayDeploy
	if d.Emergency {
		// The emergency list alone, as for asking: an emergency deploy may be pressed by
		// whoever could have asked for it.
		reason, check = "not the requester nor on the emergency list", a.mayBreakGlass
	}
	ok, err := check(ctx, user, d.Environment)
	if err != nil || ok {
		return ok, err
	}
	return false, a.denied(ctx, d.Repo, attemptDeniedEvidence{Service: d.Service, Environment: d.Environment, User: user, Action: action, Reason: reason, DeployID: d.ID, Channel: d.Channel})
}

func (a *App) confirmDeploy(ctx context.Context, cb slack.InteractionCallback, id int64) error {
	user, channel := cb.User.ID, cb.Container.ChannelID
	d, err := a.Store.GetDeploy(ctx, id)
	if err != nil {
		return err
	}
	if d.TS == "" {
		// Clicked before the digest's ts was saved: the click says where the digest is.
		d.Channel, d.TS = channel, cb.Container.MessageTs
	}
	if ok, err := a.mayPress(ctx, d, user, "confirm"); err != nil {
		return err
	} else if !ok {
		if d.Emergency {
			return a.ephemeral(ctx, channel, user, fmt.Sprintf("Only %s or someone on the emergency list for *%s* may deploy this emergency.", mention(d.Requester), d.Environment))
		}
		return a.ephemeral(ctx, channel, user, fmt.Sprintf("Only %s or a deployer for *%s* (%s) may deploy this.", mention(d.Requester), d.Environment, a.deployersText(d.Environment)))
	}
	// The person pressing Deploy is the deployer too: they may not be a change's only approver.
	if changes, err := a.soleApprovedBy(ctx, d, user); err != nil {
		return err
	} else if len(changes) > 0 {
		if err := a.denied(ctx, d.Repo, attemptDeniedEvidence{Service: d.Service, Environment: d.Environment, User: user, Action: "confirm", Channel: channel,
			Reason: string(compliance.RequesterSoleApprover) + ": " + strings.Join(changes, ", "), DeployID: d.ID}); err != nil {
			return err
		}
		return a.ephemeral(ctx, channel, user, fmt.Sprintf("You are the only approver of %s, so you may not also deploy it: someone else must press Deploy.", strings.Join(changes, ", ")))
	}
	if lock, err := a.Store.GetLock(ctx, d.Service, d.Environment); err != nil {
		return err
	} else if lock != nil {
		return a.ephemeral(ctx, channel, user, lockedText(d.Service, d.Environment, lock))
	}
	// The digest's range starts at what ran when it was checked. Another deploy to the same
	// environment since then makes it stale: deploying it would roll that one back unchecked.
	// (One being created right now is the atomic claim's to refuse, below.)
	if newer, err := a.supersededBy(ctx, d); err != nil {
		return err
	} else if newer != nil {
		return a.supersede(ctx, d, *newer, user)
	}
	// The compare-and-swap is what makes Deploy happen once: a double click, or the same click
	// delivered to two replicas, finds the deploy already confirming and stops here. It also
	// holds while another digest of the same environment is being deployed, atomically.
	won, busy, err := a.Store.ClaimConfirm(ctx, id)
	if err != nil {
		return err
	}
	if busy != 0 {
		return a.ephemeral(ctx, channel, user, fmt.Sprintf("Deploy #%d to *%s* is being created right now; wait for it, then run `/deploy` again if this is still needed.", busy, d.Environment))
	}
	if !won {
		now, err := a.Store.GetDeploy(ctx, id)
		if err != nil {
			return err
		}
		return a.ephemeral(ctx, channel, user, fmt.Sprintf("Deploy #%d is already %s: nothing more to do.", id, stateWords(now.State)))
	}
	at := a.now()
	err = Safely(func() error { return a.createDeployment(ctx, d, user, at) })
	if err == nil {
		return nil
	}
	cur, gerr := a.Store.GetDeploy(ctx, id)
	if gerr != nil {
		return errors.Join(err, gerr)
	}
	if cur.State != store.StateConfirming {
		// Deployed and recorded (what failed came after: a Slack post), or refused by the
		// re-check: the deploy's own story is told; this is a problem for the logs.
		return err
	}
	if cur.TS == "" {
		cur.Channel, cur.TS = d.Channel, d.TS
	}
	doing := fmt.Sprintf("create the GitHub deployment of %s `%s` to %s", d.Service, short(d.HeadSHA), d.Environment)
	footer := fmt.Sprintf("deploy #%d · Deploy pressed by %s", d.ID, mention(user))
	if errors.Is(err, github.ErrOutcomeUnknown) {
		// GitHub may still be creating it (a timeout, a 5xx from a proxy): asking at once
		// could miss it. The recover job settles the deploy from GitHub's deployments once no
		// request can still be in flight; Deploy is never pressed twice.
		m := failureMessage(Failure{Doing: doing, Err: err,
			Consequence: fmt.Sprintf("GitHub gave no clear answer, so the deployment may or may not exist. sockembot will settle this deploy from GitHub's deployments within %s and say so here. Don't press Deploy again.", stuckAfter+recoverInterval)},
			footer)
		_, perr := a.postMessage(ctx, cur.Channel, cur.TS, m)
		return perr
	}
	// Nothing was sent, or GitHub refused it: settle it now from the deployments GitHub has.
	m := failureMessage(Failure{Doing: doing, Err: err,
		Consequence: "sockembot is checking GitHub's deployments to settle this deploy; this thread will say what became of it. Don't press Deploy again."},
		footer)
	_, perr := a.postMessage(ctx, cur.Channel, cur.TS, m)
	if rerr := a.recoverDeploy(ctx, cur); rerr != nil {
		a.log().WithError(rerr).WithField("deploy_id", d.ID).Error("deploy: settle after a failed confirmation")
		_, p2 := a.post(ctx, cur.Channel, cur.TS, fmt.Sprintf("⏳ GitHub could not say yet whether the deployment exists (%s). sockembot keeps asking and will settle this deploy here within %s.", esc(rerr.Error()), stuckAfter+recoverInterval))
		return errors.Join(perr, p2)
	}
	after, gerr := a.Store.GetDeploy(ctx, id)
	if gerr != nil {
		return errors.Join(perr, gerr)
	}
	if after.State == store.StateFailed {
		return errors.Join(perr, a.updateRoot(ctx, cur, fmt.Sprintf("⚠️ *Deploy failed* after %s pressed Deploy: nothing was deployed, see the thread.", mention(user))))
	}
	return perr
}

// supersededBy finds another deploy of d's service to d's environment that makes d stale: one
// whose GitHub deployment was created since d was checked.
func (a *App) supersededBy(ctx context.Context, d store.Deploy) (*store.Deploy, error) {
	recent, err := a.Store.RecentDeploys(ctx, d.Service, d.Environment, 20)
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
		if o.State == store.StateDeployed && o.UpdatedAt.After(d.CreatedAt) && o.HeadSHA != d.BaseSHA {
			return &o, nil
		}
	}
	return nil, nil
}

// supersede refuses a stale digest for good: its range no longer starts at what runs.
func (a *App) supersede(ctx context.Context, d, by store.Deploy, user string) error {
	if ok, err := a.Store.TransitionDeploy(ctx, d.ID, store.StateReady, store.StateRefused); err != nil || !ok {
		return err
	}
	if err := a.record(ctx, store.KindDeployRefused, d.Repo, deploySubject(d.ID), deployRefusedEvidence{
		DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA, BaseSHA: d.BaseSHA,
		Requester: d.Requester, CheckSeq: d.CheckSeq, Reason: fmt.Sprintf("superseded by deploy #%d", by.ID),
	}); err != nil {
		return err
	}
	_, perr := a.post(ctx, d.Channel, d.TS, fmt.Sprintf("⏭️ %s pressed Deploy, but deploy #%d (`%s`) went to *%s* after this digest was checked: its range no longer starts at what runs there, and deploying it would roll that back unchecked. Nothing was deployed. Run `/deploy` again for a fresh check.",
		mention(user), by.ID, short(by.HeadSHA), d.Environment))
	return errors.Join(perr, a.updateRoot(ctx, d, fmt.Sprintf("⏭️ *Superseded* by deploy #%d: run `/deploy` again", by.ID)))
}

// soleApprovedBy lists the changes of d whose only approver is user (through `people`), when
// separation of duties refuses that in d's environment. The requester was checked with the range
// (and an emergency override covers that finding, on the record). Whoever else presses Deploy is
// checked here, emergency or not: nothing records their finding as overridden, and refusing them
// never blocks the emergency path, since the requester may press Deploy.
func (a *App) soleApprovedBy(ctx context.Context, d store.Deploy, user string) ([]string, error) {
	login := a.requesterLogin(user, d.Environment)
	if user == d.Requester || login == "" {
		return nil, nil
	}
	check, err := a.checkRun(ctx, d)
	if err != nil {
		return nil, err
	}
	if check.Policy.SeparationOfDuties.RequesterSoleApprover == compliance.ActionWarn {
		return nil, nil
	}
	var out []string
	for _, c := range compliance.ApplyDuties(check.Policy, check.Report, login).Changes {
		for _, v := range c.Violations {
			if v.Code == compliance.RequesterSoleApprover {
				out = append(out, changeName(c))
			}
		}
	}
	return out, nil
}

// claim moves deploy id from ready to state. When another click, or the same click on another
// replica, got there first it tells user what became of the deploy and reports false.
func (a *App) claim(ctx context.Context, id int64, to store.State, channel, user, tooLate string) (bool, error) {
	won, err := a.Store.TransitionDeploy(ctx, id, store.StateReady, to)
	if err != nil || won {
		return won, err
	}
	now, err := a.Store.GetDeploy(ctx, id)
	if err != nil {
		return false, err
	}
	return false, a.ephemeral(ctx, channel, user, fmt.Sprintf("Deploy #%d is already %s: %s", id, stateWords(now.State), tooLate))
}

func (a *App) createDeployment(ctx context.Context, d store.Deploy, user string, at time.Time) error {
	check, err := a.checkRun(ctx, d)
	if err != nil {
		return err
	}
	report, policyHash, policy, source := check.Report, check.PolicyHash, check.Policy, check.PolicySource
	rechecked := false
	var recheckNote string
	var recheckOverride *overrideEvidence
	if at.Sub(d.CreatedAt) > recheckAfter {
		run, err := a.Checker().CheckDeploy(ctx, d.Repo, d.BaseSHA, d.HeadSHA, a.Config.Policy, fmt.Sprintf("deploy/%d re-check by %s", d.ID, user),
			a.requesterLogin(d.Requester, d.Environment))
		if err != nil {
			return fmt.Errorf("re-check %s %s..%s: %w", d.Repo, short(d.BaseSHA), short(d.HeadSHA), err)
		}
		report, policyHash, policy, source, rechecked, d.CheckSeq = run.Report, run.PolicyHash, run.Policy, run.PolicySource, true, run.Seq
		if err := a.Store.UpdateDeploy(ctx, d.ID, func(x *store.Deploy) { x.CheckSeq = run.Seq }); err != nil {
			return err
		}
		if !report.Compliant && !d.Emergency {
			if _, err := a.Store.TransitionDeploy(ctx, d.ID, store.StateConfirming, store.StateRefused); err != nil {
				return err
			}
			if err := a.record(ctx, store.KindDeployRefused, d.Repo, deploySubject(d.ID), deployRefusedEvidence{
				DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA, BaseSHA: d.BaseSHA,
				Requester: d.Requester, CheckSeq: run.Seq, Reason: "re-check before deploying found violations", Violations: violationCodes(report),
			}); err != nil {
				return err
			}
			dg := a.digest(d, report, policyHash)
			dg.Status = fmt.Sprintf("Re-checked when %s pressed Deploy: no longer compliant.", mention(user))
			root, _ := digestMessage(dg)
			_, perr := a.post(ctx, d.Channel, d.TS, fmt.Sprintf("🔁 Re-checked before deploying (the digest was older than %s): *no longer compliant*, deploy refused.\n%s", recheckAfter, strings.Join(violationLines(report), "\n")))
			return errors.Join(perr, a.update(ctx, d.Channel, d.TS, root.Text, root.Blocks...))
		}
		if !report.Compliant {
			// An emergency deploy goes ahead past what the re-check found, but on the record: the
			// override covers the new findings too, and they get retroactive reviews below.
			// Recorded and said once nothing else stops the deploy (a lock, below).
			recheckOverride = &overrideEvidence{
				DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA,
				By: d.Requester, Reason: d.Reason, CheckSeq: run.Seq, Violations: violationCodes(report),
			}
			recheckNote = fmt.Sprintf("🔁 Re-checked before deploying (the digest was older than %s): *no longer compliant*. Deploying under %s's emergency override (_%s_); these are overridden:\n%s",
				recheckAfter, mention(d.Requester), esc(d.Reason), strings.Join(violationLines(report), "\n"))
		} else {
			recheckNote = fmt.Sprintf("🔁 Re-checked before deploying (the digest was older than %s): still compliant.", recheckAfter)
		}
	}
	// The environment may have been locked since Deploy was pressed (a re-check takes a while):
	// a lock holds until the last moment. The deploy goes back to ready for after the unlock.
	if lock, err := a.Store.GetLock(ctx, d.Service, d.Environment); err != nil {
		return err
	} else if lock != nil {
		if _, err := a.Store.TransitionDeploy(ctx, d.ID, store.StateConfirming, store.StateReady); err != nil {
			return err
		}
		_, err := a.post(ctx, d.Channel, d.TS, fmt.Sprintf("Not deployed: the environment was locked while %s's Deploy was being handled.\n%s\nPress Deploy again once it is unlocked.",
			mention(user), lockedText(d.Service, d.Environment, lock)))
		return err
	}
	if recheckOverride != nil {
		if err := a.record(ctx, store.KindOverride, d.Repo, deploySubject(d.ID), *recheckOverride); err != nil {
			return err
		}
	}
	if recheckNote != "" {
		if _, err := a.post(ctx, d.Channel, d.TS, recheckNote); err != nil {
			return err
		}
	}
	if err := a.record(ctx, store.KindDeployConfirmed, d.Repo, deploySubject(d.ID), deployDecisionEvidence{
		DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA, By: user, At: at,
		CheckSeq: d.CheckSeq, Rechecked: rechecked,
	}); err != nil {
		return err
	}
	payload := deploymentPayload{Sockembot: deploymentRef{DeployID: d.ID, Service: d.Service, Requester: d.Requester, Deployer: user, CheckSeq: d.CheckSeq, PolicyHash: policyHash}}
	ghID, err := a.GitHub.CreateDeployment(ctx, d.Repo, d.HeadSHA, d.Environment, payload,
		fmt.Sprintf("%s %s via sockembot (deploy #%d)", d.Service, d.Ref, d.ID))
	if err != nil {
		return fmt.Errorf("create deployment of %s %s to %s: %w", d.Repo, short(d.HeadSHA), d.Environment, err)
	}
	d.GitHubDeploymentID = ghID
	override, _, err := a.recordDeployment(ctx, d, user, ghID, report, policyHash, source)
	if err != nil {
		return err
	}
	when := at.Format("15:04 MST")
	if _, err := a.post(ctx, d.Channel, d.TS, fmt.Sprintf("🚀 %s pressed Deploy at %s. GitHub deployment %d created: `%s` → *%s*.", mention(user), when, ghID, short(d.HeadSHA), d.Environment)); err != nil {
		return err
	}
	dg := a.digest(d, report, policyHash)
	dg.Status = fmt.Sprintf("🚀 *Deploying* · GitHub deployment %d · confirmed by %s at %s", ghID, mention(user), when)
	root, _ := digestMessage(dg)
	if err := a.update(ctx, d.Channel, d.TS, root.Text, root.Blocks...); err != nil {
		return err
	}
	if override == nil {
		return nil
	}
	if err := a.openRetroReviews(ctx, d, report, policy, user, at); err != nil {
		// The deployment exists: say what went wrong with the reviews, not that the deploy failed.
		a.log().WithError(err).WithField("deploy_id", d.ID).Error("retro reviews: open")
		m := failureMessage(Failure{Doing: fmt.Sprintf("open the retroactive reviews of deploy #%d", d.ID), Err: err,
			Consequence: "The GitHub deployment was created. The overridden changes still need a second person's review: do it by hand and note it in this thread."})
		_, perr := a.postMessage(ctx, d.Channel, d.TS, m)
		return perr
	}
	return nil
}

// recordDeployment records the GitHub deployment ghID of d as evidence and only then marks d
// deployed: a deploy is never "deployed" without its deployment_created record, whatever
// crashes in between (the recover job settles a deploy still confirming). The record is written
// once per deploy, by whichever of the confirmation and the recover job gets there. It returns
// the override, when an emergency deploy went out past violations.
func (a *App) recordDeployment(ctx context.Context, d store.Deploy, deployer string, ghID int64, report compliance.Report, policyHash, policySource string) (override *store.Override, moved bool, err error) {
	if err := a.Store.UpdateDeploy(ctx, d.ID, func(x *store.Deploy) { x.GitHubDeploymentID = ghID }); err != nil {
		return nil, false, err
	}
	if d.Emergency && !report.Compliant {
		override = &store.Override{By: d.Requester, Reason: d.Reason, At: d.CreatedAt}
	}
	if _, _, err := a.Store.AppendOnce(ctx, store.KindDeploymentCreated, deploySubject(d.ID), store.Evidence{
		At: a.now(), Kind: store.KindDeploymentCreated, Repo: d.Repo, Subject: deploySubject(d.ID), Body: store.DeploymentEvidence{
			DeployID: d.ID, Service: d.Service, Environment: d.Environment, Repo: d.Repo, Ref: d.Ref,
			SHA: d.HeadSHA, BaseSHA: d.BaseSHA, Requester: d.Requester, Deployer: deployer,
			GitHubDeploymentID: ghID, CheckSeq: d.CheckSeq, PolicyHash: policyHash, PolicySource: policySource,
			Report: report, Compliant: report.Compliant, Override: override,
			Channel: d.Channel, ThreadTS: d.TS, ThreadURL: a.permalink(ctx, d),
		}}); err != nil {
		return nil, false, fmt.Errorf("record %s: %w", store.KindDeploymentCreated, err)
	}
	moved, err = a.Store.TransitionDeploy(ctx, d.ID, store.StateConfirming, store.StateDeployed)
	return override, moved, err
}

// checkedReport reads back the report a deploy's digest showed, from its check_run evidence:
// the evidence, not memory, is what a confirmation acts on, on whichever replica gets the click.
func (a *App) checkedReport(ctx context.Context, d store.Deploy) (compliance.Report, string, error) {
	ev, err := a.checkRun(ctx, d)
	return ev.Report, ev.PolicyHash, err
}

// updateRoot re-renders a deploy's digest with a status line in place of the buttons.
func (a *App) updateRoot(ctx context.Context, d store.Deploy, status string) error {
	if d.TS == "" {
		return nil
	}
	report, policyHash, err := a.checkedReport(ctx, d)
	if err != nil {
		return err
	}
	dg := a.digest(d, report, policyHash)
	dg.Status = status
	root, _ := digestMessage(dg)
	return a.update(ctx, d.Channel, d.TS, root.Text, root.Blocks...)
}

func (a *App) cancelDeploy(ctx context.Context, cb slack.InteractionCallback, id int64) error {
	user, channel := cb.User.ID, cb.Container.ChannelID
	d, err := a.Store.GetDeploy(ctx, id)
	if err != nil {
		return err
	}
	if d.TS == "" {
		// Clicked before the digest's ts was saved: the click says where the digest is.
		d.Channel, d.TS = channel, cb.Container.MessageTs
	}
	if ok, err := a.mayPress(ctx, d, user, "cancel"); err != nil {
		return err
	} else if !ok {
		who := "a deployer"
		if d.Emergency {
			who = "someone on the emergency list"
		}
		return a.ephemeral(ctx, channel, user, fmt.Sprintf("Only %s or %s for *%s* may cancel this.", mention(d.Requester), who, d.Environment))
	}
	if won, err := a.claim(ctx, id, store.StateCancelled, channel, user, "it can't be cancelled now."); err != nil || !won {
		return err
	}
	at := a.now()
	if err := a.record(ctx, store.KindDeployCancelled, d.Repo, deploySubject(d.ID), deployDecisionEvidence{
		DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA, By: user, At: at, CheckSeq: d.CheckSeq,
	}); err != nil {
		return err
	}
	if _, err := a.post(ctx, d.Channel, d.TS, fmt.Sprintf("✋ Cancelled by %s at %s. Nothing was deployed.", mention(user), at.Format("15:04 MST"))); err != nil {
		return err
	}
	return a.updateRoot(ctx, d, fmt.Sprintf("✋ *Cancelled* by %s at %s", mention(user), at.Format("15:04 MST")))
}

func stateWords(s store.State) string {
	switch s {
	case store.StateConfirming:
		return "being deployed"
	case store.StateDeployed:
		return "deployment created (its statuses are in the thread)"
	case store.StateCancelled:
		return "cancelled"
	case store.StateRefused:
		return "refused"
	case store.StateFailed:
		return "failed"
	case store.StateRequested:
		return "still being checked"
	}
	return string(s)
}
