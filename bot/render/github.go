package render

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"sockembot/compliance"
)

// CommentMarker identifies sockembot's one comment on a pull request, so later checks edit it
// instead of adding another.
const CommentMarker = "<!-- sockembot:compliance -->"

const (
	// ViolationHeading heads the comment while the pull request breaks the policy.
	ViolationHeading = "### sockembot: this pull request does not meet the change policy yet"
	// FixedHeading heads the comment once the violations are fixed.
	FixedHeading = "### sockembot: this pull request now meets the change policy"
)

// MaxStatusDescription is GitHub's limit on a commit status description.
const MaxStatusDescription = 140

// StatusDescription is the one line beside the commit status: who approved and which tickets
// for a pass ("approved by bob · PAY-11 In Progress"), what is missing for a failure.
func StatusDescription(cr compliance.ChangeReport) string {
	var parts []string
	if cr.Compliant {
		if len(cr.Approvals) > 0 {
			parts = append(parts, "approved by "+ApprovalsText(cr.Approvals))
		}
		for _, t := range cr.Tickets {
			parts = append(parts, strings.TrimSpace(t.Key+" "+t.Status))
		}
		if len(parts) == 0 {
			return "compliant"
		}
		return TruncateRunes(strings.Join(parts, " · "), MaxStatusDescription)
	}
	seen := map[string]bool{}
	for _, v := range cr.Violations {
		s := violationPhrase(v, cr)
		if !seen[s] {
			seen[s] = true
			parts = append(parts, s)
		}
	}
	return TruncateRunes(strings.Join(parts, " · "), MaxStatusDescription)
}

// violationPhrase is a violation in the few words a commit status has room for.
func violationPhrase(v compliance.Violation, cr compliance.ChangeReport) string {
	switch v.Code {
	case compliance.MissingTicket:
		return "no Jira ticket"
	case compliance.TicketNotFound:
		key, _, _ := strings.Cut(v.Message, " ")
		return key + " not in Jira"
	case compliance.TicketStatus:
		key, _, _ := strings.Cut(v.Message, " ")
		for _, t := range cr.Tickets {
			if t.Key == key {
				return key + " " + OrUnknown(t.Status)
			}
		}
		return key + " status not allowed"
	case compliance.MissingApproval:
		return "no independent approval"
	case compliance.StaleApproval:
		return "approval predates last push"
	case compliance.ChangesRequested:
		who, _, _ := strings.Cut(v.Message, " ")
		return "changes requested by " + who
	case compliance.DirectPush:
		return "direct push"
	case compliance.PolicyOwnerApproval:
		return "policy change: needs a policy owner"
	case compliance.PolicyBelowFloor:
		return "policy below the floor"
	case compliance.PolicyInvalid:
		return "invalid .sockembot.yml"
	}
	return string(v.Code)
}

// TruncateRunes cuts s to n characters, marking the cut.
func TruncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// PRComment is the one comment on a non-compliant pull request: each violation, the tickets and
// approvals, and Clippy. statusContext names the required status that stays red.
func PRComment(headSHA string, cr compliance.ChangeReport, statusContext string) string {
	var b strings.Builder
	b.WriteString(CommentMarker + "\n")
	b.WriteString(ViolationHeading + "\n\n")
	fmt.Fprintf(&b, "Checked at `%s`. The `%s` status stays red until each of these is fixed:\n\n", Short(headSHA), statusContext)
	lines := []string{"breaks the change policy:"}
	for _, v := range cr.Violations {
		fmt.Fprintf(&b, "- **%s**: %s\n", v.Code, v.Message)
		lines = append(lines, "- "+violationPhrase(v, cr))
	}
	fmt.Fprintf(&b, "\nTickets: %s · Approvals: %s\n\n", TicketsText(cr.Tickets), ApprovalsText(cr.Approvals))
	b.WriteString("```\n" + Clippy(lines...) + "```\n")
	b.WriteString("\nsockembot checks again on every push, edit and review, and updates this comment.\n")
	return b.String()
}

// FixedComment replaces the violation comment once the pull request is compliant, so the thread
// does not keep telling people about problems that are gone.
func FixedComment(headSHA string, cr compliance.ChangeReport) string {
	return fmt.Sprintf("%s\n%s\n\nChecked at `%s`: %s. The violations reported here earlier are fixed.\n",
		CommentMarker, FixedHeading, Short(headSHA), StatusDescription(cr))
}
