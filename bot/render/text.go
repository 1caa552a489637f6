package render

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"sockembot/compliance"
)

// ReportText renders a report as a terminal digest: a header, a summary line, then one block
// per change with its tickets, approvals and violations. It is passed through Terminal whole:
// titles, logins and messages are other people's text.
func ReportText(r compliance.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s..%s  (%s..%s)\n", r.Repo, r.Base, r.Head, Short(r.BaseSHA), Short(r.HeadSHA))
	ok := 0
	for _, c := range r.Changes {
		if c.Compliant {
			ok++
		}
	}
	verdict := "COMPLIANT"
	if !r.Compliant {
		verdict = "NOT COMPLIANT"
	}
	fmt.Fprintf(&b, "%s: %d changes, %d compliant\n", verdict, len(r.Changes), ok)
	if facts := FactsSourceText(r); facts != "" {
		b.WriteString(facts + "\n")
	}
	for _, c := range r.Changes {
		mark := "ok "
		if !c.Compliant {
			mark = "BAD"
		}
		b.WriteString("\n")
		if c.Kind == compliance.KindDirectPush {
			fmt.Fprintf(&b, "[%s] direct push %s %q by %s\n", mark, Short(firstOr(c.Commits)), c.Title, OrUnknown(c.Author))
		} else {
			fmt.Fprintf(&b, "[%s] #%d %s (by %s, merged by %s)\n", mark, c.Number, c.Title, OrUnknown(c.Author), OrUnknown(c.MergedBy))
			if c.URL != "" {
				fmt.Fprintf(&b, "      %s\n", c.URL)
			}
		}
		if c.PolicyChange {
			b.WriteString("      POLICY CHANGE: edits the repository's policy file\n")
		}
		if c.Recorded != nil {
			fmt.Fprintf(&b, "      facts recorded: evidence record #%d, %s (not fetched again)\n", c.Recorded.Seq, c.Recorded.At.UTC().Format("2006-01-02 15:04 MST"))
		}
		fmt.Fprintf(&b, "      tickets:   %s\n", TicketsText(c.Tickets))
		if c.Kind == compliance.KindPullRequest {
			fmt.Fprintf(&b, "      approvals: %s\n", ApprovalsText(c.Approvals))
		}
		for _, v := range c.Violations {
			fmt.Fprintf(&b, "      ✗ %s: %s\n", v.Code, v.Message)
		}
	}
	return Terminal(b.String())
}

// Terminal is text for a terminal with its control characters shown as "�", line breaks and tabs
// aside: a pull request title or an error message could otherwise carry escape sequences that
// move the cursor, rewrite what was printed or retitle the window of whoever runs the check.
func Terminal(s string) string {
	return strings.Map(func(r rune) rune {
		if r != '\n' && r != '\t' && unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

// TicketsText lists tickets as "PAY-1 (In Progress), PAY-2 (not found)".
func TicketsText(ts []compliance.Ticket) string {
	if len(ts) == 0 {
		return "none"
	}
	parts := make([]string, len(ts))
	for i, t := range ts {
		st := t.Status
		if !t.Found {
			st = "not found"
		}
		parts[i] = fmt.Sprintf("%s (%s)", t.Key, st)
	}
	return strings.Join(parts, ", ")
}

// ApprovalsText lists who approved.
func ApprovalsText(as []compliance.Approval) string {
	if len(as) == 0 {
		return "none"
	}
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.User
	}
	return strings.Join(parts, ", ")
}

// Short is a SHA's first seven characters, as GitHub shows it.
func Short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

func firstOr(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// OrUnknown names a person, "unknown" when nobody is known.
func OrUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// FactsSourceText says how many pull requests' facts were reused from evidence recorded before
// (at the merge, or by an earlier check) rather than fetched from GitHub, from which records and
// when they were written: "facts recorded: 198 of 200 pull requests from evidence records
// #3–#401 (2026-11-02 – 2026-12-01 UTC); the others fetched from GitHub". "" when none were.
func FactsSourceText(r compliance.Report) string {
	prs, reused := 0, 0
	var lo, hi int64
	var first, last time.Time
	for _, c := range r.Changes {
		if c.Kind != compliance.KindPullRequest {
			continue
		}
		prs++
		rec := c.Recorded
		if rec == nil {
			continue
		}
		reused++
		if lo == 0 || rec.Seq < lo {
			lo = rec.Seq
		}
		hi = max(hi, rec.Seq)
		if first.IsZero() || rec.At.Before(first) {
			first = rec.At
		}
		if rec.At.After(last) {
			last = rec.At
		}
	}
	if reused == 0 {
		return ""
	}
	records, days := fmt.Sprintf("record #%d", lo), first.UTC().Format("2006-01-02")
	if hi != lo {
		records = fmt.Sprintf("records #%d–#%d", lo, hi)
	}
	if d := last.UTC().Format("2006-01-02"); d != days {
		days += " – " + d
	}
	out := fmt.Sprintf("facts recorded: %d of %d pull requests from evidence %s (%s UTC)", reused, prs, records, days)
	if reused < prs {
		out += "; the others fetched from GitHub"
	}
	return out
}
