package bot_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sockembot/bot/bottest"
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
