package compliance_test

import (
	"regexp"
	"strings"
	"testing"

	c "sockembot/compliance"
)

func TestPolicyValidate(t *testing.T) {
	p := c.DefaultPolicy()
	if err := p.Validate(); err != nil {
		t.Errorf("default policy: %v", err)
	}
	bad := c.Policy{
		Tickets:   c.TicketPolicy{Required: true, Projects: []string{"PAY", "pay", ""}, AllowedStatuses: []string{"Done", " "}},
		Approvals: c.ApprovalPolicy{Required: -1},
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid policy accepted")
	}
	for _, want := range []string{
		"approvals.required must be 0 or more, not -1",
		"tickets.allowed_statuses[1] is empty",
		`tickets.projects[1]: "pay" is not a Jira project key`,
		`tickets.projects[2]: "" is not a Jira project key`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "projects[0]") {
		t.Errorf("error %q blames a valid project", err)
	}
}

func TestPolicyHash(t *testing.T) {
	p := c.DefaultPolicy()
	h := c.PolicyHash(p)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(h) {
		t.Fatalf("PolicyHash = %q, want 64 hex digits", h)
	}
	nilLists := p
	nilLists.Tickets.Projects, nilLists.Tickets.AllowedStatuses = nil, nil
	if c.PolicyHash(nilLists) != h {
		t.Error("absent lists and empty lists hash differently")
	}

	a, b := p, p
	a.Tickets.AllowedStatuses = []string{"In Review", "Done"}
	b.Tickets.AllowedStatuses = []string{"Done", "In Review"}
	if c.PolicyHash(a) != c.PolicyHash(b) {
		t.Error("the order of allowed statuses changes the hash")
	}
	if a.Tickets.AllowedStatuses[0] != "In Review" {
		t.Error("PolicyHash reordered the caller's list")
	}

	for name, edit := range map[string]func(*c.Policy){
		"tickets.required":             func(p *c.Policy) { p.Tickets.Required = false },
		"tickets.projects":             func(p *c.Policy) { p.Tickets.Projects = []string{"PAY"} },
		"tickets.allowed_statuses":     func(p *c.Policy) { p.Tickets.AllowedStatuses = []string{"Done"} },
		"approvals.required":           func(p *c.Policy) { p.Approvals.Required = 2 },
		"approvals.allow_author":       func(p *c.Policy) { p.Approvals.AllowAuthor = true },
		"approvals.allow_committers":   func(p *c.Policy) { p.Approvals.AllowCommitters = true },
		"approvals.invalidate_on_push": func(p *c.Policy) { p.Approvals.InvalidateOnPush = false },
	} {
		q := c.DefaultPolicy()
		edit(&q)
		if c.PolicyHash(q) == h {
			t.Errorf("changing %s does not change the hash", name)
		}
	}
}
