package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"sockembot/compliance"
)

// checkRunBody is roughly what one check_run records for a small release.
var checkRunBody = map[string]any{
	"repo": "acme/pay", "base_sha": fmt.Sprintf("%040x", 1), "head_sha": fmt.Sprintf("%040x", 2),
	"policy_hash": "sha256:" + fmt.Sprintf("%064x", 3), "compliant": true,
	"report": deployment(1, "acme/pay", benchChanges(3)...).Report,
}

func BenchmarkAppendSQLite(b *testing.B) {
	benchAppend(b, func(b *testing.B) *Store { return openStore(b, filepath.Join(b.TempDir(), "bench.db")) })
}

func BenchmarkAppendPostgres(b *testing.B) {
	base := os.Getenv(postgresEnv)
	if base == "" {
		b.Skip(postgresEnv + " is not set")
	}
	benchAppend(b, func(b *testing.B) *Store { return openStore(b, postgresSchemaURL(b, base)) })
}

func benchAppend(b *testing.B, open func(*testing.B) *Store) {
	ctx := context.Background()
	e := Evidence{Kind: KindCheckRun, Repo: "acme/pay", Subject: fmt.Sprintf("%040x", 2), Body: checkRunBody}
	b.Run("serial", func(b *testing.B) {
		s := open(b)
		for b.Loop() {
			if _, err := s.Append(ctx, e); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	})
	b.Run("8-writers", func(b *testing.B) {
		s := open(b)
		b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Append(ctx, e); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	})
}

// BenchmarkExport100k times the CSV export of 1,000 deployments of 100 changes each and reports
// the peak heap in use while it runs.
func BenchmarkExport100k(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchExport(b, openStore(b, filepath.Join(b.TempDir(), "export.db")))
	})
	b.Run("postgres", func(b *testing.B) {
		base := os.Getenv(postgresEnv)
		if base == "" {
			b.Skip(postgresEnv + " is not set")
		}
		benchExport(b, openStore(b, postgresSchemaURL(b, base)))
	})
}

func benchChanges(n int) []compliance.ChangeReport {
	var cs []compliance.ChangeReport
	for i := range n {
		cs = append(cs, prChange(1000+i, fmt.Sprintf("PAY-%d: make refunds idempotent (part %d)", i, i),
			[]string{"bob", "carol"},
			[]compliance.Ticket{
				{Key: fmt.Sprintf("PAY-%d", i), Found: true, Status: "In Review", StatusCategory: "indeterminate", URL: "https://acme.atlassian.net/browse/PAY-1"},
				{Key: "OPS-7", Found: true, Status: "Done", StatusCategory: "done", URL: "https://acme.atlassian.net/browse/OPS-7"},
			},
			compliance.Violation{Code: compliance.StaleApproval, Message: "bob approved an older commit than the one merged"}))
	}
	return cs
}

func benchExport(b *testing.B, s *Store) {
	const deployments, changes = 1000, 100
	ctx := context.Background()
	from := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	cs := benchChanges(changes)
	for i := range deployments {
		d := deployment(i, "acme/pay", cs...)
		if _, err := s.Append(ctx, Evidence{At: from.Add(time.Duration(i) * time.Hour), Kind: KindDeploymentCreated,
			Repo: "acme/pay", Subject: fmt.Sprint(i), Body: d}); err != nil {
			b.Fatal(err)
		}
	}
	q := ExportQuery{From: from, To: from.AddDate(1, 0, 0)}
	var peak uint64
	var lines int
	for b.Loop() {
		runtime.GC()
		stop := sampleHeap()
		w := &lineCounter{}
		if err := WriteCSV(ctx, s, q, w); err != nil {
			b.Fatal(err)
		}
		peak = max(peak, stop())
		lines = w.n
	}
	if lines != deployments*changes+1 {
		b.Fatalf("exported %d lines, want %d rows and a header", lines, deployments*changes)
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
	b.ReportMetric(float64(b.N*deployments*changes)/b.Elapsed().Seconds(), "rows/s")
}

// sampleHeap polls HeapInuse until the returned stop is called, which returns the highest seen.
func sampleHeap() (stop func() uint64) {
	var mu sync.Mutex
	var peak uint64
	read := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		mu.Lock()
		peak = max(peak, m.HeapInuse)
		mu.Unlock()
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		read()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

type lineCounter struct{ n int }

func (w *lineCounter) Write(p []byte) (int, error) {
	w.n += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}
