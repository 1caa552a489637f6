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
	gc, err := github.New(github.Options{BaseURL: g.URL(), Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	jc, err := jira.New(jira.Options{BaseURL: j.URL()})
	if err != nil {
		t.Fatal(err)
	}
	return world{gh: gc, jira: jc, base: base, pr: info.Number}
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

func (panicGather) Gather(context.Context, string, string, string) (compliance.Range, error) {
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
