// Package rollout follows a sockembot deployment once GitHub has it: each deployment_status the
// CD system reports goes into the digest's thread and the evidence, the newest one moves the
// deploy and its digest, and a success closes the loop in Jira (a comment on every ticket, and
// the policy's deployed_transition).
package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sockembot/bot/check"
	"sockembot/bot/deploygate"
	"sockembot/bot/render"
	"sockembot/compliance"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"
)

// Slack is what a rollout says, and where.
type Slack interface {
	Post(ctx context.Context, channel, thread, text string, blocks ...slack.Block) (ts string, err error)
	Permalink(ctx context.Context, channel, ts string) (string, error)
}

// Jira is what closing the loop after a deploy asks of Jira.
type Jira interface {
	Comment(ctx context.Context, key, body string) error
	// Transition moves an issue through the transition (or to the status) called name; moved is
	// false when it was there already or finished. status is where it was.
	Transition(ctx context.Context, key, name string) (moved bool, status string, err error)
}

// Store is what a rollout reads and records.
type Store interface {
	AppendOnce(ctx context.Context, scope, key string, e compliance.Evidence) (compliance.Record, bool, error)
	Records(ctx context.Context, kind, subject string, fn func(compliance.Record) error) error
	LastRecord(ctx context.Context, kind, subject string) (compliance.Record, bool, error)
	GetDeploy(ctx context.Context, id int64) (deploygate.Deploy, error)
	DeployByGitHubID(ctx context.Context, repo string, ghID int64) (deploygate.Deploy, error)
	TransitionDeploy(ctx context.Context, id int64, from, to deploygate.State) (ok bool, err error)
}

// Digests re-renders a deploy's digest with a status line (the deploy gate).
type Digests interface {
	UpdateDigest(ctx context.Context, d deploygate.Deploy, status string) error
}

// Rollout follows sockembot's deployments.
type Rollout struct {
	ReleaseChannel string // where statuses go for a deploy whose digest is unknown
	Slack          Slack
	Jira           Jira
	Store          Store
	Digests        Digests
	Locks          deploygate.Locks
	Notices        deploygate.Notices
	Log            *logrus.Logger
	Now            func() time.Time
}

func (r *Rollout) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func (r *Rollout) log() *logrus.Logger {
	if r.Log == nil {
		r.Log = logrus.New()
	}
	return r.Log
}

// permalink links to a digest, or "" when Slack will not say.
func (r *Rollout) permalink(ctx context.Context, channel, ts string) string {
	if channel == "" || ts == "" {
		return ""
	}
	link, err := r.Slack.Permalink(ctx, channel, ts)
	if err != nil {
		r.log().WithError(err).Warn("slack: chat.getPermalink")
		return ""
	}
	return link
}

// errNotOurs marks a deployment sockembot did not create; its statuses are ignored.
var errNotOurs = errors.New("not a sockembot deployment")

// OnDeploymentStatus threads a GitHub deployment_status under the digest of the deploy that
// created the deployment, and records it. The runtime's webhook workers call it; an error makes
// them retry the delivery.
func (r *Rollout) OnDeploymentStatus(ctx context.Context, ev compliance.DeploymentStatusEvent) error {
	repo, ghID := ev.Repo, ev.DeploymentID
	d, err := r.deployOf(ctx, repo, ghID, ev.Payload)
	if errors.Is(err, errNotOurs) {
		r.log().WithField("repo", repo).WithField("deployment", ghID).Debug("deployment_status for a deployment sockembot did not make")
		return nil
	}
	if err != nil {
		return err
	}
	// One status at a time per deploy, on any replica: "is this the newest" and acting on it
	// must not interleave with another status of the same deploy.
	unlock, err := r.Locks.Lock(ctx, "status:"+deploygate.Subject(d.ID))
	if err != nil {
		return err
	}
	defer unlock()
	state := ev.State
	// Recorded once per status, however often the delivery is retried or a second hook sends it.
	statusKey := fmt.Sprintf("%s/%d/%d", repo, ghID, ev.StatusID)
	if _, _, err := r.Store.AppendOnce(ctx, compliance.EvidenceDeploymentStatus, statusKey, compliance.Evidence{
		At: r.now(), Kind: compliance.EvidenceDeploymentStatus, Repo: d.Repo, Subject: deploygate.Subject(d.ID), Body: deploygate.DeploymentStatusEvidence{
			DeployID: d.ID, Service: d.Service, Environment: d.Environment, GitHubDeploymentID: ghID,
			StatusID: ev.StatusID, State: state, Description: ev.Description, LogURL: statusURL(ev),
			Creator: ev.Creator, SHA: ev.SHA,
		}}); err != nil {
		return check.Errorf("record %s: %w", compliance.EvidenceDeploymentStatus, err)
	}
	// GitHub numbers a deployment's statuses in order but does not deliver webhooks in order, and
	// several workers run at once: only the newest status moves the deploy and its digest. An
	// older one arriving late is history, for the thread and the evidence only.
	newest, err := r.newestStatus(ctx, d, ghID, ev.StatusID)
	if err != nil {
		return err
	}
	if newest {
		switch state {
		case "failure", "error":
			if _, err := r.Store.TransitionDeploy(ctx, d.ID, deploygate.StateDeployed, deploygate.StateFailed); err != nil {
				return err
			}
		case "success":
			// A deployment the CD system retried after a failure succeeded after all.
			if _, err := r.Store.TransitionDeploy(ctx, d.ID, deploygate.StateFailed, deploygate.StateDeployed); err != nil {
				return err
			}
		}
	}
	line := fmt.Sprintf("%s GitHub deployment %d to *%s*: *%s*", statusEmoji(state), ghID, render.Esc(d.Environment), render.Esc(strings.ReplaceAll(state, "_", " ")))
	if desc := ev.Description; desc != "" {
		line += " — " + render.Esc(desc)
	}
	if u := statusURL(ev); u != "" {
		line += " · " + render.Link(u, "logs")
	}
	if by := ev.Creator; by != "" {
		line += " (by " + render.Esc(by) + ")"
	}
	channel, thread := d.Channel, d.TS
	if channel == "" {
		channel = r.ReleaseChannel
	}
	if !newest {
		line += " _(reported late: a newer status came first)_"
	}
	if err := r.Notices.PostOnce(ctx, "status:"+statusKey, channel, thread, func() (string, error) { return line, nil }); err != nil {
		return err
	}
	if !newest {
		return nil
	}
	status := fmt.Sprintf("%s *%s* · GitHub deployment %d: %s", statusEmoji(state), statusHeadline(state), ghID, render.Esc(strings.ReplaceAll(state, "_", " ")))
	if who, err := r.confirmation(ctx, d); err != nil {
		return err
	} else if who != "" {
		status += " · " + who
	}
	if err := r.Digests.UpdateDigest(ctx, d, status); err != nil {
		return err
	}
	if state == "success" {
		return r.CloseTheLoop(ctx, d, ghID)
	}
	return nil
}

// newestStatus reports whether no status GitHub numbered after id was recorded for deployment
// ghID of d.
func (r *Rollout) newestStatus(ctx context.Context, d deploygate.Deploy, ghID, id int64) (bool, error) {
	newest := true
	err := r.Store.Records(ctx, compliance.EvidenceDeploymentStatus, deploygate.Subject(d.ID), func(r compliance.Record) error {
		var ev deploygate.DeploymentStatusEvidence
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			return check.Errorf("read deployment_status %d: %w", r.Seq, err)
		}
		if ev.GitHubDeploymentID == ghID && ev.StatusID > id {
			newest = false
		}
		return nil
	})
	return newest, err
}

// confirmation says who pressed Deploy and when, from the evidence.
func (r *Rollout) confirmation(ctx context.Context, d deploygate.Deploy) (string, error) {
	rec, found, err := r.Store.LastRecord(ctx, compliance.EvidenceDeployConfirmed, deploygate.Subject(d.ID))
	if err != nil || !found {
		return "", err
	}
	var ev deploygate.DeployDecisionEvidence
	if err := json.Unmarshal(rec.Body, &ev); err != nil {
		return "", check.Errorf("read deploy_confirmed %d: %w", rec.Seq, err)
	}
	return fmt.Sprintf("confirmed by %s at %s", render.Mention(ev.By), ev.At.UTC().Format("15:04 MST")), nil
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
func (r *Rollout) deployOf(ctx context.Context, repo string, ghID int64, payload json.RawMessage) (deploygate.Deploy, error) {
	var p deploygate.DeploymentPayload
	if len(payload) > 0 && json.Unmarshal(payload, &p) == nil && p.Sockembot.DeployID != 0 {
		d, err := r.Store.GetDeploy(ctx, p.Sockembot.DeployID)
		if errors.Is(err, compliance.ErrNotFound) {
			return deploygate.Deploy{}, errNotOurs
		}
		if err != nil {
			return deploygate.Deploy{}, err
		}
		switch {
		case d.Repo != repo:
			return deploygate.Deploy{}, errNotOurs
		case d.GitHubDeploymentID == ghID:
			return d, nil
		case d.GitHubDeploymentID == 0 && d.State == deploygate.StateConfirming:
			// Created but not saved yet: retry the delivery once it is.
			return deploygate.Deploy{}, fmt.Errorf("deploy %d: GitHub deployment %d not recorded yet", d.ID, ghID)
		default:
			return deploygate.Deploy{}, errNotOurs
		}
	}
	d, err := r.Store.DeployByGitHubID(ctx, repo, ghID)
	if errors.Is(err, compliance.ErrNotFound) {
		return deploygate.Deploy{}, errNotOurs
	}
	return d, err
}

// statusURL is the status's log link (its target URL when it has none), when it is a plain
// http(s) URL that Slack can link to (render.URL): whoever can write a deployment status chooses
// it. The evidence records the same.
func statusURL(ev compliance.DeploymentStatusEvent) string {
	u := ev.LogURL
	if u == "" {
		u = ev.TargetURL
	}
	return render.URL(u)
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

// jiraParallel bounds the Jira requests of one deploy's ticket updates.
const jiraParallel = 4

// JiraUpdateEvidence is the body of a jira_update record: what sockembot did to each ticket
// after a deploy succeeded, and what failed.
type JiraUpdateEvidence struct {
	DeployID           int64               `json:"deploy_id"`
	Service            string              `json:"service"`
	Environment        string              `json:"environment"`
	SHA                string              `json:"sha"`
	GitHubDeploymentID int64               `json:"github_deployment_id"`
	Transition         string              `json:"transition,omitempty"`
	Digest             string              `json:"digest,omitempty"`
	Tickets            []JiraTicketOutcome `json:"tickets"`
}

type JiraTicketOutcome struct {
	Key          string `json:"key"`
	Commented    bool   `json:"commented"`
	Transitioned bool   `json:"transitioned"`
	// LeftIn is the status a ticket was left in because it was there already, or finished in
	// another "Done" status (sockembot does not reopen or re-close a finished ticket).
	LeftIn string `json:"left_in,omitempty"`
	Error  string `json:"error,omitempty"`
}

// CloseTheLoop tells each ticket of a successful deploy where it went, and moves it through the
// policy's deployed_transition. It is done once per deploy, however often or wherever GitHub's
// success status arrives: the jira_update record marks it done, and is claimed and written in
// one transaction after the Jira calls, so a run cut short (a crash, a lost database) is done
// again when the delivery is retried rather than never. A Jira failure is reported in the thread
// and recorded; it never undoes the deploy. Only a failure to record or report is returned.
func (r *Rollout) CloseTheLoop(ctx context.Context, d deploygate.Deploy, ghID int64) error {
	checked, err := deploygate.CheckRunOf(ctx, r.Store, d)
	if err != nil {
		return err
	}
	keys := deployedTickets(checked.Report)
	if len(keys) == 0 {
		return nil
	}
	if _, done, err := r.Store.LastRecord(ctx, compliance.EvidenceJiraUpdate, deploygate.Subject(d.ID)); err != nil || done {
		return err // a later success status of a deployment already dealt with
	}
	ev := JiraUpdateEvidence{
		DeployID: d.ID, Service: d.Service, Environment: d.Environment, SHA: d.HeadSHA,
		GitHubDeploymentID: ghID, Transition: checked.Policy.Tickets.DeployedTransition,
		Digest: r.permalink(ctx, d.Channel, d.TS), Tickets: make([]JiraTicketOutcome, len(keys)),
	}
	version := render.Short(d.HeadSHA)
	if d.Ref != "" && d.Ref != d.HeadSHA {
		version = d.Ref + " (" + render.Short(d.HeadSHA) + ")"
	}
	body := fmt.Sprintf("Deployed to %s: %s %s, GitHub deployment %d, via sockembot.", d.Environment, d.Service, version, ghID)
	if ev.Digest != "" {
		body += "\nDigest: " + ev.Digest
	}
	sem := make(chan struct{}, jiraParallel)
	var wg sync.WaitGroup
	for i, key := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ev.Tickets[i] = r.updateTicket(ctx, key, body, ev.Transition)
		}()
	}
	wg.Wait()
	_, first, err := r.Store.AppendOnce(ctx, "jira-loop", deploygate.Subject(d.ID),
		compliance.Evidence{At: r.now(), Kind: compliance.EvidenceJiraUpdate, Repo: d.Repo, Subject: deploygate.Subject(d.ID), Body: ev})
	if err != nil || !first {
		return err // !first: another replica finished the same deploy's update at the same time
	}
	_, err = r.Slack.Post(ctx, d.Channel, d.TS, jiraUpdateLine(ev))
	err = check.Trace(err)
	return err
}

func (r *Rollout) updateTicket(ctx context.Context, key, body, transition string) (out JiraTicketOutcome) {
	out.Key = key
	err := check.Safely(func() error {
		if err := r.Jira.Comment(ctx, key, body); err != nil {
			return err
		}
		out.Commented = true
		if transition == "" {
			return nil
		}
		moved, status, err := r.Jira.Transition(ctx, key, transition)
		if err != nil {
			return err
		}
		if moved {
			out.Transitioned = true
		} else {
			out.LeftIn = status
		}
		return nil
	})
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

// jiraUpdateLine is the thread's account of the ticket updates.
func jiraUpdateLine(ev JiraUpdateEvidence) string {
	var ok, moved, left, failed []string
	for _, t := range ev.Tickets {
		switch {
		case t.Error != "":
			failed = append(failed, fmt.Sprintf("• *%s*: %s", render.Esc(t.Key), render.Esc(t.Error)))
		default:
			ok = append(ok, t.Key)
			if t.Transitioned {
				moved = append(moved, t.Key)
			} else if t.LeftIn != "" {
				left = append(left, fmt.Sprintf("%s (%s)", render.Esc(t.Key), render.Esc(t.LeftIn)))
			}
		}
	}
	var lines []string
	if len(ok) > 0 {
		l := fmt.Sprintf("📝 Jira: commented on %s", render.Esc(strings.Join(ok, ", ")))
		if len(moved) > 0 {
			l += fmt.Sprintf("; moved %s to *%s*", render.Esc(strings.Join(moved, ", ")), render.Esc(ev.Transition))
		}
		if len(left) > 0 {
			l += fmt.Sprintf("; left as they were (already there, or finished): %s", strings.Join(left, ", "))
		}
		lines = append(lines, l+".")
	}
	if len(failed) > 0 {
		lines = append(lines, fmt.Sprintf("⚠️ Jira: could not update %d ticket(s); the deploy stands, update them by hand:", len(failed)))
		lines = append(lines, failed...)
	}
	return strings.Join(lines, "\n")
}

// deployedTickets are the keys of the tickets Jira knew, across a report's changes, sorted.
func deployedTickets(r compliance.Report) []string {
	var keys []string
	for _, c := range r.Changes {
		for _, t := range c.Tickets {
			if t.Found && !slices.Contains(keys, t.Key) {
				keys = append(keys, t.Key)
			}
		}
	}
	slices.Sort(keys)
	return keys
}
