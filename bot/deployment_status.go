package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	gh "github.com/google/go-github/v62/github"

	"sockembot/integrations/store"
)

// errNotOurs marks a deployment sockembot did not create; its statuses are ignored.
var errNotOurs = errors.New("not a sockembot deployment")

// onDeploymentStatus threads a GitHub deployment_status under the digest of the deploy that
// created the deployment, and records it. The merge gate's webhook workers call it; an error
// makes them retry the delivery.
func (a *App) onDeploymentStatus(ctx context.Context, ev *gh.DeploymentStatusEvent) error {
	repo := ev.GetRepo().GetFullName()
	ghID := ev.GetDeployment().GetID()
	st := ev.GetDeploymentStatus()
	d, err := a.deployOf(ctx, repo, ghID, ev.GetDeployment().Payload)
	if errors.Is(err, errNotOurs) {
		a.log().WithField("repo", repo).WithField("deployment", ghID).Debug("deployment_status for a deployment sockembot did not make")
		return nil
	}
	if err != nil {
		return err
	}
	// One status at a time per deploy, on any replica: "is this the newest" and acting on it
	// must not interleave with another status of the same deploy.
	unlock, err := a.lockPR(ctx, "status:"+deploySubject(d.ID))
	if err != nil {
		return err
	}
	defer unlock()
	state := st.GetState()
	// Recorded once per status, however often the delivery is retried or a second hook sends it.
	statusKey := fmt.Sprintf("%s/%d/%d", repo, ghID, st.GetID())
	if _, _, err := a.Store.AppendOnce(ctx, store.KindDeploymentStatus, statusKey, store.Evidence{
		At: a.now(), Kind: store.KindDeploymentStatus, Repo: d.Repo, Subject: deploySubject(d.ID), Body: deploymentStatusEvidence{
			DeployID: d.ID, Service: d.Service, Environment: d.Environment, GitHubDeploymentID: ghID,
			StatusID: st.GetID(), State: state, Description: st.GetDescription(), LogURL: statusURL(st),
			Creator: st.GetCreator().GetLogin(), SHA: ev.GetDeployment().GetSHA(),
		}}); err != nil {
		return fmt.Errorf("record %s: %w", store.KindDeploymentStatus, err)
	}
	// GitHub numbers a deployment's statuses in order but does not deliver webhooks in order, and
	// several workers run at once: only the newest status moves the deploy and its digest. An
	// older one arriving late is history, for the thread and the evidence only.
	newest, err := a.newestStatus(ctx, d, ghID, st.GetID())
	if err != nil {
		return err
	}
	if newest {
		switch state {
		case "failure", "error":
			if _, err := a.Store.TransitionDeploy(ctx, d.ID, store.StateDeployed, store.StateFailed); err != nil {
				return err
			}
		case "success":
			// A deployment the CD system retried after a failure succeeded after all.
			if _, err := a.Store.TransitionDeploy(ctx, d.ID, store.StateFailed, store.StateDeployed); err != nil {
				return err
			}
		}
	}
	line := fmt.Sprintf("%s GitHub deployment %d to *%s*: *%s*", statusEmoji(state), ghID, d.Environment, strings.ReplaceAll(state, "_", " "))
	if desc := st.GetDescription(); desc != "" {
		line += " — " + esc(desc)
	}
	if u := statusURL(st); u != "" {
		line += fmt.Sprintf(" · <%s|logs>", u)
	}
	if by := st.GetCreator().GetLogin(); by != "" {
		line += " (by " + esc(by) + ")"
	}
	channel, thread := d.Channel, d.TS
	if channel == "" {
		channel = a.Config.ReleaseChannel
	}
	if !newest {
		line += " _(reported late: a newer status came first)_"
	}
	if err := a.postOnceTo(ctx, "status:"+statusKey, channel, thread, func() (string, error) { return line, nil }); err != nil {
		return err
	}
	if !newest {
		return nil
	}
	status := fmt.Sprintf("%s *%s* · GitHub deployment %d: %s", statusEmoji(state), statusHeadline(state), ghID, strings.ReplaceAll(state, "_", " "))
	if who, err := a.confirmation(ctx, d); err != nil {
		return err
	} else if who != "" {
		status += " · " + who
	}
	if err := a.updateRoot(ctx, d, status); err != nil {
		return err
	}
	if state == "success" {
		return a.closeTheLoop(ctx, d, ghID)
	}
	return nil
}

// newestStatus reports whether no status GitHub numbered after id was recorded for deployment
// ghID of d.
func (a *App) newestStatus(ctx context.Context, d store.Deploy, ghID, id int64) (bool, error) {
	newest := true
	err := a.Store.Records(ctx, store.KindDeploymentStatus, deploySubject(d.ID), func(r store.Record) error {
		var ev deploymentStatusEvidence
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			return fmt.Errorf("read deployment_status %d: %w", r.Seq, err)
		}
		if ev.GitHubDeploymentID == ghID && ev.StatusID > id {
			newest = false
		}
		return nil
	})
	return newest, err
}

// confirmation says who pressed Deploy and when, from the evidence.
func (a *App) confirmation(ctx context.Context, d store.Deploy) (string, error) {
	rec, found, err := a.Store.LastRecord(ctx, store.KindDeployConfirmed, deploySubject(d.ID))
	if err != nil || !found {
		return "", err
	}
	var ev deployDecisionEvidence
	if err := json.Unmarshal(rec.Body, &ev); err != nil {
		return "", fmt.Errorf("read deploy_confirmed %d: %w", rec.Seq, err)
	}
	return fmt.Sprintf("confirmed by %s at %s", mention(ev.By), ev.At.UTC().Format("15:04 MST")), nil
}

func statusHeadline(state string) string {
	switch state {
	case "success":
		return "Deployed"
	case "failure", "error":
		return "Deploy failed"
	case "inactive":
		return "Superseded"
	}
	return "Deploying"
}

// deployOf finds the deploy behind a GitHub deployment. The payload names it (the deployment
// may arrive before its id is saved), but anyone with write access can create a deployment
// with any payload, so the claim is checked against the deploy.
func (a *App) deployOf(ctx context.Context, repo string, ghID int64, payload json.RawMessage) (store.Deploy, error) {
	var p deploymentPayload
	if len(payload) > 0 && json.Unmarshal(payload, &p) == nil && p.Sockembot.DeployID != 0 {
		d, err := a.Store.GetDeploy(ctx, p.Sockembot.DeployID)
		if errors.Is(err, store.ErrNotFound) {
			return store.Deploy{}, errNotOurs
		}
		if err != nil {
			return store.Deploy{}, err
		}
		switch {
		case d.Repo != repo:
			return store.Deploy{}, errNotOurs
		case d.GitHubDeploymentID == ghID:
			return d, nil
		case d.GitHubDeploymentID == 0 && d.State == store.StateConfirming:
			// Created but not saved yet: retry the delivery once it is.
			return store.Deploy{}, fmt.Errorf("deploy %d: GitHub deployment %d not recorded yet", d.ID, ghID)
		default:
			return store.Deploy{}, errNotOurs
		}
	}
	d, err := a.Store.DeployByGitHubID(ctx, repo, ghID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Deploy{}, errNotOurs
	}
	return d, err
}

// statusURL is the status's log link, when it is a plain http(s) URL: whoever can write a
// deployment status chooses it, and a "|" or ">" in it would break out of Slack's <url|text>.
func statusURL(st *gh.DeploymentStatus) string {
	u := st.GetLogURL()
	if u == "" {
		u = st.GetTargetURL()
	}
	if !(strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")) || strings.ContainsAny(u, "<>| \n") {
		return ""
	}
	return u
}

func statusEmoji(state string) string {
	switch state {
	case "success":
		return "✅"
	case "failure", "error":
		return "❌"
	case "in_progress":
		return "🔄"
	case "inactive":
		return "💤"
	}
	return "⏳"
}
