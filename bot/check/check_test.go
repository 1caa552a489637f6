package check_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"sockembot/bot/check"
	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	fakejira "sockembot/integrations/fake/jira"
	"sockembot/integrations/github"
	"sockembot/integrations/jira"
	"sockembot/integrations/store/storetest"
)

// world is one repository with a compliant pull request merged after a base tag, in the fakes,
// reached through the real GitHub and Jira clients.
type world struct {
	gh   *github.Client
	jira *jira.Client
	base string
	pr   int
}

func newWorld(t *testing.T) world {
	t.Helper()
	g := fakegithub.New(fakegithub.Options{})
	t.Cleanup(g.Close)
	j := fakejira.New(fakejira.Options{Mode: fakejira.Cloud})
	t.Cleanup(j.Close)
	j.AddIssue("PAY-1", "In Progress")
	r := g.AddRepo("acme/payments", "main")
	r.Commit("initial", "alice")
	base := r.Tag("v1")
	info := r.MergePR(fakegithub.PR{Title: "PAY-1 refunds", Author: "alice",
		Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.Squash)
	gc, jc := clients(t, g, j)
	return world{gh: gc, jira: jc, base: base, pr: info.Number}
}

// clients are the real GitHub and Jira clients of the fakes.
func clients(t *testing.T, g *fakegithub.Server, j *fakejira.Server) (*github.Client, *jira.Client) {
	t.Helper()
	gc, err := github.New(github.Options{BaseURL: g.URL(), Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	jc, err := jira.New(jira.Options{BaseURL: j.URL()})
	if err != nil {
		t.Fatal(err)
	}
	return gc, jc
}

// Adapters that panic in one method, each wrapping the real one.
type (
	panicGather   struct{ *github.Client }
	panicPull     struct{ *github.Client }
	panicFile     struct{ *github.Client }
	panicProjects struct{ *jira.Client }
	panicTickets  struct{ *jira.Client }
	panicAppend   struct{ check.Evidence }
)

func (panicGather) GatherKnown(context.Context, string, string, string, func(context.Context, []string) (map[string]compliance.RecordedPull, error)) (compliance.Range, error) {
	panic("gather exploded")
}
func (panicPull) PullRequest(context.Context, string, int) (compliance.Change, error) {
	panic("pull request exploded")
}
func (panicFile) File(context.Context, string, string, string) ([]byte, bool, error) {
	panic("policy file exploded")
}
func (panicProjects) Projects(context.Context) ([]string, error) { panic("projects exploded") }
func (panicTickets) Tickets(context.Context, []string) (map[string]compliance.Ticket, error) {
	var m map[string]compliance.Ticket
	m["PAY-1"] = compliance.Ticket{} // a nil map write, as a real bug would
	return m, nil
}
func (panicAppend) Append(context.Context, compliance.Evidence) (compliance.Record, error) {
	panic("append exploded")
}

// A panic in any adapter, in any goroutine of the check, on a range or a single pull request,
// comes back as a *PanicError with the stack where it was raised: the process lives on and the
// check fails closed.
func TestPanickingAdapterFailsTheCheckClosed(t *testing.T) {
	w := newWorld(t)
	st := storetest.SQLite(t)
	cases := map[string]func(c *check.Checker){
		"GitHub.Gather":      func(c *check.Checker) { c.GitHub = panicGather{w.gh} },
		"GitHub.PullRequest": func(c *check.Checker) { c.GitHub = panicPull{w.gh} },
		"policy file":        func(c *check.Checker) { c.Files = panicFile{w.gh} },
		"Jira.Projects":      func(c *check.Checker) { c.Jira = panicProjects{w.jira} },
		"Jira.Tickets":       func(c *check.Checker) { c.Jira = panicTickets{w.jira} },
		"store.Append":       func(c *check.Checker) { c.Evidence = panicAppend{st} },
	}
	for name, breakIt := range cases {
		for _, kind := range []string{"range", "pull request"} {
			t.Run(name+"/"+kind, func(t *testing.T) {
				c := &check.Checker{GitHub: w.gh, Jira: w.jira, Evidence: st, Files: w.gh}
				breakIt(c)
				req := check.Request{Repo: "acme/payments", Base: w.base, Head: "main", Policy: compliance.DefaultPolicy(), Trigger: "test"}
				if kind == "pull request" {
					req = check.Request{Repo: "acme/payments", PR: w.pr, Policy: compliance.DefaultPolicy(), Trigger: "test"}
				}
				run, err := c.Check(context.Background(), req)
				if name == "GitHub.PullRequest" && kind == "range" || name == "GitHub.Gather" && kind == "pull request" {
					// That method is not on this path: the check passes.
					if err != nil || !run.Report.Compliant {
						t.Fatalf("check without the panicking method: %v", err)
					}
					return
				}
				var pe *check.PanicError
				if !errors.As(err, &pe) {
					t.Fatalf("err %v (%T), want a *check.PanicError", err, err)
				}
				if run.Report.Compliant || run.Seq != 0 {
					t.Errorf("a check that panicked returned a verdict: %+v", run)
				}
				if !strings.Contains(pe.StackTrace(), "sockembot/bot/check/check_test.go") {
					t.Errorf("the stack does not show where the panic was raised:\n%s", pe.StackTrace())
				}
			})
		}
	}
}

// An adapter's error is traced where the check first saw it: the failure report shows the check
// step, not the code that rendered the report.
func TestCheckErrorsCarryTheStackWhereTheyHappened(t *testing.T) {
	w := newWorld(t)
	c := &check.Checker{GitHub: w.gh, Jira: w.jira}
	_, err := c.Check(context.Background(), check.Request{Repo: "acme/payments", Base: w.base, Head: "no-such-ref", Policy: compliance.DefaultPolicy()})
	if err == nil {
		t.Fatal("a check of an unknown ref passed")
	}
	var st interface{ StackTrace() string }
	if !errors.As(err, &st) || !strings.Contains(st.StackTrace(), "sockembot/bot/check.(*Checker).gatherGitHub") {
		t.Fatalf("no stack where the error happened: %v", err)
	}
	if strings.Contains(st.StackTrace(), "/work/") {
		t.Errorf("stack has build machine paths:\n%s", st.StackTrace())
	}
}

// A release is judged by the policy in force at its base: a change inside the range that edits
// .sockembot.yml is labelled and held to the policy owners, and what it writes applies only to
// later releases.
func TestRangeIsJudgedByThePolicyAtItsBase(t *testing.T) {
	g := fakegithub.New(fakegithub.Options{})
	t.Cleanup(g.Close)
	j := fakejira.New(fakejira.Options{Mode: fakejira.Cloud})
	t.Cleanup(j.Close)
	j.AddIssue("PAY-1", "In Progress")
	r := g.AddRepo("acme/payments", "main")
	r.CommitFiles("PAY-1 two approvals", "alice", map[string]string{check.RepoPolicyPath: "approvals: {required: 2}\n"})
	base := r.Tag("v1")
	approvedOnce := []fakegithub.Review{{User: "bob", State: "APPROVED"}}
	relax := r.MergePR(fakegithub.PR{Title: "PAY-1 one approval is enough", Author: "mallory", Reviews: approvedOnce,
		Files: map[string]string{check.RepoPolicyPath: "approvals: {required: 1}\n"}}, fakegithub.Rebase)
	r.MergePR(fakegithub.PR{Title: "PAY-1 refunds", Author: "alice", Reviews: approvedOnce}, fakegithub.Squash)
	gc, jc := clients(t, g, j)
	c := &check.Checker{GitHub: gc, Jira: jc, Files: gc}
	global := compliance.DefaultPolicy()
	global.Owners = []string{"bob"}
	run, err := c.Check(context.Background(), check.Request{Repo: "acme/payments", Base: base, Head: "main", Policy: global})
	if err != nil {
		t.Fatal(err)
	}
	if run.Policy.Approvals.Required != 2 || !strings.HasPrefix(run.PolicySource, "acme/payments/.sockembot.yml@"+base[:7]) {
		t.Fatalf("judged by %s (approvals %d), want the policy at the base", run.PolicySource, run.Policy.Approvals.Required)
	}
	if len(run.Report.Changes) != 2 || run.Report.Compliant {
		t.Fatalf("report: %+v", run.Report)
	}
	first, second := run.Report.Changes[0], run.Report.Changes[1]
	if !first.PolicyChange || second.PolicyChange || run.Facts.Range.Changes[0].PolicyEdit.Commits[0] != relax.MergeSHA {
		t.Errorf("policy change labels: %v %v, edit %+v", first.PolicyChange, second.PolicyChange, run.Facts.Range.Changes[0].PolicyEdit)
	}
	for _, cr := range run.Report.Changes {
		if cr.Compliant || cr.Violations[0].Code != compliance.MissingApproval {
			t.Errorf("%s with one approval under a policy that asks for two: %v", cr.Name(), cr.Violations)
		}
	}
	// The next release, based after the change, is judged by what it wrote.
	next, err := c.Check(context.Background(), check.Request{Repo: "acme/payments", Base: relax.MergeSHA, Head: "main", Policy: global})
	if err != nil || next.Policy.Approvals.Required != 1 || !next.Report.Compliant {
		t.Fatalf("the release after the policy change: approvals %d, compliant %v, %v", next.Policy.Approvals.Required, next.Report.Compliant, err)
	}
}
