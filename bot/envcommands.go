package bot

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"sockembot/integrations/store"
)

// `/deploy status`, `history`, `lock` and `unlock`: questions and holds about an environment.

// environments are the service's environments a status or history command asks about: the one
// named, or all of them. An unknown service or environment is an error to tell the user.
func (a *App) environments(cmd Command) (Service, []string, error) {
	svc, env, err := a.target(cmd)
	if err != nil {
		return Service{}, nil, err
	}
	if cmd.Env == "" {
		return svc, svc.Environments, nil
	}
	return svc, []string{env}, nil
}

// showStatus answers `/deploy status SERVICE [ENV]`.
func (a *App) showStatus(ctx context.Context, r replyTo, cmd Command) error {
	svc, envs, err := a.environments(cmd)
	if err != nil {
		return a.tell(ctx, r, err.Error())
	}
	lines := []string{fmt.Sprintf("*%s* (%s)", cmd.Service, svc.Repo)}
	for _, env := range envs {
		sha, id, found, err := a.GitHub.CurrentDeployment(ctx, svc.Repo, env)
		if err != nil {
			return fmt.Errorf("current deployment of %s to %s: %w", svc.Repo, env, err)
		}
		line := fmt.Sprintf("• *%s*: ", env)
		if found {
			line += fmt.Sprintf("`%s` (GitHub deployment %d)", short(sha), id)
		} else {
			line += "nothing deployed yet"
		}
		lock, err := a.Store.GetLock(ctx, cmd.Service, env)
		if err != nil {
			return err
		}
		if lock != nil {
			line += fmt.Sprintf(" · 🔒 locked by %s: %s", mention(lock.By), esc(lock.Reason))
		}
		recent, err := a.Store.RecentDeploys(ctx, cmd.Service, env, 1)
		if err != nil {
			return err
		}
		if len(recent) > 0 {
			line += " · last request: " + a.historyLine(recent[0], r.teamDomain)
		}
		lines = append(lines, line)
	}
	return a.tell(ctx, r, strings.Join(lines, "\n"))
}

// showHistory answers `/deploy history SERVICE [ENV]`.
func (a *App) showHistory(ctx context.Context, r replyTo, cmd Command) error {
	_, envs, err := a.environments(cmd)
	if err != nil {
		return a.tell(ctx, r, err.Error())
	}
	var all []store.Deploy
	for _, env := range envs {
		ds, err := a.Store.RecentDeploys(ctx, cmd.Service, env, historySize)
		if err != nil {
			return err
		}
		all = append(all, ds...)
	}
	slices.SortFunc(all, func(x, y store.Deploy) int { return int(y.ID - x.ID) })
	if len(all) > historySize {
		all = all[:historySize]
	}
	where := strings.Join(envs, ", ")
	if len(all) == 0 {
		return a.tell(ctx, r, fmt.Sprintf("No deploys of *%s* to %s yet.", cmd.Service, where))
	}
	lines := []string{fmt.Sprintf("*Last %d deploy %s of %s* (%s)", len(all), plural(len(all), "request", "requests"), cmd.Service, where)}
	for _, d := range all {
		lines = append(lines, "• "+a.historyLine(d, r.teamDomain))
	}
	return a.tell(ctx, r, strings.Join(lines, "\n"))
}

func (a *App) historyLine(d store.Deploy, teamDomain string) string {
	what := esc(orHead(d.Ref))
	if d.HeadSHA != "" {
		what = fmt.Sprintf("`%s` %s", short(d.HeadSHA), what)
	}
	line := fmt.Sprintf("#%d %s %s → %s by %s: %s", d.ID, d.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"),
		what, d.Environment, mention(d.Requester), stateWords(d.State))
	if d.GitHubDeploymentID != 0 {
		line += fmt.Sprintf(" (GitHub deployment %d)", d.GitHubDeploymentID)
	}
	if link := permalink(teamDomain, d.Channel, d.TS); link != "" {
		line += fmt.Sprintf(" · <%s|thread>", link)
	}
	return line
}

// permalink builds a message link without a Web API call: Slack's permalinks have this shape.
func permalink(teamDomain, channel, ts string) string {
	if teamDomain == "" || channel == "" || ts == "" {
		return ""
	}
	return fmt.Sprintf("https://%s.slack.com/archives/%s/p%s", teamDomain, channel, strings.ReplaceAll(ts, ".", ""))
}

// lockCommand answers `/deploy lock|unlock SERVICE ENV [REASON]`. Only deployers of the
// environment may lock it: a lock stops everybody's deploys.
func (a *App) lockCommand(ctx context.Context, r replyTo, cmd Command) error {
	svc, env, err := a.target(cmd)
	if err != nil {
		return a.tell(ctx, r, err.Error())
	}
	action := string(cmd.Kind)
	ok, err := a.mayDeploy(ctx, r.user, env)
	if err != nil {
		return err
	}
	if !ok {
		if err := a.denied(ctx, svc.Repo, attemptDeniedEvidence{Service: cmd.Service, Environment: env, User: r.user, Action: action, Reason: "not a deployer", Channel: r.channel}); err != nil {
			return err
		}
		return a.tell(ctx, r, fmt.Sprintf("Only deployers for *%s* may %s it (%s).", env, action, a.deployersText(env)))
	}
	if cmd.Kind == CmdUnlock {
		was, err := a.Store.Unlock(ctx, cmd.Service, env)
		if err != nil {
			return err
		}
		if !was {
			return a.tell(ctx, r, fmt.Sprintf("*%s* in *%s* was not locked.", cmd.Service, env))
		}
		_, err = a.post(ctx, a.Config.ReleaseChannel, "", fmt.Sprintf("🔓 %s unlocked *%s* in *%s*: deploys may go ahead.", mention(r.user), cmd.Service, env))
		return err
	}
	locked, existing, err := a.Store.Lock(ctx, cmd.Service, env, r.user, cmd.Reason)
	if err != nil {
		return err
	}
	if !locked {
		return a.tell(ctx, r, lockedText(cmd.Service, env, existing))
	}
	_, err = a.post(ctx, a.Config.ReleaseChannel, "", fmt.Sprintf("🔒 %s locked *%s* in *%s*: %s\nNo deploys there until `/deploy unlock %s %s`.", mention(r.user), cmd.Service, env, esc(cmd.Reason), cmd.Service, env))
	return err
}
