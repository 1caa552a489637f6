package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"sockembot/compliance"
)

// checkRunBody is roughly what one check_run records for a small release.
var checkRunBody = map[string]any{
	"repo": "acme/pay", "base_sha": fmt.Sprintf("%040x", 1), "head_sha": fmt.Sprintf("%040x", 2),
	"policy_hash": "sha256:" + fmt.Sprintf("%064x", 3), "compliant": true,
	"report": map[string]any{"repo": "acme/pay", "compliant": true, "changes": []map[string]any{
		{"kind": "pull_request", "number": 1000, "title": "PAY-1: make refunds idempotent", "author": "dave",
			"approvals": []map[string]any{{"user": "bob"}}, "tickets": []map[string]any{{"key": "PAY-1", "status": "In Review"}}},
	}},
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
	e := compliance.Evidence{Kind: compliance.EvidenceCheckRun, Repo: "acme/pay", Subject: fmt.Sprintf("%040x", 2), Body: checkRunBody}
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
