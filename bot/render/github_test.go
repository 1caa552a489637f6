package render

import (
	"sockembot/compliance"
	"strings"
	"testing"
)

func TestStatusDescription(t *testing.T) {
	ok := compliantChange()
	if got := StatusDescription(ok); got != "approved by bob · PAY-11 In Progress" {
		t.Errorf("compliant: %q", got)
	}
	bad := ok
	bad.Compliant = false
	bad.Violations = []compliance.Violation{
		{Code: "ticket_status", Message: "PAY-11 is in status To Do; allowed: any status outside the To Do category"},
		{Code: "changes_requested", Message: "carol requested changes and has not approved since"},
		{Code: "ticket_not_found", Message: "PAY-99 was not found in Jira"},
	}
	bad.Tickets[0].Status = "To Do"
	if got := StatusDescription(bad); got != "PAY-11 To Do · changes requested by carol · PAY-99 not in Jira" {
		t.Errorf("failure: %q", got)
	}
	long := ok
	for i := 0; i < 40; i++ {
		long.Tickets = append(long.Tickets, long.Tickets[0])
	}
	if got := StatusDescription(long); len([]rune(got)) != MaxStatusDescription || !strings.HasSuffix(got, "…") {
		t.Errorf("long description: %d runes", len([]rune(got)))
	}
}

// compliantChange is a change report that passes.
func compliantChange() compliance.ChangeReport {
	return compliance.ChangeReport{
		Kind: compliance.KindPullRequest, Number: 11, Compliant: true,
		Approvals: []compliance.Approval{{User: "bob"}},
		Tickets:   []compliance.Ticket{{Key: "PAY-11", Found: true, Status: "In Progress", StatusCategory: "indeterminate"}},
	}
}
