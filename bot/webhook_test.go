package bot_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sockembot/bot"
	"sockembot/bot/bottest"
	"sockembot/bot/check"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
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
	metrics := e.Metrics()
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

// dialFrom connects to the rig's server from ip. Linux's loopback answers to every 127.x address,
// which stands in for a second client; where ip cannot be bound the test is skipped.
func dialFrom(t *testing.T, e *bottest.Hooks, ip string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.DialContext(e.Ctx, "tcp", strings.TrimPrefix(e.Server.URL, "http://"))
	if err != nil {
		t.Skipf("cannot connect from %s (this test needs a loopback that accepts every 127.x address, as Linux's does): %v", ip, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startSlowPost sends a webhook request that is not signed, announcing length bytes of body
// (-1: chunked, length unannounced), and only the body's first byte.
func startSlowPost(t *testing.T, c net.Conn, length int) {
	t.Helper()
	framing := fmt.Sprintf("Content-Length: %d\r\n\r\n{", length)
	if length < 0 {
		framing = "Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n"
	}
	if _, err := fmt.Fprintf(c, "POST /webhooks/github HTTP/1.1\r\nHost: sockembot\r\nX-GitHub-Event: push\r\n"+
		"X-GitHub-Delivery: slow\r\nX-Hub-Signature-256: sha256=00\r\nContent-Type: application/json\r\n%s", framing); err != nil {
		t.Fatal(err)
	}
}

// readAnswer reads the server's response on c. The deadline only keeps a broken server from
// hanging the test; nothing is asserted about how long the answer took.
func readAnswer(c net.Conn) (*http.Response, *bufio.Reader, error) {
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, br, err
}

// Slow, large, unauthenticated requests (headers and a byte, then nothing) from several
// addresses fill the slots for large bodies, never the small deliveries GitHub actually sends.
func TestWebhookSlowLargeRequestsDoNotBlockDeliveries(t *testing.T) {
	e := bottest.NewHooks(t)
	var answered atomic.Int64
	const slow = bot.MaxWebhookReads + 2
	for i := range slow {
		c := dialFrom(t, e, fmt.Sprintf("127.0.0.%d", 2+i/bot.MaxReadsPerAddr))
		startSlowPost(t, c, 10<<20)
		go func() {
			if _, _, err := readAnswer(c); err == nil {
				answered.Add(1)
			}
		}()
	}
	bottest.WaitFor(t, "the large pool to fill", func() bool { return e.App.WebhookReadsInFlight() == bot.MaxWebhookReads })
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

// 64 unauthenticated connections from one address (as many as the pool of small reads has
// slots) that announce a 1,000-byte body and send one byte: at most MaxReadsPerAddr of them
// are read, the rest are refused with 429 (after a second's wait for room, never taking a
// slot), and a signed delivery from another address is accepted at once instead of waiting for
// a slot and getting a 503.
func TestWebhookSlowSendersFromOneAddressDoNotStarveDeliveries(t *testing.T) {
	e := bottest.NewHooks(t)
	var refused, other atomic.Int64
	for range bot.MaxSmallWebhookReads {
		c := dialFrom(t, e, "127.0.0.2")
		startSlowPost(t, c, 1000)
		go func() {
			resp, _, err := readAnswer(c)
			switch {
			case err != nil: // closed when the test ends
			case resp.StatusCode == http.StatusTooManyRequests:
				refused.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	// Every slow request is being read or has been answered before the delivery is sent.
	bottest.WaitFor(t, "each slow request to be read or answered", func() bool {
		return refused.Load()+other.Load()+int64(e.App.WebhookReadsInFlight()) >= bot.MaxSmallWebhookReads
	})
	if n := e.App.WebhookReadsInFlight(); n > bot.MaxReadsPerAddr {
		t.Errorf("%d requests from one address being read at once, want at most %d", n, bot.MaxReadsPerAddr)
	}
	if refused.Load() == 0 {
		t.Error("no slow request from the busy address was refused with 429")
	}
	_, _, body := e.OpenedPR()
	if code, msg := e.Deliver("pull_request", body); code != http.StatusAccepted {
		t.Fatalf("a signed delivery from another address behind 64 slow ones: %d %s, want 202", code, msg)
	}
}

// A request over its address's cap waits for one of that address's reads to end, so a burst
// of honest deliveries from one address (GitHub's, or a proxy's) gets in rather than a 429.
func TestWebhookOverTheAddressCapWaitsForRoom(t *testing.T) {
	e := bottest.NewHooks(t)
	e.App.SetWebhookAddrWait(time.Minute) // the test's guard decides when to give up, not the wait
	_, _, body := e.OpenedPR()
	signed := func(c net.Conn, id string, part []byte) {
		t.Helper()
		if _, err := fmt.Fprintf(c, "POST /webhooks/github HTTP/1.1\r\nHost: sockembot\r\nX-GitHub-Event: pull_request\r\n"+
			"X-GitHub-Delivery: %s\r\nX-Hub-Signature-256: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			id, bottest.Signature(bottest.Secret, body), len(body), part); err != nil {
			t.Fatal(err)
		}
	}
	// MaxReadsPerAddr signed deliveries from one address, each held after its first byte.
	var held []net.Conn
	for i := range bot.MaxReadsPerAddr {
		c := dialFrom(t, e, "127.0.0.2")
		signed(c, fmt.Sprintf("held-%d", i), body[:1])
		held = append(held, c)
	}
	bottest.WaitFor(t, "the held deliveries to be read", func() bool { return e.App.WebhookReadsInFlight() == bot.MaxReadsPerAddr })
	// One more from that address waits for room...
	extra := dialFrom(t, e, "127.0.0.2")
	answer := make(chan error, 1)
	var extraCode atomic.Int64
	go func() {
		signed(extra, "one-more", body)
		resp, _, err := readAnswer(extra)
		if err == nil {
			extraCode.Store(int64(resp.StatusCode))
		}
		answer <- err
	}()
	bottest.WaitFor(t, "the extra delivery to wait for room", func() bool { return e.App.WebhookReadsWaiting() == 1 })
	// ...and gets in when one of the held deliveries arrives in full.
	if _, err := held[0].Write(body[1:]); err != nil {
		t.Fatal(err)
	}
	if resp, _, err := readAnswer(held[0]); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("the held delivery, completed: %v %v", resp, err)
	}
	if err := <-answer; err != nil || extraCode.Load() != http.StatusAccepted {
		t.Fatalf("the delivery over the address's cap: %d %v, want 202 once there was room", extraCode.Load(), err)
	}
}

// A body that does not arrive in time is answered 408 and its connection closed, and the slot
// it held is free again, whatever length it announced.
func TestWebhookSlowBodyIsCutOff(t *testing.T) {
	e := bottest.NewHooks(t)
	e.App.SetWebhookReadTime(100 * time.Millisecond)
	for _, c := range []struct {
		name   string
		length int
	}{{"small", 1000}, {"large", 5 << 20}, {"unannounced", -1}} {
		t.Run(c.name, func(t *testing.T) {
			conn := dialFrom(t, e, "127.0.0.1")
			startSlowPost(t, conn, c.length)
			resp, br, err := readAnswer(conn)
			if err != nil {
				t.Fatalf("a body that never arrives was not answered: %v", err)
			}
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("status %d, want 408", resp.StatusCode)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Errorf("after the 408 the connection is still open (%v)", err)
			}
			if n := e.App.WebhookReadsInFlight(); n != 0 {
				t.Errorf("%d read slots still taken after the answer", n)
			}
		})
	}
	_, _, body := e.OpenedPR()
	if code, msg := e.Deliver("pull_request", body); code != http.StatusAccepted {
		t.Fatalf("a delivery after the slow ones: %d %s", code, msg)
	}
}

// Bodies that lie about their length, or carry none, are answered at once and hold nothing.
func TestWebhookBodyFraming(t *testing.T) {
	e := bottest.NewHooks(t)
	t.Run("announced over 25 MB", func(t *testing.T) {
		c := dialFrom(t, e, "127.0.0.1")
		fmt.Fprintf(c, "POST /webhooks/github HTTP/1.1\r\nHost: sockembot\r\nX-GitHub-Event: push\r\nContent-Length: %d\r\n\r\n", bot.MaxWebhookBody+1)
		if resp, _, err := readAnswer(c); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("%v %v, want 413 before any body", resp, err)
		}
	})
	t.Run("shorter than announced", func(t *testing.T) {
		c := dialFrom(t, e, "127.0.0.1")
		startSlowPost(t, c, 1000)
		c.(*net.TCPConn).CloseWrite()
		if resp, _, err := readAnswer(c); err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%v %v, want 400", resp, err)
		}
	})
	_, _, body := e.OpenedPR()
	// A body the client cannot measure (not a bytes.Reader) goes out chunked, its length unannounced.
	chunked := func(b []byte) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, e.Server.URL+"/webhooks/github", io.MultiReader(bytes.NewReader(b)))
		req.Header.Set("X-GitHub-Event", "pull_request")
		req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("chunked-%d", len(b)))
		req.Header.Set("X-Hub-Signature-256", bottest.Signature(bottest.Secret, b))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("chunked POST: %v", err)
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(msg)
	}
	huge := bytes.Repeat([]byte(" "), bot.MaxWebhookBody+1)
	copy(huge, body)
	if code, msg := chunked(huge); code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked, over 25 MB: %d %s, want 413", code, msg)
	}
	if code, msg := chunked(body); code != http.StatusAccepted {
		t.Errorf("a signed delivery of unannounced length: %d %s, want 202", code, msg)
	}
	if n := e.App.WebhookReadsInFlight(); n != 0 {
		t.Errorf("%d read slots still taken", n)
	}
}

// Requests are counted per TCP peer: an IPv4 address, an IPv4-mapped IPv6 address as the IPv4
// one, an IPv6 address by its /64, whatever zone; a peer that is no address at all as itself.
func TestRemoteKey(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7:443":               "203.0.113.7",
		"203.0.113.7":                   "203.0.113.7",
		"[::ffff:203.0.113.7]:1":        "203.0.113.7",
		"[2001:db8:1:2::1]:443":         "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff:1:2:3]:443": "2001:db8:1:2::/64",
		"[fe80::1%eth0]:80":             "fe80::/64",
		"[2001:db8:1:3::1]:443":         "2001:db8:1:3::/64",
		"@":                             "@",
		"":                              "",
		"not an address:80":             "not an address",
	} {
		if got := bot.RemoteKey(in); got != want {
			t.Errorf("RemoteKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// webhookPayloads are the real deliveries in testdata/ of every event sockembot handles, and the
// top-level objects each event cannot do without (see github.ParseEvent).
var webhookPayloads = []struct{ event, file string }{
	{"pull_request", bottest.Octokit + "pull_request/opened.payload.json"},
	{"pull_request", bottest.Octokit + "pull_request/reopened.payload.json"},
	{"pull_request", bottest.Octokit + "pull_request/synchronize.payload.json"},
	{"pull_request", bottest.Octokit + "pull_request/closed.payload.json"},
	{"pull_request", "atmos+hubot-deploy/test/fixtures/pull_requests/pull_request_merged.json"},
	{"pull_request_review", bottest.Octokit + "pull_request_review/submitted.payload.json"},
	{"pull_request_review", bottest.Octokit + "pull_request_review/dismissed.payload.json"},
	{"pull_request_review", "google+github-owners-bot/test/fixtures/actions/pull_request_review.35.submitted.json"},
	{"pull_request_review", "kubernetes-sigs+prow/cmd/phony/examples/review_approve_submitted.json"},
	{"push", bottest.Octokit + "push/payload.json"},
	{"push", bottest.Octokit + "push/with-new-branch.payload.json"},
	{"push", "kubernetes-sigs+prow/cmd/phony/examples/push.json"},
	{"deployment_status", bottest.Octokit + "deployment_status/payload.json"},
	{"check_run", bottest.Octokit + "check_run/requested_action.payload.json"},
	{"check_suite", bottest.Octokit + "check_suite/rerequested.payload.json"},
	{"merge_group", bottest.Octokit + "merge_group/checks_requested.payload.json"},
	{"deployment_protection_rule", "open-security-tools+ost-environment-gate/testdata/deployment-protection-requested.json"},
}

var requiredTopLevel = map[string][]string{
	"pull_request":               {"pull_request", "repository"},
	"pull_request_review":        {"pull_request", "repository", "review"},
	"push":                       {"after", "commits", "ref", "repository"},
	"deployment_status":          {"deployment", "deployment_status", "repository"},
	"check_run":                  {"check_run", "repository", "requested_action"},
	"check_suite":                {"check_suite", "repository"},
	"merge_group":                {"merge_group", "repository"},
	"deployment_protection_rule": {"deployment_callback_url", "environment", "repository", "sha"},
}

// Every real payload without each of its top-level fields, signed, to the endpoint: without
// something the gates need it is refused with 400 naming it and never queued; without anything
// else it is accepted (or ignored, without its action) and processed without a panic.
func TestWebhookPartialPayloads(t *testing.T) {
	e := bottest.NewHooks(t)
	e.OpenedPR() // Codertocat/Hello-World#2, so the octokit payloads' pull request exists
	panics := logtest.NewLocal(e.App.Log)
	for _, p := range webhookPayloads {
		var full map[string]json.RawMessage
		if err := json.Unmarshal(bottest.Fixture(t, p.file), &full); err != nil {
			t.Fatal(err)
		}
		for field := range full {
			partial := maps.Clone(full)
			delete(partial, field)
			body, err := json.Marshal(partial)
			if err != nil {
				t.Fatal(err)
			}
			before := e.Pending()
			code, msg := e.Deliver(p.event, body)
			switch {
			case slices.Contains(requiredTopLevel[p.event], field):
				if code != http.StatusBadRequest || !strings.Contains(msg, "without "+field) {
					t.Errorf("%s without %s: %d %q, want 400 naming it", p.file, field, code, msg)
				}
				if n := e.Pending(); n != before {
					t.Errorf("%s without %s was queued", p.file, field)
				}
			case code != http.StatusAccepted:
				t.Errorf("%s without the optional %s: %d %q, want 202", p.file, field, code, msg)
			}
		}
	}
	e.Drain()
	for _, entry := range panics.AllEntries() {
		if err, ok := entry.Data[logrus.ErrorKey].(error); ok {
			if pe := (*check.PanicError)(nil); errors.As(err, &pe) {
				t.Errorf("processing a partial payload panicked: %v\n%s", pe, pe.Stack)
			}
		}
	}
	if code, _ := e.Get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz answered %d after the partial payloads", code)
	}
}

// The case from the issue: a deployment_status without its deployment is refused at the door
// (it used to be queued, panic in processing and be retried), and the bot stays healthy.
func TestWebhookDeploymentStatusWithoutDeployment(t *testing.T) {
	e := bottest.NewHooks(t)
	var full map[string]json.RawMessage
	if err := json.Unmarshal(bottest.Fixture(t, bottest.Octokit+"deployment_status/payload.json"), &full); err != nil {
		t.Fatal(err)
	}
	delete(full, "deployment")
	body, _ := json.Marshal(full)
	if code, msg := e.Deliver("deployment_status", body); code != http.StatusBadRequest || !strings.Contains(msg, "without deployment") {
		t.Fatalf("deployment_status without deployment: %d %q, want 400", code, msg)
	}
	if n := e.Pending(); n != 0 {
		t.Fatalf("%d deliveries queued", n)
	}
	if code, _ := e.Get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz answered %d", code)
	}
}
