package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"sockembot/compliance"
	"sockembot/integrations/github"
	"sockembot/integrations/store"
)

// deployGitHub is what a deploy needs from GitHub.
type deployGitHub interface {
	ResolveRef(ctx context.Context, repo, ref string) (sha string, err error)
	DefaultBranch(ctx context.Context, repo string) (name, sha string, err error)
	// CurrentDeployment is the newest deployment to env whose latest status is success.
	CurrentDeployment(ctx context.Context, repo, env string) (sha string, id int64, found bool, err error)
	CreateDeployment(ctx context.Context, repo, sha, env string, payload any, description string) (id int64, err error)
	DeploymentPayloads(ctx context.Context, repo, sha, env string) (map[int64]json.RawMessage, error)
}

// deployStore is what a deploy needs from the store besides appending evidence.
type deployStore interface {
	Once(ctx context.Context, scope, key string) (first bool, err error)
	CreateDeploy(ctx context.Context, d store.Deploy) (int64, error)
	GetDeploy(ctx context.Context, id int64) (store.Deploy, error)
	UpdateDeploy(ctx context.Context, id int64, fn func(d *store.Deploy)) error
	TransitionDeploy(ctx context.Context, id int64, from, to store.State) (ok bool, err error)
	ClaimConfirm(ctx context.Context, id int64) (ok bool, busy int64, err error)
	DeploysIn(ctx context.Context, state store.State, before time.Time) ([]store.Deploy, error)
	Prune(ctx context.Context, before time.Time) (int64, error)
	DeployByGitHubID(ctx context.Context, repo string, ghID int64) (store.Deploy, error)
	RecentDeploys(ctx context.Context, service, env string, n int) ([]store.Deploy, error)
	Lock(ctx context.Context, service, env, by, reason string) (ok bool, existing *store.EnvLock, err error)
	Unlock(ctx context.Context, service, env string) (was bool, err error)
	GetLock(ctx context.Context, service, env string) (*store.EnvLock, error)
	LastRecord(ctx context.Context, kind, subject string) (r store.Record, found bool, err error)
	Records(ctx context.Context, kind, subject string, fn func(store.Record) error) error
}

// recheckAfter is how old a check may be when Deploy is pressed. Past it the range is checked
// again first: a ticket can move back to "To Do" or a review be dismissed while a digest waits.
const recheckAfter = 30 * time.Minute

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

// Evidence bodies. Field names are stored in the chain: never rename them.
type deployRequestEvidence struct {
	DeployID    int64  `json:"deploy_id"`
	Service     string `json:"service"`
	Environment string `json:"environment"`
	Repo        string `json:"repo"`
	Ref         string `json:"ref"`
	From        string `json:"from,omitempty"`
	Requester   string `json:"requester"`
	Channel     string `json:"channel,omitempty"` // where the request was typed
	// Emergency asks to deploy past violations, for EmergencyReason.
	Emergency       bool   `json:"emergency,omitempty"`
	EmergencyReason string `json:"emergency_reason,omitempty"`
}

// overrideEvidence is the body of an override record: an emergency deploy request whose check
// found violations, let through on someone's word. The violations stay on record beside it.
type overrideEvidence struct {
	DeployID    int64    `json:"deploy_id"`
	Service     string   `json:"service"`
	Environment string   `json:"environment"`
	HeadSHA     string   `json:"head_sha"`
	By          string   `json:"by"`
	Reason      string   `json:"reason"`
	CheckSeq    int64    `json:"check_seq"`
	Violations  []string `json:"violations"`
}

type deployRefusedEvidence struct {
	DeployID    int64    `json:"deploy_id"`
	Service     string   `json:"service"`
	Environment string   `json:"environment"`
	HeadSHA     string   `json:"head_sha,omitempty"`
	BaseSHA     string   `json:"base_sha,omitempty"`
	Requester   string   `json:"requester"`
	CheckSeq    int64    `json:"check_seq,omitempty"`
	Reason      string   `json:"reason"`
	Violations  []string `json:"violations,omitempty"` // "#12 missing_ticket"
	Error       string   `json:"error,omitempty"`
}

type deployDecisionEvidence struct {
	DeployID    int64     `json:"deploy_id"`
	Service     string    `json:"service"`
	Environment string    `json:"environment"`
	HeadSHA     string    `json:"head_sha"`
	By          string    `json:"by"`
	At          time.Time `json:"at"`
	CheckSeq    int64     `json:"check_seq"`
	Rechecked   bool      `json:"rechecked,omitempty"`
}

type attemptDeniedEvidence struct {
	Service     string `json:"service"`
	Environment string `json:"environment"`
	User        string `json:"user"`
	Action      string `json:"action"` // request, confirm, cancel, lock, unlock
	Reason      string `json:"reason"`
	DeployID    int64  `json:"deploy_id,omitempty"`
	Channel     string `json:"channel,omitempty"` // where it was attempted
	Ref         string `json:"ref,omitempty"`
}

type deploymentStatusEvidence = store.DeploymentStatusEvidence

// deploymentPayload goes into the GitHub deployment: who asked, and which check allowed it, so
// the deployment names its own evidence.
type deploymentPayload struct {
	Sockembot deploymentRef `json:"sockembot"`
}

type deploymentRef struct {
	DeployID   int64  `json:"deploy_id"`
	Service    string `json:"service"`
	Requester  string `json:"requester"`
	Deployer   string `json:"deployer"`
	CheckSeq   int64  `json:"check_seq"`
	PolicyHash string `json:"policy_hash"`
}

func (a *App) record(ctx context.Context, kind, repo, subject string, body any) error {
	if _, err := a.Store.Append(ctx, store.Evidence{At: a.now(), Kind: kind, Repo: repo, Subject: subject, Body: body}); err != nil {
		return fmt.Errorf("record %s: %w", kind, err)
	}
	return nil
}

func deploySubject(id int64) string { return fmt.Sprintf("deploy/%d", id) }

// onSlashCommand answers one /deploy.
func (a *App) onSlashCommand(ctx context.Context, sc slack.SlashCommand) error {
	r := replyTo{channel: sc.ChannelID, user: sc.UserID, responseURL: sc.ResponseURL, teamDomain: sc.TeamDomain}
	cmd, err := ParseCommand(sc.Text)
	if err != nil {
		return a.tell(ctx, r, err.Error())
	}
	switch cmd.Kind {
	case CmdHelp:
		return a.tell(ctx, r, Usage)
	case CmdStatus:
		return a.showStatus(ctx, r, cmd)
	case CmdHistory:
		return a.showHistory(ctx, r, cmd)
	case CmdLock, CmdUnlock:
		return a.lockCommand(ctx, r, cmd)
	default:
		return a.requestDeploy(ctx, r, cmd)
	}
}

// tell answers the person who typed the command, visible only to them. chat.postEphemeral only
// works where the bot is a member; the response_url works anywhere for 30 minutes.
func (a *App) tell(ctx context.Context, r replyTo, text string) error {
	m := noticeMessage(text)
	return a.tellBlocks(ctx, r, m.Text, m.Blocks)
}

// tellBlocks is tell for a prepared message (a failure report).
func (a *App) tellBlocks(ctx context.Context, r replyTo, text string, blocks []slack.Block) error {
	err := a.ephemeral(ctx, r.channel, r.user, text, blocks...)
	if err == nil || r.responseURL == "" {
		return err
	}
	rerr := a.slackCall(ctx, func() error {
		_, _, e := a.Slack.PostMessageContext(ctx, r.channel,
			slack.MsgOptionResponseURL(r.responseURL, slack.ResponseTypeEphemeral),
			slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
		return e
	})
	if rerr != nil {
		return fmt.Errorf("%w; response_url: %v", err, rerr)
	}
	return nil
}

// target checks a command's service and environment against the config. The environment
// defaults to the service's first.
func (a *App) target(cmd Command) (Service, string, error) {
	svc, ok := a.Config.Services[cmd.Service]
	if !ok {
		names := make([]string, 0, len(a.Config.Services))
		for n := range a.Config.Services {
			names = append(names, "`"+n+"`")
		}
		slices.Sort(names)
		if len(names) == 0 {
			return Service{}, "", tellf("I don't know the service `%s`, and no services are configured: add them to sockembot.yaml.", cmd.Service)
		}
		return Service{}, "", &UsageError{Problem: fmt.Sprintf("I don't know the service `%s`. Services: %s.", cmd.Service, strings.Join(names, ", "))}
	}
	env := cmd.Env
	if env == "" {
		env = svc.Environments[0]
	}
	if !slices.Contains(svc.Environments, env) {
		return Service{}, "", &UsageError{Problem: fmt.Sprintf("`%s` has no environment `%s`: it deploys to %s.", cmd.Service, env, "`"+strings.Join(svc.Environments, "`, `")+"`")}
	}
	return svc, env, nil
}

// mayDeploy says whether user may deploy to env. An environment missing from the config's
// deployers is open to everyone (the compliance check still gates it); one listed with nobody
// is closed. User groups are resolved on every call, so removing someone from a group in Slack
// takes effect at once.
func (a *App) mayDeploy(ctx context.Context, user, env string) (bool, error) {
	allowed, listed := a.Config.Deployers[env]
	if !listed {
		return true, nil
	}
	return a.memberOf(ctx, user, allowed)
}

// mayBreakGlass says whether user may make an emergency deploy to env: only people listed in
// the config's emergency list for env; an environment not listed has no emergency path.
func (a *App) mayBreakGlass(ctx context.Context, user, env string) (bool, error) {
	return a.memberOf(ctx, user, a.Config.Emergency[env])
}

// memberOf says whether user is one of ids, directly or through a user group (S...).
func (a *App) memberOf(ctx context.Context, user string, ids []string) (bool, error) {
	if slices.Contains(ids, user) {
		return true, nil
	}
	for _, id := range ids {
		if !strings.HasPrefix(id, "S") {
			continue
		}
		var members []string
		err := a.slackCall(ctx, func() error {
			var e error
			members, e = a.Slack.GetUserGroupMembersContext(ctx, id)
			return e
		})
		if err != nil {
			// Fail closed: who may deploy to production is not a guess.
			return false, fmt.Errorf("slack: members of user group %s: %w", id, err)
		}
		if slices.Contains(members, user) {
			return true, nil
		}
	}
	return false, nil
}

// requesterLogin is the GitHub login separation of duties checks the requester against: known
// only for production environments and people mapped in the config.
func (a *App) requesterLogin(user, env string) string {
	if !slices.Contains(a.Config.ProductionEnvironments, env) {
		return ""
	}
	return a.Config.People[user]
}

func (a *App) deployersText(env string) string { return idsText(a.Config.Deployers[env]) }

// idsText mentions Slack users and user groups.
func idsText(ids []string) string {
	var names []string
	for _, id := range ids {
		if strings.HasPrefix(id, "S") {
			names = append(names, "<!subteam^"+id+">")
		} else {
			names = append(names, mention(id))
		}
	}
	if len(names) == 0 {
		return "nobody is listed"
	}
	return strings.Join(names, ", ")
}

func (a *App) denied(ctx context.Context, repo string, ev attemptDeniedEvidence) error {
	return a.record(ctx, store.KindDeployAttemptDenied, repo, ev.Service+"/"+ev.Environment, ev)
}

// requestDeploy runs `/deploy SERVICE[@REF] [to ENV] [from REF]`.
func (a *App) requestDeploy(ctx context.Context, r replyTo, cmd Command) error {
	svc, env, err := a.target(cmd)
	if err != nil {
		return a.tell(ctx, r, err.Error())
	}
	if cmd.Emergency {
		ok, err := a.mayBreakGlass(ctx, r.user, env)
		if err != nil {
			return err
		}
		if !ok {
			if err := a.denied(ctx, svc.Repo, attemptDeniedEvidence{Service: cmd.Service, Environment: env, User: r.user, Action: "emergency", Reason: "not in the emergency list: " + cmd.Reason, Channel: r.channel, Ref: cmd.Ref}); err != nil {
				return err
			}
			return a.tell(ctx, r, fmt.Sprintf("You may not make emergency deploys to *%s*; this attempt has been recorded. Who may: %s. Without `emergency`, `/deploy` runs the normal checks.", env, idsText(a.Config.Emergency[env])))
		}
	} else if ok, err := a.mayDeploy(ctx, r.user, env); err != nil {
		return err
	} else if !ok {
		if err := a.denied(ctx, svc.Repo, attemptDeniedEvidence{Service: cmd.Service, Environment: env, User: r.user, Action: "request", Reason: "not a deployer", Channel: r.channel, Ref: cmd.Ref}); err != nil {
			return err
		}
		return a.tell(ctx, r, fmt.Sprintf("You are not allowed to deploy to *%s*. Who may: %s. Ask one of them, or ask to be added to `deployers` in sockembot.yaml.", env, a.deployersText(env)))
	}
	if lock, err := a.Store.GetLock(ctx, cmd.Service, env); err != nil {
		return err
	} else if lock != nil {
		if err := a.denied(ctx, svc.Repo, attemptDeniedEvidence{Service: cmd.Service, Environment: env, User: r.user, Action: "request", Reason: "locked: " + lock.Reason, Channel: r.channel, Ref: cmd.Ref}); err != nil {
			return err
		}
		return a.tell(ctx, r, lockedText(cmd.Service, env, lock))
	}
	checking := fmt.Sprintf("Checking `%s` %s → *%s*…", cmd.Service, esc(orHead(cmd.Ref)), env)
	if r.channel != a.Config.ReleaseChannel {
		checking += fmt.Sprintf(" The digest will be posted in <#%s>.", a.Config.ReleaseChannel)
	}
	if err := a.tell(ctx, r, checking); err != nil {
		// Only a courtesy: the digest or the failure report still says how it went.
		a.log().WithError(err).Warn("slack: could not tell the requester the check started")
	}

	// The request is on record before GitHub is asked anything, so even a request that fails
	// at once leaves its trail.
	d := store.Deploy{Service: cmd.Service, Environment: env, Repo: svc.Repo, Ref: cmd.Ref, Requester: r.user, State: store.StateRequested,
		Emergency: cmd.Emergency, Reason: cmd.Reason}
	if d.ID, err = a.Store.CreateDeploy(ctx, d); err != nil {
		return err
	}
	if err := a.record(ctx, store.KindDeployRequested, d.Repo, deploySubject(d.ID), deployRequestEvidence{
		DeployID: d.ID, Service: d.Service, Environment: d.Environment, Repo: d.Repo, Ref: cmd.Ref, From: cmd.From, Requester: d.Requester,
		Channel: r.channel, Emergency: d.Emergency, EmergencyReason: d.Reason,
	}); err != nil {
		return err
	}
	err = Safely(func() error { return a.checkAndPublish(ctx, &d, cmd) })
	var ue *userError
	if errors.As(err, &ue) {
		if _, err := a.Store.TransitionDeploy(ctx, d.ID, store.StateRequested, store.StateRefused); err != nil {
			return err
		}
		if err := a.record(ctx, store.KindDeployRefused, d.Repo, deploySubject(d.ID), deployRefusedEvidence{
			DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA, BaseSHA: d.BaseSHA,
			Requester: d.Requester, Reason: ue.msg,
		}); err != nil {
			return err
		}
		return a.tell(ctx, r, ue.msg)
	}
	if err != nil {
		return a.publishFailure(ctx, r, &d, err)
	}
	return nil
}

// checkAndPublish resolves the range, checks it, records the outcome and posts the digest.
func (a *App) checkAndPublish(ctx context.Context, d *store.Deploy, cmd Command) error {
	var err error
	if d.Ref == "" {
		d.Ref, d.HeadSHA, err = a.GitHub.DefaultBranch(ctx, d.Repo)
		if err != nil {
			return fmt.Errorf("default branch of %s: %w", d.Repo, err)
		}
	} else if d.HeadSHA, err = a.resolve(ctx, d.Repo, d.Ref); err != nil {
		return err
	}
	if cmd.From != "" {
		if d.BaseSHA, err = a.resolve(ctx, d.Repo, cmd.From); err != nil {
			return err
		}
	} else {
		sha, _, found, err := a.GitHub.CurrentDeployment(ctx, d.Repo, d.Environment)
		if err != nil {
			return fmt.Errorf("current deployment of %s to %s: %w", d.Repo, d.Environment, err)
		}
		if !found {
			// No base means no range to check; guessing one could wave through unchecked changes.
			return tellf("Nothing has been deployed to *%s* yet (no GitHub deployment of %s there with a successful status), so I can't tell which changes are new. Name the base yourself: `/deploy %s@%s to %s from REF`, where REF is the release now running there.",
				d.Environment, d.Repo, d.Service, d.Ref, d.Environment)
		}
		d.BaseSHA = sha
	}
	if d.BaseSHA == d.HeadSHA {
		return tellf("*%s* already runs `%s` (%s): nothing to deploy.", d.Environment, short(d.HeadSHA), esc(d.Ref))
	}
	if err := a.Store.UpdateDeploy(ctx, d.ID, func(x *store.Deploy) { x.Ref, x.HeadSHA, x.BaseSHA = d.Ref, d.HeadSHA, d.BaseSHA }); err != nil {
		return err
	}

	run, err := a.Checker().CheckDeploy(ctx, d.Repo, d.BaseSHA, d.HeadSHA, a.Config.Policy, fmt.Sprintf("deploy/%d by %s", d.ID, d.Requester),
		a.requesterLogin(d.Requester, d.Environment))
	if errors.Is(err, github.ErrHeadBehindBase) {
		// Refused with an answer, not a failure report: nothing broke, the request is a rollback.
		base := "what it runs now"
		if cmd.From != "" {
			base = "`" + esc(cmd.From) + "`"
		}
		return tellf("`%s` (%s) is behind %s (`%s`) on *%s*: deploying it would roll changes back, and there is no forward range of changes to check. "+
			"Roll back with your CD system's own rollback, or deploy a newer ref. If you meant a different base, give it: `/deploy %s@%s to %s from REF`.",
			esc(d.Ref), short(d.HeadSHA), base, short(d.BaseSHA), d.Environment, d.Service, esc(d.Ref), d.Environment)
	}
	if err != nil {
		return fmt.Errorf("check %s %s..%s: %w", d.Repo, short(d.BaseSHA), short(d.HeadSHA), err)
	}
	d.CheckSeq = run.Seq
	if err := a.Store.UpdateDeploy(ctx, d.ID, func(x *store.Deploy) { x.CheckSeq = run.Seq }); err != nil {
		return err
	}
	next := store.StateRefused
	if run.Report.Compliant || d.Emergency {
		next = store.StateReady
	}
	// The state is set before the digest is visible, so a quick click finds it ready.
	if _, err := a.Store.TransitionDeploy(ctx, d.ID, store.StateRequested, next); err != nil {
		return err
	}
	d.State = next
	if !run.Report.Compliant && d.Emergency {
		if err := a.record(ctx, store.KindOverride, d.Repo, deploySubject(d.ID), overrideEvidence{
			DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA,
			By: d.Requester, Reason: d.Reason, CheckSeq: run.Seq, Violations: violationCodes(run.Report),
		}); err != nil {
			return err
		}
	} else if !run.Report.Compliant {
		if err := a.record(ctx, store.KindDeployRefused, d.Repo, deploySubject(d.ID), deployRefusedEvidence{
			DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA, BaseSHA: d.BaseSHA,
			Requester: d.Requester, CheckSeq: run.Seq, Reason: "not compliant", Violations: violationCodes(run.Report),
		}); err != nil {
			return err
		}
	}

	dg := a.digest(*d, run.Report, run.PolicyHash)
	dg.Buttons = next == store.StateReady
	root, thread := digestMessage(dg)
	ts, err := a.postMessage(ctx, a.Config.ReleaseChannel, "", root)
	if err != nil {
		return err
	}
	d.Channel, d.TS = a.Config.ReleaseChannel, ts
	if err := a.Store.UpdateDeploy(ctx, d.ID, func(x *store.Deploy) { x.Channel, x.TS = d.Channel, d.TS }); err != nil {
		return err
	}
	for _, m := range thread {
		if _, err := a.postMessage(ctx, d.Channel, ts, m); err != nil {
			return err
		}
	}
	if d.Emergency {
		return a.announceEmergency(ctx, *d, run.Report)
	}
	return nil
}

// resolve turns a ref into a SHA; a ref GitHub does not know is the person's mistake.
func (a *App) resolve(ctx context.Context, repo, ref string) (string, error) {
	sha, err := a.GitHub.ResolveRef(ctx, repo, ref)
	if errors.Is(err, github.ErrNotFound) {
		return "", tellf("%s has no branch, tag or commit `%s`.", repo, esc(ref))
	}
	if err != nil {
		return "", fmt.Errorf("resolve %s in %s: %w", ref, repo, err)
	}
	return sha, nil
}

func (a *App) digest(d store.Deploy, r compliance.Report, policyHash string) Digest {
	return Digest{
		DeployID: d.ID, Service: d.Service, Env: d.Environment, Repo: d.Repo, Ref: d.Ref,
		Requester: d.Requester, CompareURL: compareURL(r), Report: r, PolicyHash: policyHash,
		Emergency: d.Emergency, EmergencyReason: d.Reason,
	}
}

// publishFailure shows the failure report where the digest would have been and refuses the
// deploy: a check that did not finish is never a pass.
func (a *App) publishFailure(ctx context.Context, r replyTo, d *store.Deploy, cause error) error {
	f := Failure{Doing: fmt.Sprintf("check %s %s → %s", d.Service, esc(orHead(d.Ref)), d.Environment), Err: cause}
	a.log().WithError(cause).WithField("deploy_id", d.ID).Error("deploy check failed")
	note := "requested by " + mention(d.Requester)
	if d.ID != 0 {
		note = fmt.Sprintf("deploy #%d · %s", d.ID, note)
	}
	m := failureMessage(f, note)
	var errs []error
	if d.ID != 0 {
		for _, from := range []store.State{store.StateRequested, store.StateReady} {
			if ok, err := a.Store.TransitionDeploy(ctx, d.ID, from, store.StateFailed); err != nil || ok {
				errs = append(errs, err)
				break
			}
		}
		errs = append(errs, a.record(ctx, store.KindDeployRefused, d.Repo, deploySubject(d.ID), deployRefusedEvidence{
			DeployID: d.ID, Service: d.Service, Environment: d.Environment, HeadSHA: d.HeadSHA, BaseSHA: d.BaseSHA,
			Requester: d.Requester, CheckSeq: d.CheckSeq, Reason: "the check could not run", Error: cause.Error(),
		}))
	}
	if d.TS != "" {
		errs = append(errs, a.update(ctx, d.Channel, d.TS, m.Text, m.Blocks...))
	} else {
		ts, err := a.postMessage(ctx, a.Config.ReleaseChannel, "", m)
		errs = append(errs, err)
		if err == nil && d.ID != 0 {
			errs = append(errs, a.Store.UpdateDeploy(ctx, d.ID, func(x *store.Deploy) { x.Channel, x.TS = a.Config.ReleaseChannel, ts }))
		}
	}
	if r.channel != a.Config.ReleaseChannel {
		errs = append(errs, a.tell(ctx, r, fmt.Sprintf("sockembot could not %s, so the deploy is refused. The failure report is in <#%s>.", f.Doing, a.Config.ReleaseChannel)))
	}
	return errors.Join(errs...)
}

func violationCodes(r compliance.Report) []string {
	var out []string
	for _, c := range r.Changes {
		for _, v := range c.Violations {
			out = append(out, changeName(c)+" "+string(v.Code))
		}
	}
	return out
}

func lockedText(service, env string, l *store.EnvLock) string {
	return fmt.Sprintf("🔒 *%s* in *%s* is locked by %s since %s: %s\nNo deploys until `/deploy unlock %s %s`.",
		service, env, mention(l.By), l.At.UTC().Format("2006-01-02 15:04 MST"), esc(l.Reason), service, env)
}
