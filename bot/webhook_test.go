package bot_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sockembot/bot"
	"sockembot/bot/bottest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestWebhookRefusesWithoutValidSignature(t *testing.T) {
	e := bottest.NewHooks(t)
	r, info, body := e.OpenedPR()
	sha1Mac := "sha1=" + strings.Repeat("0", 40)
	cases := []struct {
		name    string
		headers map[string]string
	}{
		{"missing signature", map[string]string{}},
		{"wrong secret", map[string]string{"X-Hub-Signature-256": bottest.Signature("not the secret", body)}},
		{"signature of another body", map[string]string{"X-Hub-Signature-256": bottest.Signature(bottest.Secret, append([]byte(" "), body...))}},
		{"only the SHA-1 header", map[string]string{"X-Hub-Signature": sha1Mac}},
		{"not hex", map[string]string{"X-Hub-Signature-256": "sha256=zz"}},
		{"empty", map[string]string{"X-Hub-Signature-256": ""}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := map[string]string{"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": fmt.Sprintf("forged-%d", i), "Content-Type": "application/json"}
			for k, v := range c.headers {
				h[k] = v
			}
			code, msg := e.Post(e.Server.URL, h, body)
			if code != http.StatusUnauthorized {
				t.Fatalf("status %d (%s), want 401", code, msg)
			}
		})
	}
	// Nothing was queued, so nothing is processed: no status, no comment.
	if n := e.Pending(); n != 0 {
		t.Fatalf("%d deliveries queued from unsigned requests", n)
	}
	e.Drain()
	if got := r.Statuses(info.HeadSHA); len(got) != 0 {
		t.Fatalf("statuses set from unsigned requests: %v", got)
	}
	// A forged delivery id must not block the real delivery with the same id.
	if code, msg := e.DeliverID("pull_request", "forged-0", body); code != http.StatusAccepted {
		t.Fatalf("genuine delivery after forgeries: %d %s", code, msg)
	}
}

func TestWebhookBadBodiesDoNotHurt(t *testing.T) {
	e := bottest.NewHooks(t)
	_, _, body := e.OpenedPR()
	var ids atomic.Int64
	signed := func(event string, b []byte, contentType string) (int, string) {
		return e.Post(e.Server.URL, map[string]string{
			"X-GitHub-Event": event, "X-GitHub-Delivery": fmt.Sprintf("bad-%d", ids.Add(1)),
			"X-Hub-Signature-256": bottest.Signature(bottest.Secret, b), "Content-Type": contentType,
		}, b)
	}
	huge := bytes.Repeat([]byte(" "), bot.MaxWebhookBody+1)
	copy(huge, body)
	cases := []struct {
		name  string
		event string
		body  []byte
		ctype string
		want  int
	}{
		{"truncated JSON", "pull_request", body[:len(body)/2], "application/json", http.StatusBadRequest},
		{"not JSON", "pull_request", []byte("hello"), "application/json", http.StatusBadRequest},
		{"JSON of the wrong shape", "pull_request", []byte(`{"action":"opened","pull_request":"yes"}`), "application/json", http.StatusBadRequest},
		{"over 25 MB", "pull_request", huge, "application/json", http.StatusRequestEntityTooLarge},
		{"event sockembot does not handle", "issue_comment", bottest.Fixture(t, bottest.Octokit+"issue_comment/created.payload.json"), "application/json", http.StatusAccepted},
		{"action sockembot does not handle", "pull_request", []byte(`{"action":"labeled","number":2}`), "application/json", http.StatusAccepted},
		{"ping", "ping", bottest.Fixture(t, bottest.Octokit+"ping/payload.json"), "application/json", http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, msg := signed(c.event, c.body, c.ctype)
			if code != c.want {
				t.Fatalf("status %d (%s), want %d", code, msg, c.want)
			}
			if code, _ := e.Get("/healthz"); code != http.StatusOK {
				t.Fatalf("/healthz answered %d after a bad delivery", code)
			}
		})
	}
	if n := e.Pending(); n != 0 {
		t.Fatalf("%d bad deliveries were queued", n)
	}
	// The legacy form encoding is accepted (the signature covers the form body).
	form := []byte("payload=" + url.QueryEscape(string(body)))
	if code, msg := signed("pull_request", form, "application/x-www-form-urlencoded"); code != http.StatusAccepted {
		t.Fatalf("form-encoded delivery: %d %s", code, msg)
	}
	_, metrics := e.Get("/metrics")
	for _, want := range []string{
		`sockembot_webhook_deliveries_total{event="pull_request",result="malformed"} 3`,
		`sockembot_webhook_deliveries_total{event="pull_request",result="too_large"} 1`,
		`sockembot_webhook_deliveries_total{event="other",result="ignored"} 1`,
		`sockembot_webhook_deliveries_total{event="pull_request",result="ignored"} 1`,
		`sockembot_webhook_deliveries_total{event="ping",result="pong"} 1`,
		`sockembot_webhook_deliveries_total{event="pull_request",result="accepted"} 1`,
		`sockembot_delivery_queue_depth 1`,
		`sockembot_webhook_response_seconds_count 8`,
		`sockembot_webhook_response_seconds_bucket{le="+Inf"} 8`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
}

func TestWebhookDuplicateDeliveryProcessedOnce(t *testing.T) {
	e := bottest.NewHooks(t)
	r, info, body := e.OpenedPR()
	const id = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	if code, msg := e.DeliverID("pull_request", id, body); code != http.StatusAccepted {
		t.Fatalf("first delivery: %d %s", code, msg)
	}
	if code, msg := e.DeliverID("pull_request", id, body); code != http.StatusOK || !strings.Contains(msg, "duplicate") {
		t.Fatalf("redelivery: %d %s, want 200 duplicate", code, msg)
	}
	// A second replica on the same database receives the redelivery too.
	other := e.NewApp(e.Store, "replica-2")
	srv2 := newServer(t, other)
	code, msg := e.Post(srv2, map[string]string{
		"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": id,
		"X-Hub-Signature-256": bottest.Signature(bottest.Secret, body), "Content-Type": "application/json",
	}, body)
	if code != http.StatusOK {
		t.Fatalf("redelivery to another replica: %d %s", code, msg)
	}
	e.Drain()
	if err := other.DrainDeliveries(e.Ctx); err != nil {
		t.Fatal(err)
	}
	if got := bottest.Statuses(r, info.HeadSHA); len(got) != 2 {
		t.Fatalf("statuses %q, want one check (pending, then its verdict)", got)
	}
	if got := e.Records("check_run", info.HeadSHA); len(got) != 1 {
		t.Fatalf("%d check_run records, want 1", len(got))
	}
}

// A delivery acknowledged to GitHub survives the process dying before or during processing:
// a new App on the same SQLite file processes it with its real workers.
func TestWebhookRestartBetweenAckAndProcessing(t *testing.T) {
	e := bottest.NewHooks(t)
	r, info, body := e.OpenedPR()
	if code, _ := e.DeliverID("pull_request", "acked-then-crashed", body); code != http.StatusAccepted {
		t.Fatalf("delivery not accepted: %d", code)
	}
	review := bottest.Retarget(bottest.Fixture(t, bottest.Octokit+"pull_request_review/submitted.payload.json"),
		"ec26c3e57ca3a959ca5aad62de7213c562f8c821", info.HeadSHA)
	if code, _ := e.DeliverID("pull_request_review", "claimed-then-crashed", review); code != http.StatusAccepted {
		t.Fatalf("delivery not accepted: %d", code)
	}
	// The first process claims the second delivery and dies before finishing it: its lease
	// (zero here, rather than waiting minutes) runs out with the delivery incomplete.
	d, err := e.Store.ClaimDelivery(e.Ctx, "replica-1/0", 0)
	if err != nil || d == nil {
		t.Fatalf("claim: %v %v", d, err)
	}
	e.Server.Close()
	e.Store.Close()
	if got := r.Statuses(""); len(got) != 0 {
		t.Fatalf("processed before the restart: %v", got)
	}

	st := e.OpenStore()
	e.Store = st
	app := e.NewApp(st, "replica-1-restarted")
	ctx, cancel := context.WithCancel(e.Ctx)
	done := make(chan error, 1)
	go func() { done <- app.RunDeliveryWorkers(ctx) }()
	bottest.WaitFor(t, "both deliveries processed", func() bool {
		n, err := st.PendingDeliveries(e.Ctx)
		return err == nil && n == 0
	})
	cancel()
	<-done
	// Both checks ran, one after the other (checks of one PR never overlap).
	got := bottest.Statuses(r, info.HeadSHA)
	verdict := "failure: no Jira ticket · no independent approval"
	if len(got) != 4 || got[1] != verdict || got[3] != verdict {
		t.Fatalf("statuses after restart %q, want two checks ending in failure", got)
	}
	if n := len(e.Records("check_run", info.HeadSHA)); n != 2 {
		t.Fatalf("%d check_run records after restart, want 2", n)
	}
}

// The workers pick up a delivery as soon as the handler has queued it.
func TestWebhookWorkersProcessAcceptedDelivery(t *testing.T) {
	e := bottest.NewHooks(t)
	r, info, body := e.OpenedPR()
	ctx, cancel := context.WithCancel(e.Ctx)
	done := make(chan error, 1)
	go func() { done <- e.App.RunDeliveryWorkers(ctx) }()
	defer func() { cancel(); <-done }()
	if code, _ := e.Deliver("pull_request", body); code != http.StatusAccepted {
		t.Fatalf("not accepted: %d", code)
	}
	bottest.WaitFor(t, "the verdict status", func() bool { return len(bottest.Statuses(r, info.HeadSHA)) == 2 })
}

// A panic while processing a delivery is contained: the delivery is retried later, the
// workers and the endpoint keep going.
func TestWebhookPanicInProcessingIsContained(t *testing.T) {
	e := bottest.NewHooks(t)
	_, _, body := e.OpenedPR()
	e.App.GitHub = panickyGitHub{e.App.GitHub}
	if code, _ := e.Deliver("pull_request", body); code != http.StatusAccepted {
		t.Fatal("not accepted")
	}
	worked, err := e.App.ProcessNextDelivery(e.Ctx, "w")
	if !worked || err != nil {
		t.Fatalf("process: %v %v", worked, err)
	}
	if n := e.Pending(); n != 1 {
		t.Fatalf("pending %d: a delivery that panicked must stay queued for a retry", n)
	}
	if code, _ := e.Get("/healthz"); code != http.StatusOK {
		t.Fatal("/healthz not ok")
	}
}

type panickyGitHub struct{ bot.GitHub }

func (panickyGitHub) SetStatus(context.Context, string, string, string, string, string, string) error {
	panic("boom")
}

func TestServeHTTPReportsListenAddress(t *testing.T) {
	e := bottest.NewHooks(t)
	e.App.Addr = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(e.Ctx)
	done := make(chan error, 1)
	go func() { done <- e.App.ServeHTTP(ctx) }()
	select {
	case <-e.App.Listening():
	case err := <-done:
		t.Fatalf("serveHTTP: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("never listening")
	}
	resp, err := http.Get("http://" + e.App.ListenAddr() + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz on %s: %v %v", e.App.ListenAddr(), resp, err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serveHTTP after shutdown: %v", err)
	}
}

func TestRunRefusesWithoutSecret(t *testing.T) {
	e := bottest.NewHooks(t)
	e.App.WebhookSecret = nil
	if err := e.App.Run(e.Ctx); err == nil || !strings.Contains(err.Error(), "GITHUB_WEBHOOK_SECRET") {
		t.Fatalf("Run without a secret: %v", err)
	}
}

func newServer(t *testing.T, a *bot.App) string {
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// Slow, large, unauthenticated requests (headers and a byte, then nothing) hold the slots for
// large bodies, never the small deliveries GitHub actually sends.
func TestWebhookSlowLargeRequestsDoNotBlockDeliveries(t *testing.T) {
	e := bottest.NewHooks(t)
	host := strings.TrimPrefix(e.Server.URL, "http://")
	for range bot.MaxWebhookReads + 2 {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /webhooks/github HTTP/1.1\r\nHost: %s\r\nX-GitHub-Event: push\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", host, 10<<20)
	}
	_, _, body := e.OpenedPR()
	done := make(chan int, 1)
	go func() {
		code, _ := e.Deliver("pull_request", body)
		done <- code
	}()
	select {
	case code := <-done:
		if code != http.StatusAccepted {
			t.Fatalf("a genuine delivery behind slow requests: %d, want 202", code)
		}
	case <-time.After(9 * time.Second): // GitHub gives up after 10 s
		t.Fatal("a genuine delivery was held up by slow unauthenticated requests")
	}
}
