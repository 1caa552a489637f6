package audit

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sockembot/bot/check"
	"sockembot/bot/mergegate"
	"sockembot/compliance"
	"sockembot/integrations/store"
	"sockembot/integrations/store/storetest"
	"sync"
	"testing"
	"time"
)

// BenchmarkExport100k times the CSV export of 1,000 deployments of 100 changes each and reports
// the peak heap in use while it runs.
func BenchmarkExport100k(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchExport(b, storetest.SQLite(b))
	})
	b.Run("postgres", func(b *testing.B) {
		benchExport(b, storetest.Postgres(b))
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

func benchExport(b *testing.B, s *store.Store) {
	const deployments, changes = 1000, 100
	ctx := context.Background()
	from := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	cs := benchChanges(changes)
	for i := range deployments {
		d := deployment(i, "acme/pay", cs...)
		if _, err := s.Append(ctx, compliance.Evidence{At: from.Add(time.Duration(i) * time.Hour), Kind: compliance.EvidenceDeploymentCreated,
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

// BenchmarkReport writes the auditor's report of a year holding n evidence records (a tenth of
// them deploys of 10 changes, the rest merge verdicts and checks) and reports the peak heap in
// use while it runs: it must stay flat as n grows, since the report streams.
func BenchmarkReport(b *testing.B) {
	for _, n := range benchReportSizes {
		b.Run(fmt.Sprintf("sqlite/%dk", n/1000), func(b *testing.B) { benchReport(b, storetest.SQLite(b), n) })
		b.Run(fmt.Sprintf("postgres/%dk", n/1000), func(b *testing.B) { benchReport(b, storetest.Postgres(b), n) })
	}
}

func benchReport(b *testing.B, s *store.Store, n int) {
	ctx := context.Background()
	from := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	step := time.Duration(365*24*time.Hour) / time.Duration(n)
	cs := benchChanges(10)
	pr := 0
	for i := range n {
		at := from.Add(time.Duration(i) * step)
		var e compliance.Evidence
		switch i % 10 {
		case 0:
			d := deployment(i, "acme/pay", cs...)
			d.BaseSHA, d.SHA = fmt.Sprintf("%040x", i-10), fmt.Sprintf("%040x", i)
			e = compliance.Evidence{Kind: compliance.EvidenceDeploymentCreated, Subject: fmt.Sprintf("deploy/%d", i), Body: d}
		case 1, 2, 3, 4, 5:
			pr++
			e = compliance.Evidence{Kind: compliance.EvidenceMergeVerdict, Subject: fmt.Sprintf("acme/pay#%d", pr), Body: mergegate.MergeVerdictEvidence{
				Repo: "acme/pay", Number: pr, Title: cs[0].Title, MergeSHA: fmt.Sprintf("%040x", pr), Compliant: pr%7 != 0, PolicyHash: "p",
				Report: compliance.Report{Repo: "acme/pay", Changes: cs[:1]}}}
		default:
			e = compliance.Evidence{Kind: compliance.EvidenceCheckRun, Subject: fmt.Sprintf("%040x", i), Body: check.CheckRunEvidence{
				Repo: "acme/pay", PolicyHash: "p", Compliant: true, Report: compliance.Report{Repo: "acme/pay", Changes: cs[:2]}}}
		}
		e.At, e.Repo = at, "acme/pay"
		if _, err := s.Append(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	q := ReportQuery{From: from, To: from.AddDate(1, 0, 0), Sample: 25, Seed: 1, SeedGiven: true}
	var peak uint64
	size := 0
	for b.Loop() {
		runtime.GC()
		stop := sampleHeap()
		w := &lineCounter{}
		res, err := Report(ctx, s, q, w)
		if err != nil {
			b.Fatal(err)
		}
		peak = max(peak, stop())
		if res.Population != n/10*10 || res.Sampled != 25 || !res.Chain.Intact() {
			b.Fatalf("outcome %+v", res)
		}
		size = w.n
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
	b.ReportMetric(float64(size), "lines")
}

// benchReportSizes are the store sizes BenchmarkReport writes its report of.
var benchReportSizes = []int{10_000, 100_000}
