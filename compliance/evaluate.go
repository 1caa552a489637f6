package compliance

import (
	"fmt"
	"slices"
	"strings"
)

// Evaluate judges every change of f.Range under p, in input order. It only reads its inputs:
// the same policy and facts always give the same report.
func Evaluate(p Policy, f Facts) Report {
	isTicket := ticketFilter(p, f.JiraProjects)
	r := Report{
		Repo: f.Range.Repo, Base: f.Range.Base, Head: f.Range.Head,
		BaseSHA: f.Range.BaseSHA, HeadSHA: f.Range.HeadSHA,
		Compliant: true,
		Changes:   make([]ChangeReport, 0, len(f.Range.Changes)),
	}
	for _, c := range f.Range.Changes {
		cr := evaluateChange(p, c, ticketRefs(c, isTicket), f.Tickets)
		r.Compliant = r.Compliant && cr.Compliant
		r.Changes = append(r.Changes, cr)
	}
	return r
}

func evaluateChange(p Policy, c Change, refs []string, known map[string]Ticket) ChangeReport {
	cr := ChangeReport{
		Kind:       c.Kind,
		Commits:    append([]string{}, c.RangeCommits...),
		Approvals:  []Approval{},
		Violations: []Violation{},
		Recorded:   c.Recorded,
	}
	var approvals []Violation
	where := "the title, body, branch or commits"
	if c.Kind == KindPullRequest {
		pr := c.PR
		if pr == nil {
			pr = &PullRequest{} // judged on no facts, so it fails every rule that is on
		}
		cr.Number, cr.Title, cr.URL = pr.Number, pr.Title, pr.URL
		cr.Author, cr.MergedBy, cr.MergeSHA = pr.Author, pr.MergedBy, pr.MergeSHA
		a := judgeApprovals(p.Approvals, pr)
		cr.Approvals = a.counted
		// With approvals.required 0 no approval is needed, but a reviewer's open request for
		// changes still stands in the way.
		approvals = a.violations(p.Approvals, pr.HeadSHA)
	} else {
		// Anything not shown to have come through a pull request is a direct push: nobody
		// reviewed it (SOC 2 CC8.1 wants every change authorised and reviewed).
		push := c.Push
		if push == nil {
			push = &Commit{}
		}
		cr.Title, _, _ = strings.Cut(push.Message, "\n")
		cr.Author = push.Author
		cr.URL = push.URL
		if len(cr.Commits) == 0 && push.SHA != "" {
			cr.Commits = []string{push.SHA}
		}
		where = "the commit message"
		cr.Violations = append(cr.Violations, Violation{DirectPush, fmt.Sprintf(
			"commit %s by %s was pushed straight to the branch without a pull request, so nobody reviewed it",
			short(push.SHA), orUnknown(push.Author))})
	}
	var ticketViolations []Violation
	cr.Tickets, ticketViolations = judgeTickets(p.Tickets, refs, known, where)
	cr.Violations = append(cr.Violations, ticketViolations...)
	cr.Violations = append(cr.Violations, approvals...)
	if c.PolicyEdit != nil {
		cr.PolicyChange = true
		cr.Violations = append(cr.Violations, judgePolicyEdit(p, *c.PolicyEdit, cr)...)
	}
	cr.Compliant = len(cr.Violations) == 0
	return cr
}

// judgePolicyEdit holds a change to the repository's policy file to more than the usual rules:
// one of the policy owners must have approved it (someone other than its author, on the commit
// it ends at), and the policy it writes must be valid and no looser than the floor.
func judgePolicyEdit(p Policy, e PolicyEdit, cr ChangeReport) []Violation {
	var vs []Violation
	ownerApproved := false
	for _, a := range cr.Approvals {
		if !strings.EqualFold(a.User, cr.Author) && slices.ContainsFunc(p.Owners, func(o string) bool { return strings.EqualFold(o, a.User) }) {
			ownerApproved = true
		}
	}
	if !ownerApproved {
		who := "none are configured (policy_owners in sockembot.yaml)"
		if len(p.Owners) > 0 {
			who = strings.Join(p.Owners, ", ")
		}
		vs = append(vs, Violation{PolicyOwnerApproval, fmt.Sprintf(
			"changes %s, so it needs an approval from a policy owner other than its author: %s", e.Path, who)})
	}
	switch {
	case e.Invalid != "":
		vs = append(vs, Violation{PolicyInvalid, fmt.Sprintf("writes a %s that is not a valid policy: %s", e.Path, e.Invalid)})
	case e.Policy != nil:
		if loose := Loosenings(*e.Policy, FloorOf(p)); len(loose) > 0 {
			vs = append(vs, Violation{PolicyBelowFloor, fmt.Sprintf("writes a %s looser than the policy floor: %s", e.Path, strings.Join(loose, "; "))})
		}
	}
	return vs
}

// judgeTickets lists the referenced tickets and, when tickets are required, what is wrong with
// them. With tickets.required off no ticket rule applies; the tickets are still listed.
func judgeTickets(tp TicketPolicy, refs []string, known map[string]Ticket, where string) ([]Ticket, []Violation) {
	tickets := make([]Ticket, 0, len(refs))
	vs := []Violation{}
	if tp.Required && len(refs) == 0 {
		vs = append(vs, Violation{MissingTicket, "no Jira ticket referenced in " + where})
	}
	for _, key := range refs {
		// A key Jira was not asked about (or did not answer for) is a ticket nobody can show
		// exists: it is not found, never assumed fine.
		t, ok := known[key]
		if !ok {
			t = Ticket{}
		}
		t.Key = key
		tickets = append(tickets, t)
		switch {
		case !tp.Required:
		case !t.Found:
			vs = append(vs, Violation{TicketNotFound, key + " was not found in Jira"})
		case !statusAllowed(tp, t):
			vs = append(vs, Violation{TicketStatus, fmt.Sprintf("%s is in status %s; allowed: %s",
				key, orUnknown(t.Status), allowedText(tp))})
		}
	}
	return tickets, vs
}

func statusAllowed(tp TicketPolicy, t Ticket) bool {
	if len(tp.AllowedStatuses) > 0 {
		return slices.ContainsFunc(tp.AllowedStatuses, func(s string) bool {
			return strings.EqualFold(strings.TrimSpace(s), strings.TrimSpace(t.Status))
		})
	}
	// An unknown category is no proof the work was planned and started: fail closed.
	return t.StatusCategory != "" && !strings.EqualFold(t.StatusCategory, StatusCategoryToDo)
}

func allowedText(tp TicketPolicy) string {
	if len(tp.AllowedStatuses) > 0 {
		return strings.Join(tp.AllowedStatuses, ", ")
	}
	return "any status outside the To Do category"
}

// approvalOutcome is what the reviews of one pull request add up to, before the policy's
// required count is applied.
type approvalOutcome struct {
	counted  []Approval
	stale    []string // eligible approvers whose approval is on an older commit
	ignored  []string // approvers who may not approve, with the reason
	blockers []string // reviewers whose latest review requests changes
}

func judgeApprovals(ap ApprovalPolicy, pr *PullRequest) approvalOutcome {
	var o approvalOutcome
	// A merged pull request is judged by its reviews as they stood at the merge: an approval
	// given afterwards approved nothing that was merged.
	reviews := make([]Review, 0, len(pr.Reviews))
	for _, r := range pr.Reviews {
		if !pr.MergedAt.IsZero() && r.SubmittedAt.After(pr.MergedAt) {
			if strings.EqualFold(r.State, StateApproved) {
				o.ignored = append(o.ignored, r.User+" approved after the merge")
			}
			continue
		}
		reviews = append(reviews, r)
	}
	slices.SortStableFunc(reviews, func(a, b Review) int { return a.SubmittedAt.Compare(b.SubmittedAt) })
	// Each reviewer's latest state-changing review is their verdict; a COMMENTED (or PENDING)
	// review after an approval leaves the approval standing, as on GitHub. Logins are
	// case-insensitive on GitHub; webhooks spell states in lower case.
	latest := map[string]int{}
	for i, r := range reviews {
		reviews[i].State = strings.ToUpper(r.State)
		switch reviews[i].State {
		case StateApproved, StateChangesRequested, StateDismissed:
			latest[strings.ToLower(r.User)] = i
		}
	}
	author := strings.ToLower(pr.Author)
	committers := map[string]bool{}
	for _, c := range pr.Commits {
		for _, login := range []string{c.Author, c.Committer} {
			// web-flow is GitHub committing on someone's behalf (web edits, merges), not a person.
			if login != "" && !strings.EqualFold(login, "web-flow") {
				committers[strings.ToLower(login)] = true
			}
		}
	}
	o.counted = []Approval{}
	for i, r := range reviews {
		user := strings.ToLower(r.User)
		if j, ok := latest[user]; !ok || j != i {
			continue
		}
		switch {
		// A review by a deleted account cannot be shown to be independent of the author.
		case user == "":
		case r.State == StateChangesRequested:
			if user != author {
				o.blockers = append(o.blockers, r.User)
			}
		case r.State != StateApproved:
		case user == author && !ap.AllowAuthor:
			o.ignored = append(o.ignored, r.User+" is the author")
		case r.Bot:
			o.ignored = append(o.ignored, r.User+" is a bot")
		case r.Association != "" && !canApprove(r.Association):
			o.ignored = append(o.ignored, fmt.Sprintf("%s has no write access (%s)", r.User, strings.ToLower(r.Association)))
		// The author is judged by allow_author alone: they nearly always commit to their PR.
		case user != author && committers[user] && !ap.AllowCommitters:
			o.ignored = append(o.ignored, r.User+" committed to the pull request")
		// An approval of older code says nothing about what was pushed after it.
		case ap.InvalidateOnPush && (pr.HeadSHA == "" || !strings.EqualFold(r.CommitID, pr.HeadSHA)):
			o.stale = append(o.stale, fmt.Sprintf("%s (on %s)", r.User, short(r.CommitID)))
		default:
			o.counted = append(o.counted, Approval{User: r.User, At: r.SubmittedAt})
		}
	}
	return o
}

// canApprove says whether a reviewer with this author_association can have write access to the
// repository, as a required approval on GitHub needs.
func canApprove(association string) bool {
	switch strings.ToUpper(association) {
	case "OWNER", "MEMBER", "COLLABORATOR":
		return true
	}
	return false
}

func (o approvalOutcome) violations(ap ApprovalPolicy, headSHA string) []Violation {
	var vs []Violation
	if n := len(o.counted); n < ap.Required {
		need := fmt.Sprintf("needs %d %s%s; has %d", ap.Required, plural(ap.Required, "approval"), eligible(ap), n)
		if len(o.stale) > 0 {
			what := "the approval by %s predates"
			if len(o.stale) > 1 {
				what = "the approvals by %s predate"
			}
			vs = append(vs, Violation{StaleApproval, fmt.Sprintf(what+" the last push (head %s); %s",
				strings.Join(o.stale, ", "), short(headSHA), need)})
		} else {
			if len(o.ignored) > 0 {
				need += " (not counted: " + strings.Join(o.ignored, ", ") + ")"
			}
			vs = append(vs, Violation{MissingApproval, need})
		}
	}
	for _, u := range o.blockers {
		vs = append(vs, Violation{ChangesRequested, u + " requested changes and has not approved since"})
	}
	return vs
}

// eligible says which approvals count under ap, for messages: " on the last commit from
// someone other than the author".
func eligible(ap ApprovalPolicy) string {
	var not []string
	if !ap.AllowAuthor {
		not = append(not, "the author")
	}
	if !ap.AllowCommitters {
		not = append(not, "the pull request's committers")
	}
	who := " from any reviewer"
	if len(not) > 0 {
		who = " from someone other than " + strings.Join(not, " or ")
	}
	if ap.InvalidateOnPush {
		who = " on the last commit" + who
	}
	return who
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return orUnknown(sha)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// NonCompliant returns the changes that broke at least one rule, in report order.
func (r Report) NonCompliant() []ChangeReport {
	bad := []ChangeReport{}
	for _, c := range r.Changes {
		if !c.Compliant {
			bad = append(bad, c)
		}
	}
	return bad
}

// String renders a violation as "code: message", the form used in logs and plain text.
func (v Violation) String() string { return string(v.Code) + ": " + v.Message }
