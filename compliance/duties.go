package compliance

import (
	"fmt"
	"time"
)

// ApplyDuties adds the separation-of-duties finding to a deploy's report: a change whose only
// counting approver is the person deploying (requesterLogin, their GitHub login) had no second
// pair of eyes independent of the deploy. Under ActionRefuse the change gets the violation
// RequesterSoleApprover and stops being compliant; under ActionWarn it gets a warning. An empty
// requesterLogin (nobody mapped) changes nothing. r is not modified.
func ApplyDuties(p Policy, r Report, requesterLogin string) Report {
	if requesterLogin == "" {
		return r
	}
	out := r
	out.Changes = make([]ChangeReport, len(r.Changes))
	out.Compliant = true
	for i, c := range r.Changes {
		if c.Kind == KindPullRequest && len(c.Approvals) == 1 && sameLogin(c.Approvals[0].User, requesterLogin) {
			v := Violation{RequesterSoleApprover, fmt.Sprintf(
				"%s is the only approver and is also deploying it: someone else must approve or deploy", requesterLogin)}
			if p.SeparationOfDuties.RequesterSoleApprover == ActionWarn {
				c.Warnings = append(append([]Violation(nil), c.Warnings...), v)
			} else {
				c.Violations = append(append([]Violation(nil), c.Violations...), v)
				c.Compliant = false
			}
		}
		out.Changes[i] = c
		out.Compliant = out.Compliant && c.Compliant
	}
	return out
}

func sameLogin(a, b string) bool {
	// GitHub logins are case-insensitive.
	return len(a) == len(b) && equalFoldASCII(a, b)
}

func equalFoldASCII(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// AddBusinessDays is the instant n business days after t: Saturdays and Sundays do not count,
// and a start on a weekend counts from the following Monday's same time of day.
func AddBusinessDays(t time.Time, n int) time.Time {
	for t.Weekday() == time.Saturday || t.Weekday() == time.Sunday {
		t = t.AddDate(0, 0, 1)
	}
	for n > 0 {
		t = t.AddDate(0, 0, 1)
		if t.Weekday() != time.Saturday && t.Weekday() != time.Sunday {
			n--
		}
	}
	return t
}
