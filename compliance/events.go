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
