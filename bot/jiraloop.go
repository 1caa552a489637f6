package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/slack-go/slack"

	"sockembot/compliance"
	"sockembot/integrations/jira"
	"sockembot/integrations/store"
)

// TicketUpdater is what closing the loop asks of Jira.
type TicketUpdater interface {
	Comment(ctx context.Context, key, body string) error
	Transition(ctx context.Context, key, name string) (outcome jira.TransitionOutcome, status string, err error)
}

// jiraParallel bounds the Jira requests of one deploy's ticket updates.
const jiraParallel = 4

// jiraUpdateEvidence is the body of a jira_update record: what sockembot did to each ticket
// after a deploy succeeded, and what failed.
type jiraUpdateEvidence struct {
	DeployID           int64               `json:"deploy_id"`
	Service            string              `json:"service"`
	Environment        string              `json:"environment"`
	SHA                string              `json:"sha"`
	GitHubDeploymentID int64               `json:"github_deployment_id"`
	Transition         string              `json:"transition,omitempty"`
	Digest             string              `json:"digest,omitempty"`
	Tickets            []jiraTicketOutcome `json:"tickets"`
}

type jiraTicketOutcome struct {
	Key          string `json:"key"`
	Commented    bool   `json:"commented"`
	Transitioned bool   `json:"transitioned"`
	// LeftIn is the status a ticket was left in because it was there already, or finished in
	// another "Done" status (sockembot does not reopen or re-close a finished ticket).
	LeftIn string `json:"left_in,omitempty"`
	Error  string `json:"error,omitempty"`
}

// closeTheLoop tells each ticket of a successful deploy where it went, and moves it through the
// policy's deployed_transition. It is done once per deploy, however often or wherever GitHub's
// success status arrives: the jira_update record marks it done, and is claimed and written in
// one transaction after the Jira calls, so a run cut short (a crash, a lost database) is done
// again when the delivery is retried rather than never. A Jira failure is reported in the thread
// and recorded; it never undoes the deploy. Only a failure to record or report is returned.
func (a *App) closeTheLoop(ctx context.Context, d store.Deploy, ghID int64) error {
	check, err := a.checkRun(ctx, d)
	if err != nil {
		return err
	}
	keys := deployedTickets(check.Report)
	if len(keys) == 0 {
		return nil
	}
	if _, done, err := a.Store.LastRecord(ctx, store.KindJiraUpdate, deploySubject(d.ID)); err != nil || done {
		return err // a later success status of a deployment already dealt with
	}
	ev := jiraUpdateEvidence{
		DeployID: d.ID, Service: d.Service, Environment: d.Environment, SHA: d.HeadSHA,
		GitHubDeploymentID: ghID, Transition: check.Policy.Tickets.DeployedTransition,
		Digest: a.permalink(ctx, d), Tickets: make([]jiraTicketOutcome, len(keys)),
	}
	version := short(d.HeadSHA)
	if d.Ref != "" && d.Ref != d.HeadSHA {
		version = d.Ref + " (" + short(d.HeadSHA) + ")"
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
			ev.Tickets[i] = a.updateTicket(ctx, key, body, ev.Transition)
		}()
	}
	wg.Wait()
	_, first, err := a.Store.AppendOnce(ctx, "jira-loop", deploySubject(d.ID),
		store.Evidence{At: a.now(), Kind: store.KindJiraUpdate, Repo: d.Repo, Subject: deploySubject(d.ID), Body: ev})
	if err != nil || !first {
		return err // !first: another replica finished the same deploy's update at the same time
	}
	_, err = a.post(ctx, d.Channel, d.TS, jiraUpdateLine(ev))
	return err
}

func (a *App) updateTicket(ctx context.Context, key, body, transition string) (out jiraTicketOutcome) {
	out.Key = key
	err := Safely(func() error {
		if err := a.Jira.Comment(ctx, key, body); err != nil {
			return err
		}
		out.Commented = true
		if transition == "" {
			return nil
		}
		outcome, status, err := a.Jira.Transition(ctx, key, transition)
		if err != nil {
			return err
		}
		if outcome == jira.Moved {
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
func jiraUpdateLine(ev jiraUpdateEvidence) string {
	var ok, moved, left, failed []string
	for _, t := range ev.Tickets {
		switch {
		case t.Error != "":
			failed = append(failed, fmt.Sprintf("• *%s*: %s", t.Key, esc(t.Error)))
		default:
			ok = append(ok, t.Key)
			if t.Transitioned {
				moved = append(moved, t.Key)
			} else if t.LeftIn != "" {
				left = append(left, fmt.Sprintf("%s (%s)", t.Key, esc(t.LeftIn)))
			}
		}
	}
	var lines []string
	if len(ok) > 0 {
		l := fmt.Sprintf("📝 Jira: commented on %s", strings.Join(ok, ", "))
		if len(moved) > 0 {
			l += fmt.Sprintf("; moved %s to *%s*", strings.Join(moved, ", "), esc(ev.Transition))
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

// permalink links to a deploy's digest, or "" when Slack will not say.
func (a *App) permalink(ctx context.Context, d store.Deploy) string {
	if d.Channel == "" || d.TS == "" {
		return ""
	}
	var link string
	err := a.slackCall(ctx, func() error {
		var e error
		link, e = a.Slack.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: d.Channel, Ts: d.TS})
		return e
	})
	if err != nil {
		a.log().WithError(err).WithField("deploy_id", d.ID).Warn("slack: chat.getPermalink")
		return ""
	}
	return link
}

// checkRun reads back the check a deploy acted on, from its check_run evidence: the evidence,
// not memory, is what later steps use, on whichever replica they run.
func (a *App) checkRun(ctx context.Context, d store.Deploy) (CheckRunEvidence, error) {
	var ev CheckRunEvidence
	found := false
	err := a.Store.Records(ctx, store.KindCheckRun, d.HeadSHA, func(r store.Record) error {
		if r.Seq != d.CheckSeq {
			return nil
		}
		found = true
		return json.Unmarshal(r.Body, &ev)
	})
	if err != nil {
		return CheckRunEvidence{}, fmt.Errorf("read check run %d of deploy %d: %w", d.CheckSeq, d.ID, err)
	}
	if !found {
		return CheckRunEvidence{}, fmt.Errorf("check run %d of deploy %d: %w", d.CheckSeq, d.ID, store.ErrNotFound)
	}
	return ev, nil
}
