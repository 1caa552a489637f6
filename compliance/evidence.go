package compliance

import (
	"encoding/json"
	"time"
)

// The evidence trail is part of the domain: every gate appends to it, the store keeps it, and an
// auditor reads it. These are its plain values; the store adds the hash chain.

// Kinds of evidence. The strings are stored in the chain: never rename them.
const (
	EvidenceCheckRun            = "check_run"
	EvidenceDeployRequested     = "deploy_requested"
	EvidenceDeployRefused       = "deploy_refused"
	EvidenceDeployConfirmed     = "deploy_confirmed"
	EvidenceDeployCancelled     = "deploy_cancelled"
	EvidenceDeploymentCreated   = "deployment_created" // the audit export reads these
	EvidenceDeploymentStatus    = "deployment_status"
	EvidenceOverride            = "override"
	EvidenceMergeVerdict        = "merge_verdict"
	EvidenceDirectPush          = "direct_push"
	EvidenceRetroReview         = "retro_review"
	EvidenceDeployAttemptDenied = "deploy_attempt_denied"
	EvidenceJiraUpdate          = "jira_update" // tickets commented on and moved after a successful deploy
	// A merge queue's group: the verdict on it, and the queue dropping it.
	EvidenceMergeGroupVerdict   = "merge_group_verdict"
	EvidenceMergeGroupDestroyed = "merge_group_destroyed"
	// The answer given to a GitHub Actions deployment protection rule (approved or rejected).
	EvidenceActionsReview = "actions_deploy_review"
	// The facts of a merged pull request as sockembot first fetched them (its commits, and its
	// reviews as they stood at the merge), kept so later checks of a range containing it reuse
	// them instead of asking GitHub again. Subject: PullFactsSubject.
	EvidencePullFacts = "pull_request_facts"
)

// PullFactsSubject is the subject of a pull_request_facts record: the repository and the merge
// commit, which is how a later range finds it ("acme/payments@<merge sha>").
func PullFactsSubject(repo, mergeSHA string) string { return repo + "@" + mergeSHA }

// Evidence is a fact to record. Body is marshalled to JSON once, and those bytes are what is
// stored and hashed.
type Evidence struct {
	At      time.Time // zero means now
	Kind    string
	Repo    string
	Subject string // what it is about: a head SHA, a deploy id, a delivery id
	Body    any
}

// Record is one recorded piece of evidence, as the chain holds it.
type Record struct {
	Seq      int64
	At       time.Time
	Kind     string
	Repo     string
	Subject  string
	Body     json.RawMessage
	PrevHash string
	Hash     string
}
