package bot

// End-to-end tests of the Slack side: the real App (socket mode through slack-go, the Web API,
// go-github, go-jira, SQLite, the webhook endpoint) against the fakes, driven the way Slack and
// GitHub drive it.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	fakeslack "sockembot/integrations/fake/slack"
	"sockembot/integrations/store"
)

const deployRoute = "POST /repos/{owner}/{repo}/deployments"

type slackRig struct {
	*world
	t   testing.TB
	log *logtest.Hook
}

func newSlackRig(t testing.TB, opts ...func(*worldOptions)) *slackRig {
	t.Helper()
	log := logrus.New()
	log.SetOutput(testLogWriter{t})
	log.SetLevel(logrus.InfoLevel)
	hook := logtest.NewLocal(log)
	o := worldOptions{Dir: t.TempDir(), Log: log, GitHubRetries: -1}
	for _, f := range opts {
		f(&o)
	}
	w, err := startWorld(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	seedDemo(w)
	return &slackRig{world: w, t: t, log: hook}
}

// testLogWriter sends the bot's log to the test's, shown only when a test fails.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// until waits for what the bot does after its ack. The timeout only stops a broken test from
// hanging; nothing asserts on how long anything took.
func (r *slackRig) until(what string, cond func() bool) {
	r.t.Helper()
	if err := demoWait(context.Background(), what, 30*time.Second, cond); err != nil {
		r.t.Fatalf("%v\n%s", err, r.Slack.Render())
	}
}

func (r *slackRig) acked(ids ...string) {
	r.t.Helper()
	for _, id := range ids {
		if _, ok := r.Slack.WaitAck(id, 30*time.Second); !ok {
			r.t.Fatalf("envelope %s was never acked", id)
		}
	}
}

// digest waits for the n-th root message (1-based) in the release channel.
func (r *slackRig) digest(n int) fakeslack.Message {
	r.t.Helper()
	r.until(fmt.Sprintf("root message %d in the release channel", n), func() bool { return len(r.roots()) >= n })
	return r.roots()[n-1]
}

func (r *slackRig) ephemeralTo(user, contains string) fakeslack.Ephemeral {
	r.t.Helper()
	var found fakeslack.Ephemeral
	r.until(fmt.Sprintf("an ephemeral to %s saying %q", user, contains), func() bool {
		for _, e := range r.Slack.Ephemerals() {
			if e.User == user && strings.Contains(e.Text, contains) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

func (r *slackRig) thread(root fakeslack.Message) []fakeslack.Message {
	return r.Slack.Thread(root.Channel, root.TS)
}

func (r *slackRig) records(kind string) []store.Record {
	r.t.Helper()
	var out []store.Record
	if err := r.Store.Records(context.Background(), kind, "", func(rec store.Record) error {
		out = append(out, rec)
		return nil
	}); err != nil {
		r.t.Fatal(err)
	}
	return out
}

func (r *slackRig) deploys(service, env string) []store.Deploy {
	r.t.Helper()
	ds, err := r.Store.RecentDeploys(context.Background(), service, env, 100)
	if err != nil {
		r.t.Fatal(err)
	}
	return ds
}

// madeByBot lists the GitHub deployments sockembot created (the seeded ones are by "deployer").
func madeByBot(repo *fakegithub.Repo) []fakegithub.Deployment {
	var out []fakegithub.Deployment
	for _, d := range repo.Deployments() {
		if d.Creator != "deployer" {
			out = append(out, d)
		}
	}
	return out
}

// text is a message's notification text and its blocks as JSON, with <, > and & as written.
func text(m fakeslack.Message) string {
	var v any
	if err := json.Unmarshal(m.Blocks, &v); err != nil {
		return m.Text
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return m.Text + "\n" + b.String()
}

// noWebAPIErrors fails on any Web API call Slack would have refused (invalid_blocks, ...),
// rate limits aside.
func (r *slackRig) noWebAPIErrors() {
	r.t.Helper()
	for _, c := range r.Slack.Calls() {
		if c.Error != "" && c.Status != http.StatusTooManyRequests {
			r.t.Errorf("%s answered %s (%v)", c.Method, c.Error, c.Params)
		}
	}
}

func TestDeployCompliantDoubleClick(t *testing.T) {
	r := newSlackRig(t)
	id := r.command(demoAlice, demoRelease, "payments to production")
	r.acked(id)
	root := r.digest(1)
	if !hasAction(root, actionDeploy) || !hasAction(root, actionCancel) {
		t.Fatalf("compliant digest without Deploy and Cancel:\n%s", r.Slack.Render())
	}
	for _, want := range []string{"payments → production", "2 changes, all compliant", "PAY-101", "approved by bob", "<@U0ALICE>", "/compare/"} {
		if !strings.Contains(text(root), want) {
			t.Errorf("digest lacks %q", want)
		}
	}

	// Bob (through the @ops group) and Alice both press Deploy at once.
	c1 := r.click(demoBob, actionDeploy, root)
	c2 := r.click(demoAlice, actionDeploy, root)
	r.acked(c1, c2)
	pay := r.GitHub.Repo("acme/payments")
	r.until("the confirmation in the thread", func() bool { return len(r.thread(root)) >= 2 })
	r.until("the second click's answer", func() bool {
		for _, e := range r.Slack.Ephemerals() {
			if strings.Contains(e.Text, "is already") {
				return true
			}
		}
		return false
	})
	if n := r.GitHub.Count(deployRoute); n != 1 {
		t.Fatalf("%d GitHub deployments created for one deploy, want exactly 1", n)
	}
	made := madeByBot(pay)
	if len(made) != 1 {
		t.Fatalf("GitHub has %d bot deployments", len(made))
	}
	dep := made[0]
	if dep.SHA != pay.Head() || dep.Environment != "production" {
		t.Errorf("deployment of %s to %s, want head %s to production", dep.SHA, dep.Environment, pay.Head())
	}
	var payload deploymentPayload
	if err := json.Unmarshal(dep.Payload, &payload); err != nil || payload.Sockembot.Requester != demoAlice || payload.Sockembot.CheckSeq == 0 {
		t.Errorf("deployment payload %s does not name the requester and the check (%v)", dep.Payload, err)
	}

	// The root message now says it is deploying, without buttons.
	r.until("the root message updated", func() bool {
		m := r.roots()[0]
		return !hasAction(m, actionDeploy) && strings.Contains(text(m), "Deploying")
	})
	ds := r.deploys("payments", "production")
	if len(ds) != 1 || ds[0].State != store.StateDeployed || ds[0].GitHubDeploymentID != dep.ID || ds[0].TS != root.TS {
		t.Fatalf("deploy record %+v", ds)
	}

	// The frozen evidence the audit export reads.
	created := r.records(store.KindDeploymentCreated)
	if len(created) != 1 {
		t.Fatalf("%d deployment_created records", len(created))
	}
	var ev store.DeploymentEvidence
	if err := json.Unmarshal(created[0].Body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.DeployID != ds[0].ID || ev.Service != "payments" || ev.Environment != "production" || ev.Repo != "acme/payments" ||
		ev.Ref != "main" || ev.SHA != dep.SHA || ev.BaseSHA == "" || ev.Requester != demoAlice ||
		(ev.Deployer != demoBob && ev.Deployer != demoAlice) || ev.GitHubDeploymentID != dep.ID || ev.CheckSeq == 0 ||
		ev.PolicyHash != compliance.PolicyHash(r.App.Config.Policy) || !ev.Compliant || len(ev.Report.Changes) != 2 {
		t.Errorf("deployment evidence incomplete: %+v", ev)
	}
	var rows int
	if err := r.Store.Export(context.Background(), store.ExportQuery{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)}, func(store.ExportRow) error {
		rows++
		return nil
	}); err != nil || rows != 2 {
		t.Errorf("audit export: %d rows, %v; want the 2 changes", rows, err)
	}
	for _, kind := range []string{store.KindDeployRequested, store.KindCheckRun, store.KindDeployConfirmed} {
		if n := len(r.records(kind)); n != 1 {
			t.Errorf("%d %s records, want 1", n, kind)
		}
	}
	r.noWebAPIErrors()
}

// GitHub does not deliver webhooks in order: a status GitHub numbered earlier that arrives after
// a later one is threaded as history but does not move the deploy or its digest back.
func TestDeploymentStatusesOutOfOrder(t *testing.T) {
	r := newSlackRig(t)
	root, id := confirmPayments(t, r)
	ctx := context.Background()
	var bodies [][]byte
	for _, st := range []string{"in_progress", "failure", "success"} {
		b, err := r.statusEvent(ctx, "acme/payments", id, st, "step "+st)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	// The newest (success) arrives and is handled first, then the two older ones.
	if err := r.deliver(ctx, "deployment_status", bodies[2]); err != nil {
		t.Fatal(err)
	}
	r.until("the success in the thread", func() bool { return threadSays(r, root, "*success*") })
	for _, i := range []int{0, 1} {
		if err := r.deliver(ctx, "deployment_status", bodies[i]); err != nil {
			t.Fatal(err)
		}
	}
	r.until("all three in the thread", func() bool { return len(r.thread(root)) >= 5 })
	r.until("the delivery queue drained", func() bool {
		n, err := r.Store.PendingDeliveries(ctx)
		return err == nil && n == 0
	})
	if late := strings.Count(r.Slack.Render(), "reported late"); late != 2 {
		t.Errorf("%d statuses marked late, want the two older ones:\n%s", late, r.Slack.Render())
	}
	if body := text(r.roots()[0]); !strings.Contains(body, "Deployed") {
		t.Errorf("root message moved back from Deployed:\n%s", body)
	}
	if d := r.deploys("payments", "production")[0]; d.State != store.StateDeployed {
		t.Errorf("deploy state %s after an older failure arrived late, want deployed", d.State)
	}
	if n := len(r.records(store.KindDeploymentStatus)); n != 3 {
		t.Errorf("%d deployment_status records, want all 3 kept as evidence", n)
	}
}

func TestDeploymentStatusesThreaded(t *testing.T) {
	r := newSlackRig(t)
	r.command(demoAlice, demoRelease, "payments to production")
	root := r.digest(1)
	r.click(demoAlice, actionDeploy, root)
	pay := r.GitHub.Repo("acme/payments")
	r.until("the GitHub deployment", func() bool { return len(madeByBot(pay)) == 1 && len(r.thread(root)) >= 2 })
	dep := madeByBot(pay)[0]

	ctx := context.Background()
	// A status of a deployment sockembot did not make is not ours to thread.
	old := pay.Deployments()[0]
	if err := r.reportStatus(ctx, "acme/payments", old.ID, "inactive", "superseded"); err != nil {
		t.Fatal(err)
	}
	for i, st := range []string{"pending", "in_progress", "success"} {
		if err := r.reportStatus(ctx, "acme/payments", dep.ID, st, "step "+st); err != nil {
			t.Fatal(err)
		}
		r.until(st+" in the thread", func() bool { return len(r.thread(root)) >= 3+i })
	}
	r.until("the delivery queue drained", func() bool {
		n, err := r.Store.PendingDeliveries(ctx)
		return err == nil && n == 0
	})
	r.until("the Jira update in the thread", func() bool { return len(r.thread(root)) == 6 })
	th := r.thread(root)
	if len(th) != 6 {
		t.Fatalf("thread has %d messages, want root + confirmation + 3 statuses + Jira:\n%s", len(th), r.Slack.Render())
	}
	for i, want := range []string{"pressed Deploy", "*pending*", "*in progress*", "*success*", "Jira: commented on PAY-101, PAY-102"} {
		if !strings.Contains(th[i+1].Text, want) {
			t.Errorf("thread reply %d = %q, want %q", i+1, th[i+1].Text, want)
		}
	}
	r.until("the root message says deployed", func() bool { return strings.Contains(text(r.roots()[0]), "Deployed") })
	statuses := r.records(store.KindDeploymentStatus)
	if len(statuses) != 3 {
		t.Fatalf("%d deployment_status records, want 3 (the foreign one ignored)", len(statuses))
	}
	var ev deploymentStatusEvidence
	if err := json.Unmarshal(statuses[2].Body, &ev); err != nil || ev.State != "success" || ev.GitHubDeploymentID != dep.ID {
		t.Errorf("last status evidence %+v (%v)", ev, err)
	}

	// A failed rollout marks the deploy failed and says so at the top.
	if err := r.reportStatus(ctx, "acme/payments", dep.ID, "failure", "pods crash-looping"); err != nil {
		t.Fatal(err)
	}
	r.until("the failure in the thread", func() bool { return len(r.thread(root)) == 7 })
	r.until("the root message says failed", func() bool { return strings.Contains(text(r.roots()[0]), "Deploy failed") })
	if d := r.deploys("payments", "production")[0]; d.State != store.StateFailed {
		t.Errorf("deploy state %s after a failure status", d.State)
	}
	r.noWebAPIErrors()
}

func TestDeployRefused(t *testing.T) {
	r := newSlackRig(t)
	r.command(demoAlice, demoRelease, "search to production")
	root := r.digest(1)
	if hasAction(root, actionDeploy) {
		t.Fatal("a refused digest offers Deploy")
	}
	for _, want := range []string{"Deploy refused", "#2", "no Jira ticket", "direct push", "It looks like you're trying to ship"} {
		if !strings.Contains(text(root), want) {
			t.Errorf("refusal lacks %q:\n%s", want, r.Slack.Render())
		}
	}
	r.until("the refusal recorded", func() bool { return len(r.records(store.KindDeployRefused)) == 1 })
	if d := r.deploys("search", "production"); len(d) != 1 || d[0].State != store.StateRefused {
		t.Fatalf("deploy %+v, want refused", d)
	}
	// Pressing a Deploy button that was never offered (a forged or stale payload) does nothing.
	r.Slack.SendBlockAction(fakeslack.BlockAction{ActionID: actionDeploy, Value: fmt.Sprint(r.deploys("search", "production")[0].ID),
		UserID: demoAlice, ChannelID: demoRelease, MessageTS: root.TS})
	r.ephemeralTo(demoAlice, "is already refused")
	if n := r.GitHub.Count(deployRoute); n != 0 {
		t.Fatalf("%d deployments created for a refused release", n)
	}
	r.noWebAPIErrors()
}

func TestDeployFailureReport(t *testing.T) {
	r := newSlackRig(t)
	r.GitHub.FailNext(1000, "/repos/acme/billing", http.StatusInternalServerError)
	r.command(demoAlice, demoDev, "billing to production")
	root := r.digest(1)
	body := text(root)
	for _, want := range []string{"sockembot failed", "the deploy is refused", "500 Internal Server Error", "acme/billing", "requested by <@U0ALICE>"} {
		if !strings.Contains(body, want) {
			t.Errorf("failure report lacks %q:\n%s", want, r.Slack.Render())
		}
	}
	if hasAction(root, actionDeploy) {
		t.Fatal("failure report offers Deploy")
	}
	r.ephemeralTo(demoAlice, "The failure report is in")
	d := r.deploys("billing", "production")
	if len(d) != 1 || d[0].State != store.StateFailed || d[0].TS != root.TS {
		t.Fatalf("deploy %+v, want failed with the report's ts", d)
	}
	r.until("the refusal recorded", func() bool { return len(r.records(store.KindDeployRefused)) == 1 })
	var ev deployRefusedEvidence
	if err := json.Unmarshal(r.records(store.KindDeployRefused)[0].Body, &ev); err != nil || !strings.Contains(ev.Error, "500") {
		t.Errorf("refusal evidence %+v (%v) does not carry the error", ev, err)
	}
	r.noWebAPIErrors()
}

// panickyJira panics on every ticket lookup: a bug deep in an adapter.
type panickyJira struct{ Jira }

func (panickyJira) Tickets(context.Context, []string) (map[string]compliance.Ticket, error) {
	var m map[string]compliance.Ticket
	m["boom"] = compliance.Ticket{} // assignment to a nil map
	return m, nil
}

func TestDeployPanicBecomesFailureReport(t *testing.T) {
	r := newSlackRig(t, func(o *worldOptions) { o.WrapJira = func(j Jira) Jira { return panickyJira{j} } })
	r.command(demoAlice, demoRelease, "payments to production")
	root := r.digest(1)
	body := text(root)
	for _, want := range []string{"sockembot failed", "panic: assignment to entry in nil map", "Stack trace", "deploy_test.go"} {
		if !strings.Contains(body, want) {
			t.Errorf("failure report lacks %q:\n%s", want, r.Slack.Render())
		}
	}
	// The process kept serving.
	r.command(demoAlice, demoRelease, "help")
	r.ephemeralTo(demoAlice, "How to use /deploy")
	r.noWebAPIErrors()
}

func TestDeployUnauthorised(t *testing.T) {
	r := newSlackRig(t)
	r.command(demoMallory, demoDev, "payments to production")
	r.ephemeralTo(demoMallory, "You are not allowed to deploy to *production*")
	r.until("the denied attempt recorded", func() bool { return len(r.records(store.KindDeployAttemptDenied)) == 1 })
	if n := len(r.roots()); n != 0 {
		t.Fatalf("%d messages in the release channel for a refused person", n)
	}
	if len(r.Slack.CallsTo("usergroups.users.list")) == 0 {
		t.Error("the @ops group was never resolved")
	}

	// Staging lists no deployers: anyone may ask (the check still gates it).
	r.command(demoMallory, demoDev, "payments to staging from v1.4.0")
	root := r.digest(1)
	if !hasAction(root, actionDeploy) {
		t.Fatalf("staging digest without Deploy:\n%s", r.Slack.Render())
	}

	// Alice's production digest: Mallory may not press its buttons.
	r.command(demoAlice, demoRelease, "payments to production")
	prod := r.digest(2)
	r.click(demoMallory, actionDeploy, prod)
	r.ephemeralTo(demoMallory, "Only <@U0ALICE> or a deployer")
	r.click(demoMallory, actionCancel, prod)
	r.ephemeralTo(demoMallory, "may cancel this")
	if n := r.GitHub.Count(deployRoute); n != 0 {
		t.Fatalf("%d deployments after an unauthorised click", n)
	}
	if d := r.deploys("payments", "production")[0]; d.State != store.StateReady {
		t.Fatalf("deploy is %s after unauthorised clicks, want still ready", d.State)
	}
	// Cancel by the requester.
	r.click(demoAlice, actionCancel, prod)
	r.until("the cancellation", func() bool { return strings.Contains(text(r.roots()[1]), "Cancelled") })
	if d := r.deploys("payments", "production")[0]; d.State != store.StateCancelled {
		t.Fatalf("deploy is %s, want cancelled", d.State)
	}
	if len(r.records(store.KindDeployCancelled)) != 1 {
		t.Error("cancellation not recorded")
	}
	r.noWebAPIErrors()
}

func TestDeployLocked(t *testing.T) {
	r := newSlackRig(t)
	r.command(demoMallory, demoDev, `lock payments production "incident 42"`)
	r.ephemeralTo(demoMallory, "Only deployers for *production* may lock it")

	r.command(demoAlice, demoDev, `lock payments production "incident 42"`)
	notice := r.digest(1)
	if !strings.Contains(notice.Text, "locked *payments* in *production*: incident 42") {
		t.Fatalf("lock notice %q", notice.Text)
	}
	r.command(demoBob, demoDev, "payments to production")
	r.ephemeralTo(demoBob, "is locked by <@U0ALICE>")
	r.command(demoBob, demoDev, "status payments")
	r.ephemeralTo(demoBob, "🔒 locked by <@U0ALICE>: incident 42")
	r.until("the denied attempt recorded", func() bool { return len(r.records(store.KindDeployAttemptDenied)) == 2 })
	if n := len(r.roots()); n != 1 {
		t.Fatalf("%d root messages; a locked environment must get no digest", n)
	}

	r.command(demoAlice, demoDev, "unlock payments production")
	r.digest(2)
	r.command(demoBob, demoDev, "payments to production")
	if root := r.digest(3); !hasAction(root, actionDeploy) {
		t.Fatalf("no digest after unlocking:\n%s", r.Slack.Render())
	}
	r.noWebAPIErrors()
}

func TestDeployMalformedAndUnknown(t *testing.T) {
	r := newSlackRig(t)
	for _, tc := range []struct{ text, says string }{
		{"payments to", "`to` needs a value"},
		{"nosuch to production", "I don't know the service `nosuch`"},
		{"payments to qa", "`payments` has no environment `qa`"},
		{"payments@no-such-branch to production", "acme/payments has no branch, tag or commit `no-such-branch`"},
		{"payments to staging", "Nothing has been deployed to *staging* yet"},
		{"payments@v1.4.0 to staging from main", "is behind `main`"},
		{"history nosuch", "I don't know the service `nosuch`"},
	} {
		r.command(demoAlice, demoDev, tc.text)
		r.ephemeralTo(demoAlice, tc.says)
	}
	if n := len(r.roots()); n != 0 {
		t.Fatalf("%d messages in the release channel for malformed commands:\n%s", n, r.Slack.Render())
	}
	if n := r.GitHub.Count(deployRoute); n != 0 {
		t.Fatal("a malformed command deployed something")
	}
	// The three refusals that got as far as a deploy record are on the evidence trail.
	r.until("the refusals recorded", func() bool { return len(r.records(store.KindDeployRefused)) == 3 })
	r.noWebAPIErrors()
}

func TestStatusHistoryHelp(t *testing.T) {
	r := newSlackRig(t)
	r.command(demoAlice, demoRelease, "payments to production")
	root := r.digest(1)
	r.click(demoAlice, actionDeploy, root)
	r.until("deployed", func() bool { return len(madeByBot(r.GitHub.Repo("acme/payments"))) == 1 })
	r.command(demoAlice, demoRelease, "search to production")
	r.digest(2)

	r.command(demoBob, demoDev, "history payments")
	h := r.ephemeralTo(demoBob, "Last 1 deploy request of payments")
	link := fmt.Sprintf("https://sockembot.slack.com/archives/%s/p%s", demoRelease, strings.ReplaceAll(root.TS, ".", ""))
	if !strings.Contains(h.Text, link) || !strings.Contains(h.Text, "deployment created") {
		t.Errorf("history %q lacks the thread link %s", h.Text, link)
	}
	r.command(demoBob, demoDev, "status payments production")
	s := r.ephemeralTo(demoBob, "*production*: `")
	if !strings.Contains(s.Text, short(r.GitHub.Repo("acme/payments").Head())) {
		t.Errorf("status %q does not show the deployed head", s.Text)
	}
	r.command(demoBob, demoDev, "")
	r.ephemeralTo(demoBob, "How to use /deploy")
	r.noWebAPIErrors()
}

func TestRedeliveredEnvelopeRunsOnce(t *testing.T) {
	r := newSlackRig(t)
	id := r.command(demoAlice, demoRelease, "payments to production")
	r.acked(id)
	if err := r.Slack.Redeliver(id, "timeout"); err != nil {
		t.Fatal(err)
	}
	r.acked(id) // the redelivery is acked too, or Slack keeps retrying
	r.until("the redelivery dropped", func() bool { return r.logged("slack: redelivered envelope already handled", id) })
	root := r.digest(1)

	// The same click delivered twice also runs once.
	click := r.click(demoAlice, actionDeploy, root)
	r.acked(click)
	if err := r.Slack.Redeliver(click, "timeout"); err != nil {
		t.Fatal(err)
	}
	r.acked(click)
	r.until("the redelivered click dropped", func() bool { return r.logged("slack: redelivered envelope already handled", click) })
	r.until("deployed", func() bool { return len(r.thread(root)) >= 2 })

	if n := len(r.roots()); n != 1 {
		t.Fatalf("%d digests for one command delivered twice", n)
	}
	if n := len(r.deploys("payments", "production")); n != 1 {
		t.Fatalf("%d deploy records for one command delivered twice", n)
	}
	if n := r.GitHub.Count(deployRoute); n != 1 {
		t.Fatalf("%d deployments for one click delivered twice", n)
	}
	for _, a := range r.Slack.Acks() {
		if a.Unknown {
			t.Errorf("ack of an unknown envelope %s", a.EnvelopeID)
		}
	}
}

func (r *slackRig) logged(msg, envelopeID string) bool {
	for _, e := range r.log.AllEntries() {
		if e.Message == msg && e.Data["envelope_id"] == envelopeID {
			return true
		}
	}
	return false
}

func TestReconnectMidDeploy(t *testing.T) {
	r := newSlackRig(t)
	// A slow GitHub keeps the check running while the socket is replaced.
	r.GitHub.SetLatency(50 * time.Millisecond)
	cmd := r.command(demoAlice, demoRelease, "payments to production")
	r.acked(cmd)
	if err := r.Slack.Disconnect("refresh_requested"); err != nil {
		t.Fatal(err)
	}
	if !r.Slack.WaitConnections(2, 30*time.Second) {
		t.Fatal("the bot did not reconnect after refresh_requested")
	}
	root := r.digest(1)
	r.GitHub.SetLatency(0)

	click := r.click(demoBob, actionDeploy, root)
	r.acked(click)
	if err := r.Slack.Disconnect("refresh_requested"); err != nil {
		t.Fatal(err)
	}
	if !r.Slack.WaitConnections(3, 30*time.Second) {
		t.Fatal("the bot did not reconnect a second time")
	}
	pay := r.GitHub.Repo("acme/payments")
	r.until("deployed", func() bool { return len(madeByBot(pay)) == 1 && len(r.thread(root)) >= 2 })
	if err := r.reportStatus(context.Background(), "acme/payments", madeByBot(pay)[0].ID, "success", "done"); err != nil {
		t.Fatal(err)
	}
	r.until("the status and the Jira update in the thread", func() bool { return len(r.thread(root)) == 4 })

	// Commands still arrive on the new connection.
	after := r.command(demoAlice, demoRelease, "search to production")
	r.acked(after)
	r.digest(2)

	if n := len(r.roots()); n != 2 {
		t.Fatalf("%d root messages, want 2:\n%s", n, r.Slack.Render())
	}
	if n := r.GitHub.Count(deployRoute); n != 1 {
		t.Fatalf("%d deployments, want 1", n)
	}
	if n := len(r.records(store.KindDeployRequested)); n != 2 {
		t.Fatalf("%d deploy requests recorded, want 2", n)
	}
	seen := map[string]int{}
	for _, a := range r.Slack.Acks() {
		seen[a.EnvelopeID]++
	}
	for _, id := range []string{cmd, click, after} {
		if seen[id] != 1 {
			t.Errorf("envelope %s acked %d times", id, seen[id])
		}
	}
	r.noWebAPIErrors()
}

func TestPostMessageRateLimitedIsRetried(t *testing.T) {
	r := newSlackRig(t)
	r.Slack.RateLimit("chat.postMessage", 2)
	r.command(demoAlice, demoRelease, "payments to production")
	root := r.digest(1)
	if !hasAction(root, actionDeploy) {
		t.Fatal("digest lost its buttons")
	}
	calls := r.Slack.CallsTo("chat.postMessage")
	if len(calls) < 3 || calls[0].Status != http.StatusTooManyRequests || calls[1].Status != http.StatusTooManyRequests || calls[2].Error != "" {
		t.Fatalf("postMessage calls %+v, want two 429s then the post", calls)
	}
	if !slices.ContainsFunc(r.log.AllEntries(), func(e *logrus.Entry) bool {
		return e.Message == "slack: rate limited, waiting"
	}) {
		t.Error("the wait was not logged")
	}
}

// A 300-PR release through the real Web API: the fake refuses anything over Slack's limits.
func TestDeployBigRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("300 pull requests through the fakes")
	}
	r := newSlackRig(t, func(o *worldOptions) {
		o.Configure = func(c *Config) {
			c.Services["monolith"] = Service{Repo: "acme/monolith", Environments: []string{"production"}}
		}
	})
	mono := r.GitHub.AddRepo("acme/monolith", "main")
	mono.Commit("Initial import", "alice")
	mono.Deploy(mono.Tag("v1"), "production", "success")
	r.Jira.AddIssue("MONO-1", "In Progress")
	for i := 1; i <= 300; i++ {
		spec := fakegithub.PR{Title: fmt.Sprintf("MONO-1 Change %d with a reasonably descriptive title", i), Author: "alice",
			Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}
		if i%7 == 0 {
			spec.Title = fmt.Sprintf("Change %d without a ticket", i)
		}
		mono.MergePR(spec, fakegithub.Squash)
	}
	r.command(demoAlice, demoRelease, "monolith to production")
	root := r.digest(1)
	if !strings.Contains(text(root), "300 changes, 258 compliant") || !strings.Contains(text(root), "#294") {
		t.Fatalf("root summary:\n%s", text(root))
	}
	// The root says where the list is; the list arrives in the thread, in full.
	r.until("the full list in the thread", func() bool {
		return strings.Count(strings.Join(threadTexts(r.thread(root)[1:]), ""), "/pull/") >= 300
	})
	r.noWebAPIErrors()
}

func threadTexts(ms []fakeslack.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Blocks)
	}
	return out
}

func TestDemo(t *testing.T) {
	var b strings.Builder
	if err := Demo(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"#releases", "payments → production", "pressed Deploy", "*in progress*", "*success*",
		"Deploy refused", "It looks like you're trying to ship", "sockembot failed", "500 Internal Server Error",
		"ephemeral to @U0MALLORY", "not allowed to deploy",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// Thread replies are indented under their digest.
	if !strings.Contains(out, "\n    - 🚀") {
		t.Errorf("thread replies not indented:\n%s", out)
	}
}

// A digest older than recheckAfter is checked again when Deploy is pressed: a ticket can move
// back to "To Do" while the digest waits.
func TestDeployRechecksAStaleDigest(t *testing.T) {
	later := func(o *worldOptions) { o.Now = func() time.Time { return time.Now().Add(2 * recheckAfter) } }
	t.Run("still compliant", func(t *testing.T) {
		r := newSlackRig(t, later)
		r.command(demoAlice, demoRelease, "payments to production")
		root := r.digest(1)
		r.click(demoAlice, actionDeploy, root)
		r.until("deployed", func() bool { return r.GitHub.Count(deployRoute) == 1 && len(r.thread(root)) >= 3 })
		if th := r.thread(root); !strings.Contains(th[1].Text, "still compliant") {
			t.Errorf("thread does not report the re-check: %q", th[1].Text)
		}
		checks := r.records(store.KindCheckRun)
		d := r.deploys("payments", "production")[0]
		if len(checks) != 2 || d.CheckSeq != checks[1].Seq {
			t.Fatalf("%d check runs, deploy points at %d: want the re-check to be the one deployed", len(checks), d.CheckSeq)
		}
	})
	t.Run("no longer compliant", func(t *testing.T) {
		r := newSlackRig(t, later)
		r.command(demoAlice, demoRelease, "payments to production")
		root := r.digest(1)
		r.Jira.AddIssue("PAY-101", "To Do")
		r.click(demoAlice, actionDeploy, root)
		r.until("the re-check refusal", func() bool {
			th := r.thread(root)
			return len(th) >= 2 && strings.Contains(th[1].Text, "no longer compliant")
		})
		r.until("the root message refused", func() bool {
			m := r.roots()[0]
			return !hasAction(m, actionDeploy) && strings.Contains(text(m), "Deploy refused")
		})
		if n := r.GitHub.Count(deployRoute); n != 0 {
			t.Fatalf("%d deployments of a release that is no longer compliant", n)
		}
		if d := r.deploys("payments", "production")[0]; d.State != store.StateRefused {
			t.Fatalf("deploy state %s, want refused", d.State)
		}
		r.noWebAPIErrors()
	})
}

// Deploy pressed, and GitHub's answer to POST /deployments is lost (a 502 from a proxy after
// GitHub acted, or before): sockembot does not press again, nor guess at once; the recover job
// settles the deploy from GitHub's deployments once nothing can still be in flight. A deployment
// GitHub did create is recorded as deployed (one deployment, its evidence, its statuses); one it
// never got leaves the deploy failed, saying nothing was deployed. A clear refusal (4xx) is
// settled at once.
func TestDeployAnswerLostIsSettledFromGitHub(t *testing.T) {
	press := func(t *testing.T, fault func(r *slackRig)) (*slackRig, *clock, fakeslack.Message) {
		r, clk := emergencyRig(t)
		r.command(demoAlice, demoRelease, "payments to production")
		root := r.digest(1)
		fault(r)
		r.click(demoAlice, actionDeploy, root)
		return r, clk, root
	}
	settleLater := func(t *testing.T, r *slackRig, clk *clock, root fakeslack.Message) {
		r.until("the unclear answer reported", func() bool { return strings.Contains(r.Slack.Render(), "the deployment may or may not exist") })
		if d := r.deploys("payments", "production")[0]; d.State != store.StateConfirming {
			t.Fatalf("deploy state %s, want still confirming until the recover job settles it", d.State)
		}
		clk.Set(time.Now().Add(time.Hour))
		if n, err := r.App.RecoverInterrupted(context.Background()); err != nil || n != 1 {
			t.Fatalf("recover settled %d: %v", n, err)
		}
	}
	t.Run("GitHub created it", func(t *testing.T) {
		r, clk, root := press(t, func(r *slackRig) { r.GitHub.LoseNextAnswer(1, "/deployments", http.StatusBadGateway) })
		settleLater(t, r, clk, root)
		if n := r.GitHub.Count(deployRoute); n != 1 {
			t.Fatalf("%d POST /deployments, want exactly 1", n)
		}
		d := r.deploys("payments", "production")[0]
		dep := madeByBot(r.GitHub.Repo("acme/payments"))
		if d.State != store.StateDeployed || len(dep) != 1 || d.GitHubDeploymentID != dep[0].ID {
			t.Fatalf("deploy %+v, GitHub has %d sockembot deployments", d, len(dep))
		}
		if n := len(r.records(store.KindDeploymentCreated)); n != 1 {
			t.Fatalf("%d deployment_created records", n)
		}
		if !threadSays(r, root, "sockembot has now recorded it") {
			t.Errorf("thread:\n%s", r.Slack.Render())
		}
		r.until("the root message says deploying, without buttons", func() bool {
			m := r.roots()[0]
			return strings.Contains(text(m), "Deploying") && !hasAction(m, actionDeploy)
		})
	})
	t.Run("GitHub never got it", func(t *testing.T) {
		r, clk, root := press(t, func(r *slackRig) { r.GitHub.FailNext(1, "/deployments", http.StatusBadGateway) })
		settleLater(t, r, clk, root)
		if d := r.deploys("payments", "production")[0]; d.State != store.StateFailed {
			t.Fatalf("deploy state %s, want failed", d.State)
		}
		if !threadSays(r, root, "*nothing was deployed*") || len(madeByBot(r.GitHub.Repo("acme/payments"))) != 0 {
			t.Errorf("thread:\n%s", r.Slack.Render())
		}
		r.until("the root message says failed, without buttons", func() bool {
			m := r.roots()[0]
			return strings.Contains(text(m), "Deploy failed") && !hasAction(m, actionDeploy)
		})
	})
	t.Run("GitHub refused it", func(t *testing.T) {
		r, _, root := press(t, func(r *slackRig) { r.GitHub.FailNext(1, "/deployments", http.StatusUnprocessableEntity) })
		r.until("settled as failed at once", func() bool { return r.deploys("payments", "production")[0].State == store.StateFailed })
		r.until("the root message says failed", func() bool { return strings.Contains(text(r.roots()[0]), "nothing was deployed") })
		if !threadSays(r, root, "*nothing was deployed*") {
			t.Errorf("thread:\n%s", r.Slack.Render())
		}
	})
}

// A deployment status whose thread reply Slack refused comes again (the delivery retried, or a
// second hook): recorded once, threaded once.
func TestDeploymentStatusRetriedIsRecordedOnce(t *testing.T) {
	r := newSlackRig(t)
	root, id := confirmPayments(t, r)
	ctx := context.Background()
	body, err := r.statusEvent(ctx, "acme/payments", id, "in_progress", "rolling out")
	if err != nil {
		t.Fatal(err)
	}
	r.Slack.NotInChannel(demoRelease)
	if err := r.deliver(ctx, "deployment_status", body); err != nil {
		t.Fatal(err)
	}
	r.until("the status recorded", func() bool { return len(r.records(store.KindDeploymentStatus)) == 1 })
	r.until("the delivery failed", func() bool {
		n, err := r.Store.PendingDeliveries(ctx)
		return err == nil && n == 1
	})
	r.Slack.Invite(demoRelease)
	if err := r.deliver(ctx, "deployment_status", body); err != nil {
		t.Fatal(err)
	}
	r.until("the status in the thread", func() bool { return threadSays(r, root, "*in progress*") })
	if err := r.deliver(ctx, "deployment_status", body); err != nil {
		t.Fatal(err)
	}
	r.until("the root message says deploying", func() bool { return strings.Contains(text(r.roots()[0]), "in progress") })
	// Handled when only the first, failed delivery (waiting out its backoff) is left queued.
	r.until("the third delivery handled", func() bool {
		n, err := r.Store.PendingDeliveries(ctx)
		return err == nil && n == 1
	})
	if n := len(r.records(store.KindDeploymentStatus)); n != 1 {
		t.Errorf("%d deployment_status records for one status, want 1", n)
	}
	if n := strings.Count(r.Slack.Render(), "*in progress* — rolling out"); n != 1 {
		t.Errorf("status threaded %d times, want once:\n%s", n, r.Slack.Render())
	}
}

// lockDuringTickets is the Jira adapter with a hook: once armed, the next ticket lookup first
// runs it (here: someone locks the environment while a re-check is under way).
type lockDuringTickets struct {
	Jira
	arm atomic.Pointer[func()]
}

func (j *lockDuringTickets) Tickets(ctx context.Context, keys []string) (map[string]compliance.Ticket, error) {
	if f := j.arm.Swap(nil); f != nil {
		(*f)()
	}
	return j.Jira.Tickets(ctx, keys)
}

// A lock taken while Deploy is being handled (during the re-check of a stale digest) still
// stops the deploy: it goes back to ready, and deploys after the unlock.
func TestDeployLockTakenDuringConfirmationHolds(t *testing.T) {
	hook := &lockDuringTickets{}
	r := newSlackRig(t, func(o *worldOptions) {
		o.Now = func() time.Time { return time.Now().Add(2 * recheckAfter) }
		o.WrapJira = func(j Jira) Jira { hook.Jira = j; return hook }
	})
	r.command(demoAlice, demoRelease, "payments to production")
	root := r.digest(1)
	lock := func() {
		if ok, _, err := r.Store.Lock(context.Background(), "payments", "production", demoBob, "incident 43"); err != nil || !ok {
			t.Errorf("lock: %v %v", ok, err)
		}
	}
	hook.arm.Store(&lock)
	r.click(demoAlice, actionDeploy, root)
	r.until("the lock reported in the thread", func() bool { return threadSays(r, root, "Not deployed: the environment was locked") })
	if n := r.GitHub.Count(deployRoute); n != 0 {
		t.Fatalf("%d deployments while production was locked", n)
	}
	if d := r.deploys("payments", "production")[0]; d.State != store.StateReady {
		t.Fatalf("deploy state %s, want ready again", d.State)
	}
	if _, err := r.Store.Unlock(context.Background(), "payments", "production"); err != nil {
		t.Fatal(err)
	}
	r.click(demoAlice, actionDeploy, root)
	r.until("deployed after the unlock", func() bool { return r.GitHub.Count(deployRoute) == 1 })
}

// Two digests of the same environment: once one is deployed, the other's range no longer starts
// at what runs there. Pressing its Deploy refuses it for good instead of rolling back unchecked.
func TestDeployStaleDigestIsSuperseded(t *testing.T) {
	r := newSlackRig(t)
	r.command(demoAlice, demoRelease, "payments to production")
	first := r.digest(1)
	r.command(demoAlice, demoRelease, "payments to production")
	second := r.digest(2)
	r.click(demoAlice, actionDeploy, second)
	r.until("the second digest deployed", func() bool {
		for _, d := range r.deploys("payments", "production") {
			if d.ID == 2 {
				return d.State == store.StateDeployed
			}
		}
		return false
	})
	r.click(demoAlice, actionDeploy, first)
	r.until("the first digest superseded", func() bool { return threadSays(r, first, "went to *production* after this digest was checked") })
	if n := r.GitHub.Count(deployRoute); n != 1 {
		t.Fatalf("%d deployments, want only the second digest's", n)
	}
	r.until("its root says so", func() bool {
		m := r.roots()[0]
		return strings.Contains(text(m), "Superseded") && !hasAction(m, actionDeploy)
	})
	ds := r.deploys("payments", "production")
	states := map[int64]store.State{}
	for _, d := range ds {
		states[d.ID] = d.State
	}
	if states[1] != store.StateRefused || states[2] != store.StateDeployed {
		t.Fatalf("states %v, want #1 refused (superseded) and #2 deployed", states)
	}
}

// A digest checked against what runs is not stale because that deploy's state moved later (a CD
// retry: failure, then success): its head is still this digest's base.
func TestDeployDigestNotSupersededByItsOwnBase(t *testing.T) {
	r := newSlackRig(t)
	_, id := confirmPayments(t, r)
	ctx := context.Background()
	if err := r.reportStatus(ctx, "acme/payments", id, "success", "live"); err != nil {
		t.Fatal(err)
	}
	r.until("deploy #1 live", func() bool { return strings.Contains(text(r.roots()[0]), "Deployed") })
	pay := r.GitHub.Repo("acme/payments")
	pay.MergePR(fakegithub.PR{Title: "PAY-101 more refunds", Author: "alice", Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.Squash)
	r.command(demoAlice, demoRelease, "payments to production")
	second := r.digest(2)
	// Deploy #1's state moves after #2 was checked: failure, then success again.
	for _, st := range []string{"failure", "success"} {
		if err := r.reportStatus(ctx, "acme/payments", id, st, st); err != nil {
			t.Fatal(err)
		}
	}
	r.until("deploy #1 deployed again", func() bool {
		for _, d := range r.deploys("payments", "production") {
			if d.ID == 1 {
				return d.State == store.StateDeployed && threadSays(r, r.roots()[0], "*success* — success")
			}
		}
		return false
	})
	if !hasAction(second, actionDeploy) {
		t.Fatalf("second digest has no Deploy:\n%s", r.Slack.Render())
	}
	r.click(demoAlice, actionDeploy, second)
	r.until("the second deployment", func() bool { return r.GitHub.Count(deployRoute) == 2 })
}
