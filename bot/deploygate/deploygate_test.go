package deploygate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sockembot/bot"
	"sockembot/bot/audit"
	"sockembot/bot/bottest"
	"sockembot/bot/check"
	"sockembot/bot/demo"
	"sockembot/bot/deploygate"
	"sockembot/bot/render"
	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	fakeslack "sockembot/integrations/fake/slack"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"
)

func TestDeployCompliantDoubleClick(t *testing.T) {
	r := bottest.NewRig(t)
	id := r.Command(demo.Alice, demo.Release, "payments to production")
	r.Acked(id)
	root := r.Digest(1)
	if !demo.HasAction(root, render.ActionDeploy) || !demo.HasAction(root, render.ActionCancel) {
		t.Fatalf("compliant digest without Deploy and Cancel:\n%s", r.Slack.Render())
	}
	for _, want := range []string{"payments → production", "2 changes, all compliant", "PAY-101", "approved by bob", "<@U0ALICE>", "/compare/"} {
		if !strings.Contains(bottest.Text(root), want) {
			t.Errorf("digest lacks %q", want)
		}
	}

	// Bob (through the @ops group) and Alice both press Deploy at once.
	c1 := r.Click(demo.Bob, render.ActionDeploy, root)
	c2 := r.Click(demo.Alice, render.ActionDeploy, root)
	r.Acked(c1, c2)
	pay := r.GitHub.Repo("acme/payments")
	r.Until("the confirmation in the thread", func() bool { return len(r.Thread(root)) >= 2 })
	r.Until("the second click's answer", func() bool {
		for _, e := range r.Slack.Ephemerals() {
			if strings.Contains(e.Text, "is already") {
				return true
			}
		}
		return false
	})
	if n := r.GitHub.Count(bottest.DeployRoute); n != 1 {
		t.Fatalf("%d GitHub deployments created for one deploy, want exactly 1", n)
	}
	made := bottest.MadeByBot(pay)
	if len(made) != 1 {
		t.Fatalf("GitHub has %d bot deployments", len(made))
	}
	dep := made[0]
	if dep.SHA != pay.Head() || dep.Environment != "production" {
		t.Errorf("deployment of %s to %s, want head %s to production", dep.SHA, dep.Environment, pay.Head())
	}
	var payload deploygate.DeploymentPayload
	if err := json.Unmarshal(dep.Payload, &payload); err != nil || payload.Sockembot.Requester != demo.Alice || payload.Sockembot.CheckSeq == 0 {
		t.Errorf("deployment payload %s does not name the requester and the check (%v)", dep.Payload, err)
	}

	// The root message now says it is deploying, without buttons.
	r.Until("the root message updated", func() bool {
		m := r.Roots()[0]
		return !demo.HasAction(m, render.ActionDeploy) && strings.Contains(bottest.Text(m), "Deploying")
	})
	ds := r.Deploys("payments", "production")
	if len(ds) != 1 || ds[0].State != deploygate.StateDeployed || ds[0].GitHubDeploymentID != dep.ID || ds[0].TS != root.TS {
		t.Fatalf("deploy record %+v", ds)
	}

	// The frozen evidence the audit export reads.
	created := r.Records(compliance.EvidenceDeploymentCreated)
	if len(created) != 1 {
		t.Fatalf("%d deployment_created records", len(created))
	}
	var ev deploygate.DeploymentEvidence
	if err := json.Unmarshal(created[0].Body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.DeployID != ds[0].ID || ev.Service != "payments" || ev.Environment != "production" || ev.Repo != "acme/payments" ||
		ev.Ref != "main" || ev.SHA != dep.SHA || ev.BaseSHA == "" || ev.Requester != demo.Alice ||
		(ev.Deployer != demo.Bob && ev.Deployer != demo.Alice) || ev.GitHubDeploymentID != dep.ID || ev.CheckSeq == 0 ||
		ev.PolicyHash != compliance.PolicyHash(r.App.Config.Policy) || !ev.Compliant || len(ev.Report.Changes) != 2 {
		t.Errorf("deployment evidence incomplete: %+v", ev)
	}
	var rows int
	if err := audit.Export(context.Background(), r.Store, audit.ExportQuery{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)}, func(audit.ExportRow) error {
		rows++
		return nil
	}); err != nil || rows != 2 {
		t.Errorf("audit export: %d rows, %v; want the 2 changes", rows, err)
	}
	for _, kind := range []string{compliance.EvidenceDeployRequested, compliance.EvidenceCheckRun, compliance.EvidenceDeployConfirmed} {
		if n := len(r.Records(kind)); n != 1 {
			t.Errorf("%d %s records, want 1", n, kind)
		}
	}
	r.NoWebAPIErrors()
}

func TestDeployRefused(t *testing.T) {
	r := bottest.NewRig(t)
	r.Command(demo.Alice, demo.Release, "search to production")
	root := r.Digest(1)
	if demo.HasAction(root, render.ActionDeploy) {
		t.Fatal("a refused digest offers Deploy")
	}
	for _, want := range []string{"Deploy refused", "#2", "no Jira ticket", "direct push", "It looks like you're trying to ship"} {
		if !strings.Contains(bottest.Text(root), want) {
			t.Errorf("refusal lacks %q:\n%s", want, r.Slack.Render())
		}
	}
	r.Until("the refusal recorded", func() bool { return len(r.Records(compliance.EvidenceDeployRefused)) == 1 })
	if d := r.Deploys("search", "production"); len(d) != 1 || d[0].State != deploygate.StateRefused {
		t.Fatalf("deploy %+v, want refused", d)
	}
	// Pressing a Deploy button that was never offered (a forged or stale payload) does nothing.
	r.Slack.SendBlockAction(fakeslack.BlockAction{ActionID: render.ActionDeploy, Value: fmt.Sprint(r.Deploys("search", "production")[0].ID),
		UserID: demo.Alice, ChannelID: demo.Release, MessageTS: root.TS})
	r.EphemeralTo(demo.Alice, "is already refused")
	if n := r.GitHub.Count(bottest.DeployRoute); n != 0 {
		t.Fatalf("%d deployments created for a refused release", n)
	}
	r.NoWebAPIErrors()
}

func TestDeployFailureReport(t *testing.T) {
	r := bottest.NewRig(t)
	r.GitHub.FailNext(1000, "/repos/acme/billing", http.StatusInternalServerError)
	r.Command(demo.Alice, demo.Dev, "billing to production")
	root := r.Digest(1)
	body := bottest.Text(root)
	for _, want := range []string{"sockembot failed", "the deploy is refused", "500 Internal Server Error", "acme/billing", "requested by <@U0ALICE>"} {
		if !strings.Contains(body, want) {
			t.Errorf("failure report lacks %q:\n%s", want, r.Slack.Render())
		}
	}
	if demo.HasAction(root, render.ActionDeploy) {
		t.Fatal("failure report offers Deploy")
	}
	r.EphemeralTo(demo.Alice, "The failure report is in")
	d := r.Deploys("billing", "production")
	if len(d) != 1 || d[0].State != deploygate.StateFailed || d[0].TS != root.TS {
		t.Fatalf("deploy %+v, want failed with the report's ts", d)
	}
	r.Until("the refusal recorded", func() bool { return len(r.Records(compliance.EvidenceDeployRefused)) == 1 })
	var ev deploygate.DeployRefusedEvidence
	if err := json.Unmarshal(r.Records(compliance.EvidenceDeployRefused)[0].Body, &ev); err != nil || !strings.Contains(ev.Error, "500") {
		t.Errorf("refusal evidence %+v (%v) does not carry the error", ev, err)
	}
	r.NoWebAPIErrors()
}

// panickyJira panics on every ticket lookup: a bug deep in an adapter.
type panickyJira struct{ bot.Jira }

func (panickyJira) Tickets(context.Context, []string) (map[string]compliance.Ticket, error) {
	var m map[string]compliance.Ticket
	m["boom"] = compliance.Ticket{} // assignment to a nil map
	return m, nil
}

func TestDeployPanicBecomesFailureReport(t *testing.T) {
	r := bottest.NewRig(t, func(o *demo.Options) { o.WrapJira = func(j bot.Jira) bot.Jira { return panickyJira{j} } })
	r.Command(demo.Alice, demo.Release, "payments to production")
	root := r.Digest(1)
	body := bottest.Text(root)
	for _, want := range []string{"sockembot failed", "panic: assignment to entry in nil map", "Stack trace", "deploygate_test.go"} {
		if !strings.Contains(body, want) {
			t.Errorf("failure report lacks %q:\n%s", want, r.Slack.Render())
		}
	}
	// The process kept serving.
	r.Command(demo.Alice, demo.Release, "help")
	r.EphemeralTo(demo.Alice, "How to use /deploy")
	r.NoWebAPIErrors()
}

func TestDeployUnauthorised(t *testing.T) {
	r := bottest.NewRig(t)
	r.Command(demo.Mallory, demo.Dev, "payments to production")
	r.EphemeralTo(demo.Mallory, "You are not allowed to deploy to *production*")
	r.Until("the denied attempt recorded", func() bool { return len(r.Records(compliance.EvidenceDeployAttemptDenied)) == 1 })
	if n := len(r.Roots()); n != 0 {
		t.Fatalf("%d messages in the release channel for a refused person", n)
	}
	if len(r.Slack.CallsTo("usergroups.users.list")) == 0 {
		t.Error("the @ops group was never resolved")
	}

	// Staging lists no deployers: anyone may ask (the check still gates it).
	r.Command(demo.Mallory, demo.Dev, "payments to staging from v1.4.0")
	root := r.Digest(1)
	if !demo.HasAction(root, render.ActionDeploy) {
		t.Fatalf("staging digest without Deploy:\n%s", r.Slack.Render())
	}

	// Alice's production digest: Mallory may not press its buttons.
	r.Command(demo.Alice, demo.Release, "payments to production")
	prod := r.Digest(2)
	r.Click(demo.Mallory, render.ActionDeploy, prod)
	r.EphemeralTo(demo.Mallory, "Only <@U0ALICE> or a deployer")
	r.Click(demo.Mallory, render.ActionCancel, prod)
	r.EphemeralTo(demo.Mallory, "may cancel this")
	if n := r.GitHub.Count(bottest.DeployRoute); n != 0 {
		t.Fatalf("%d deployments after an unauthorised click", n)
	}
	if d := r.Deploys("payments", "production")[0]; d.State != deploygate.StateReady {
		t.Fatalf("deploy is %s after unauthorised clicks, want still ready", d.State)
	}
	// Cancel by the requester.
	r.Click(demo.Alice, render.ActionCancel, prod)
	r.Until("the cancellation", func() bool { return strings.Contains(bottest.Text(r.Roots()[1]), "Cancelled") })
	if d := r.Deploys("payments", "production")[0]; d.State != deploygate.StateCancelled {
		t.Fatalf("deploy is %s, want cancelled", d.State)
	}
	if len(r.Records(compliance.EvidenceDeployCancelled)) != 1 {
		t.Error("cancellation not recorded")
	}
	r.NoWebAPIErrors()
}

func TestDeployLocked(t *testing.T) {
	r := bottest.NewRig(t)
	r.Command(demo.Mallory, demo.Dev, `lock payments production "incident 42"`)
	r.EphemeralTo(demo.Mallory, "Only deployers for *production* may lock it")

	r.Command(demo.Alice, demo.Dev, `lock payments production "incident 42"`)
	notice := r.Digest(1)
	if !strings.Contains(notice.Text, "locked *payments* in *production*: incident 42") {
		t.Fatalf("lock notice %q", notice.Text)
	}
	r.Command(demo.Bob, demo.Dev, "payments to production")
	r.EphemeralTo(demo.Bob, "is locked by <@U0ALICE>")
	r.Command(demo.Bob, demo.Dev, "status payments")
	r.EphemeralTo(demo.Bob, "🔒 locked by <@U0ALICE>: incident 42")
	r.Until("the denied attempt recorded", func() bool { return len(r.Records(compliance.EvidenceDeployAttemptDenied)) == 2 })
	if n := len(r.Roots()); n != 1 {
		t.Fatalf("%d root messages; a locked environment must get no digest", n)
	}

	r.Command(demo.Alice, demo.Dev, "unlock payments production")
	r.Digest(2)
	r.Command(demo.Bob, demo.Dev, "payments to production")
	if root := r.Digest(3); !demo.HasAction(root, render.ActionDeploy) {
		t.Fatalf("no digest after unlocking:\n%s", r.Slack.Render())
	}
	r.NoWebAPIErrors()
}

func TestDeployMalformedAndUnknown(t *testing.T) {
	r := bottest.NewRig(t)
	for _, tc := range []struct{ text, says string }{
		{"payments to", "`to` needs a value"},
		{"nosuch to production", "I don't know the service `nosuch`"},
		{"payments to qa", "`payments` has no environment `qa`"},
		{"payments@no-such-branch to production", "acme/payments has no branch, tag or commit `no-such-branch`"},
		{"payments to staging", "Nothing has been deployed to *staging* yet"},
		{"payments@v1.4.0 to staging from main", "is behind `main`"},
		{"history nosuch", "I don't know the service `nosuch`"},
	} {
		r.Command(demo.Alice, demo.Dev, tc.text)
		r.EphemeralTo(demo.Alice, tc.says)
	}
	if n := len(r.Roots()); n != 0 {
		t.Fatalf("%d messages in the release channel for malformed commands:\n%s", n, r.Slack.Render())
	}
	if n := r.GitHub.Count(bottest.DeployRoute); n != 0 {
		t.Fatal("a malformed command deployed something")
	}
	// The three refusals that got as far as a deploy record are on the evidence trail.
	r.Until("the refusals recorded", func() bool { return len(r.Records(compliance.EvidenceDeployRefused)) == 3 })
	r.NoWebAPIErrors()
}

func TestStatusHistoryHelp(t *testing.T) {
	r := bottest.NewRig(t)
	r.Command(demo.Alice, demo.Release, "payments to production")
	root := r.Digest(1)
	r.Click(demo.Alice, render.ActionDeploy, root)
	r.Until("deployed", func() bool { return len(bottest.MadeByBot(r.GitHub.Repo("acme/payments"))) == 1 })
	r.Command(demo.Alice, demo.Release, "search to production")
	r.Digest(2)

	r.Command(demo.Bob, demo.Dev, "history payments")
	h := r.EphemeralTo(demo.Bob, "Last 1 deploy request of payments")
	link := fmt.Sprintf("https://sockembot.slack.com/archives/%s/p%s", demo.Release, strings.ReplaceAll(root.TS, ".", ""))
	if !strings.Contains(h.Text, link) || !strings.Contains(h.Text, "deployment created") {
		t.Errorf("history %q lacks the thread link %s", h.Text, link)
	}
	r.Command(demo.Bob, demo.Dev, "status payments production")
	s := r.EphemeralTo(demo.Bob, "*production*: `")
	if !strings.Contains(s.Text, render.Short(r.GitHub.Repo("acme/payments").Head())) {
		t.Errorf("status %q does not show the deployed head", s.Text)
	}
	r.Command(demo.Bob, demo.Dev, "")
	r.EphemeralTo(demo.Bob, "How to use /deploy")
	r.NoWebAPIErrors()
}

// A 300-PR release through the real Web API: the fake refuses anything over Slack's limits.
func TestDeployBigRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("300 pull requests through the fakes")
	}
	r := bottest.NewRig(t, func(o *demo.Options) {
		o.Configure = func(c *bot.Config) {
			c.Services["monolith"] = bot.Service{Repo: "acme/monolith", Environments: []string{"production"}}
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
	r.Command(demo.Alice, demo.Release, "monolith to production")
	root := r.Digest(1)
	if !strings.Contains(bottest.Text(root), "300 changes, 258 compliant") || !strings.Contains(bottest.Text(root), "#294") {
		t.Fatalf("root summary:\n%s", bottest.Text(root))
	}
	// The root says where the list is; the list arrives in the thread, in full.
	r.Until("the full list in the thread", func() bool {
		return strings.Count(strings.Join(threadTexts(r.Thread(root)[1:]), ""), "/pull/") >= 300
	})
	r.NoWebAPIErrors()
}

func threadTexts(ms []fakeslack.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Blocks)
	}
	return out
}

// A digest older than deploygate.RecheckAfter is checked again when Deploy is pressed: a ticket can move
// back to "To Do" while the digest waits.
func TestDeployRechecksAStaleDigest(t *testing.T) {
	later := func(o *demo.Options) { o.Now = func() time.Time { return time.Now().Add(2 * deploygate.RecheckAfter) } }
	t.Run("still compliant", func(t *testing.T) {
		r := bottest.NewRig(t, later)
		r.Command(demo.Alice, demo.Release, "payments to production")
		root := r.Digest(1)
		r.Click(demo.Alice, render.ActionDeploy, root)
		r.Until("deployed", func() bool { return r.GitHub.Count(bottest.DeployRoute) == 1 && len(r.Thread(root)) >= 3 })
		if th := r.Thread(root); !strings.Contains(th[1].Text, "still compliant") {
			t.Errorf("thread does not report the re-check: %q", th[1].Text)
		}
		checks := r.Records(compliance.EvidenceCheckRun)
		d := r.Deploys("payments", "production")[0]
		if len(checks) != 2 || d.CheckSeq != checks[1].Seq {
			t.Fatalf("%d check runs, deploy points at %d: want the re-check to be the one deployed", len(checks), d.CheckSeq)
		}
	})
	t.Run("no longer compliant", func(t *testing.T) {
		r := bottest.NewRig(t, later)
		r.Command(demo.Alice, demo.Release, "payments to production")
		root := r.Digest(1)
		r.Jira.AddIssue("PAY-101", "To Do")
		r.Click(demo.Alice, render.ActionDeploy, root)
		r.Until("the re-check refusal", func() bool {
			th := r.Thread(root)
			return len(th) >= 2 && strings.Contains(th[1].Text, "no longer compliant")
		})
		r.Until("the root message refused", func() bool {
			m := r.Roots()[0]
			return !demo.HasAction(m, render.ActionDeploy) && strings.Contains(bottest.Text(m), "Deploy refused")
		})
		if n := r.GitHub.Count(bottest.DeployRoute); n != 0 {
			t.Fatalf("%d deployments of a release that is no longer compliant", n)
		}
		if d := r.Deploys("payments", "production")[0]; d.State != deploygate.StateRefused {
			t.Fatalf("deploy state %s, want refused", d.State)
		}
		r.NoWebAPIErrors()
	})
}

// Deploy pressed, and GitHub's answer to POST /deployments is lost (a 502 from a proxy after
// GitHub acted, or before): sockembot does not press again, nor guess at once; the recover job
// settles the deploy from GitHub's deployments once nothing can still be in flight. A deployment
// GitHub did create is recorded as deployed (one deployment, its evidence, its statuses); one it
// never got leaves the deploy failed, saying nothing was deployed. A clear refusal (4xx) is
// settled at once.
func TestDeployAnswerLostIsSettledFromGitHub(t *testing.T) {
	press := func(t *testing.T, fault func(r *bottest.Rig)) (*bottest.Rig, *bottest.Clock, fakeslack.Message) {
		r, clk := bottest.NewEmergencyRig(t)
		r.Command(demo.Alice, demo.Release, "payments to production")
		root := r.Digest(1)
		fault(r)
		r.Click(demo.Alice, render.ActionDeploy, root)
		return r, clk, root
	}
	settleLater := func(t *testing.T, r *bottest.Rig, clk *bottest.Clock, root fakeslack.Message) {
		r.Until("the unclear answer reported", func() bool { return strings.Contains(r.Slack.Render(), "the deployment may or may not exist") })
		if d := r.Deploys("payments", "production")[0]; d.State != deploygate.StateConfirming {
			t.Fatalf("deploy state %s, want still confirming until the recover job settles it", d.State)
		}
		clk.Set(time.Now().Add(time.Hour))
		if n, err := r.App.Deploys().RecoverInterrupted(context.Background()); err != nil || n != 1 {
			t.Fatalf("recover settled %d: %v", n, err)
		}
	}
	t.Run("GitHub created it", func(t *testing.T) {
		r, clk, root := press(t, func(r *bottest.Rig) { r.GitHub.LoseNextAnswer(1, "/deployments", http.StatusBadGateway) })
		settleLater(t, r, clk, root)
		if n := r.GitHub.Count(bottest.DeployRoute); n != 1 {
			t.Fatalf("%d POST /deployments, want exactly 1", n)
		}
		d := r.Deploys("payments", "production")[0]
		dep := bottest.MadeByBot(r.GitHub.Repo("acme/payments"))
		if d.State != deploygate.StateDeployed || len(dep) != 1 || d.GitHubDeploymentID != dep[0].ID {
			t.Fatalf("deploy %+v, GitHub has %d sockembot deployments", d, len(dep))
		}
		if n := len(r.Records(compliance.EvidenceDeploymentCreated)); n != 1 {
			t.Fatalf("%d deployment_created records", n)
		}
		if !r.ThreadSays(root, "sockembot has now recorded it") {
			t.Errorf("thread:\n%s", r.Slack.Render())
		}
		r.Until("the root message says deploying, without buttons", func() bool {
			m := r.Roots()[0]
			return strings.Contains(bottest.Text(m), "Deploying") && !demo.HasAction(m, render.ActionDeploy)
		})
	})
	t.Run("GitHub never got it", func(t *testing.T) {
		r, clk, root := press(t, func(r *bottest.Rig) { r.GitHub.FailNext(1, "/deployments", http.StatusBadGateway) })
		settleLater(t, r, clk, root)
		if d := r.Deploys("payments", "production")[0]; d.State != deploygate.StateFailed {
			t.Fatalf("deploy state %s, want failed", d.State)
		}
		if !r.ThreadSays(root, "*nothing was deployed*") || len(bottest.MadeByBot(r.GitHub.Repo("acme/payments"))) != 0 {
			t.Errorf("thread:\n%s", r.Slack.Render())
		}
		r.Until("the root message says failed, without buttons", func() bool {
			m := r.Roots()[0]
			return strings.Contains(bottest.Text(m), "Deploy failed") && !demo.HasAction(m, render.ActionDeploy)
		})
	})
	t.Run("GitHub refused it", func(t *testing.T) {
		r, _, root := press(t, func(r *bottest.Rig) { r.GitHub.FailNext(1, "/deployments", http.StatusUnprocessableEntity) })
		r.Until("settled as failed at once", func() bool { return r.Deploys("payments", "production")[0].State == deploygate.StateFailed })
		r.Until("the root message says failed", func() bool { return strings.Contains(bottest.Text(r.Roots()[0]), "nothing was deployed") })
		if !r.ThreadSays(root, "*nothing was deployed*") {
			t.Errorf("thread:\n%s", r.Slack.Render())
		}
	})
}

// lockDuringTickets is the Jira adapter with a hook: once armed, the next ticket lookup first
// runs it (here: someone locks the environment while a re-check is under way).
type lockDuringTickets struct {
	bot.Jira
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
	r := bottest.NewRig(t, func(o *demo.Options) {
		o.Now = func() time.Time { return time.Now().Add(2 * deploygate.RecheckAfter) }
		o.WrapJira = func(j bot.Jira) bot.Jira { hook.Jira = j; return hook }
	})
	r.Command(demo.Alice, demo.Release, "payments to production")
	root := r.Digest(1)
	lock := func() {
		if ok, _, err := r.Store.Lock(context.Background(), "payments", "production", demo.Bob, "incident 43"); err != nil || !ok {
			t.Errorf("lock: %v %v", ok, err)
		}
	}
	hook.arm.Store(&lock)
	r.Click(demo.Alice, render.ActionDeploy, root)
	r.Until("the lock reported in the thread", func() bool { return r.ThreadSays(root, "Not deployed: the environment was locked") })
	if n := r.GitHub.Count(bottest.DeployRoute); n != 0 {
		t.Fatalf("%d deployments while production was locked", n)
	}
	if d := r.Deploys("payments", "production")[0]; d.State != deploygate.StateReady {
		t.Fatalf("deploy state %s, want ready again", d.State)
	}
	if _, err := r.Store.Unlock(context.Background(), "payments", "production"); err != nil {
		t.Fatal(err)
	}
	r.Click(demo.Alice, render.ActionDeploy, root)
	r.Until("deployed after the unlock", func() bool { return r.GitHub.Count(bottest.DeployRoute) == 1 })
}

// Two digests of the same environment: once one is deployed, the other's range no longer starts
// at what runs there. Pressing its Deploy refuses it for good instead of rolling back unchecked.
func TestDeployStaleDigestIsSuperseded(t *testing.T) {
	r := bottest.NewRig(t)
	r.Command(demo.Alice, demo.Release, "payments to production")
	first := r.Digest(1)
	r.Command(demo.Alice, demo.Release, "payments to production")
	second := r.Digest(2)
	r.Click(demo.Alice, render.ActionDeploy, second)
	r.Until("the second digest deployed", func() bool {
		for _, d := range r.Deploys("payments", "production") {
			if d.ID == 2 {
				return d.State == deploygate.StateDeployed
			}
		}
		return false
	})
	r.Click(demo.Alice, render.ActionDeploy, first)
	r.Until("the first digest superseded", func() bool { return r.ThreadSays(first, "went to *production* after this digest was checked") })
	if n := r.GitHub.Count(bottest.DeployRoute); n != 1 {
		t.Fatalf("%d deployments, want only the second digest's", n)
	}
	r.Until("its root says so", func() bool {
		m := r.Roots()[0]
		return strings.Contains(bottest.Text(m), "Superseded") && !demo.HasAction(m, render.ActionDeploy)
	})
	ds := r.Deploys("payments", "production")
	states := map[int64]deploygate.State{}
	for _, d := range ds {
		states[d.ID] = d.State
	}
	if states[1] != deploygate.StateRefused || states[2] != deploygate.StateDeployed {
		t.Fatalf("states %v, want #1 refused (superseded) and #2 deployed", states)
	}
}

// A digest checked against what runs is not stale because that deploy's state moved later (a CD
// retry: failure, then success): its head is still this digest's base.
func TestDeployDigestNotSupersededByItsOwnBase(t *testing.T) {
	r := bottest.NewRig(t)
	_, id := r.ConfirmPayments()
	ctx := context.Background()
	if err := r.ReportStatus(ctx, "acme/payments", id, "success", "live"); err != nil {
		t.Fatal(err)
	}
	r.Until("deploy #1 live", func() bool { return strings.Contains(bottest.Text(r.Roots()[0]), "Deployed") })
	pay := r.GitHub.Repo("acme/payments")
	pay.MergePR(fakegithub.PR{Title: "PAY-101 more refunds", Author: "alice", Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.Squash)
	r.Command(demo.Alice, demo.Release, "payments to production")
	second := r.Digest(2)
	// Deploy #1's state moves after #2 was checked: failure, then success again.
	for _, st := range []string{"failure", "success"} {
		if err := r.ReportStatus(ctx, "acme/payments", id, st, st); err != nil {
			t.Fatal(err)
		}
	}
	r.Until("deploy #1 deployed again", func() bool {
		for _, d := range r.Deploys("payments", "production") {
			if d.ID == 1 {
				return d.State == deploygate.StateDeployed && r.ThreadSays(r.Roots()[0], "*success* — success")
			}
		}
		return false
	})
	if !demo.HasAction(second, render.ActionDeploy) {
		t.Fatalf("second digest has no Deploy:\n%s", r.Slack.Render())
	}
	r.Click(demo.Alice, render.ActionDeploy, second)
	r.Until("the second deployment", func() bool { return r.GitHub.Count(bottest.DeployRoute) == 2 })
}

// A crash between "Deploy pressed" (the deploy claimed, confirming) and the end of
// createDeployment leaves a deploy confirming. The reconcile job settles it from what GitHub has.
func TestInterruptedConfirmationsAreSettled(t *testing.T) {
	for _, created := range []bool{true, false} {
		name := map[bool]string{true: "GitHub has the deployment", false: "GitHub never got it"}[created]
		t.Run(name, func(t *testing.T) {
			r, clk := bottest.NewEmergencyRig(t)
			ctx := context.Background()
			r.Command(demo.Alice, demo.Release, "payments to production")
			root := r.Digest(1)
			// Ready, with its digest's ts saved (the state is set just before the digest is posted).
			r.Until("the deploy ready", func() bool {
				d := r.Deploys("payments", "production")[0]
				return d.State == deploygate.StateReady && d.TS != ""
			})
			d := r.Deploys("payments", "production")[0]
			// The process dies right after claiming the confirmation ...
			if ok, err := r.App.Deploys().Store.TransitionDeploy(ctx, d.ID, deploygate.StateReady, deploygate.StateConfirming); err != nil || !ok {
				t.Fatalf("claim: %v %v", ok, err)
			}
			var ghID int64
			if created {
				// ... after GitHub created the deployment, before sockembot saved its id.
				dep, _, err := r.CD.Repositories.CreateDeployment(ctx, "acme", "payments", &gh.DeploymentRequest{
					Ref: gh.String(d.HeadSHA), Environment: gh.String("production"), AutoMerge: gh.Bool(false), RequiredContexts: &[]string{},
					Payload: deploygate.DeploymentPayload{Sockembot: deploygate.DeploymentRef{DeployID: d.ID, Service: "payments", Requester: demo.Alice}},
				})
				if err != nil {
					t.Fatal(err)
				}
				ghID = dep.GetID()
			}
			// Not yet: a confirmation may still be in flight.
			if n, err := r.App.Deploys().RecoverInterrupted(ctx); err != nil || n != 0 {
				t.Fatalf("recovered %d (%v) while the confirmation may still be running", n, err)
			}
			clk.Set(time.Now().Add(time.Hour))
			if n, err := r.App.Deploys().RecoverInterrupted(ctx); err != nil || n != 1 {
				t.Fatalf("recovered %d: %v", n, err)
			}
			got := r.Deploys("payments", "production")[0]
			if created {
				if got.State != deploygate.StateDeployed || got.GitHubDeploymentID != ghID {
					t.Fatalf("deploy %+v, want deployed as GitHub deployment %d", got, ghID)
				}
				var ev deploygate.DeploymentEvidence
				recs := r.Records(compliance.EvidenceDeploymentCreated)
				if len(recs) != 1 || json.Unmarshal(recs[0].Body, &ev) != nil || ev.GitHubDeploymentID != ghID {
					t.Fatalf("deployment evidence %+v", ev)
				}
				if !r.ThreadSays(root, "interrupted after GitHub created deployment") {
					t.Errorf("thread:\n%s", r.Slack.Render())
				}
			} else {
				if got.State != deploygate.StateFailed {
					t.Fatalf("deploy state %s, want failed", got.State)
				}
				if !r.ThreadSays(root, "*nothing was deployed*") {
					t.Errorf("thread:\n%s", r.Slack.Render())
				}
				if n := r.GitHub.Count(bottest.DeployRoute); n != 0 {
					t.Errorf("%d deployments created by recovery: it must never press Deploy itself", n)
				}
			}
			// Settled once.
			if n, err := r.App.Deploys().RecoverInterrupted(ctx); err != nil || n != 0 {
				t.Fatalf("second pass settled %d (%v)", n, err)
			}
			if strings.Contains(r.Slack.Render(), "sockembot failed") {
				t.Errorf("a failure report:\n%s", r.Slack.Render())
			}
		})
	}
}

// A crash after the deployment was recorded but before the deploy was marked deployed: the
// recover job finishes the move without a second record.
func TestInterruptedAfterTheRecordIsSettledOnce(t *testing.T) {
	r, clk := bottest.NewEmergencyRig(t)
	ctx := context.Background()
	r.Command(demo.Alice, demo.Release, "payments to production")
	r.Digest(1)
	r.Until("the deploy ready", func() bool {
		d := r.Deploys("payments", "production")[0]
		return d.State == deploygate.StateReady && d.TS != ""
	})
	d := r.Deploys("payments", "production")[0]
	if ok, err := r.App.Deploys().Store.TransitionDeploy(ctx, d.ID, deploygate.StateReady, deploygate.StateConfirming); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	dep, _, err := r.CD.Repositories.CreateDeployment(ctx, "acme", "payments", &gh.DeploymentRequest{
		Ref: gh.String(d.HeadSHA), Environment: gh.String("production"), AutoMerge: gh.Bool(false), RequiredContexts: &[]string{},
		Payload: deploygate.DeploymentPayload{Sockembot: deploygate.DeploymentRef{DeployID: d.ID, Service: "payments", Requester: demo.Alice}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Store.AppendOnce(ctx, compliance.EvidenceDeploymentCreated, deploygate.Subject(d.ID), compliance.Evidence{
		Kind: compliance.EvidenceDeploymentCreated, Repo: d.Repo, Subject: deploygate.Subject(d.ID),
		Body: deploygate.DeploymentEvidence{DeployID: d.ID, GitHubDeploymentID: dep.GetID(), Repo: d.Repo}}); err != nil {
		t.Fatal(err)
	}
	clk.Set(time.Now().Add(time.Hour))
	if _, err := r.App.Deploys().RecoverInterrupted(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.Deploys("payments", "production")[0]; got.State != deploygate.StateDeployed || got.GitHubDeploymentID != dep.GetID() {
		t.Fatalf("deploy %+v, want deployed as %d", got, dep.GetID())
	}
	if n := len(r.Records(compliance.EvidenceDeploymentCreated)); n != 1 {
		t.Fatalf("%d deployment_created records, want 1", n)
	}
}

func TestRepoPolicyAtTheDeployGate(t *testing.T) {
	t.Run("stricter policy refuses", func(t *testing.T) {
		r := bottest.NewRig(t)
		r.GitHub.Repo("acme/payments").SetFile(check.RepoPolicyPath, "approvals:\n  required: 2\n")
		r.Command(demo.Alice, demo.Release, "payments to production")
		root := r.Digest(1)
		if demo.HasAction(root, render.ActionDeploy) || !strings.Contains(bottest.Text(root), "Deploy refused") {
			t.Fatalf("want a refusal under the repository policy:\n%s", r.Slack.Render())
		}
	})
	t.Run("invalid policy is a failure report", func(t *testing.T) {
		r := bottest.NewRig(t)
		r.GitHub.Repo("acme/payments").SetFile(check.RepoPolicyPath, "approvals:\n  requried: 2\n")
		r.Command(demo.Alice, demo.Release, "payments to production")
		root := r.Digest(1)
		body := bottest.Text(root)
		for _, want := range []string{"sockembot failed", "the deploy is refused", ".sockembot.yml in acme/payments is invalid", "requried"} {
			if !strings.Contains(body, want) {
				t.Errorf("failure report lacks %q:\n%s", want, r.Slack.Render())
			}
		}
		if demo.HasAction(root, render.ActionDeploy) {
			t.Fatal("failure report offers Deploy")
		}
	})
}

// Each deploy's thread ends with the evidence chain's head once its outcome is on record —
// cancelled, deployed, refused, failed — so an auditor can check the chain against any thread:
// a chain cut short and its head moved back no longer has the anchored record.
func TestDeployThreadsCarryTheEvidenceChainHead(t *testing.T) {
	r := bottest.NewRig(t)
	ctx := context.Background()
	outcome := func(name string, root fakeslack.Message, kind string) {
		t.Helper()
		seq, mac := r.Anchor(root)
		rec, found, err := r.Store.RecordAt(ctx, seq)
		if err != nil || !found || rec.Hash != mac {
			t.Fatalf("%s: the anchor %d:%s is not record %d's MAC (%+v, %v)", name, seq, mac, seq, rec, err)
		}
		last, found, err := r.Store.LastRecord(ctx, kind, "")
		if err != nil || !found || last.Seq > seq {
			t.Errorf("%s: the anchor (record %d) was posted before the outcome was recorded (%s record %d, %v)", name, seq, kind, last.Seq, err)
		}
	}

	r.Command(demo.Alice, demo.Release, "payments to production")
	cancelled := r.Digest(1)
	r.Click(demo.Alice, render.ActionCancel, cancelled)
	outcome("cancelled", cancelled, compliance.EvidenceDeployCancelled)

	r.Command(demo.Alice, demo.Release, "payments to production")
	deployed := r.Digest(2)
	r.Click(demo.Alice, render.ActionDeploy, deployed)
	outcome("deployed", deployed, compliance.EvidenceDeploymentCreated)

	r.Command(demo.Alice, demo.Release, "search to production")
	outcome("refused", r.Digest(3), compliance.EvidenceDeployRefused)

	r.GitHub.FailNext(1000, "/repos/acme/billing", http.StatusInternalServerError)
	r.Command(demo.Alice, demo.Release, "billing to production")
	failed := r.Digest(4)
	outcome("failed", failed, compliance.EvidenceDeployRefused)
	if !strings.Contains(bottest.Text(failed), "sockembot failed") {
		t.Errorf("root 4 is not the failure report:\n%s", r.Slack.Render())
	}
	// One anchor per outcome: a thread is not flooded.
	for _, root := range r.Roots() {
		n := 0
		for _, m := range r.Thread(root) {
			if strings.Contains(m.Text, "Evidence chain head") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the thread of %q has %d anchors, want 1", root.Text, n)
		}
	}
	r.NoWebAPIErrors()
}
