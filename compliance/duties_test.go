package compliance

import (
	"testing"
	"time"
)

func TestAddBusinessDays(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		from string
		n    int
		want string
	}{
		{"Monday plus two is Wednesday", "2026-11-23T10:00:00Z", 2, "2026-11-25T10:00:00Z"},
		{"Thursday plus two skips the weekend", "2026-11-26T10:00:00Z", 2, "2026-11-30T10:00:00Z"},
		{"Friday evening plus two is Tuesday", "2026-11-27T18:30:00Z", 2, "2026-12-01T18:30:00Z"},
		{"Saturday counts from Monday", "2026-11-28T03:00:00Z", 2, "2026-12-02T03:00:00Z"},
		{"Sunday plus one is Tuesday", "2026-11-29T12:00:00Z", 1, "2026-12-01T12:00:00Z"},
		{"zero days on a weekday is now", "2026-11-24T09:00:00Z", 0, "2026-11-24T09:00:00Z"},
		{"five business days is a week", "2026-11-24T09:00:00Z", 5, "2026-12-01T09:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AddBusinessDays(at(tt.from), tt.n); !got.Equal(at(tt.want)) {
				t.Errorf("AddBusinessDays(%s, %d) = %s, want %s", tt.from, tt.n, got.Format(time.RFC3339), tt.want)
			}
		})
	}
}

func TestApplyDuties(t *testing.T) {
	pr := func(n int, approvers ...string) ChangeReport {
		c := ChangeReport{Kind: KindPullRequest, Number: n, Compliant: true, Approvals: []Approval{}, Violations: []Violation{}}
		for _, a := range approvers {
			c.Approvals = append(c.Approvals, Approval{User: a})
		}
		return c
	}
	report := Report{Compliant: true, Changes: []ChangeReport{
		pr(1, "alice"),        // alice approved alone: she may not also deploy it
		pr(2, "alice", "bob"), // a second approver besides alice: fine
		pr(3, "bob"),          // someone else approved: fine
		{Kind: KindDirectPush, Compliant: false, Violations: []Violation{{DirectPush, "x"}}},
	}}
	report.Compliant = false

	refuse := DefaultPolicy()
	got := ApplyDuties(refuse, report, "Alice")
	if c := got.Changes[0]; c.Compliant || len(c.Violations) != 1 || c.Violations[0].Code != RequesterSoleApprover {
		t.Errorf("refuse: the deployer who alone approved #1 is not flagged: %+v", c)
	}
	for _, i := range []int{1, 2} {
		if c := got.Changes[i]; !c.Compliant || len(c.Violations) != 0 {
			t.Errorf("refuse: #%d flagged: %+v", c.Number, c)
		}
	}
	if len(report.Changes[0].Violations) != 0 {
		t.Error("ApplyDuties modified its input")
	}

	warn := DefaultPolicy()
	warn.SeparationOfDuties.RequesterSoleApprover = ActionWarn
	only := Report{Compliant: true, Changes: []ChangeReport{pr(1, "alice")}}
	got = ApplyDuties(warn, only, "alice")
	if !got.Compliant || len(got.Changes[0].Warnings) != 1 || got.Changes[0].Warnings[0].Code != RequesterSoleApprover {
		t.Errorf("warn: %+v", got)
	}
	if got := ApplyDuties(refuse, only, ""); !got.Compliant || len(got.Changes[0].Violations) != 0 {
		t.Errorf("nobody mapped: %+v", got)
	}
	if got := ApplyDuties(refuse, only, "carol"); !got.Compliant {
		t.Errorf("someone else deploying: %+v", got)
	}
}
