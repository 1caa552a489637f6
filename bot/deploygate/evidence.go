package deploygate

import (
	"time"

	"sockembot/compliance"
)

// The evidence a deploy leaves, kind by kind. Field names are stored in the chain: never rename
// them.

// DeployRequestEvidence is the body of a deploy_requested record: who asked for what, from where.
type DeployRequestEvidence struct {
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
	// Via is "github_actions" for a deploy a GitHub Actions run asked for (its protection rule),
	// with the run's page; empty for /deploy.
	Via    string `json:"via,omitempty"`
	RunURL string `json:"run_url,omitempty"`
}

// OverrideEvidence is the body of an override record: an emergency deploy request whose check
// found violations, let through on someone's word. The violations stay on record beside it.
type OverrideEvidence struct {
	DeployID    int64    `json:"deploy_id"`
	Service     string   `json:"service"`
	Environment string   `json:"environment"`
	HeadSHA     string   `json:"head_sha"`
	By          string   `json:"by"`
	Reason      string   `json:"reason"`
	CheckSeq    int64    `json:"check_seq"`
	Violations  []string `json:"violations"`
}

// DeployRefusedEvidence is the body of a deploy_refused record: a request that will not deploy
// (not compliant, superseded, a check that could not run, a deployment GitHub never made).
type DeployRefusedEvidence struct {
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

// DeployDecisionEvidence is the body of deploy_confirmed and deploy_cancelled records: who
// pressed Deploy or Cancel, when, and on which check.
type DeployDecisionEvidence struct {
	DeployID    int64     `json:"deploy_id"`
	Service     string    `json:"service"`
	Environment string    `json:"environment"`
	HeadSHA     string    `json:"head_sha"`
	By          string    `json:"by"`
	At          time.Time `json:"at"`
	CheckSeq    int64     `json:"check_seq"`
	Rechecked   bool      `json:"rechecked,omitempty"`
}

// AttemptDeniedEvidence is the body of a deploy_attempt_denied record: someone tried what they
// may not do (ask, press, lock, review), and why they were refused.
type AttemptDeniedEvidence struct {
	Service     string `json:"service"`
	Environment string `json:"environment"`
	User        string `json:"user"`
	Action      string `json:"action"` // request, confirm, cancel, lock, unlock
	Reason      string `json:"reason"`
	DeployID    int64  `json:"deploy_id,omitempty"`
	Channel     string `json:"channel,omitempty"` // where it was attempted
	Ref         string `json:"ref,omitempty"`
}

// DeploymentPayload goes into the GitHub deployment: who asked, and which check allowed it, so
// the deployment names its own evidence.
type DeploymentPayload struct {
	Sockembot DeploymentRef `json:"sockembot"`
}

// DeploymentRef names the deploy and the check behind a GitHub deployment.
type DeploymentRef struct {
	DeployID   int64  `json:"deploy_id"`
	Service    string `json:"service"`
	Requester  string `json:"requester"`
	Deployer   string `json:"deployer"`
	CheckSeq   int64  `json:"check_seq"`
	PolicyHash string `json:"policy_hash"`
}

// DeploymentEvidence is the body of a deployment_created record: the facts of a deploy frozen at
// the moment GitHub accepted it. The audit export is built from these alone, so a later
// re-evaluation or a changed ticket can never rewrite what an auditor sees.
type DeploymentEvidence struct {
	DeployID           int64             `json:"deploy_id"`
	Service            string            `json:"service"`
	Environment        string            `json:"environment"`
	Repo               string            `json:"repo"`
	Ref                string            `json:"ref"`
	SHA                string            `json:"sha"`
	BaseSHA            string            `json:"base_sha"`
	Requester          string            `json:"requester"` // Slack user who asked for the deploy
	Deployer           string            `json:"deployer"`  // Slack user who pressed Deploy
	GitHubDeploymentID int64             `json:"github_deployment_id"`
	CheckSeq           int64             `json:"check_seq"` // the check_run record the verdict came from
	PolicyHash         string            `json:"policy_hash"`
	PolicySource       string            `json:"policy_source,omitempty"` // "global" or OWNER/NAME/.sockembot.yml
	Report             compliance.Report `json:"report"`
	Compliant          bool              `json:"compliant"`
	Override           *Override         `json:"override,omitempty"`
	// Where the deploy's story is told: the digest's Slack channel and ts, and its permalink.
	Channel   string `json:"channel,omitempty"`
	ThreadTS  string `json:"thread_ts,omitempty"`
	ThreadURL string `json:"thread_url,omitempty"`
}

// DeploymentStatusEvidence is the body of a deployment_status record: one status GitHub reported
// for a sockembot deployment.
type DeploymentStatusEvidence struct {
	DeployID           int64  `json:"deploy_id"`
	Service            string `json:"service"`
	Environment        string `json:"environment"`
	GitHubDeploymentID int64  `json:"github_deployment_id"`
	StatusID           int64  `json:"status_id"`
	State              string `json:"state"`
	Description        string `json:"description,omitempty"`
	LogURL             string `json:"log_url,omitempty"`
	Creator            string `json:"creator,omitempty"`
	SHA                string `json:"sha"`
}

// Override is an emergency deploy past a failing verdict: who, why, when.
type Override struct {
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}
