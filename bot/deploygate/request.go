package deploygate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"sockembot/bot/check"
	"sockembot/bot/deploygate/command"
	"sockembot/bot/render"
	"sockembot/compliance"
)

// RecheckAfter is how old a check may be when Deploy is pressed. Past it the range is checked
// again first: a ticket can move back to "To Do" or a review be dismissed while a digest waits.
const RecheckAfter = 30 * time.Minute

// historySize is how many deploys `/deploy history` lists.
const historySize = 10

// replyTo is where answers to one slash command go.
type replyTo struct {
	channel     string
	user        string
	responseURL string
	teamDomain  string
}

// userError is a request the bot understood but will not act on (an unknown ref, no base). The
// person is told why; it is not a failure of the bot.
type userError struct{ msg string }

func (e *userError) Error() string { return e.msg }

func tellf(format string, args ...any) error { return &userError{msg: fmt.Sprintf(format, args...)} }

// Request is one `/deploy` as Slack delivered it: who typed what, where.
type Request struct {
	Channel     string
	User        string
	Text        string // what followed /deploy
	ResponseURL string // answers the person anywhere, for 30 minutes
	TeamDomain  string // for thread links in history
}

// OnCommand answers one /deploy.
func (g *Gate) OnCommand(ctx context.Context, req Request) error {
	r := replyTo{channel: req.Channel, user: req.User, responseURL: req.ResponseURL, teamDomain: req.TeamDomain}
	cmd, err := command.Parse(req.Text)
	if err != nil {
		return g.tell(ctx, r, answer(err))
	}
	switch cmd.Kind {
	case command.CmdHelp:
		return g.tell(ctx, r, command.Usage)
	case command.CmdStatus:
		return g.showStatus(ctx, r, cmd)
	case command.CmdHistory:
		return g.showHistory(ctx, r, cmd)
	case command.CmdLock, command.CmdUnlock:
		return g.lockCommand(ctx, r, cmd)
	default:
		return g.requestDeploy(ctx, r, cmd)
	}
}

// Tell answers the person who typed req with a prepared message (a failure report), visible only
// to them.
func (g *Gate) Tell(ctx context.Context, req Request, m render.Message) error {
	r := replyTo{channel: req.Channel, user: req.User, responseURL: req.ResponseURL, teamDomain: req.TeamDomain}
	return g.tellBlocks(ctx, r, m.Text, m.Blocks)
}

// answer is what a person is told when their command is refused: a usage error with what they
// typed quoted and escaped, then how to write the command, or a refusal as it is written (tellf
// callers escape what they quote).
func answer(err error) string {
	var ue *command.UsageError
	if errors.As(err, &ue) {
		return ue.Problem(render.Code) + "\n\n" + command.Usage
	}
	return err.Error()
}

// tell answers the person who typed the command, visible only to them. chat.postEphemeral only
// works where the bot is a member; the response_url works anywhere for 30 minutes.
func (g *Gate) tell(ctx context.Context, r replyTo, text string) error {
	m := render.Notice(text)
	return g.tellBlocks(ctx, r, m.Text, m.Blocks)
}

// tellBlocks is tell for a prepared message (a failure report).
func (g *Gate) tellBlocks(ctx context.Context, r replyTo, text string, blocks []slack.Block) error {
	err := g.ephemeral(ctx, r.channel, r.user, text, blocks...)
	if err == nil || r.responseURL == "" {
		return err
	}
	if rerr := g.Slack.Respond(ctx, r.responseURL, r.channel, text, blocks...); rerr != nil {
		return check.Errorf("%w; response_url: %v", err, rerr)
	}
	return nil
}

// target checks a command's service and environment against the config. The environment
// defaults to the service's first.
func (g *Gate) target(cmd command.Command) (Service, string, error) {
	svc, ok := g.Config.Services[cmd.Service]
	if !ok {
		names := make([]string, 0, len(g.Config.Services))
		for n := range g.Config.Services {
			names = append(names, "`"+n+"`")
		}
		slices.Sort(names)
		if len(names) == 0 {
			return Service{}, "", tellf("I don't know the service %s, and no services are configured: add them to sockembot.yaml.", render.Code(cmd.Service))
		}
		return Service{}, "", command.Usagef("I don't know the service %s. Services: %s.", command.Typed(cmd.Service), strings.Join(names, ", "))
	}
	env := cmd.Env
	if env == "" {
		env = svc.Environments[0]
	}
	if !slices.Contains(svc.Environments, env) {
		return Service{}, "", command.Usagef("%s has no environment %s: it deploys to %s.", command.Typed(cmd.Service), command.Typed(env), "`"+strings.Join(svc.Environments, "`, `")+"`")
	}
	return svc, env, nil
}

// mayDeploy says whether user may deploy to env. An environment missing from the config's
// deployers is open to everyone (the compliance check still gates it); one listed with nobody
// is closed. User groups are resolved on every call, so removing someone from a group in Slack
// takes effect at once.
func (g *Gate) mayDeploy(ctx context.Context, user, env string) (bool, error) {
	allowed, listed := g.Config.Deployers[env]
	if !listed {
		return true, nil
	}
	return g.memberOf(ctx, user, allowed)
}

// mayBreakGlass says whether user may make an emergency deploy to env: only people listed in
// the config's emergency list for env; an environment not listed has no emergency path.
func (g *Gate) mayBreakGlass(ctx context.Context, user, env string) (bool, error) {
	return g.memberOf(ctx, user, g.Config.Emergency[env])
}

// memberOf says whether user is one of ids, directly or through a user group (S...).
func (g *Gate) memberOf(ctx context.Context, user string, ids []string) (bool, error) {
	return MemberOf(ctx, g.Slack, user, ids)
}

// GroupMembers lists a Slack user group's members.
type GroupMembers interface {
	UserGroupMembers(ctx context.Context, group string) ([]string, error)
}

// MemberOf says whether user is one of ids, directly or through a user group (S...). Groups
// are resolved on every call, so removing someone from a group in Slack takes effect at once; a
// group that can't be read is an error, never a yes or a no.
func MemberOf(ctx context.Context, groups GroupMembers, user string, ids []string) (bool, error) {
	if slices.Contains(ids, user) {
		return true, nil
	}
	for _, id := range ids {
		if !strings.HasPrefix(id, "S") {
			continue
		}
		members, err := groups.UserGroupMembers(ctx, id)
		if err != nil {
			// Fail closed: who may deploy to production is not a guess.
			return false, check.Trace(err)
		}
		if slices.Contains(members, user) {
			return true, nil
		}
	}
	return false, nil
}

// requesterLogin is the GitHub login separation of duties checks the requester against: known
// only for production environments and people mapped in the config.
func (g *Gate) requesterLogin(user, env string) string {
	if !slices.Contains(g.Config.ProductionEnvironments, env) {
		return ""
	}
	return g.Config.People[user]
}

func (g *Gate) deployersText(env string) string { return IDsText(g.Config.Deployers[env]) }

// IDsText names Slack users and user groups for a message: "<@U…>, <!subteam^S…>".
func IDsText(ids []string) string {
	var names []string
	for _, id := range ids {
		names = append(names, render.Mention(id))
	}
	if len(names) == 0 {
		return "nobody is listed"
	}
	return strings.Join(names, ", ")
}

func (g *Gate) denied(ctx context.Context, repo string, ev AttemptDeniedEvidence) error {
	return g.record(ctx, compliance.EvidenceDeployAttemptDenied, repo, ev.Service+"/"+ev.Environment, ev)
}

// requestDeploy runs `/deploy SERVICE[@REF] [to ENV] [from REF]`.
func (g *Gate) requestDeploy(ctx context.Context, r replyTo, cmd command.Command) error {
	svc, env, err := g.target(cmd)
	if err != nil {
		return g.tell(ctx, r, answer(err))
	}
	if cmd.Emergency {
		ok, err := g.mayBreakGlass(ctx, r.user, env)
		if err != nil {
			return err
		}
		if !ok {
			if err := g.denied(ctx, svc.Repo, AttemptDeniedEvidence{Service: cmd.Service, Environment: env, User: r.user, Action: "emergency", Reason: "not in the emergency list: " + cmd.Reason, Channel: r.channel, Ref: cmd.Ref}); err != nil {
				return err
			}
			return g.tell(ctx, r, fmt.Sprintf("You may not make emergency deploys to *%s*; this attempt has been recorded. Who may: %s. Without `emergency`, `/deploy` runs the normal checks.", env, IDsText(g.Config.Emergency[env])))
		}
	} else if ok, err := g.mayDeploy(ctx, r.user, env); err != nil {
		return err
	} else if !ok {
		if err := g.denied(ctx, svc.Repo, AttemptDeniedEvidence{Service: cmd.Service, Environment: env, User: r.user, Action: "request", Reason: "not a deployer", Channel: r.channel, Ref: cmd.Ref}); err != nil {
			return err
		}
		return g.tell(ctx, r, fmt.Sprintf("You are not allowed to deploy to *%s*. Who may: %s. Ask one of them, or ask to be added to `deployers` in sockembot.yaml.", env, g.deployersText(env)))
	}
	if lock, err := g.Store.GetLock(ctx, cmd.Service, env); err != nil {
		return err
	} else if lock != nil {
		if err := g.denied(ctx, svc.Repo, AttemptDeniedEvidence{Service: cmd.Service, Environment: env, User: r.user, Action: "request", Reason: "locked: " + lock.Reason, Channel: r.channel, Ref: cmd.Ref}); err != nil {
			return err
		}
		return g.tell(ctx, r, lockedText(cmd.Service, env, lock))
	}
	checking := fmt.Sprintf("Checking %s %s → *%s*…", render.Code(cmd.Service), render.Esc(render.OrHead(cmd.Ref)), env)
	if r.channel != g.Config.ReleaseChannel {
		checking += fmt.Sprintf(" The digest will be posted in %s.", render.Channel(g.Config.ReleaseChannel))
	}
	if err := g.tell(ctx, r, checking); err != nil {
		// Only a courtesy: the digest or the failure report still says how it went.
		g.log().WithError(err).Warn("slack: could not tell the requester the check started")
	}

	// The request is on record before GitHub is asked anything, so even a request that fails
	// at once leaves its trail.
	d := Deploy{Service: cmd.Service, Environment: env, Repo: svc.Repo, Ref: cmd.Ref, Requester: r.user, State: StateRequested,
		Emergency: cmd.Emergency, Reason: cmd.Reason}
	if d.ID, err = g.Store.CreateDeploy(ctx, d); err != nil {
		return err
	}
	if err := g.record(ctx, compliance.EvidenceDeployRequested, d.Repo, Subject(d.ID), DeployRequestEvidence{
		DeployID: d.ID, Service: d.Service, Environment: d.Environment, Repo: d.Repo, Ref: cmd.Ref, From: cmd.From, Requester: d.Requester,
		Channel: r.channel, Emergency: d.Emergency, EmergencyReason: d.Reason,
	}); err != nil {
		return err
	}
	err = check.Safely(func() error { return g.checkAndPublish(ctx, &d, cmd) })
	var ue *userError
	if errors.As(err, &ue) {
		if _, err := g.Store.TransitionDeploy(ctx, d.ID, StateRequested, StateRefused); err != nil {
			return err
		}
		if err := g.record(ctx, compliance.EvidenceDeployRefused, d.Repo, Subject(d.ID), DeployRefusedEvidence{
			DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA, BaseSHA: d.BaseSHA,
			Requester: d.Requester, Reason: ue.msg,
		}); err != nil {
			return err
		}
		return g.tell(ctx, r, ue.msg)
	}
	if err != nil {
		return g.publishFailure(ctx, r, &d, err)
	}
	return nil
}

// checkAndPublish resolves the range, checks it, records the outcome and posts the digest.
func (g *Gate) checkAndPublish(ctx context.Context, d *Deploy, cmd command.Command) error {
	// What is asked for and what runs now are read at the same time.
	var (
		wg      sync.WaitGroup
		baseErr error
		ref     = d.Ref // the base's goroutine must not read d.Ref while it is set below
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		baseErr = check.Safely(func() error { return g.base(ctx, d.Repo, d.Environment, cmd, &d.BaseSHA) })
	}()
	var headErr error
	if ref == "" {
		if d.Ref, d.HeadSHA, headErr = g.GitHub.DefaultBranch(ctx, d.Repo); headErr != nil {
			headErr = check.Errorf("default branch of %s: %w", d.Repo, headErr)
		}
	} else {
		d.HeadSHA, headErr = g.resolve(ctx, d.Repo, ref)
	}
	wg.Wait()
	if headErr != nil {
		return headErr
	}
	if errors.Is(baseErr, errNothingDeployed) {
		// No base means no range to check; guessing one could wave through unchecked changes.
		return tellf("Nothing has been deployed to *%s* yet (no GitHub deployment of %s there with a successful status), so I can't tell which changes are new. Name the base yourself: %s, where REF is the release now running there.",
			d.Environment, render.Esc(d.Repo), render.Code(fmt.Sprintf("/deploy %s@%s to %s from REF", d.Service, d.Ref, d.Environment)))
	}
	if baseErr != nil {
		return baseErr
	}
	if d.BaseSHA == d.HeadSHA {
		return tellf("*%s* already runs %s (%s): nothing to deploy.", d.Environment, render.Code(render.Short(d.HeadSHA)), render.Esc(d.Ref))
	}
	if err := g.Store.UpdateDeploy(ctx, d.ID, func(x *Deploy) { x.Ref, x.HeadSHA, x.BaseSHA = d.Ref, d.HeadSHA, d.BaseSHA }); err != nil {
		return err
	}

	run, err := g.Checker.Check(ctx, check.Request{Repo: d.Repo, Base: d.BaseSHA, Head: d.HeadSHA, Policy: g.Config.Policy,
		Trigger: fmt.Sprintf("deploy/%d by %s", d.ID, d.Requester), RequesterLogin: g.requesterLogin(d.Requester, d.Environment)})
	if errors.Is(err, compliance.ErrHeadBehindBase) {
		// Refused with an answer, not a failure report: nothing broke, the request is a rollback.
		base := "what it runs now"
		if cmd.From != "" {
			base = render.Code(cmd.From)
		}
		return tellf("%s (%s) is behind %s (%s) on *%s*: deploying it would roll changes back, and there is no forward range of changes to check. "+
			"Roll back with your CD system's own rollback, or deploy a newer ref. If you meant a different base, give it: %s.",
			render.Code(d.Ref), render.Short(d.HeadSHA), base, render.Code(render.Short(d.BaseSHA)), d.Environment,
			render.Code(fmt.Sprintf("/deploy %s@%s to %s from REF", d.Service, d.Ref, d.Environment)))
	}
	if err != nil {
		return check.Errorf("check %s %s..%s: %w", d.Repo, render.Short(d.BaseSHA), render.Short(d.HeadSHA), err)
	}
	d.CheckSeq = run.Seq
	if err := g.Store.UpdateDeploy(ctx, d.ID, func(x *Deploy) { x.CheckSeq = run.Seq }); err != nil {
		return err
	}
	next := StateRefused
	if run.Report.Compliant || d.Emergency {
		next = StateReady
	}
	// The state is set before the digest is visible, so a quick click finds it ready.
	if _, err := g.Store.TransitionDeploy(ctx, d.ID, StateRequested, next); err != nil {
		return err
	}
	d.State = next
	if !run.Report.Compliant && d.Emergency {
		if err := g.record(ctx, compliance.EvidenceOverride, d.Repo, Subject(d.ID), OverrideEvidence{
			DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA,
			By: d.Requester, Reason: d.Reason, CheckSeq: run.Seq, Violations: ViolationCodes(run.Report),
		}); err != nil {
			return err
		}
	} else if !run.Report.Compliant {
		if err := g.record(ctx, compliance.EvidenceDeployRefused, d.Repo, Subject(d.ID), DeployRefusedEvidence{
			DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA, BaseSHA: d.BaseSHA,
			Requester: d.Requester, CheckSeq: run.Seq, Reason: "not compliant", Violations: ViolationCodes(run.Report),
		}); err != nil {
			return err
		}
	}

	dg := g.digest(*d, run.Report, run.PolicyHash)
	dg.Buttons = next == StateReady
	if err := g.postDigest(ctx, d, dg); err != nil {
		return err
	}
	if next == StateRefused {
		g.postAnchor(ctx, *d)
	}
	if d.Emergency {
		return g.Emergencies.Announce(ctx, *d, run.Report)
	}
	return nil
}

// base finds the commit a deploy of repo to env is checked from: the one named with "from",
// else the newest successful deployment there.
func (g *Gate) base(ctx context.Context, repo, env string, cmd command.Command, sha *string) error {
	if cmd.From != "" {
		var err error
		*sha, err = g.resolve(ctx, repo, cmd.From)
		return err
	}
	current, _, found, err := g.GitHub.CurrentDeployment(ctx, repo, env)
	if err != nil {
		return check.Errorf("current deployment of %s to %s: %w", repo, env, err)
	}
	if !found {
		return errNothingDeployed
	}
	*sha = current
	return nil
}

// errNothingDeployed: the environment has no successful deployment to check from.
var errNothingDeployed = errors.New("nothing deployed yet")

// postDigest posts d's digest in the release channel, keeps where it is on d, and posts the
// thread replies of a release too big for one message.
func (g *Gate) postDigest(ctx context.Context, d *Deploy, dg render.Digest) error {
	root, thread := render.DigestMessage(dg)
	ts, err := g.postMessage(ctx, g.Config.ReleaseChannel, "", root)
	if err != nil {
		return err
	}
	d.Channel, d.TS = g.Config.ReleaseChannel, ts
	if err := g.Store.UpdateDeploy(ctx, d.ID, func(x *Deploy) { x.Channel, x.TS = d.Channel, d.TS }); err != nil {
		return err
	}
	for _, m := range thread {
		if _, err := g.postMessage(ctx, d.Channel, ts, m); err != nil {
			return err
		}
	}
	return nil
}

// resolve turns a ref into a SHA; a ref GitHub does not know is the person's mistake.
func (g *Gate) resolve(ctx context.Context, repo, ref string) (string, error) {
	sha, err := g.GitHub.ResolveRef(ctx, repo, ref)
	if errors.Is(err, compliance.ErrNotFound) {
		return "", tellf("%s has no branch, tag or commit %s.", render.Esc(repo), render.Code(ref))
	}
	if err != nil {
		return "", check.Errorf("resolve %s in %s: %w", ref, repo, err)
	}
	return sha, nil
}

func (g *Gate) digest(d Deploy, r compliance.Report, policyHash string) render.Digest {
	dg := render.Digest{
		DeployID: d.ID, Service: d.Service, Env: d.Environment, Repo: d.Repo, Ref: d.Ref,
		Requester: d.Requester, CompareURL: render.CompareURL(r), Report: r, PolicyHash: policyHash,
		Emergency: d.Emergency, EmergencyReason: d.Reason,
	}
	if d.IsActions() {
		// A GitHub Actions deploy: who started the run, and the run's page (kept in Reason).
		dg.Actions = &render.ActionsRun{URL: d.Reason, Actor: strings.TrimPrefix(d.Requester, ActionsRequester)}
		dg.EmergencyReason = ""
	}
	return dg
}

// publishFailure shows the failure report where the digest would have been and refuses the
// deploy: a check that did not finish is never a pass.
func (g *Gate) publishFailure(ctx context.Context, r replyTo, d *Deploy, cause error) error {
	f := render.Failure{Doing: fmt.Sprintf("check %s %s → %s", d.Service, render.Esc(render.OrHead(d.Ref)), d.Environment), Err: cause}
	g.log().WithError(cause).WithField("deploy_id", d.ID).Error("deploy check failed")
	note := "requested by " + render.Mention(d.Requester)
	if d.ID != 0 {
		note = fmt.Sprintf("deploy #%d · %s", d.ID, note)
	}
	m := render.FailureMessage(f, note)
	var errs []error
	if d.ID != 0 {
		for _, from := range []State{StateRequested, StateReady} {
			if ok, err := g.Store.TransitionDeploy(ctx, d.ID, from, StateFailed); err != nil || ok {
				errs = append(errs, err)
				break
			}
		}
		errs = append(errs, g.record(ctx, compliance.EvidenceDeployRefused, d.Repo, Subject(d.ID), DeployRefusedEvidence{
			DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA, BaseSHA: d.BaseSHA,
			Requester: d.Requester, CheckSeq: d.CheckSeq, Reason: "the check could not run", Error: cause.Error(),
		}))
	}
	if d.TS != "" {
		errs = append(errs, g.update(ctx, d.Channel, d.TS, m.Text, m.Blocks...))
	} else {
		ts, err := g.postMessage(ctx, g.Config.ReleaseChannel, "", m)
		errs = append(errs, err)
		if err == nil && d.ID != 0 {
			d.Channel, d.TS = g.Config.ReleaseChannel, ts
			errs = append(errs, g.Store.UpdateDeploy(ctx, d.ID, func(x *Deploy) { x.Channel, x.TS = d.Channel, d.TS }))
		}
	}
	if d.ID != 0 && d.TS != "" {
		g.postAnchor(ctx, *d)
	}
	if r.channel != g.Config.ReleaseChannel {
		errs = append(errs, g.tell(ctx, r, fmt.Sprintf("sockembot could not %s, so the deploy is refused. The failure report is in %s.", f.Doing, render.Channel(g.Config.ReleaseChannel))))
	}
	return errors.Join(errs...)
}

func ViolationCodes(r compliance.Report) []string {
	var out []string
	for _, c := range r.Changes {
		for _, v := range c.Violations {
			out = append(out, c.Name()+" "+string(v.Code))
		}
	}
	return out
}

func lockedText(service, env string, l *Lock) string {
	return fmt.Sprintf("🔒 *%s* in *%s* is locked by %s since %s: %s\nNo deploys until `/deploy unlock %s %s`.",
		service, env, render.Mention(l.By), l.At.UTC().Format("2006-01-02 15:04 MST"), render.Esc(l.Reason), service, env)
}
