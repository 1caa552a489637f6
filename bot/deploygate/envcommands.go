package deploygate

import (
	"context"
	"fmt"
	"slices"
	"sockembot/bot/check"
	"sockembot/bot/deploygate/command"
	"sockembot/bot/render"
	"strings"
)

// `/deploy status`, `history`, `lock` and `unlock`: questions and holds about an environment.

// environments are the service's environments a status or history command asks about: the one
// named, or all of them. An unknown service or environment is an error to tell the user.
func (g *Gate) environments(cmd command.Command) (Service, []string, error) {
	svc, env, err := g.target(cmd)
	if err != nil {
		return Service{}, nil, err
	}
	if cmd.Env == "" {
		return svc, svc.Environments, nil
	}
	return svc, []string{env}, nil
}

// showStatus answers `/deploy status SERVICE [ENV]`.
func (g *Gate) showStatus(ctx context.Context, r replyTo, cmd command.Command) error {
	svc, envs, err := g.environments(cmd)
	if err != nil {
		return g.tell(ctx, r, answer(err))
	}
	lines := []string{fmt.Sprintf("*%s* (%s)", cmd.Service, svc.Repo)}
	for _, env := range envs {
		sha, id, found, err := g.GitHub.CurrentDeployment(ctx, svc.Repo, env)
		if err != nil {
			return check.Errorf("current deployment of %s to %s: %w", svc.Repo, env, err)
		}
		line := fmt.Sprintf("• *%s*: ", env)
		if found {
			line += fmt.Sprintf("%s (GitHub deployment %d)", render.Code(render.Short(sha)), id)
		} else {
			line += "nothing deployed yet"
		}
		lock, err := g.Store.GetLock(ctx, cmd.Service, env)
		if err != nil {
			return err
		}
		if lock != nil {
			line += fmt.Sprintf(" · 🔒 locked by %s: %s", render.Mention(lock.By), render.Esc(lock.Reason))
		}
		recent, err := g.Store.RecentDeploys(ctx, cmd.Service, env, 1)
		if err != nil {
			return err
		}
		if len(recent) > 0 {
			line += " · last request: " + g.historyLine(recent[0], r.teamDomain)
		}
		lines = append(lines, line)
	}
	return g.tell(ctx, r, strings.Join(lines, "\n"))
}

// showHistory answers `/deploy history SERVICE [ENV]`.
func (g *Gate) showHistory(ctx context.Context, r replyTo, cmd command.Command) error {
	_, envs, err := g.environments(cmd)
	if err != nil {
		return g.tell(ctx, r, answer(err))
	}
	var all []Deploy
	for _, env := range envs {
		ds, err := g.Store.RecentDeploys(ctx, cmd.Service, env, historySize)
		if err != nil {
			return err
		}
		all = append(all, ds...)
	}
	slices.SortFunc(all, func(x, y Deploy) int { return int(y.ID - x.ID) })
	if len(all) > historySize {
		all = all[:historySize]
	}
	where := strings.Join(envs, ", ")
	if len(all) == 0 {
		return g.tell(ctx, r, fmt.Sprintf("No deploys of *%s* to %s yet.", cmd.Service, where))
	}
	lines := []string{fmt.Sprintf("*Last %d deploy %s of %s* (%s)", len(all), render.Plural(len(all), "request", "requests"), cmd.Service, where)}
	for _, d := range all {
		lines = append(lines, "• "+g.historyLine(d, r.teamDomain))
	}
	return g.tell(ctx, r, strings.Join(lines, "\n"))
}

func (g *Gate) historyLine(d Deploy, teamDomain string) string {
	what := render.Esc(render.OrHead(d.Ref))
	if d.HeadSHA != "" {
		what = render.Code(render.Short(d.HeadSHA)) + " " + what
	}
	line := fmt.Sprintf("#%d %s %s → %s by %s: %s", d.ID, d.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"),
		what, d.Environment, render.Mention(d.Requester), stateWords(d.State))
	if d.GitHubDeploymentID != 0 {
		line += fmt.Sprintf(" (GitHub deployment %d)", d.GitHubDeploymentID)
	}
	if link := permalink(teamDomain, d.Channel, d.TS); link != "" {
		line += " · " + render.Link(link, "thread")
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
func (g *Gate) lockCommand(ctx context.Context, r replyTo, cmd command.Command) error {
	svc, env, err := g.target(cmd)
	if err != nil {
		return g.tell(ctx, r, answer(err))
	}
	action := string(cmd.Kind)
	ok, err := g.mayDeploy(ctx, r.user, env)
	if err != nil {
		return err
	}
	if !ok {
		if err := g.denied(ctx, svc.Repo, AttemptDeniedEvidence{Service: cmd.Service, Environment: env, User: r.user, Action: action, Reason: "not a deployer", Channel: r.channel}); err != nil {
			return err
		}
		return g.tell(ctx, r, fmt.Sprintf("Only deployers for *%s* may %s it (%s).", env, action, g.deployersText(env)))
	}
	if cmd.Kind == command.CmdUnlock {
		was, err := g.Store.Unlock(ctx, cmd.Service, env)
		if err != nil {
			return err
		}
		if !was {
			return g.tell(ctx, r, fmt.Sprintf("*%s* in *%s* was not locked.", cmd.Service, env))
		}
		_, err = g.post(ctx, g.Config.ReleaseChannel, "", fmt.Sprintf("🔓 %s unlocked *%s* in *%s*: deploys may go ahead.", render.Mention(r.user), cmd.Service, env))
		return err
	}
	locked, existing, err := g.Store.Lock(ctx, cmd.Service, env, r.user, cmd.Reason)
	if err != nil {
		return err
	}
	if !locked {
		return g.tell(ctx, r, lockedText(cmd.Service, env, existing))
	}
	_, err = g.post(ctx, g.Config.ReleaseChannel, "", fmt.Sprintf("🔒 %s locked *%s* in *%s*: %s\nNo deploys there until `/deploy unlock %s %s`.", render.Mention(r.user), cmd.Service, env, render.Esc(cmd.Reason), cmd.Service, env))
	return err
}
