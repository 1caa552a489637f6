package fakegithub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// ActionsRun is a GitHub Actions workflow run whose job deploys to an environment with a
// custom deployment protection rule, waiting for the App to review it (what the
// deployment_protection_rule event announces).
type ActionsRun struct {
	RunID        int64
	DeploymentID int64
	// CallbackURL is the event's deployment_callback_url: POST the review there.
	CallbackURL string
	RunURL      string // the run's page
}

// ProtectionReview is an App's answer to a deployment protection rule.
type ProtectionReview struct {
	Repo        string // owner/name
	RunID       int64
	Environment string
	State       string // approved or rejected
	Comment     string
	AppID       int64
}

// ActionsBot is the account GitHub Actions writes deployment statuses as.
const ActionsBot = "github-actions[bot]"

type actionsRun struct {
	id         int64
	deployment *Deployment
	env        string
	reviewed   bool
}

// WaitingRun starts an Actions workflow run, triggered by actor, whose job deploys sha (ref)
// to env and waits on a custom deployment protection rule: it creates the deployment (creator
// actor) with one "waiting" status by ActionsBot, and returns the run with the callback URL
// the App reviews it at.
func (r *Repo) WaitingRun(env, sha, ref, actor string) ActionsRun {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	run := &actionsRun{id: r.s.newID(), env: env}
	runURL := fmt.Sprintf("%s/actions/runs/%d", r.htmlURL(), run.id)
	run.deployment = r.addDeployment(sha, ref, "deploy", env, "", json.RawMessage(`{}`), actor)
	r.addDeploymentStatus(run.deployment, "waiting", "", runURL, ActionsBot)
	r.runs[run.id] = run
	return ActionsRun{
		RunID: run.id, DeploymentID: run.deployment.ID, RunURL: runURL,
		CallbackURL: fmt.Sprintf("%s/actions/runs/%d/deployment_protection_rule", r.apiURL(), run.id),
	}
}

// ProtectionReviews returns the reviews of deployment protection rules the App posted, oldest
// first.
func (s *Server) ProtectionReviews() []ProtectionReview {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ProtectionReview(nil), s.reviews...)
}

// reviewProtectionRule answers POST /repos/{owner}/{repo}/actions/runs/{id}/
// deployment_protection_rule (GitHub Apps only): 204, once per run and environment. An
// approval lets the job go on (deployment status in_progress), a rejection fails it
// (failure).
func (s *Server) reviewProtectionRule(req *http.Request, p map[string]string) reply {
	if refused := s.appOnly(); refused != nil {
		return *refused
	}
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	id, _ := strconv.ParseInt(p["id"], 10, 64)
	run := r.runs[id]
	if run == nil {
		return notFound()
	}
	var in struct {
		EnvironmentName *string `json:"environment_name"`
		State           *string `json:"state"`
		Comment         string  `json:"comment"`
	}
	if bad := decode(req, &in); bad != nil {
		return *bad
	}
	if in.EnvironmentName == nil || *in.EnvironmentName == "" {
		return *invalid(`"environment_name" wasn't supplied.`)
	}
	if in.State == nil {
		return *invalid(`"state" wasn't supplied.`)
	}
	if bad := oneOf("state", *in.State, []string{"approved", "rejected"}); bad != nil {
		return *bad
	}
	if *in.EnvironmentName != run.env {
		return unprocessable(fmt.Sprintf("No pending deployment protection rule for environment_name '%s' in this run.", *in.EnvironmentName))
	}
	if run.reviewed {
		return unprocessable(fmt.Sprintf("The deployment protection rule for environment_name '%s' in this run was already reviewed.", run.env))
	}
	run.reviewed = true
	s.reviews = append(s.reviews, ProtectionReview{
		Repo: r.FullName(), RunID: run.id, Environment: run.env, State: *in.State, Comment: in.Comment, AppID: s.app.ID,
	})
	state := "in_progress"
	if *in.State == "rejected" {
		state = "failure"
	}
	r.addDeploymentStatus(run.deployment, state, "", fmt.Sprintf("%s/actions/runs/%d", r.htmlURL(), run.id), ActionsBot)
	return reply{status: http.StatusNoContent}
}
