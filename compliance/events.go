package compliance

import (
	"encoding/json"
	"time"
)

// Webhook events as plain values. The GitHub adapter decodes each delivery into one of these, so
// the gates that act on them never see a transport's types.

// PullRequestEvent is a pull_request delivery.
type PullRequestEvent struct {
	Action  string // opened, reopened, synchronize, edited, ready_for_review, closed, ...
	Repo    string // OWNER/NAME
	Number  int
	HeadSHA string
	State   string // open or closed
	Merged  bool
}

// ReviewEvent is a pull_request_review delivery.
type ReviewEvent struct {
	Action  string // submitted, dismissed, edited
	Repo    string
	Number  int
	HeadSHA string // the pull request's head when the review was made
	PRState string // open or closed
	// Review is the review itself; its State is upper-case (APPROVED, CHANGES_REQUESTED, ...).
	Review Review
}

// PushEvent is a push delivery.
type PushEvent struct {
	Repo          string
	Ref           string // refs/heads/main
	DefaultBranch string // the repository's default branch, as the payload names it
	Deleted       bool
	Pusher        string
	Compare       string // GitHub's compare link for the push
	// Commits are every commit of the push, oldest first; Author and Committer are GitHub logins
	// where GitHub knew them, else the names from the commits.
	Commits []Commit
	// Paths are the files the push's commits added, modified or removed, sorted, each once, as
	// the payload lists them (GitHub leaves them out of very large pushes: an empty list does
	// not prove nothing changed).
	Paths []string
}

// DeploymentStatusEvent is a deployment_status delivery: a CD system reporting on a deployment.
type DeploymentStatusEvent struct {
	Repo         string
	DeploymentID int64
	SHA          string          // what the deployment deploys
	Payload      json.RawMessage // the deployment's payload, as whoever created it wrote it
	StatusID     int64
	State        string // pending, queued, in_progress, success, failure, error, inactive
	Description  string
	// LogURL and TargetURL are as the status's creator wrote them: untrusted text.
	LogURL    string
	TargetURL string
	Creator   string
	CreatedAt time.Time
}

// CheckRunEvent is a check_run delivery (GitHub App mode): someone pressed Re-check on a check
// run (requested_action) or asked GitHub to run it again (rerequested).
type CheckRunEvent struct {
	Action          string // created, completed, rerequested, requested_action
	Repo            string
	CheckRunID      int64
	Name            string // the check run's name; sockembot's is "sockembot"
	HeadSHA         string
	AppID           int64  // the App that owns the check run
	RequestedAction string // requested_action: the button's identifier
	// PullRequests are the open pull requests whose head is HeadSHA (empty for a merge group's).
	PullRequests []int
	Sender       string
}

// CheckSuiteEvent is a check_suite delivery: rerequested re-runs every check of the suite.
type CheckSuiteEvent struct {
	Action       string // requested, rerequested, completed
	Repo         string
	HeadSHA      string
	AppID        int64
	PullRequests []int
	Sender       string
}

// MergeGroupEvent is a merge_group delivery: a merge queue asks for the checks of a group of
// queued pull requests (checks_requested), or dropped the group (destroyed).
type MergeGroupEvent struct {
	Action  string // checks_requested, destroyed
	Repo    string
	BaseSHA string // the target branch's commit the group is built on
	HeadSHA string // the group's commit: every queued pull request merged onto BaseSHA
	BaseRef string // refs/heads/main
	HeadRef string // refs/heads/gh-readonly-queue/main/pr-104-…
	// Reason is why a group was destroyed: merged, invalidated or dequeued.
	Reason string
	Sender string
}

// DeploymentProtectionRuleEvent is a deployment_protection_rule delivery: a GitHub Actions job
// waits to deploy SHA to Environment until sockembot answers at CallbackURL.
type DeploymentProtectionRuleEvent struct {
	Repo         string
	Environment  string
	Event        string // what started the workflow run: push, workflow_dispatch, ...
	CallbackURL  string // POST {environment_name, state, comment} here to approve or reject
	DeploymentID int64
	SHA          string // what the job deploys
	Ref          string
	RunID        int64  // the workflow run waiting on the answer
	RunURL       string // the run's page, for people
	Sender       string // who triggered the run
	PullRequests []int
}
