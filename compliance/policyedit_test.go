package compliance_test

import (
	"slices"
	"strings"
	"testing"

	c "sockembot/compliance"
)

func codes(cr c.ChangeReport) []c.Code {
	var out []c.Code
	for _, v := range cr.Violations {
		out = append(out, v.Code)
	}
	return out
}

// A change that edits the policy file is labelled, needs a policy owner's approval besides the
// usual rules, and may not write a policy that is invalid or looser than the floor.
func TestEvaluatePolicyEdit(t *testing.T) {
	loose := c.DefaultPolicy()
	loose.Approvals.Required = 0
	tight := c.DefaultPolicy()
	tight.Approvals.Required = 2
	edit := func(e c.PolicyEdit) c.Change {
		ch := pullRequest(nil)
		e.Path, e.Commits = ".sockembot.yml", []string{ch.PR.MergeSHA}
		ch.PolicyEdit = &e
		return ch
	}
	withOwners := func(owners ...string) c.Policy {
		p := c.DefaultPolicy()
		p.Owners = owners
		return p
	}
	floorOne := c.LoosestPolicy()
	floorOne.Approvals.Required = 1
	tests := []struct {
		name   string
		policy c.Policy
		change c.Change
		want   []c.Code
		says   string
	}{
		{"no owners configured", c.DefaultPolicy(), edit(c.PolicyEdit{Policy: &tight}), []c.Code{c.PolicyOwnerApproval}, "none are configured (policy_owners in sockembot.yaml)"},
		{"approved by someone who is no owner", withOwners("carol"), edit(c.PolicyEdit{Policy: &tight}), []c.Code{c.PolicyOwnerApproval}, "from a policy owner other than its author: carol"},
		{"approved by an owner", withOwners("carol", "Bob"), edit(c.PolicyEdit{Policy: &tight}), nil, ""},
		{"the owner is the author", withOwners("alice"), func() c.Change {
			ch := edit(c.PolicyEdit{Policy: &tight})
			ch.PR.Reviews = append(ch.PR.Reviews, review("alice", c.StateApproved, headSHA, 40))
			return ch
		}(), []c.Code{c.PolicyOwnerApproval}, ""},
		{"the owner's approval is stale", withOwners("bob"), func() c.Change {
			ch := edit(c.PolicyEdit{Policy: &tight})
			ch.PR.Reviews = []c.Review{review("bob", c.StateApproved, oldSHA, 10), review("dave", c.StateApproved, headSHA, 40)}
			return ch
		}(), []c.Code{c.PolicyOwnerApproval}, ""},
		{"looser than the global policy, no floor", withOwners("bob"), edit(c.PolicyEdit{Policy: &loose}), []c.Code{c.PolicyBelowFloor}, "approvals.required is 0; the floor is 1"},
		{"looser than the floor", func() c.Policy { p := withOwners("bob"); p.Floor = &floorOne; return p }(), edit(c.PolicyEdit{Policy: &loose}), []c.Code{c.PolicyBelowFloor}, ""},
		{"within a lower floor", func() c.Policy { p := withOwners("bob"); f := c.LoosestPolicy(); p.Floor = &f; return p }(), edit(c.PolicyEdit{Policy: &loose}), nil, ""},
		{"invalid file", withOwners("bob"), edit(c.PolicyEdit{Invalid: "approvals.required must be 0 or more, not -1"}), []c.Code{c.PolicyInvalid}, "not a valid policy: approvals.required must be 0 or more"},
		{"deleted: back to the global policy", withOwners("bob"), edit(c.PolicyEdit{Deleted: true}), nil, ""},
		{"pushed straight to the branch", withOwners("bob"), func() c.Change {
			ch := directPush("PAY-3 relax the policy")
			ch.PolicyEdit = &c.PolicyEdit{Path: ".sockembot.yml", Policy: &loose}
			return ch
		}(), []c.Code{c.DirectPush, c.PolicyOwnerApproval, c.PolicyBelowFloor}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.Evaluate(tt.policy, facts(tt.change))
			cr := r.Changes[0]
			if !cr.PolicyChange {
				t.Error("not labelled a policy change")
			}
			if got := codes(cr); !slices.Equal(got, tt.want) {
				t.Fatalf("violations %v, want %v", cr.Violations, tt.want)
			}
			if cr.Compliant != (len(tt.want) == 0) {
				t.Errorf("compliant %v", cr.Compliant)
			}
			if tt.says != "" && !strings.Contains(cr.Violations[len(cr.Violations)-1].Message, tt.says) {
				t.Errorf("message %q lacks %q", cr.Violations[len(cr.Violations)-1].Message, tt.says)
			}
		})
	}
	if r := c.Evaluate(c.DefaultPolicy(), facts(pullRequest(nil))); r.Changes[0].PolicyChange {
		t.Error("a change that does not touch the policy is labelled a policy change")
	}
}

func TestLooseningsAndTighten(t *testing.T) {
	floor := c.DefaultPolicy()
	floor.Tickets.Projects = []string{"PAY"}
	floor.Tickets.AllowedStatuses = []string{"In Progress", "Done"}
	if got := c.Loosenings(floor, floor); len(got) != 0 {
		t.Fatalf("a policy is looser than itself: %q", got)
	}
	loose := c.LoosestPolicy()
	loose.Emergency.ReviewWithinBusinessDays = 10
	loose.Tickets.Projects = []string{"PAY", "OPS"}
	got := c.Loosenings(loose, floor)
	want := []string{
		"tickets.required is off; the floor requires tickets",
		"tickets.projects allows OPS; the floor allows only PAY",
		"tickets.allowed_statuses allows any status outside To Do; the floor allows only In Progress, Done",
		"approvals.required is 0; the floor is 1",
		"approvals.allow_author is on; the floor does not let authors approve their own change",
		"approvals.allow_committers is on; the floor does not let committers approve",
		"approvals.invalidate_on_push is off; the floor wants approvals on the last commit",
		`separation_of_duties.requester_sole_approver is "warn"; the floor is "refuse"`,
		"emergency.review_within_business_days is 10; the floor is 2",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("loosenings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	raised := c.Tighten(loose, floor)
	if l := c.Loosenings(raised, floor); len(l) != 0 {
		t.Fatalf("tightened to the floor, still looser: %q", l)
	}
	// Stricter settings of the repository's own survive.
	strict := floor
	strict.Approvals.Required = 3
	strict.Tickets.AllowedStatuses = []string{"Done"}
	if got := c.Tighten(strict, floor); got.Approvals.Required != 3 || !slices.Equal(got.Tickets.AllowedStatuses, []string{"Done"}) {
		t.Errorf("tighten loosened a stricter policy: %+v", got)
	}
	if l := c.Loosenings(floor, c.LoosestPolicy()); len(l) != 0 {
		t.Errorf("the loosest policy is a floor for anything: %q", l)
	}
}
