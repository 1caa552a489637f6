package compliance

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

var projectKeyPattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)

// Validate says everything that is wrong with p at once. A policy that does not mean what its
// author thinks must be refused, not quietly read as something weaker.
func (p *Policy) Validate() error {
	var problems []string
	if p.Approvals.Required < 0 {
		problems = append(problems, fmt.Sprintf("approvals.required must be 0 or more, not %d", p.Approvals.Required))
	}
	for i, s := range p.Tickets.AllowedStatuses {
		if strings.TrimSpace(s) == "" {
			problems = append(problems, fmt.Sprintf("tickets.allowed_statuses[%d] is empty", i))
		}
	}
	for i, k := range p.Tickets.Projects {
		if !projectKeyPattern.MatchString(k) {
			problems = append(problems, fmt.Sprintf("tickets.projects[%d]: %q is not a Jira project key (upper case, like PAY)", i, k))
		}
	}
	switch p.SeparationOfDuties.RequesterSoleApprover {
	case ActionRefuse, ActionWarn:
	default:
		problems = append(problems, fmt.Sprintf("separation_of_duties.requester_sole_approver must be %q or %q, not %q",
			ActionRefuse, ActionWarn, p.SeparationOfDuties.RequesterSoleApprover))
	}
	if p.Emergency.ReviewWithinBusinessDays < 1 {
		problems = append(problems, fmt.Sprintf("emergency.review_within_business_days must be 1 or more, not %d",
			p.Emergency.ReviewWithinBusinessDays))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// PolicyHash identifies a policy in evidence: the SHA-256 (hex) of its JSON with lists sorted
// and absent lists written as [], so policies that judge alike hash alike.
func PolicyHash(p Policy) string {
	p.Tickets.Projects = sortedCopy(p.Tickets.Projects)
	p.Tickets.AllowedStatuses = sortedCopy(p.Tickets.AllowedStatuses)
	// Marshalling plain strings, ints and bools cannot fail.
	b, _ := json.Marshal(p)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func sortedCopy(xs []string) []string {
	out := append([]string{}, xs...)
	slices.Sort(out)
	return out
}
