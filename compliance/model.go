// Package compliance is the pure core of sockembot: plain facts about a release range go in,
// a Report comes out. It does no I/O, reads no clock and logs nothing, so every verdict can be
// reproduced from recorded evidence.
package compliance

import (
	"encoding/json"
	"fmt"
	"time"
)

// Kind says how a change reached the branch.
type Kind string

const (
	KindPullRequest Kind = "pull_request"
	KindDirectPush  Kind = "direct_push"
)

// Code is a violation code. The strings are part of the CLI's JSON contract: never rename them.
type Code string

const (
	MissingTicket    Code = "missing_ticket"
	TicketNotFound   Code = "ticket_not_found"
	TicketStatus     Code = "ticket_status"
	MissingApproval  Code = "missing_approval"
	StaleApproval    Code = "stale_approval"
	ChangesRequested Code = "changes_requested"
	DirectPush       Code = "direct_push"
	// RequesterSoleApprover is a deploy-time finding, never produced by the range check alone:
	// the person deploying is the only approver of the change (see ApplyDuties).
	RequesterSoleApprover Code = "requester_sole_approver"
	// PolicyOwnerApproval: the change edits the repository's policy file and no policy owner
	// (sockembot.yaml's policy_owners) approved it.
	PolicyOwnerApproval Code = "policy_owner_approval"
	// PolicyBelowFloor: the change writes a repository policy that is looser than the floor
	// (sockembot.yaml's policy_floor).
	PolicyBelowFloor Code = "policy_below_floor"
	// PolicyInvalid: the change writes a repository policy file that is not a valid policy.
	PolicyInvalid Code = "policy_invalid"
)

// Review states as GitHub spells them.
const (
	StateApproved         = "APPROVED"
	StateChangesRequested = "CHANGES_REQUESTED"
	StateDismissed        = "DISMISSED"
	StateCommented        = "COMMENTED"
	StatePending          = "PENDING"
)

// Commit is one commit in the range or on a pull request. Author and Committer are GitHub
// logins ("" when GitHub could not map the e-mail to an account).
type Commit struct {
	SHA        string    `json:"sha"`
	Message    string    `json:"message"`
	Author     string    `json:"author"`
	Committer  string    `json:"committer"`
	AuthoredAt time.Time `json:"authored_at"`
	URL        string    `json:"url,omitempty"` // the commit's web page
}

// Deployment is one deployment GitHub knows of, as an audit lists it: what reached an
// environment, whoever made it.
type Deployment struct {
	ID          int64
	SHA, Ref    string
	Environment string
	Task        string
	Creator     string // the login that created it (a bot's login for an App)
	Description string
	CreatedAt   time.Time
	Payload     json.RawMessage // as GitHub returns it ({} when none)
	URL         string          // the API URL GitHub gives (there is no html_url for a deployment)
}

// Review is one submitted pull request review.
type Review struct {
	User        string    `json:"user"`
	State       string    `json:"state"`
	CommitID    string    `json:"commit_id"`
	SubmittedAt time.Time `json:"submitted_at"`
	// Bot is a bot account's review (a GitHub App, an Actions workflow): never a second person.
	Bot bool `json:"bot,omitempty"`
	// Association is the reviewer's author_association with the repository (OWNER, MEMBER,
	// COLLABORATOR, CONTRIBUTOR, NONE ...); "" when unknown. Only the first three, which can
	// have write access, count as an approval, as with GitHub's own branch protection.
	Association string `json:"author_association,omitempty"`
}

// PullRequest holds the facts of one merged pull request.
type PullRequest struct {
	Number     int    `json:"number"`
	Title      string `json:"title"`
	Body       string `json:"body"`
	HeadBranch string `json:"head_branch"`
	HeadSHA    string `json:"head_sha"`
	// BaseSHA is the base branch's commit GitHub compares the pull request with (base.sha):
	// the policy in force there judges the pull request's merge verdict.
	BaseSHA  string    `json:"base_sha,omitempty"`
	URL      string    `json:"url"`
	Author   string    `json:"author"`
	MergedBy string    `json:"merged_by"`
	MergeSHA string    `json:"merge_sha"`
	MergedAt time.Time `json:"merged_at"`
	Reviews  []Review  `json:"reviews"`
	// Commits are the PR's own commits (GET /pulls/{n}/commits), used for ticket keys in commit
	// messages and to know who committed on the PR.
	Commits []Commit `json:"commits"`
}

// Change is one unit the policy judges: a merged pull request, or a commit pushed straight to
// the branch. RangeCommits are the SHAs of the commits in base..head attributed to it.
type Change struct {
	Kind         Kind         `json:"kind"`
	PR           *PullRequest `json:"pull_request,omitempty"`
	Push         *Commit      `json:"push,omitempty"` // set for KindDirectPush
	RangeCommits []string     `json:"range_commits"`
	// PolicyEdit is set when the change edits the repository's policy file.
	PolicyEdit *PolicyEdit `json:"policy_edit,omitempty"`
	// Recorded is set when the pull request's facts were not fetched from GitHub for this check
	// but reused from the evidence record that first kept them (see RecordedPull).
	Recorded *FactsRecord `json:"recorded,omitempty"`
}

// FactsRecord names the evidence record a change's facts were read from, and when it was
// written.
type FactsRecord struct {
	Seq int64     `json:"seq"`
	At  time.Time `json:"at"`
}

// RecordedPull is a merged pull request's facts as a pull_request_facts record keeps them: its
// reviews as they stood at the merge, its commits, author and merger. PR.MergeSHA is the commit
// a range must contain for them to be reused.
type RecordedPull struct {
	PR     PullRequest
	Record FactsRecord
}

// PolicyEdit is what a change does to the repository's policy file (.sockembot.yml). The
// change itself is still judged by the policy in force before it.
type PolicyEdit struct {
	Path    string   `json:"path"`
	Commits []string `json:"commits"` // the change's commits that touch the file
	Deleted bool     `json:"deleted,omitempty"`
	// Policy is the policy the edited file would put in force (read over the defaults), when it
	// is a valid one; Invalid says why not otherwise.
	Policy  *Policy `json:"policy,omitempty"`
	Invalid string  `json:"invalid,omitempty"`
}

// Ticket is what Jira said about one key. Found is false when Jira has no such issue.
// StatusCategory is Jira's status category key: "new" (To Do), "indeterminate", "done".
type Ticket struct {
	Key            string `json:"key"`
	Found          bool   `json:"found"`
	Status         string `json:"status"`
	StatusCategory string `json:"status_category"`
	URL            string `json:"url"`
	Summary        string `json:"summary,omitempty"`
}

// StatusCategoryToDo is the key of Jira's "To Do" status category.
const StatusCategoryToDo = "new"

// Range is everything gathered about base..head of one repository.
type Range struct {
	Repo    string   `json:"repo"`
	Base    string   `json:"base"`
	Head    string   `json:"head"`
	BaseSHA string   `json:"base_sha"`
	HeadSHA string   `json:"head_sha"`
	Changes []Change `json:"changes"`
}

// Facts is the input of Evaluate: the range plus what Jira said.
type Facts struct {
	Range Range
	// JiraProjects are the project keys Jira knows. A candidate key in another project (UTF-8,
	// SHA-256) is not a ticket reference.
	JiraProjects []string
	// Tickets by key, for every candidate key in a known project.
	Tickets map[string]Ticket
}

// Violation is one broken rule, with a sentence a person can act on.
type Violation struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Approval is a review that counted.
type Approval struct {
	User string    `json:"user"`
	At   time.Time `json:"at"`
}

// ChangeReport is the verdict on one change. Field names are the CLI's JSON contract.
type ChangeReport struct {
	Kind       Kind        `json:"kind"`
	Number     int         `json:"number"` // 0 for a direct push
	Title      string      `json:"title"`
	URL        string      `json:"url"`
	Author     string      `json:"author"`
	MergedBy   string      `json:"merged_by"`
	MergeSHA   string      `json:"merge_sha"`
	Commits    []string    `json:"commits"`
	Tickets    []Ticket    `json:"tickets"`
	Approvals  []Approval  `json:"approvals"`
	Compliant  bool        `json:"compliant"`
	Violations []Violation `json:"violations"`
	// Warnings are findings the policy shows but lets through (deploy-time only).
	Warnings []Violation `json:"warnings,omitempty"`
	// PolicyChange marks a change that edits the repository's policy file.
	PolicyChange bool `json:"policy_change,omitempty"`
	// Recorded names the evidence record the pull request's facts were reused from, when they
	// were not fetched from GitHub for this check.
	Recorded *FactsRecord `json:"recorded,omitempty"`
}

// Report is the verdict on a whole range. Field names are the CLI's JSON contract.
type Report struct {
	Repo      string         `json:"repo"`
	Base      string         `json:"base"`
	Head      string         `json:"head"`
	BaseSHA   string         `json:"base_sha"`
	HeadSHA   string         `json:"head_sha"`
	Compliant bool           `json:"compliant"`
	Changes   []ChangeReport `json:"changes"`
}

// Policy is the change policy. Zero values are not the defaults: start from DefaultPolicy.
type Policy struct {
	Tickets            TicketPolicy    `json:"tickets" yaml:"tickets"`
	Approvals          ApprovalPolicy  `json:"approvals" yaml:"approvals"`
	SeparationOfDuties DutiesPolicy    `json:"separation_of_duties" yaml:"separation_of_duties"`
	Emergency          EmergencyPolicy `json:"emergency" yaml:"emergency"`
	// Owners are the GitHub logins one of whom must approve a change to a repository's policy
	// file (sockembot.yaml's policy_owners). Floor is the loosest policy a repository may
	// adopt (sockembot.yaml's policy_floor). Both come from sockembot.yaml only: a repository's
	// own file can set neither (yaml "-": the keys are unknown there and refused).
	Owners []string `json:"owners,omitempty" yaml:"-"`
	Floor  *Policy  `json:"floor,omitempty" yaml:"-"`
}

// Finding actions: what a policy does about a finding that is not one of the check's violations.
const (
	ActionRefuse = "refuse" // the deploy is refused, like any violation
	ActionWarn   = "warn"   // shown and recorded, but the deploy may go ahead
)

// DutiesPolicy is separation of duties at deploy time.
type DutiesPolicy struct {
	// RequesterSoleApprover is what happens when the person deploying to production is the only
	// approver of a change in it (known only where the config maps Slack users to GitHub logins):
	// "refuse" (default) or "warn".
	RequesterSoleApprover string `json:"requester_sole_approver" yaml:"requester_sole_approver"`
}

// EmergencyPolicy governs break-glass deploys.
type EmergencyPolicy struct {
	// ReviewWithinBusinessDays is how long a retroactive review of an overridden change may stay
	// open before it is overdue (Saturdays and Sundays do not count).
	ReviewWithinBusinessDays int `json:"review_within_business_days" yaml:"review_within_business_days"`
}

type TicketPolicy struct {
	Required bool `json:"required" yaml:"required"`
	// Projects limits which Jira projects count; empty means every project Jira knows.
	Projects []string `json:"projects" yaml:"projects"`
	// AllowedStatuses lists the statuses a ticket may be in; empty means any status whose
	// category is not "To Do".
	AllowedStatuses []string `json:"allowed_statuses" yaml:"allowed_statuses"`
	// DeployedTransition, when set, is the Jira transition (e.g. "Deployed" or "Done") each ticket
	// is moved through after a successful deploy.
	DeployedTransition string `json:"deployed_transition" yaml:"deployed_transition"`
}

type ApprovalPolicy struct {
	Required         int  `json:"required" yaml:"required"`
	AllowAuthor      bool `json:"allow_author" yaml:"allow_author"`
	AllowCommitters  bool `json:"allow_committers" yaml:"allow_committers"`
	InvalidateOnPush bool `json:"invalidate_on_push" yaml:"invalidate_on_push"`
}

// DefaultPolicy is the policy when none is configured: one ticket, one independent approval on
// the final commit.
func DefaultPolicy() Policy {
	return Policy{
		Tickets:            TicketPolicy{Required: true, Projects: []string{}, AllowedStatuses: []string{}},
		Approvals:          ApprovalPolicy{Required: 1, InvalidateOnPush: true},
		SeparationOfDuties: DutiesPolicy{RequesterSoleApprover: ActionRefuse},
		Emergency:          EmergencyPolicy{ReviewWithinBusinessDays: 2},
	}
}

// Name names a change the way people, digests and retroactive reviews do: "#12", or
// "direct push abc1234". It keys a change's retroactive review in the evidence.
func (c ChangeReport) Name() string {
	if c.Kind == KindDirectPush {
		sha := ""
		if len(c.Commits) > 0 {
			sha = c.Commits[0]
		}
		if len(sha) > 7 {
			sha = sha[:7]
		}
		return "direct push " + sha
	}
	return fmt.Sprintf("#%d", c.Number)
}
