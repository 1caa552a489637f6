package bot_test

import (
	"context"
	"io"
	"slices"
	"sockembot/bot/demo"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// BenchmarkAckLatency measures how long Slack waits for the ack of a /deploy while 200 of them
// are in flight: each one is a full deploy check (GitHub slowed to 20 ms a request) posting a
// digest. The latencies are the fake Slack's, from writing an envelope to reading its ack.
// Slack drops a command not acked within 3 s; the target is p99 ≤ 100 ms.
//
//	go test -run '^$' -bench BenchmarkAckLatency -benchtime 3x ./bot/
func BenchmarkAckLatency(b *testing.B) {
	const inFlight = 200
	log := logrus.New()
	log.SetOutput(io.Discard)
	w, err := demo.Start(context.Background(), demo.Options{Dir: b.TempDir(), Log: log})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	demo.Seed(w)
	w.GitHub.SetLatency(20 * time.Millisecond)

	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ids := make([]string, inFlight)
		for j := range ids {
			ids[j] = w.Command(demo.Alice, demo.Release, "payments to production")
		}
		for _, id := range ids {
			ack, ok := w.Slack.WaitAck(id, time.Minute)
			if !ok {
				b.Fatalf("envelope %s never acked", id)
			}
			lat = append(lat, ack.Latency)
		}
		b.StopTimer()
		// Let the checks finish before the next round, so rounds do not pile up.
		want := inFlight * (i + 1)
		if err := demo.Wait(context.Background(), "the digests", 5*time.Minute, func() bool { return len(w.Roots()) >= want }); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "ack-p50-ms")
	b.ReportMetric(pct(0.99), "ack-p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "ack-max-ms")
}
