package render

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"sockembot/compliance"
)

// MaxCheckRunSummary is GitHub's limit on a check run's output summary, in characters.
const MaxCheckRunSummary = 65535

// CheckRunTitle is the one-line verdict a check run shows next to its name.
func CheckRunTitle(r compliance.Report) string {
	bad := len(NonCompliant(r))
	switch {
	case len(r.Changes) == 1 && r.Compliant:
		return TruncateRunes("Compliant: "+StatusDescription(r.Changes[0]), 200)
	case len(r.Changes) == 1:
		return TruncateRunes("Not compliant: "+StatusDescription(r.Changes[0]), 200)
	case r.Compliant:
		return fmt.Sprintf("Compliant: all %d changes meet the change policy", len(r.Changes))
	}
	return fmt.Sprintf("Not compliant: %d of %d changes break the change policy", bad, len(r.Changes))
}

// CheckRunSummary is a check run's output: a markdown table of every change with its tickets,
// approvals and verdict, then every violation with how to fix it. intro, when set, opens it (what
// was checked). It never exceeds GitHub's 65,535 characters: rows that do not fit are counted
// in a last "… and N more" line. Text people wrote (titles, logins, ticket statuses) is escaped
// so it cannot break the table or add links and mentions.
func CheckRunSummary(intro string, r compliance.Report) string {
	var head strings.Builder
	if intro != "" {
		head.WriteString(intro + "\n\n")
	}
	head.WriteString("| Change | Tickets | Approved by | Verdict |\n|---|---|---|---|\n")
	var rows []string
	for _, c := range r.Changes {
		verdict := "✅ compliant"
		if !c.Compliant {
			verdict = "❌ " + mdEsc(StatusDescription(c))
		}
		if c.PolicyChange {
			verdict += " · 📜 policy change"
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s |\n", mdChange(c), mdEsc(TicketsText(c.Tickets)), mdEsc(ApprovalsText(c.Approvals)), verdict))
	}
	var fixes []string
	for _, c := range r.Changes {
		for _, v := range c.Violations {
			fixes = append(fixes, fmt.Sprintf("- **%s** `%s`: %s. Fix: %s\n", mdEsc(c.Name()), v.Code, mdEsc(v.Message), violationFix(v.Code)))
		}
	}
	var b strings.Builder
	b.WriteString(head.String())
	budget := MaxCheckRunSummary - utf8.RuneCountInString(head.String()) - 200 // room for the headings and the "more" line
	left := len(rows) + len(fixes)
	add := func(line string) bool {
		n := utf8.RuneCountInString(line)
		if n > budget {
			return false
		}
		budget -= n
		b.WriteString(line)
		left--
		return true
	}
	full := false
	for _, row := range rows {
		if !add(row) {
			full = true
			break
		}
	}
	if !full && len(fixes) > 0 {
		b.WriteString("\n### What to fix\n\n")
		for _, f := range fixes {
			if !add(f) {
				break
			}
		}
	}
	if left > 0 {
		fmt.Fprintf(&b, "\n… and %d more (the full list is in sockembot's evidence and `sockembot check`).\n", left)
	}
	return b.String()
}

// mdChange names a change in a check run: a link to the pull request with its title.
func mdChange(c compliance.ChangeReport) string {
	if c.Kind == compliance.KindDirectPush {
		return mdEsc(c.Name())
	}
	name := fmt.Sprintf("#%d", c.Number)
	if u := URL(c.URL); u != "" {
		name = fmt.Sprintf("[#%d](%s)", c.Number, strings.NewReplacer("(", "%28", ")", "%29").Replace(u))
	}
	if c.Title != "" {
		name += " " + mdEsc(TruncateRunes(c.Title, 120))
	}
	return name
}

// mdEsc makes text people wrote inert in GitHub markdown, inside a table cell too: emphasis,
// code, links, HTML, table pipes and autolinks (the colon of https:) are backslash-escaped, line
// breaks become spaces, and an @ is followed by a zero-width joiner so no mention is made. What
// only acts at the start of a line (#, -, +) cannot start one here.
func mdEsc(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '[', ']', '|', '<', '>', '~', '&', ':':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '@':
			b.WriteString("@\u200d")
		case '\n', '\r', '\t':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// violationFix says what the author does about a violation.
func violationFix(c compliance.Code) string {
	switch c {
	case compliance.MissingTicket:
		return "put the Jira key (PAY-123) in the title, the branch name or the description."
	case compliance.TicketNotFound:
		return "reference a ticket that exists in Jira (check the key)."
	case compliance.TicketStatus:
		return "move the ticket to a status the policy allows, or reference the right ticket."
	case compliance.MissingApproval:
		return "get an approving review from someone who is not an author or committer of the change."
	case compliance.StaleApproval:
		return "ask for a new approval: commits were pushed after the last one."
	case compliance.ChangesRequested:
		return "address the requested changes, then get that reviewer's approval or have the review dismissed."
	case compliance.DirectPush:
		return "land changes through a reviewed pull request; this commit has none."
	case compliance.RequesterSoleApprover:
		return "have someone other than the deployer approve it."
	case compliance.PolicyOwnerApproval:
		return "get an approval from one of the policy owners (policy_owners in sockembot.yaml)."
	case compliance.PolicyBelowFloor:
		return "keep .sockembot.yml at least as strict as the policy floor."
	case compliance.PolicyInvalid:
		return "fix .sockembot.yml so it parses and validates (`sockembot check` says why)."
	}
	return "see the sockembot README."
}
