package compliance_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	c "sockembot/compliance"
)

const (
	headSHA = "ffffffffffffffffffffffffffffffffffffffff"
	oldSHA  = "1111111111111111111111111111111111111111"
)

func at(minute int) time.Time {
	return time.Date(2026, 11, 20, 10, minute, 0, 0, time.UTC)
}

func review(user, state, commit string, minute int) c.Review {
	return c.Review{User: user, State: state, CommitID: commit, SubmittedAt: at(minute)}
}

// pullRequest is a compliant change under the default policy: alice wrote it, referencing
// PAY-3 (In Progress), and bob approved the final commit. Each case changes one thing.
func pullRequest(edit func(pr *c.PullRequest)) c.Change {
	pr := &c.PullRequest{
		Number: 12, Title: "PAY-3 refunds", Body: "Adds partial refunds.", HeadBranch: "feature/refunds",
		HeadSHA: headSHA, URL: "https://github.com/acme/payments/pull/12",
		Author: "alice", MergedBy: "bob", MergeSHA: "9999999999999999999999999999999999999999",
		MergedAt: at(59),
		Commits: []c.Commit{
			{SHA: oldSHA, Message: "refunds: model", Author: "alice", Committer: "alice", AuthoredAt: at(0)},
			{SHA: headSHA, Message: "Merge branch 'main'", Author: "alice", Committer: "web-flow", AuthoredAt: at(20)},
		},
		Reviews: []c.Review{review("bob", c.StateApproved, headSHA, 30)},
	}
	if edit != nil {
		edit(pr)
	}
	return c.Change{Kind: c.KindPullRequest, PR: pr, RangeCommits: []string{pr.MergeSHA}}
}

func directPush(message string) c.Change {
	return c.Change{
		Kind: c.KindDirectPush,
		Push: &c.Commit{SHA: "abcdef0123456789abcdef0123456789abcdef01", Message: message, Author: "mallory", Committer: "mallory"},
	}
}

var jiraTickets = map[string]c.Ticket{
	"PAY-3":   {Key: "PAY-3", Found: true, Status: "In Progress", StatusCategory: "indeterminate", URL: "https://acme.atlassian.net/browse/PAY-3"},
	"PAY-5":   {Key: "PAY-5", Found: true, Status: "In Review", StatusCategory: "indeterminate"},
	"PAY-7":   {Key: "PAY-7", Found: true, Status: "Done", StatusCategory: "done"},
	"PAY-9":   {Key: "PAY-9", Found: true, Status: "To Do", StatusCategory: "new"},
	"PAY-404": {Key: "PAY-404", Found: false},
	"OPS-1":   {Key: "OPS-1", Found: true, Status: "In Progress", StatusCategory: "indeterminate"},
}

func facts(changes ...c.Change) c.Facts {
	return c.Facts{
		Range:        c.Range{Repo: "acme/payments", Base: "v1.3.0", Head: "v1.4.0", BaseSHA: oldSHA, HeadSHA: headSHA, Changes: changes},
		JiraProjects: []string{"PAY", "OPS"},
		Tickets:      jiraTickets,
	}
}

func TestEvaluateRules(t *testing.T) {
	tests := []struct {
		name      string
		policy    func(p *c.Policy)
		change    c.Change
		want      []c.Code
		approvers []string
		tickets   []string // nil: not checked; []string{}: none referenced
		// messageHas are fragments the violation messages must contain, in order of violations.
		messageHas []string
	}{
		{
			name: "approved by a second engineer", change: pullRequest(nil),
			approvers: []string{"bob"}, tickets: []string{"PAY-3"},
		},
		{
			name: "approval on an older commit",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = []c.Review{review("bob", c.StateApproved, oldSHA, 10)}
			}),
			want:       []c.Code{c.StaleApproval},
			messageHas: []string{"approval by bob (on 1111111) predates the last push (head fffffff); needs 1 approval on the last commit"},
		},
		{
			name: "approval on the last commit after one on an older commit",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = []c.Review{review("bob", c.StateApproved, oldSHA, 10), review("bob", c.StateApproved, headSHA, 40)}
			}),
			approvers: []string{"bob"},
		},
		{
			name: "approval submitted after the merge",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = []c.Review{review("bob", c.StateApproved, headSHA, 59), review("carol", c.StateApproved, headSHA, 61)}
			}),
			approvers: []string{"bob"},
		},
		{
			name: "the only approval came after the merge",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = []c.Review{review("bob", c.StateChangesRequested, headSHA, 30), review("bob", c.StateApproved, headSHA, 61)}
			}),
			want:       []c.Code{c.MissingApproval, c.ChangesRequested},
			messageHas: []string{"has 0 (not counted: bob approved after the merge)", "bob requested changes and has not approved since"},
		},
		{
			name: "only the committer approved",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Commits = append(pr.Commits, c.Commit{SHA: "2222", Message: "fix tests", Author: "carol", Committer: "carol"})
				pr.Reviews = []c.Review{review("carol", c.StateApproved, headSHA, 30)}
			}),
			want:       []c.Code{c.MissingApproval},
			messageHas: []string{"needs 1 approval on the last commit from someone other than the author or the pull request's committers; has 0 (not counted: carol committed to the pull request)"},
		},
		{
			name: "co-author approved",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Commits = append(pr.Commits, c.Commit{SHA: "2222", Message: "fix tests", Author: "carol", Committer: "web-flow"})
				pr.Reviews = []c.Review{review("carol", c.StateApproved, headSHA, 30)}
			}),
			want: []c.Code{c.MissingApproval},
		},
		{
			name:   "allow_committers on",
			policy: func(p *c.Policy) { p.Approvals.AllowCommitters = true },
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Commits = append(pr.Commits, c.Commit{SHA: "2222", Message: "fix tests", Author: "carol", Committer: "carol"})
				pr.Reviews = []c.Review{review("carol", c.StateApproved, headSHA, 30)}
			}),
			approvers: []string{"carol"},
		},
		{
			name: "author approved own PR",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = []c.Review{review("alice", c.StateApproved, headSHA, 30)}
			}),
			want:       []c.Code{c.MissingApproval},
			messageHas: []string{"has 0 (not counted: alice is the author)"},
		},
		{
			name: "author approved own PR, login in another case",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = []c.Review{review("Alice", c.StateApproved, headSHA, 30)}
			}),
			want: []c.Code{c.MissingApproval},
		},
		{
			name:   "allow_author on",
			policy: func(p *c.Policy) { p.Approvals.AllowAuthor = true },
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = []c.Review{review("alice", c.StateApproved, headSHA, 30)}
			}),
			approvers: []string{"alice"},
		},
		{
			name: "no reviews",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = nil
			}),
			want:       []c.Code{c.MissingApproval},
			messageHas: []string{"needs 1 approval on the last commit from someone other than the author or the pull request's committers; has 0"},
		},
		{
			name: "changes requested after approval",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = append(pr.Reviews, review("bob", c.StateChangesRequested, headSHA, 40))
			}),
			want:       []c.Code{c.MissingApproval, c.ChangesRequested},
			messageHas: []string{"has 0", "bob requested changes"},
		},
		{
			name: "changes requested by someone else after approval",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = append(pr.Reviews, review("dave", c.StateChangesRequested, headSHA, 40))
			}),
			want: []c.Code{c.ChangesRequested}, approvers: []string{"bob"},
			messageHas: []string{"dave requested changes and has not approved since"},
		},
		{
			name: "approval after changes requested",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = []c.Review{review("bob", c.StateChangesRequested, oldSHA, 10), review("bob", c.StateApproved, headSHA, 30)}
			}),
			approvers: []string{"bob"},
		},
		{
			name: "dismissed approval",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = []c.Review{review("bob", c.StateDismissed, headSHA, 30)}
			}),
			want: []c.Code{c.MissingApproval},
		},
		{
			name: "approval dismissed later",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = append(pr.Reviews, review("bob", c.StateDismissed, headSHA, 45))
			}),
			want: []c.Code{c.MissingApproval},
		},
		{
			name: "comment after approval keeps the approval",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = append(pr.Reviews, review("bob", c.StateCommented, headSHA, 40), review("bob", c.StatePending, "", 50))
			}),
			approvers: []string{"bob"},
		},
		{
			name: "130 reviews, approval last",
			change: pullRequest(func(pr *c.PullRequest) {
				// Newest first, as a careless gatherer might hand them over: order comes from
				// submitted_at, not from the slice.
				rs := []c.Review{review("bob", c.StateApproved, headSHA, 59)}
				for i := 128; i >= 1; i-- {
					rs = append(rs, c.Review{User: "bob", State: c.StateCommented, CommitID: headSHA, SubmittedAt: at(0).Add(time.Duration(i) * time.Second)})
				}
				rs = append(rs, review("bob", c.StateChangesRequested, oldSHA, 0))
				pr.Reviews = rs
			}),
			approvers: []string{"bob"},
		},
		{
			name: "review state in lower case, as webhooks send it",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = []c.Review{review("bob", "approved", headSHA, 30)}
			}),
			approvers: []string{"bob"},
		},
		{
			name: "approval by a deleted account",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = []c.Review{review("", c.StateApproved, headSHA, 30)}
			}),
			want: []c.Code{c.MissingApproval},
		},
		{
			name: "head commit unknown",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.HeadSHA = ""
				pr.Reviews = []c.Review{review("bob", c.StateApproved, "", 30)}
			}),
			want: []c.Code{c.StaleApproval},
		},
		{
			name:   "invalidate_on_push off",
			policy: func(p *c.Policy) { p.Approvals.InvalidateOnPush = false },
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = []c.Review{review("bob", c.StateApproved, oldSHA, 10)}
			}),
			approvers: []string{"bob"},
		},
		{
			name:   "two approvals required, one given",
			policy: func(p *c.Policy) { p.Approvals.Required = 2 },
			change: pullRequest(nil),
			want:   []c.Code{c.MissingApproval}, approvers: []string{"bob"},
			messageHas: []string{"needs 2 approvals on the last commit"},
		},
		{
			name: "approved only by a bot account",
			change: pullRequest(func(pr *c.PullRequest) {
				bot := review("github-actions[bot]", c.StateApproved, headSHA, 20)
				bot.Bot = true
				pr.Reviews = []c.Review{bot}
			}),
			want: []c.Code{c.MissingApproval}, approvers: []string{},
			messageHas: []string{"not counted: github-actions[bot] is a bot"},
		},
		{
			name: "approved only by someone without write access",
			change: pullRequest(func(pr *c.PullRequest) {
				outsider := review("mallory", c.StateApproved, headSHA, 20)
				outsider.Association = "CONTRIBUTOR"
				pr.Reviews = []c.Review{outsider}
			}),
			want: []c.Code{c.MissingApproval}, approvers: []string{},
			messageHas: []string{"mallory has no write access (contributor)"},
		},
		{
			name: "approved by a collaborator",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews[0].Association = "COLLABORATOR"
			}),
			approvers: []string{"bob"},
		},
		{
			name:   "two approvals required, two given",
			policy: func(p *c.Policy) { p.Approvals.Required = 2 },
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = append(pr.Reviews, review("dave", c.StateApproved, headSHA, 20))
			}),
			approvers: []string{"dave", "bob"},
		},
		{
			name:   "approvals not required, none given",
			policy: func(p *c.Policy) { p.Approvals.Required = 0 },
			change: pullRequest(func(pr *c.PullRequest) { pr.Reviews = nil }),
		},
		{
			name:   "approvals not required, but a reviewer's request for changes still stands",
			policy: func(p *c.Policy) { p.Approvals.Required = 0 },
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Reviews = []c.Review{review("dave", c.StateChangesRequested, headSHA, 20)}
			}),
			want: []c.Code{c.ChangesRequested},
		},
		{
			name: "UTF-8 in title is not a ticket",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Title = "Handle UTF-8 names, SHA-256 ids and ISO-8601 dates"
			}),
			tickets:    []string{},
			want:       []c.Code{c.MissingTicket},
			approvers:  []string{"bob"},
			messageHas: []string{"no Jira ticket referenced in the title, body, branch or commits"},
		},
		{
			name: "ticket in To Do",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Title = "PAY-9 refunds"
			}),
			want: []c.Code{c.TicketStatus}, approvers: []string{"bob"}, tickets: []string{"PAY-9"},
			messageHas: []string{"PAY-9 is in status To Do; allowed: any status outside the To Do category"},
		},
		{
			name: "ticket done",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Title = "PAY-7 refunds"
			}),
			approvers: []string{"bob"}, tickets: []string{"PAY-7"},
		},
		{
			name:   "ticket in allowed status",
			policy: func(p *c.Policy) { p.Tickets.AllowedStatuses = []string{"in review", "Done"} },
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Title = "PAY-5 refunds"
			}),
			approvers: []string{"bob"}, tickets: []string{"PAY-5"},
		},
		{
			name:   "ticket not in allowed statuses",
			policy: func(p *c.Policy) { p.Tickets.AllowedStatuses = []string{"In Review", "Done"} },
			change: pullRequest(nil),
			want:   []c.Code{c.TicketStatus}, approvers: []string{"bob"}, tickets: []string{"PAY-3"},
			messageHas: []string{"PAY-3 is in status In Progress; allowed: In Review, Done"},
		},
		{
			name: "unknown ticket",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Title = "PAY-404 refunds"
			}),
			want: []c.Code{c.TicketNotFound}, approvers: []string{"bob"}, tickets: []string{"PAY-404"},
			messageHas: []string{"PAY-404 was not found in Jira"},
		},
		{
			name: "ticket Jira was never asked about",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Title = "PAY-77 refunds"
			}),
			want: []c.Code{c.TicketNotFound}, approvers: []string{"bob"}, tickets: []string{"PAY-77"},
		},
		{
			name: "one good ticket and one unknown",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Body = "Also fixes PAY-404."
			}),
			want: []c.Code{c.TicketNotFound}, approvers: []string{"bob"}, tickets: []string{"PAY-3", "PAY-404"},
		},
		{
			name: "ticket only in branch name",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Title, pr.HeadBranch = "Refunds", "feature/pay-3-refunds"
			}),
			approvers: []string{"bob"}, tickets: []string{"PAY-3"},
		},
		{
			name: "ticket only in the body",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Title, pr.Body = "Refunds", "Closes PAY-3."
			}),
			approvers: []string{"bob"}, tickets: []string{"PAY-3"},
		},
		{
			name: "ticket only in a commit message",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Title = "Refunds"
				pr.Commits[0].Message = "refunds: model\n\nRefs OPS-1"
			}),
			approvers: []string{"bob"}, tickets: []string{"OPS-1"},
		},
		{
			name: "lower-case key in the title is not a ticket",
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Title = "pay-3 refunds"
			}),
			tickets: []string{},
			want:    []c.Code{c.MissingTicket}, approvers: []string{"bob"},
		},
		{
			name:    "project not in tickets.projects",
			policy:  func(p *c.Policy) { p.Tickets.Projects = []string{"OPS"} },
			change:  pullRequest(nil),
			tickets: []string{},
			want:    []c.Code{c.MissingTicket}, approvers: []string{"bob"},
		},
		{
			name:      "project in tickets.projects",
			policy:    func(p *c.Policy) { p.Tickets.Projects = []string{"PAY"} },
			change:    pullRequest(nil),
			approvers: []string{"bob"}, tickets: []string{"PAY-3"},
		},
		{
			name:   "tickets not required",
			policy: func(p *c.Policy) { p.Tickets.Required = false },
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Title = "Refunds"
			}),
			tickets: []string{}, approvers: []string{"bob"},
		},
		{
			name:   "tickets not required, ticket in To Do is only listed",
			policy: func(p *c.Policy) { p.Tickets.Required = false },
			change: pullRequest(func(pr *c.PullRequest) {
				pr.Title = "PAY-9 refunds"
			}),
			approvers: []string{"bob"}, tickets: []string{"PAY-9"},
		},
		{
			name:       "direct push",
			change:     directPush("PAY-3 hotfix\n\nno time for review"),
			want:       []c.Code{c.DirectPush},
			tickets:    []string{"PAY-3"},
			messageHas: []string{"commit abcdef0 by mallory was pushed straight to the branch without a pull request"},
		},
		{
			name:       "direct push without a ticket",
			change:     directPush("hotfix"),
			tickets:    []string{},
			want:       []c.Code{c.DirectPush, c.MissingTicket},
			messageHas: []string{"", "no Jira ticket referenced in the commit message"},
		},
		{
			name:   "direct push with everything else off",
			policy: func(p *c.Policy) { p.Tickets.Required, p.Approvals.Required = false, 0 },
			change: directPush("hotfix"),
			want:   []c.Code{c.DirectPush},
		},
		{
			name:   "pull request with no facts",
			change: c.Change{Kind: c.KindPullRequest},
			want:   []c.Code{c.MissingTicket, c.MissingApproval},
		},
		{
			name:   "change of unknown kind is judged as a direct push",
			change: c.Change{Kind: "", PR: pullRequest(nil).PR},
			want:   []c.Code{c.DirectPush, c.MissingTicket},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := c.DefaultPolicy()
			if tt.policy != nil {
				tt.policy(&p)
			}
			if err := p.Validate(); err != nil {
				t.Fatalf("test policy invalid: %v", err)
			}
			r := c.Evaluate(p, facts(tt.change))
			if len(r.Changes) != 1 {
				t.Fatalf("got %d change reports, want 1", len(r.Changes))
			}
			cr := r.Changes[0]
			var codes []c.Code
			for _, v := range cr.Violations {
				codes = append(codes, v.Code)
			}
			if !slices.Equal(codes, tt.want) {
				t.Errorf("violations = %v, want %v", cr.Violations, tt.want)
			}
			if cr.Compliant != (len(tt.want) == 0) || r.Compliant != cr.Compliant {
				t.Errorf("change compliant = %v, report compliant = %v, with violations %v", cr.Compliant, r.Compliant, cr.Violations)
			}
			var approvers []string
			for _, a := range cr.Approvals {
				approvers = append(approvers, a.User)
			}
			if !slices.Equal(approvers, tt.approvers) {
				t.Errorf("approvals = %v, want %v", approvers, tt.approvers)
			}
			var keys []string
			for _, tk := range cr.Tickets {
				keys = append(keys, tk.Key)
			}
			if tt.tickets != nil && !slices.Equal(keys, tt.tickets) {
				t.Errorf("tickets = %v, want %v", keys, tt.tickets)
			}
			for i, frag := range tt.messageHas {
				if i >= len(cr.Violations) {
					break
				}
				if !strings.Contains(cr.Violations[i].Message, frag) {
					t.Errorf("violation %d message %q does not contain %q", i, cr.Violations[i].Message, frag)
				}
			}
		})
	}
}

func TestEvaluateReportFields(t *testing.T) {
	pr := pullRequest(func(pr *c.PullRequest) { pr.Title = "PAY-404 refunds" })
	push := directPush("Hotfix PAY-3\n\nbody")
	push.RangeCommits = nil
	r := c.Evaluate(c.DefaultPolicy(), facts(pr, push, pullRequest(nil)))

	if r.Repo != "acme/payments" || r.Base != "v1.3.0" || r.Head != "v1.4.0" || r.BaseSHA != oldSHA || r.HeadSHA != headSHA {
		t.Errorf("range fields not copied: %+v", r)
	}
	if r.Compliant || len(r.Changes) != 3 {
		t.Fatalf("compliant = %v with %d changes, want false with 3", r.Compliant, len(r.Changes))
	}
	got := r.Changes[0]
	want := c.ChangeReport{
		Kind: c.KindPullRequest, Number: 12, Title: "PAY-404 refunds", URL: "https://github.com/acme/payments/pull/12",
		Author: "alice", MergedBy: "bob", MergeSHA: "9999999999999999999999999999999999999999",
		Commits:    []string{"9999999999999999999999999999999999999999"},
		Tickets:    []c.Ticket{{Key: "PAY-404"}},
		Approvals:  []c.Approval{{User: "bob", At: at(30)}},
		Violations: []c.Violation{{Code: c.TicketNotFound, Message: "PAY-404 was not found in Jira"}},
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("pull request report\n got %s\nwant %s", g, w)
	}
	if got := r.Changes[1]; got.Kind != c.KindDirectPush || got.Title != "Hotfix PAY-3" || got.Author != "mallory" ||
		!slices.Equal(got.Commits, []string{"abcdef0123456789abcdef0123456789abcdef01"}) || got.Tickets[0] != jiraTickets["PAY-3"] {
		t.Errorf("direct push report = %+v", got)
	}
	if !r.Changes[2].Compliant {
		t.Errorf("third change should be compliant: %v", r.Changes[2].Violations)
	}
	bad := r.NonCompliant()
	if len(bad) != 2 || bad[0].Number != 12 || bad[1].Kind != c.KindDirectPush {
		t.Errorf("NonCompliant = %+v, want the first two changes", bad)
	}
}

// JSON consumers (the CLI contract) must see [] for "nothing", never null.
func TestEvaluateJSONHasNoNulls(t *testing.T) {
	empty := mustJSON(t, c.Evaluate(c.DefaultPolicy(), c.Facts{}))
	if empty != `{"repo":"","base":"","head":"","base_sha":"","head_sha":"","compliant":true,"changes":[]}` {
		t.Errorf("empty range report = %s", empty)
	}
	for _, ch := range []c.Change{directPush("hotfix"), {Kind: c.KindPullRequest}} {
		js := mustJSON(t, c.Evaluate(c.DefaultPolicy(), c.Facts{Range: c.Range{Changes: []c.Change{ch}}}))
		if strings.Contains(js, "null") {
			t.Errorf("report has null: %s", js)
		}
	}
}

func TestViolationString(t *testing.T) {
	v := c.Violation{Code: c.MissingTicket, Message: "no Jira ticket referenced in the commit message"}
	if got := v.String(); got != "missing_ticket: no Jira ticket referenced in the commit message" {
		t.Errorf("String() = %q", got)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// benchmarkFacts is a release of n merged pull requests, each with a few commits and reviews.
func benchmarkFacts(n int) c.Facts {
	changes := make([]c.Change, n)
	for i := range changes {
		changes[i] = pullRequest(func(pr *c.PullRequest) {
			pr.Number = i + 1
			pr.Title = fmt.Sprintf("PAY-%d change %d", i%10+1, i)
			pr.Body = "Implements the thing. See SHA-256 notes and OPS-1."
			pr.HeadBranch = fmt.Sprintf("feature/pay-%d-change", i%10+1)
			pr.Reviews = []c.Review{
				review("dave", c.StateCommented, oldSHA, 5),
				review("dave", c.StateChangesRequested, oldSHA, 10),
				review("bob", c.StateApproved, oldSHA, 15),
				review("dave", c.StateApproved, headSHA, 35),
				review("bob", c.StateApproved, headSHA, 40),
			}
		})
	}
	f := facts(changes...)
	f.Tickets = map[string]c.Ticket{}
	for i := 1; i <= 10; i++ {
		key := fmt.Sprintf("PAY-%d", i)
		f.Tickets[key] = c.Ticket{Key: key, Found: true, Status: "In Progress", StatusCategory: "indeterminate"}
	}
	f.Tickets["OPS-1"] = jiraTickets["OPS-1"]
	return f
}

func BenchmarkEvaluate300Changes(b *testing.B) {
	f := benchmarkFacts(300)
	p := c.DefaultPolicy()
	if r := c.Evaluate(p, f); !r.Compliant {
		b.Fatalf("benchmark range should be compliant: %v", r.NonCompliant()[0].Violations)
	}
	b.ReportAllocs()
	for b.Loop() {
		c.Evaluate(p, f)
	}
}
