package bot_test

import (
	"context"
	"net/http"
	"slices"
	"sockembot/bot/bottest"
	"sockembot/bot/demo"
	"sockembot/bot/render"
	"sockembot/compliance"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

func TestRedeliveredEnvelopeRunsOnce(t *testing.T) {
	r := bottest.NewRig(t)
	id := r.Command(demo.Alice, demo.Release, "payments to production")
	r.Acked(id)
	if err := r.Slack.Redeliver(id, "timeout"); err != nil {
		t.Fatal(err)
	}
	r.Acked(id) // the redelivery is acked too, or Slack keeps retrying
	r.Until("the redelivery dropped", func() bool { return r.Logged("slack: redelivered envelope already handled", id) })
	root := r.Digest(1)

	// The same click delivered twice also runs once.
	click := r.Click(demo.Alice, render.ActionDeploy, root)
	r.Acked(click)
	if err := r.Slack.Redeliver(click, "timeout"); err != nil {
		t.Fatal(err)
	}
	r.Acked(click)
	r.Until("the redelivered click dropped", func() bool { return r.Logged("slack: redelivered envelope already handled", click) })
	r.Until("deployed", func() bool { return len(r.Thread(root)) >= 2 })

	if n := len(r.Roots()); n != 1 {
		t.Fatalf("%d digests for one command delivered twice", n)
	}
	if n := len(r.Deploys("payments", "production")); n != 1 {
		t.Fatalf("%d deploy records for one command delivered twice", n)
	}
	if n := r.GitHub.Count(bottest.DeployRoute); n != 1 {
		t.Fatalf("%d deployments for one click delivered twice", n)
	}
	for _, a := range r.Slack.Acks() {
		if a.Unknown {
			t.Errorf("ack of an unknown envelope %s", a.EnvelopeID)
		}
	}
}

func TestReconnectMidDeploy(t *testing.T) {
	r := bottest.NewRig(t)
	// A slow GitHub keeps the check running while the socket is replaced.
	r.GitHub.SetLatency(50 * time.Millisecond)
	cmd := r.Command(demo.Alice, demo.Release, "payments to production")
	r.Acked(cmd)
	if err := r.Slack.Disconnect("refresh_requested"); err != nil {
		t.Fatal(err)
	}
	if !r.Slack.WaitConnections(2, 30*time.Second) {
		t.Fatal("the bot did not reconnect after refresh_requested")
	}
	root := r.Digest(1)
	r.GitHub.SetLatency(0)

	click := r.Click(demo.Bob, render.ActionDeploy, root)
	r.Acked(click)
	if err := r.Slack.Disconnect("refresh_requested"); err != nil {
		t.Fatal(err)
	}
	if !r.Slack.WaitConnections(3, 30*time.Second) {
		t.Fatal("the bot did not reconnect a second time")
	}
	pay := r.GitHub.Repo("acme/payments")
	r.Until("deployed", func() bool { return len(bottest.MadeByBot(pay)) == 1 && len(r.Thread(root)) >= 2 })
	if err := r.ReportStatus(context.Background(), "acme/payments", bottest.MadeByBot(pay)[0].ID, "success", "done"); err != nil {
		t.Fatal(err)
	}
	r.Until("the status and the Jira update in the thread", func() bool { return len(r.Thread(root)) == 5 }) // after the chain's head

	// Commands still arrive on the new connection.
	after := r.Command(demo.Alice, demo.Release, "search to production")
	r.Acked(after)
	r.Digest(2)

	if n := len(r.Roots()); n != 2 {
		t.Fatalf("%d root messages, want 2:\n%s", n, r.Slack.Render())
	}
	if n := r.GitHub.Count(bottest.DeployRoute); n != 1 {
		t.Fatalf("%d deployments, want 1", n)
	}
	if n := len(r.Records(compliance.EvidenceDeployRequested)); n != 2 {
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
	r.NoWebAPIErrors()
}

func TestPostMessageRateLimitedIsRetried(t *testing.T) {
	r := bottest.NewRig(t)
	r.Slack.RateLimit("chat.postMessage", 2)
	r.Command(demo.Alice, demo.Release, "payments to production")
	root := r.Digest(1)
	if !demo.HasAction(root, render.ActionDeploy) {
		t.Fatal("digest lost its buttons")
	}
	calls := r.Slack.CallsTo("chat.postMessage")
	if len(calls) < 3 || calls[0].Status != http.StatusTooManyRequests || calls[1].Status != http.StatusTooManyRequests || calls[2].Error != "" {
		t.Fatalf("postMessage calls %+v, want two 429s then the post", calls)
	}
	if !slices.ContainsFunc(r.Log.AllEntries(), func(e *logrus.Entry) bool {
		return e.Message == "slack: rate limited, waiting"
	}) {
		t.Error("the wait was not logged")
	}
}
