package compliance

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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

// FloorOf is the floor a repository's own policy may not go below when p is the global policy:
// its configured Floor, else p itself (a repository may then only tighten it).
func FloorOf(p Policy) Policy {
	if p.Floor != nil {
		return *p.Floor
	}
	p.Owners, p.Floor = nil, nil
	return p
}

// LoosestPolicy requires nothing: the start of a policy floor, so a floor constrains only the
// settings it names.
func LoosestPolicy() Policy {
	return Policy{
		Tickets:            TicketPolicy{Projects: []string{}, AllowedStatuses: []string{}},
		Approvals:          ApprovalPolicy{AllowAuthor: true, AllowCommitters: true},
		SeparationOfDuties: DutiesPolicy{RequesterSoleApprover: ActionWarn},
		Emergency:          EmergencyPolicy{ReviewWithinBusinessDays: math.MaxInt32},
	}
}

// Loosenings lists, one sentence each, every way p is looser than floor. None means p may be
// adopted: it asks at least as much as floor everywhere.
func Loosenings(p, floor Policy) []string {
	var out []string
	if floor.Tickets.Required && !p.Tickets.Required {
		out = append(out, "tickets.required is off; the floor requires tickets")
	}
	if len(floor.Tickets.Projects) > 0 {
		if extra := notIn(p.Tickets.Projects, floor.Tickets.Projects); len(p.Tickets.Projects) == 0 || len(extra) > 0 {
			out = append(out, fmt.Sprintf("tickets.projects allows %s; the floor allows only %s",
				listOr(extra, "every Jira project"), strings.Join(floor.Tickets.Projects, ", ")))
		}
	}
	if len(floor.Tickets.AllowedStatuses) > 0 {
		if extra := notIn(p.Tickets.AllowedStatuses, floor.Tickets.AllowedStatuses); len(p.Tickets.AllowedStatuses) == 0 || len(extra) > 0 {
			out = append(out, fmt.Sprintf("tickets.allowed_statuses allows %s; the floor allows only %s",
				listOr(extra, "any status outside To Do"), strings.Join(floor.Tickets.AllowedStatuses, ", ")))
		}
	}
	if p.Approvals.Required < floor.Approvals.Required {
		out = append(out, fmt.Sprintf("approvals.required is %d; the floor is %d", p.Approvals.Required, floor.Approvals.Required))
	}
	if p.Approvals.AllowAuthor && !floor.Approvals.AllowAuthor {
		out = append(out, "approvals.allow_author is on; the floor does not let authors approve their own change")
	}
	if p.Approvals.AllowCommitters && !floor.Approvals.AllowCommitters {
		out = append(out, "approvals.allow_committers is on; the floor does not let committers approve")
	}
	if !p.Approvals.InvalidateOnPush && floor.Approvals.InvalidateOnPush {
		out = append(out, "approvals.invalidate_on_push is off; the floor wants approvals on the last commit")
	}
	if p.SeparationOfDuties.RequesterSoleApprover != ActionRefuse && floor.SeparationOfDuties.RequesterSoleApprover == ActionRefuse {
		out = append(out, fmt.Sprintf("separation_of_duties.requester_sole_approver is %q; the floor is %q",
			p.SeparationOfDuties.RequesterSoleApprover, ActionRefuse))
	}
	if p.Emergency.ReviewWithinBusinessDays > floor.Emergency.ReviewWithinBusinessDays {
		out = append(out, fmt.Sprintf("emergency.review_within_business_days is %d; the floor is %d",
			p.Emergency.ReviewWithinBusinessDays, floor.Emergency.ReviewWithinBusinessDays))
	}
	return out
}

// Tighten is p raised to floor wherever it is looser, setting by setting: what applies when a
// repository's policy, already in force, asks less than the floor.
func Tighten(p, floor Policy) Policy {
	out := p
	out.Tickets.Required = p.Tickets.Required || floor.Tickets.Required
	if len(floor.Tickets.Projects) > 0 {
		out.Tickets.Projects = intersectOr(p.Tickets.Projects, floor.Tickets.Projects)
	}
	if len(floor.Tickets.AllowedStatuses) > 0 {
		out.Tickets.AllowedStatuses = intersectOr(p.Tickets.AllowedStatuses, floor.Tickets.AllowedStatuses)
	}
	out.Approvals.Required = max(p.Approvals.Required, floor.Approvals.Required)
	out.Approvals.AllowAuthor = p.Approvals.AllowAuthor && floor.Approvals.AllowAuthor
	out.Approvals.AllowCommitters = p.Approvals.AllowCommitters && floor.Approvals.AllowCommitters
	out.Approvals.InvalidateOnPush = p.Approvals.InvalidateOnPush || floor.Approvals.InvalidateOnPush
	if floor.SeparationOfDuties.RequesterSoleApprover == ActionRefuse {
		out.SeparationOfDuties.RequesterSoleApprover = ActionRefuse
	}
	out.Emergency.ReviewWithinBusinessDays = min(p.Emergency.ReviewWithinBusinessDays, floor.Emergency.ReviewWithinBusinessDays)
	return out
}

// notIn is the items of xs not in allowed (case-insensitive), in xs's order.
func notIn(xs, allowed []string) []string {
	var out []string
	for _, x := range xs {
		if !slices.ContainsFunc(allowed, func(a string) bool { return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(x)) }) {
			out = append(out, x)
		}
	}
	return out
}

// intersectOr is the items of xs that floor allows, or floor itself when xs allows everything
// (empty) or nothing it allows.
func intersectOr(xs, floor []string) []string {
	if in := slices.DeleteFunc(slices.Clone(xs), func(x string) bool { return len(notIn([]string{x}, floor)) > 0 }); len(in) > 0 {
		return in
	}
	return slices.Clone(floor)
}

func listOr(xs []string, none string) string {
	if len(xs) == 0 {
		return none
	}
	return strings.Join(xs, ", ")
}
