package bot

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	fakejira "sockembot/integrations/fake/jira"
	fakeslack "sockembot/integrations/fake/slack"
	"sockembot/integrations/store"
)

// confirmPayments requests and confirms a compliant payments deploy to production, and returns
// the digest root and the GitHub deployment id once the deployment exists.
func confirmPayments(t *testing.T, r *slackRig) (fakeslack.Message, int64) {
	t.Helper()
	r.command(demoAlice, demoRelease, "payments to production")
	root := r.digest(1)
	r.click(demoAlice, actionDeploy, root)
	pay := r.GitHub.Repo("acme/payments")
	r.until("the GitHub deployment", func() bool { return len(madeByBot(pay)) == 1 && len(r.thread(root)) >= 2 })
	return root, madeByBot(pay)[0].ID
}

// deployPayments is confirmPayments, then the CD system reporting success.
func deployPayments(t *testing.T, r *slackRig) (fakeslack.Message, int64) {
	t.Helper()
	root, id := confirmPayments(t, r)
	if err := r.reportStatus(context.Background(), "acme/payments", id, "success", "12/12 pods healthy"); err != nil {
		t.Fatal(err)
	}
	return root, id
}

func TestJiraTicketsCommentedAndMovedAfterDeploy(t *testing.T) {
	r := newSlackRig(t, func(o *worldOptions) {
		o.Configure = func(c *Config) { c.Policy.Tickets.DeployedTransition = "Deployed" }
	})
	for _, k := range []string{"PAY-101", "PAY-102"} {
		r.Jira.SetTransitions(k, append([]fakejira.Transition{{ID: "51", Name: "Ship", To: "Deployed"}}, fakejira.DefaultTransitions...))
	}
	root, id := deployPayments(t, r)
	r.until("the Jira update in the thread", func() bool {
		th := r.thread(root)
		return len(th) == 4 && strings.Contains(th[3].Text, "Jira: commented on PAY-101, PAY-102; moved PAY-101 to *Deployed*; left as they were (already there, or finished): PAY-102 (Done)")
	})
	comments := r.Jira.Comments()
	if len(comments) != 2 {
		t.Fatalf("%d Jira comments, want one per ticket: %+v", len(comments), comments)
	}
	for _, c := range comments {
		for _, want := range []string{"Deployed to production", "payments", "30d7acc", "GitHub deployment", fakeslack.PermalinkBase + "/archives/" + demoRelease + "/p"} {
			if !strings.Contains(c.Body, want) {
				t.Errorf("comment on %s lacks %q: %s", c.Issue, want, c.Body)
			}
		}
	}
	if is, _ := r.Jira.Issue("PAY-101"); is.Status != "Deployed" {
		t.Errorf("PAY-101 is %q, want Deployed (by the transition named by its target status)", is.Status)
	}
	// PAY-102 was finished already: it is not moved back.
	if is, _ := r.Jira.Issue("PAY-102"); is.Status != "Done" {
		t.Errorf("PAY-102 is %q, want it left Done", is.Status)
	}
	recs := r.records(store.KindJiraUpdate)
	if len(recs) != 1 {
		t.Fatalf("%d jira_update records", len(recs))
	}
	var ev jiraUpdateEvidence
	if err := json.Unmarshal(recs[0].Body, &ev); err != nil || ev.GitHubDeploymentID != id || len(ev.Tickets) != 2 ||
		!ev.Tickets[0].Commented || !ev.Tickets[0].Transitioned || ev.Tickets[0].Error != "" ||
		!ev.Tickets[1].Commented || ev.Tickets[1].Transitioned || ev.Tickets[1].LeftIn != "Done" {
		t.Errorf("jira_update evidence %+v (%v)", ev, err)
	}

	// GitHub (or a redelivery) reports success again: the tickets are not told twice.
	if err := r.reportStatus(context.Background(), "acme/payments", id, "success", "again"); err != nil {
		t.Fatal(err)
	}
	r.until("the second status in the thread", func() bool { return len(r.thread(root)) == 5 })
	r.until("the delivery queue drained", func() bool {
		n, err := r.Store.PendingDeliveries(context.Background())
		return err == nil && n == 0
	})
	if n := len(r.Jira.Comments()); n != 2 {
		t.Errorf("%d comments after a second success, want still 2", n)
	}
	if n := len(r.records(store.KindJiraUpdate)); n != 1 {
		t.Errorf("%d jira_update records after a second success", n)
	}
	r.noWebAPIErrors()
}

func TestJiraOutageAfterDeployIsReportedAndTheDeployStands(t *testing.T) {
	r := newSlackRig(t, func(o *worldOptions) {
		o.Configure = func(c *Config) { c.Policy.Tickets.DeployedTransition = "Done" }
	})
	root, id := confirmPayments(t, r)
	r.Jira.SetOutage(true)
	if err := r.reportStatus(context.Background(), "acme/payments", id, "success", "done"); err != nil {
		t.Fatal(err)
	}
	r.until("the Jira failure in the thread", func() bool {
		th := r.thread(root)
		return len(th) == 4 && strings.Contains(th[3].Text, "could not update 2 ticket(s); the deploy stands")
	})
	th := r.thread(root)
	for _, want := range []string{"PAY-101", "PAY-102", "503"} {
		if !strings.Contains(th[3].Text, want) {
			t.Errorf("Jira failure report lacks %q: %s", want, th[3].Text)
		}
	}
	if d := r.deploys("payments", "production")[0]; d.State != store.StateDeployed {
		t.Errorf("deploy state %s: a Jira failure must not undo the deploy", d.State)
	}
	r.until("the root message says deployed", func() bool { return strings.Contains(text(r.roots()[0]), "Deployed") })
	var ev jiraUpdateEvidence
	recs := r.records(store.KindJiraUpdate)
	if len(recs) != 1 || json.Unmarshal(recs[0].Body, &ev) != nil || ev.Tickets[0].Error == "" || ev.Tickets[0].Commented {
		t.Errorf("jira_update evidence does not record the failure: %+v", ev)
	}
}

func TestJiraMissingTransitionIsReported(t *testing.T) {
	r := newSlackRig(t, func(o *worldOptions) {
		o.Configure = func(c *Config) { c.Policy.Tickets.DeployedTransition = "Released" }
	})
	root, _ := deployPayments(t, r)
	r.until("the Jira report in the thread", func() bool { return len(r.thread(root)) == 4 })
	line := r.thread(root)[3].Text
	// PAY-101 has no "Released" transition; PAY-102 is finished and left alone. Both are commented on.
	if !strings.Contains(line, `has no transition "Released"`) || !strings.Contains(line, "could not update 1 ticket(s)") ||
		!strings.Contains(line, "PAY-102 (Done)") {
		t.Errorf("thread line: %s", line)
	}
	if n := len(r.Jira.Comments()); n != 2 {
		t.Errorf("%d comments, want the comment made even when the transition is missing", n)
	}
}

// cancelAfterComment is the Jira adapter with a hook: once armed, the first comment that
// goes through cancels the run's context, as a shutdown or a lost database would cut a run short
// between the Jira calls and the record of them.
type cancelAfterComment struct {
	Jira
	cancel atomic.Pointer[context.CancelFunc]
}

func (j *cancelAfterComment) Comment(ctx context.Context, key, body string) error {
	err := j.Jira.Comment(ctx, key, body)
	if c := j.cancel.Swap(nil); c != nil {
		(*c)()
	}
	return err
}

// A run cut short after commenting but before its record is written has not closed the loop:
// the retry of the delivery does it, rather than finding it "already done".
func TestJiraLoopCutShortIsDoneOnRetry(t *testing.T) {
	hook := &cancelAfterComment{}
	r := newSlackRig(t, func(o *worldOptions) {
		o.WrapJira = func(j Jira) Jira { hook.Jira = j; return hook }
	})
	root, id := confirmPayments(t, r)
	r.until("the deploy deployed", func() bool { return r.deploys("payments", "production")[0].GitHubDeploymentID == id })
	d := r.deploys("payments", "production")[0]

	ctx, cancel := context.WithCancel(context.Background())
	hook.cancel.Store(&cancel)
	if err := r.App.closeTheLoop(ctx, d, id); err == nil {
		t.Fatal("a run whose record could not be written reported success")
	}
	if len(r.Jira.Comments()) == 0 {
		t.Fatal("the cut-short run commented nothing: the test does not cut it where it means to")
	}
	if n := len(r.records(store.KindJiraUpdate)); n != 0 {
		t.Fatalf("%d jira_update records after a run cut short", n)
	}
	if err := r.App.closeTheLoop(context.Background(), d, id); err != nil {
		t.Fatal(err)
	}
	if n := len(r.records(store.KindJiraUpdate)); n != 1 {
		t.Fatalf("%d jira_update records after the retry, want 1", n)
	}
	if !threadSays(r, root, "Jira: commented on PAY-101, PAY-102") {
		t.Errorf("thread:\n%s", r.Slack.Render())
	}
	// Done now: a later success status changes nothing.
	n := len(r.Jira.Comments())
	if err := r.App.closeTheLoop(context.Background(), d, id); err != nil {
		t.Fatal(err)
	}
	if got := len(r.Jira.Comments()); got != n {
		t.Errorf("%d Jira comments after the loop was closed, want still %d", got, n)
	}
}
