package rollout_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sockembot/bot"
	"sockembot/bot/bottest"
	"sockembot/bot/demo"
	"sockembot/bot/deploygate"
	"sockembot/bot/render"
	"sockembot/bot/rollout"
	"sockembot/compliance"
	fakejira "sockembot/integrations/fake/jira"
	fakeslack "sockembot/integrations/fake/slack"
	"strings"
	"sync/atomic"
	"testing"
)

// GitHub does not deliver webhooks in order: a status GitHub numbered earlier that arrives after
// a later one is threaded as history but does not move the deploy or its digest back.
func TestDeploymentStatusesOutOfOrder(t *testing.T) {
	r := bottest.NewRig(t)
	root, id := r.ConfirmPayments()
	ctx := context.Background()
	var bodies [][]byte
	for _, st := range []string{"in_progress", "failure", "success"} {
		b, err := r.StatusEvent(ctx, "acme/payments", id, st, "step "+st)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	// The newest (success) arrives and is handled first, then the two older ones.
	if err := r.Deliver(ctx, "deployment_status", bodies[2]); err != nil {
		t.Fatal(err)
	}
	r.Until("the success in the thread", func() bool { return r.ThreadSays(root, "*success*") })
	for _, i := range []int{0, 1} {
		if err := r.Deliver(ctx, "deployment_status", bodies[i]); err != nil {
			t.Fatal(err)
		}
	}
	r.Until("all three in the thread", func() bool { return len(r.Thread(root)) >= 6 }) // after the confirmation and the chain's head
	r.Until("the delivery queue drained", func() bool {
		n, err := r.Store.PendingDeliveries(ctx)
		return err == nil && n == 0
	})
	if late := strings.Count(r.Slack.Render(), "reported late"); late != 2 {
		t.Errorf("%d statuses marked late, want the two older ones:\n%s", late, r.Slack.Render())
	}
	if body := bottest.Text(r.Roots()[0]); !strings.Contains(body, "Deployed") {
		t.Errorf("root message moved back from Deployed:\n%s", body)
	}
	if d := r.Deploys("payments", "production")[0]; d.State != deploygate.StateDeployed {
		t.Errorf("deploy state %s after an older failure arrived late, want deployed", d.State)
	}
	if n := len(r.Records(compliance.EvidenceDeploymentStatus)); n != 3 {
		t.Errorf("%d deployment_status records, want all 3 kept as evidence", n)
	}
}

func TestDeploymentStatusesThreaded(t *testing.T) {
	r := bottest.NewRig(t)
	r.Command(demo.Alice, demo.Release, "payments to production")
	root := r.Digest(1)
	r.Click(demo.Alice, render.ActionDeploy, root)
	pay := r.GitHub.Repo("acme/payments")
	r.Until("the GitHub deployment", func() bool { return len(bottest.MadeByBot(pay)) == 1 && len(r.Thread(root)) >= 3 })
	dep := bottest.MadeByBot(pay)[0]

	ctx := context.Background()
	// A status of a deployment sockembot did not make is not ours to thread.
	old := pay.Deployments()[0]
	if err := r.ReportStatus(ctx, "acme/payments", old.ID, "inactive", "superseded"); err != nil {
		t.Fatal(err)
	}
	for i, st := range []string{"pending", "in_progress", "success"} {
		if err := r.ReportStatus(ctx, "acme/payments", dep.ID, st, "step "+st); err != nil {
			t.Fatal(err)
		}
		r.Until(st+" in the thread", func() bool { return len(r.Thread(root)) >= 4+i })
	}
	r.Until("the delivery queue drained", func() bool {
		n, err := r.Store.PendingDeliveries(ctx)
		return err == nil && n == 0
	})
	r.Until("the Jira update in the thread", func() bool { return len(r.Thread(root)) == 7 })
	th := r.Thread(root)
	if len(th) != 7 {
		t.Fatalf("thread has %d messages, want root + confirmation + the evidence chain's head + 3 statuses + Jira:\n%s", len(th), r.Slack.Render())
	}
	for i, want := range []string{"pressed Deploy", "Evidence chain head", "*pending*", "*in progress*", "*success*", "Jira: commented on PAY-101, PAY-102"} {
		if !strings.Contains(th[i+1].Text, want) {
			t.Errorf("thread reply %d = %q, want %q", i+1, th[i+1].Text, want)
		}
	}
	r.Until("the root message says deployed", func() bool { return strings.Contains(bottest.Text(r.Roots()[0]), "Deployed") })
	statuses := r.Records(compliance.EvidenceDeploymentStatus)
	if len(statuses) != 3 {
		t.Fatalf("%d deployment_status records, want 3 (the foreign one ignored)", len(statuses))
	}
	var ev deploygate.DeploymentStatusEvidence
	if err := json.Unmarshal(statuses[2].Body, &ev); err != nil || ev.State != "success" || ev.GitHubDeploymentID != dep.ID {
		t.Errorf("last status evidence %+v (%v)", ev, err)
	}

	// A failed rollout marks the deploy failed and says so at the top.
	if err := r.ReportStatus(ctx, "acme/payments", dep.ID, "failure", "pods crash-looping"); err != nil {
		t.Fatal(err)
	}
	r.Until("the failure in the thread", func() bool { return len(r.Thread(root)) == 8 })
	r.Until("the root message says failed", func() bool { return strings.Contains(bottest.Text(r.Roots()[0]), "*Deploy failed*") })
	if d := r.Deploys("payments", "production")[0]; d.State != deploygate.StateFailed {
		t.Errorf("deploy state %s after a failure status", d.State)
	}
	r.NoWebAPIErrors()
}

// A deployment status whose thread reply Slack refused comes again (the delivery retried, or a
// second hook): recorded once, threaded once.
func TestDeploymentStatusRetriedIsRecordedOnce(t *testing.T) {
	r := bottest.NewRig(t)
	root, id := r.ConfirmPayments()
	ctx := context.Background()
	body, err := r.StatusEvent(ctx, "acme/payments", id, "in_progress", "rolling out")
	if err != nil {
		t.Fatal(err)
	}
	r.Slack.NotInChannel(demo.Release)
	if err := r.Deliver(ctx, "deployment_status", body); err != nil {
		t.Fatal(err)
	}
	r.Until("the status recorded", func() bool { return len(r.Records(compliance.EvidenceDeploymentStatus)) == 1 })
	r.Until("the delivery failed", func() bool {
		n, err := r.Store.PendingDeliveries(ctx)
		return err == nil && n == 1
	})
	r.Slack.Invite(demo.Release)
	if err := r.Deliver(ctx, "deployment_status", body); err != nil {
		t.Fatal(err)
	}
	r.Until("the status in the thread", func() bool { return r.ThreadSays(root, "*in progress*") })
	if err := r.DeliverID(ctx, "deployment_status", "third", body); err != nil {
		t.Fatal(err)
	}
	r.Until("the root message says deploying", func() bool { return strings.Contains(bottest.Text(r.Roots()[0]), "in progress") })
	// Handled: the third delivery is done (whatever became of the first, failed one, which
	// waits out its backoff and may or may not have been retried by now).
	r.Until("the third delivery handled", func() bool {
		state, err := r.Store.DeliveryState(ctx, "third")
		return err == nil && state == "done"
	})
	if n := len(r.Records(compliance.EvidenceDeploymentStatus)); n != 1 {
		t.Errorf("%d deployment_status records for one status, want 1", n)
	}
	if n := strings.Count(r.Slack.Render(), "*in progress* — rolling out"); n != 1 {
		t.Errorf("status threaded %d times, want once:\n%s", n, r.Slack.Render())
	}
}

func TestJiraTicketsCommentedAndMovedAfterDeploy(t *testing.T) {
	r := bottest.NewRig(t, func(o *demo.Options) {
		o.Configure = func(c *bot.Config) { c.Policy.Tickets.DeployedTransition = "Deployed" }
	})
	for _, k := range []string{"PAY-101", "PAY-102"} {
		r.Jira.SetTransitions(k, append([]fakejira.Transition{{ID: "51", Name: "Ship", To: "Deployed"}}, fakejira.DefaultTransitions...))
	}
	root, id := r.DeployPayments()
	r.Until("the Jira update in the thread", func() bool {
		th := r.Thread(root)
		return len(th) == 5 && strings.Contains(th[4].Text, "Jira: commented on PAY-101, PAY-102; moved PAY-101 to *Deployed*; left as they were (already there, or finished): PAY-102 (Done)")
	})
	comments := r.Jira.Comments()
	if len(comments) != 2 {
		t.Fatalf("%d Jira comments, want one per ticket: %+v", len(comments), comments)
	}
	for _, c := range comments {
		for _, want := range []string{"Deployed to production", "payments", "30d7acc", "GitHub deployment", fakeslack.PermalinkBase + "/archives/" + demo.Release + "/p"} {
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
	recs := r.Records(compliance.EvidenceJiraUpdate)
	if len(recs) != 1 {
		t.Fatalf("%d jira_update records", len(recs))
	}
	var ev rollout.JiraUpdateEvidence
	if err := json.Unmarshal(recs[0].Body, &ev); err != nil || ev.GitHubDeploymentID != id || len(ev.Tickets) != 2 ||
		!ev.Tickets[0].Commented || !ev.Tickets[0].Transitioned || ev.Tickets[0].Error != "" ||
		!ev.Tickets[1].Commented || ev.Tickets[1].Transitioned || ev.Tickets[1].LeftIn != "Done" {
		t.Errorf("jira_update evidence %+v (%v)", ev, err)
	}

	// GitHub (or a redelivery) reports success again: the tickets are not told twice.
	if err := r.ReportStatus(context.Background(), "acme/payments", id, "success", "again"); err != nil {
		t.Fatal(err)
	}
	r.Until("the second status in the thread", func() bool { return len(r.Thread(root)) == 6 })
	r.Until("the delivery queue drained", func() bool {
		n, err := r.Store.PendingDeliveries(context.Background())
		return err == nil && n == 0
	})
	if n := len(r.Jira.Comments()); n != 2 {
		t.Errorf("%d comments after a second success, want still 2", n)
	}
	if n := len(r.Records(compliance.EvidenceJiraUpdate)); n != 1 {
		t.Errorf("%d jira_update records after a second success", n)
	}
	r.NoWebAPIErrors()
}

func TestJiraOutageAfterDeployIsReportedAndTheDeployStands(t *testing.T) {
	r := bottest.NewRig(t, func(o *demo.Options) {
		o.Configure = func(c *bot.Config) { c.Policy.Tickets.DeployedTransition = "Done" }
	})
	root, id := r.ConfirmPayments()
	r.Jira.SetOutage(true)
	if err := r.ReportStatus(context.Background(), "acme/payments", id, "success", "done"); err != nil {
		t.Fatal(err)
	}
	r.Until("the Jira failure in the thread", func() bool {
		th := r.Thread(root)
		return len(th) == 5 && strings.Contains(th[4].Text, "could not update 2 ticket(s); the deploy stands")
	})
	th := r.Thread(root)
	for _, want := range []string{"PAY-101", "PAY-102", "503"} {
		if !strings.Contains(th[4].Text, want) {
			t.Errorf("Jira failure report lacks %q: %s", want, th[4].Text)
		}
	}
	if d := r.Deploys("payments", "production")[0]; d.State != deploygate.StateDeployed {
		t.Errorf("deploy state %s: a Jira failure must not undo the deploy", d.State)
	}
	r.Until("the root message says deployed", func() bool { return strings.Contains(bottest.Text(r.Roots()[0]), "Deployed") })
	var ev rollout.JiraUpdateEvidence
	recs := r.Records(compliance.EvidenceJiraUpdate)
	if len(recs) != 1 || json.Unmarshal(recs[0].Body, &ev) != nil || ev.Tickets[0].Error == "" || ev.Tickets[0].Commented {
		t.Errorf("jira_update evidence does not record the failure: %+v", ev)
	}
}

func TestJiraMissingTransitionIsReported(t *testing.T) {
	r := bottest.NewRig(t, func(o *demo.Options) {
		o.Configure = func(c *bot.Config) { c.Policy.Tickets.DeployedTransition = "Released" }
	})
	root, _ := r.DeployPayments()
	r.Until("the Jira report in the thread", func() bool { return len(r.Thread(root)) == 5 })
	line := r.Thread(root)[4].Text
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
	bot.Jira
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
	r := bottest.NewRig(t, func(o *demo.Options) {
		o.WrapJira = func(j bot.Jira) bot.Jira { hook.Jira = j; return hook }
	})
	root, id := r.ConfirmPayments()
	r.Until("the deploy deployed", func() bool { return r.Deploys("payments", "production")[0].GitHubDeploymentID == id })
	d := r.Deploys("payments", "production")[0]

	ctx, cancel := context.WithCancel(context.Background())
	hook.cancel.Store(&cancel)
	if err := r.App.Rollouts().CloseTheLoop(ctx, d, id); err == nil {
		t.Fatal("a run whose record could not be written reported success")
	}
	if len(r.Jira.Comments()) == 0 {
		t.Fatal("the cut-short run commented nothing: the test does not cut it where it means to")
	}
	if n := len(r.Records(compliance.EvidenceJiraUpdate)); n != 0 {
		t.Fatalf("%d jira_update records after a run cut short", n)
	}
	if err := r.App.Rollouts().CloseTheLoop(context.Background(), d, id); err != nil {
		t.Fatal(err)
	}
	if n := len(r.Records(compliance.EvidenceJiraUpdate)); n != 1 {
		t.Fatalf("%d jira_update records after the retry, want 1", n)
	}
	if !r.ThreadSays(root, "Jira: commented on PAY-101, PAY-102") {
		t.Errorf("thread:\n%s", r.Slack.Render())
	}
	// Done now: a later success status changes nothing.
	n := len(r.Jira.Comments())
	if err := r.App.Rollouts().CloseTheLoop(context.Background(), d, id); err != nil {
		t.Fatal(err)
	}
	if got := len(r.Jira.Comments()); got != n {
		t.Errorf("%d Jira comments after the loop was closed, want still %d", got, n)
	}
}

// deployment_status deliveries reach the deploy thread's handler; one for a deployment
// sockembot did not create is processed without error.
func TestMergeGateDeploymentStatusIsHandedOn(t *testing.T) {
	e := bottest.NewHooks(t)
	e.GitHub.AddRepo("Codertocat/Hello-World", "master")
	if code, msg := e.Deliver("deployment_status", bottest.Fixture(t, bottest.Octokit+"deployment_status/payload.json")); code != http.StatusAccepted {
		t.Fatalf("deployment_status: %d %s", code, msg)
	}
	e.Drain()
	if n := e.Pending(); n != 0 {
		t.Fatalf("deployment_status delivery failed (%d pending)", n)
	}
}
