package bot_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sockembot/bot"
	"sockembot/bot/bottest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkWebhookAccept measures what GitHub sees: signed pull_request deliveries posted
// concurrently to the real handler, each verified, decoded and persisted to SQLite before the
// 2xx. Reported: deliveries accepted per second and the 99th percentile time to the response.
//
//	go test ./bot/ -run '^$' -bench WebhookAccept -benchtime 2000x
func BenchmarkWebhookAccept(b *testing.B) {
	e := bottest.NewHooks(b)
	body := bottest.Fixture(b, bottest.Octokit+"pull_request/opened.payload.json")
	sig := bottest.Signature(bottest.Secret, body)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
		next      atomic.Int64
		failed    atomic.Int64
	)
	b.SetParallelism(4) // 4 × GOMAXPROCS senders: GitHub delivers many hooks at once
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, e.Server.URL+"/webhooks/github", bytes.NewReader(body))
			req.Header.Set("X-GitHub-Event", "pull_request")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d", next.Add(1)))
			req.Header.Set("X-Hub-Signature-256", sig)
			req.Header.Set("Content-Type", "application/json")
			t0 := time.Now()
			resp, err := client.Do(req)
			took := time.Since(t0)
			if err != nil {
				failed.Add(1)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				failed.Add(1)
				continue
			}
			mu.Lock()
			latencies = append(latencies, took)
			mu.Unlock()
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d deliveries not accepted", n)
	}
	if n, err := e.Store.PendingDeliveries(e.Ctx); err != nil || n != int64(b.N) {
		b.Fatalf("%d deliveries queued (%v), want %d", n, err, b.N)
	}
	slices.Sort(latencies)
	p99 := latencies[min(len(latencies)-1, len(latencies)*99/100)]
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
}

// BenchmarkWebhookBehindSlowSenders measures what GitHub sees while unauthenticated clients hold
// 64 requests open (each announces a 1,000-byte body and sends one byte): the time from sending a
// signed pull_request delivery, from 127.0.0.1, to its 202. "one-address" has all 64 come from
// 127.0.0.2; "16-addresses" spreads them over 127.0.0.2–17, four each, which fills every small
// read slot until the slow requests' read deadline frees them. Reported: the median and the
// slowest delivery.
//
//	go test ./bot/ -run '^$' -bench WebhookBehindSlowSenders -benchtime 20x
func BenchmarkWebhookBehindSlowSenders(b *testing.B) {
	for _, c := range []struct {
		name  string
		addrs int
	}{{"one-address", 1}, {"16-addresses", 16}} {
		b.Run(c.name, func(b *testing.B) {
			e := bottest.NewHooks(b)
			host := strings.TrimPrefix(e.Server.URL, "http://")
			var answered atomic.Int64
			for i := range bot.MaxSmallWebhookReads {
				ip := fmt.Sprintf("127.0.0.%d", 2+i%c.addrs)
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
				conn, err := d.Dial("tcp", host)
				if err != nil {
					b.Skipf("cannot connect from %s (needs a loopback that accepts every 127.x address, as Linux's does): %v", ip, err)
				}
				b.Cleanup(func() { conn.Close() })
				fmt.Fprintf(conn, "POST /webhooks/github HTTP/1.1\r\nHost: sockembot\r\nX-GitHub-Event: push\r\n"+
					"X-Hub-Signature-256: sha256=00\r\nContent-Length: 1000\r\n\r\n{")
				go func() {
					if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
						resp.Body.Close()
						answered.Add(1)
					}
				}()
			}
			bottest.WaitFor(b, "each slow request to be read or answered", func() bool {
				return answered.Load()+int64(e.App.WebhookReadsInFlight()) >= bot.MaxSmallWebhookReads
			})
			_, _, body := e.OpenedPR()
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				t0 := time.Now()
				code, msg := e.DeliverID("pull_request", fmt.Sprintf("behind-slow-%d", i), body)
				took = append(took, time.Since(t0))
				if code != http.StatusAccepted {
					b.Fatalf("delivery %d behind slow senders: %d %s", i, code, msg)
				}
			}
			b.StopTimer()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
		})
	}
}
