package deploygate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"

	"sockembot/bot/check"
	"sockembot/bot/render"
	"sockembot/compliance"
)

// ActionsRequester prefixes the GitHub login of whoever triggered a GitHub Actions deploy, in
// Deploy.Requester and evidence, where a /deploy has a Slack user id.
const ActionsRequester = "github:"

// Protection rule answers as the GitHub API spells them.
const (
	ReviewApproved = "approved"
	ReviewRejected = "rejected"
)

// maxReviewComment bounds the comment of a protection rule answer: it is shown on the run's page.
const maxReviewComment = 4000

// ActionsReviewEvidence is the body of an actions_deploy_review record: the answer sockembot gave
// a GitHub Actions deployment waiting on its protection rule. Field names are stored in the
// chain: never rename them.
type ActionsReviewEvidence struct {
	DeployID     int64  `json:"deploy_id"`
	Service      string `json:"service"`
	Environment  string `json:"environment"`
	Repo         string `json:"repo"`
	SHA          string `json:"sha"`
	BaseSHA      string `json:"base_sha,omitempty"`
	Ref          string `json:"ref,omitempty"`
	RunID        int64  `json:"run_id"`
	RunURL       string `json:"run_url,omitempty"`
	DeploymentID int64  `json:"github_deployment_id,omitempty"`
	Event        string `json:"event,omitempty"`  // what started the run
	Sender       string `json:"sender,omitempty"` // who started it (GitHub login)
	State        string `json:"state"`            // approved or rejected
	Comment      string `json:"comment"`
	CheckSeq     int64  `json:"check_seq,omitempty"`
	Error        string `json:"error,omitempty"` // the check could not run
}

// ActionsSubject names one protection rule request in evidence and locks.
func ActionsSubject(ev compliance.DeploymentProtectionRuleEvent) string {
	return fmt.Sprintf("actions/%s/runs/%d/%s", ev.Repo, ev.RunID, ev.Environment)
}

// IsActions says whether a deploy came from a GitHub Actions run rather than /deploy.
func (d Deploy) IsActions() bool { return strings.HasPrefix(d.Requester, ActionsRequester) }

// OnProtectionRule answers a GitHub Actions deployment that waits on sockembot (a custom
// deployment protection rule, deployment_protection_rule "requested"). It checks every change
// between what the environment runs now and the SHA the job deploys, posts the same digest as
// /deploy (marked as a GitHub Actions deploy, with the run's link) and approves the deployment
// only if every change is compliant. It fails closed: a check that cannot run rejects it, with
// the failure report in the answer and in Slack. A redelivery after the answer was recorded
// sends the same answer again, and never checks or posts twice.
func (g *Gate) OnProtectionRule(ctx context.Context, ev compliance.DeploymentProtectionRuleEvent) error {
	subject := ActionsSubject(ev)
	unlock, err := g.Locks.Lock(ctx, subject)
	if err != nil {
		return check.Errorf("protection rule %s: %w", subject, err)
	}
	defer unlock()
	rec, found, err := g.Store.LastRecord(ctx, compliance.EvidenceActionsReview, subject)
	if err != nil {
		return check.Errorf("protection rule %s: %w", subject, err)
	}
	if found {
		var prev ActionsReviewEvidence
		if err := json.Unmarshal(rec.Body, &prev); err != nil {
			return check.Errorf("protection rule %s: read record %d: %w", subject, rec.Seq, err)
		}
		// Answered before this delivery came: say it again, unless GitHub already has it.
		if err := g.answer(ctx, ev, prev.State, prev.Comment); err != nil && !errors.Is(err, compliance.ErrAlreadyAnswered) {
			return err
		}
		return nil
	}

	d := Deploy{Service: g.serviceOf(ev.Repo, ev.Environment), Environment: ev.Environment, Repo: ev.Repo, Ref: ev.Ref,
		HeadSHA: ev.SHA, Requester: ActionsRequester + ev.Sender, State: StateRequested, GitHubDeploymentID: ev.DeploymentID,
		Reason: render.URL(ev.RunURL)}
	if d.ID, err = g.Store.CreateDeploy(ctx, d); err != nil {
		return err
	}
	if err := g.record(ctx, compliance.EvidenceDeployRequested, d.Repo, Subject(d.ID), DeployRequestEvidence{
		DeployID: d.ID, Service: d.Service, Environment: d.Environment, Repo: d.Repo, Ref: ev.SHA, Requester: d.Requester,
		Via: "github_actions", RunURL: ev.RunURL,
	}); err != nil {
		return err
	}
	review := ActionsReviewEvidence{DeployID: d.ID, Service: d.Service, Environment: d.Environment, Repo: d.Repo, SHA: ev.SHA,
		Ref: ev.Ref, RunID: ev.RunID, RunURL: ev.RunURL, DeploymentID: ev.DeploymentID, Event: ev.Event, Sender: ev.Sender}
	var run check.Run
	err = check.Safely(func() error {
		var err error
		run, err = g.judgeActions(ctx, &d, ev)
		return err
	})
	review.BaseSHA, review.CheckSeq = d.BaseSHA, d.CheckSeq
	var ue *userError
	switch {
	case errors.As(err, &ue):
		// Refused for a reason people can act on (a lock, no known base, a rollback).
		review.State, review.Comment = ReviewRejected, "sockembot: "+plain(ue.msg)
		if err := g.refuse(ctx, &d, "refused: "+ue.msg, compliance.Report{}); err != nil {
			return err
		}
		g.actionsRefusal(ctx, &d, ue.msg)
	case err != nil:
		g.log().WithError(err).WithField("deploy_id", d.ID).Error("actions deploy check failed")
		review.State, review.Error = ReviewRejected, err.Error()
		review.Comment = "sockembot could not check this deployment, so it is rejected (a check that cannot run never lets a deploy through).\n\n" +
			render.Failure{Doing: fmt.Sprintf("check %s %s → %s", d.Repo, render.Short(d.HeadSHA), d.Environment), Err: err}.Text()
		if err := g.publishFailure(ctx, replyTo{channel: g.Config.ReleaseChannel}, &d, err); err != nil {
			g.log().WithError(err).WithField("deploy_id", d.ID).Warn("actions deploy: failure report")
		}
	case run.Report.Compliant:
		review.State = ReviewApproved
		review.Comment = fmt.Sprintf("sockembot: approved. %s %s..%s: %s the change policy (policy %s, evidence record %d).",
			d.Repo, render.Short(d.BaseSHA), render.Short(d.HeadSHA), everyChange(len(run.Report.Changes)), render.Short(run.PolicyHash), run.Seq)
		if len(run.Report.Changes) == 0 {
			review.Comment = fmt.Sprintf("sockembot: approved. %s already runs %s: nothing new to check.", d.Environment, render.Short(d.HeadSHA))
		}
	default:
		review.State = ReviewRejected
		review.Comment = rejectComment(d, run)
	}

	if review.State == ReviewApproved {
		if err := g.approveActions(ctx, &d, run, review.Comment); err != nil {
			return err
		}
	} else if err == nil {
		if err := g.refuse(ctx, &d, "not compliant", run.Report); err != nil {
			return err
		}
		g.actionsDigest(ctx, &d, &run, run.PolicyHash, "⛔ *Rejected*: GitHub Actions will not deploy this.")
	}
	review.Comment = render.TruncateRunes(review.Comment, maxReviewComment)
	if err := g.record(ctx, compliance.EvidenceActionsReview, d.Repo, subject, review); err != nil {
		return err
	}
	if d.TS != "" {
		g.postAnchor(ctx, d)
	}
	return g.answer(ctx, ev, review.State, review.Comment)
}

// judgeActions finds what the environment runs now and checks the range up to the deployed SHA.
func (g *Gate) judgeActions(ctx context.Context, d *Deploy, ev compliance.DeploymentProtectionRuleEvent) (check.Run, error) {
	if lock, err := g.Store.GetLock(ctx, d.Service, d.Environment); err != nil {
		return check.Run{}, err
	} else if lock != nil {
		return check.Run{}, tellf("%s in %s is locked by %s since %s: %s. No deploys until `/deploy unlock %s %s`.", d.Service, d.Environment,
			render.Mention(lock.By), lock.At.UTC().Format("2006-01-02 15:04 MST"), render.Esc(lock.Reason), d.Service, d.Environment)
	}
	base, err := g.runningNow(ctx, *d)
	if err != nil {
		return check.Run{}, err
	}
	if base == "" {
		return check.Run{}, tellf("nothing is recorded as running in %s yet (no deployment of %s there with a successful status, and no deploy by sockembot), so the changes this deploy brings cannot be told apart. "+
			"Deploy once through Slack with `/deploy %s@REF to %s from BASE`, naming the release running there now, then re-run the job.",
			d.Environment, render.Esc(d.Repo), d.Service, d.Environment)
	}
	d.BaseSHA = base
	if err := g.Store.UpdateDeploy(ctx, d.ID, func(x *Deploy) { x.BaseSHA = base }); err != nil {
		return check.Run{}, err
	}
	login := ""
	if slices.Contains(g.Config.ProductionEnvironments, d.Environment) {
		login = ev.Sender
	}
	if base == d.HeadSHA {
		// The same release again (a re-run): nothing new reaches the environment.
		return check.Run{Report: compliance.Report{Repo: d.Repo, BaseSHA: base, HeadSHA: base, Compliant: true}}, nil
	}
	run, err := g.Checker.Check(ctx, check.Request{Repo: d.Repo, Base: base, Head: d.HeadSHA, Policy: g.Config.Policy,
		Trigger: fmt.Sprintf("deploy/%d: GitHub Actions run %d by %s", d.ID, ev.RunID, ev.Sender), RequesterLogin: login})
	if errors.Is(err, compliance.ErrHeadBehindBase) {
		return check.Run{}, tellf("%s is behind %s, which %s runs now: deploying it would roll changes back, and there is no forward range to check. Roll back with your CD system's own rollback.",
			render.Code(render.Short(d.HeadSHA)), render.Code(render.Short(base)), d.Environment)
	}
	if err != nil {
		return check.Run{}, check.Errorf("check %s %s..%s: %w", d.Repo, render.Short(base), render.Short(d.HeadSHA), err)
	}
	d.CheckSeq = run.Seq
	return run, g.Store.UpdateDeploy(ctx, d.ID, func(x *Deploy) { x.CheckSeq = run.Seq })
}

// runningNow is what d's environment runs: the newest deployment there with a success status
// (other than d's own), else the newest deploy sockembot recorded as deployed; "" when neither.
func (g *Gate) runningNow(ctx context.Context, d Deploy) (string, error) {
	sha, id, found, err := g.GitHub.CurrentDeployment(ctx, d.Repo, d.Environment)
	if err != nil {
		return "", check.Errorf("current deployment of %s to %s: %w", d.Repo, d.Environment, err)
	}
	if found && id != d.GitHubDeploymentID {
		return sha, nil
	}
	recent, err := g.Store.RecentDeploys(ctx, d.Service, d.Environment, 50)
	if err != nil {
		return "", err
	}
	for _, r := range recent {
		if r.ID != d.ID && r.State == StateDeployed && r.HeadSHA != "" {
			return r.HeadSHA, nil
		}
	}
	return "", nil
}

// approveActions records an approved Actions deploy the way a confirmed /deploy is recorded (its
// deployment_created record is what the audit export lists) and posts its digest.
func (g *Gate) approveActions(ctx context.Context, d *Deploy, run check.Run, comment string) error {
	if _, err := g.Store.TransitionDeploy(ctx, d.ID, StateRequested, StateConfirming); err != nil {
		return err
	}
	d.State = StateConfirming
	g.actionsDigest(ctx, d, &run, run.PolicyHash, "✅ *Approved*: GitHub Actions may deploy this.")
	if _, _, err := g.recordDeployment(ctx, *d, d.Requester, d.GitHubDeploymentID, run.Report, run.PolicyHash, run.PolicySource); err != nil {
		return err
	}
	d.State = StateDeployed
	return nil
}

// refuse marks d refused, with its deploy_refused record.
func (g *Gate) refuse(ctx context.Context, d *Deploy, reason string, report compliance.Report) error {
	if _, err := g.Store.TransitionDeploy(ctx, d.ID, StateRequested, StateRefused); err != nil {
		return err
	}
	d.State = StateRefused
	return g.record(ctx, compliance.EvidenceDeployRefused, d.Repo, Subject(d.ID), DeployRefusedEvidence{
		DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA, BaseSHA: d.BaseSHA,
		Requester: d.Requester, CheckSeq: d.CheckSeq, Reason: reason, Violations: ViolationCodes(report),
	})
}

// actionsRefusal posts, where the digest would be, why an Actions deploy was rejected before any
// check ran (msg is mrkdwn written by the bot).
func (g *Gate) actionsRefusal(ctx context.Context, d *Deploy, msg string) {
	text := fmt.Sprintf("⛔ GitHub Actions deploy of %s %s → *%s* rejected: %s\n%s", render.Esc(d.Repo), render.Code(render.Short(d.HeadSHA)), d.Environment, msg, actionsByline(*d))
	ts, err := g.post(ctx, g.Config.ReleaseChannel, "", text)
	if err == nil {
		d.Channel, d.TS = g.Config.ReleaseChannel, ts
		err = g.Store.UpdateDeploy(ctx, d.ID, func(x *Deploy) { x.Channel, x.TS = d.Channel, d.TS })
	}
	if err != nil {
		g.log().WithError(err).WithField("deploy_id", d.ID).Warn("actions deploy: post the refusal")
	}
}

// actionsByline says where an Actions deploy came from: the run, and who started it.
func actionsByline(d Deploy) string {
	run := "GitHub Actions run"
	if d.Reason != "" {
		run = render.Link(d.Reason, run)
	}
	return fmt.Sprintf("%s started by %s · deploy #%d", run, render.Code(strings.TrimPrefix(d.Requester, ActionsRequester)), d.ID)
}

// actionsDigest posts an Actions deploy's digest, with status (mrkdwn) in place of buttons, and
// its thread. Slack failing does not hold the answer up: the job waits on GitHub's answer, and
// the evidence is recorded either way; a failure is logged.
func (g *Gate) actionsDigest(ctx context.Context, d *Deploy, run *check.Run, policyHash, status string) {
	dg := g.digest(*d, run.Report, policyHash)
	dg.Status = status
	if err := g.postDigest(ctx, d, dg); err != nil {
		g.log().WithError(err).WithField("deploy_id", d.ID).Warn("actions deploy: post the digest")
	}
}

// answer tells GitHub: approved or rejected, with the comment shown on the run's page.
func (g *Gate) answer(ctx context.Context, ev compliance.DeploymentProtectionRuleEvent, state, comment string) error {
	if err := g.GitHub.ReviewProtectionRule(ctx, ev.Repo, ev.CallbackURL, ev.Environment, state, comment); err != nil {
		return check.Errorf("answer the protection rule of %s run %d (%s): %w", ev.Repo, ev.RunID, state, err)
	}
	g.log().WithFields(logrus.Fields{"repo": ev.Repo, "run": ev.RunID, "environment": ev.Environment, "state": state}).Info("actions deploy answered")
	return nil
}

// serviceOf names the configured service that deploys repo to env, else the repository's name.
func (g *Gate) serviceOf(repo, env string) string {
	var names []string
	for name, s := range g.Config.Services {
		if strings.EqualFold(s.Repo, repo) && (len(s.Environments) == 0 || slices.Contains(s.Environments, env)) {
			names = append(names, name)
		}
	}
	if len(names) > 0 {
		slices.Sort(names)
		return names[0]
	}
	_, name, _ := strings.Cut(repo, "/")
	return name
}

// rejectComment lists what is wrong, in plain text for the run's page.
func rejectComment(d Deploy, run check.Run) string {
	var b strings.Builder
	bad := render.NonCompliant(run.Report)
	fmt.Fprintf(&b, "sockembot: rejected. %s %s..%s: %d of %d %s the change policy (%s). Fix these, then re-run the job:\n",
		d.Repo, render.Short(d.BaseSHA), render.Short(d.HeadSHA), len(bad), len(run.Report.Changes), pick(len(bad) == 1, "change breaks", "changes break"), strings.Join(bad, ", "))
	for _, c := range run.Report.Changes {
		for _, v := range c.Violations {
			fmt.Fprintf(&b, "- %s %s: %s\n", c.Name(), v.Code, v.Message)
		}
	}
	fmt.Fprintf(&b, "Evidence record %d, policy %s.", run.Seq, render.Short(run.PolicyHash))
	return render.TruncateRunes(b.String(), maxReviewComment)
}

// everyChange says all n changes meet the policy, in good English.
func everyChange(n int) string {
	if n == 1 {
		return "the 1 change meets"
	}
	return fmt.Sprintf("all %d changes meet", n)
}

func pick(cond bool, yes, no string) string {
	if cond {
		return yes
	}
	return no
}

// plain turns the bot's own mrkdwn back into plain text for GitHub: no backticks or stars, and
// Slack's escapes undone.
func plain(s string) string {
	return strings.NewReplacer("`", "", "*", "", "&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}
