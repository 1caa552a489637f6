package github_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	fakegithub "sockembot/integrations/fake/github"
	"sockembot/integrations/github"
)

// Run with: go test -run '^$' -bench . -benchtime=1x ./integrations/github/
// The whole check (GitHub and Jira) against a naive sequential client is benchmarked in
// bot/check_bench_test.go.

const (
	benchPRs     = 200
	benchLatency = 20 * time.Millisecond
)

// benchRepo is 200 pull requests of 3 commits each, merged with merge commits, one approval
// each, behind a fake GitHub that adds 20 ms to every request.
func benchRepo(b *testing.B) (*fakegithub.Server, string) {
	b.Helper()
	s := newFake(b, fakegithub.Options{RateLimit: 1 << 30})
	r := s.AddRepo("acme/payments", "main")
	base := r.Commit("initial", "alice")
	for i := 1; i <= benchPRs; i++ {
		r.MergePR(fakegithub.PR{Title: fmt.Sprintf("PAY-%d change", i), Author: "alice", Commits: 3,
			Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.MergeCommit)
	}
	s.SetLatency(benchLatency)
	return s, base
}

func BenchmarkGather200PRs(b *testing.B) {
	s, base := benchRepo(b)
	c := newClient(b, s, github.Options{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.ResetLog()
		rng, err := c.Gather(context.Background(), "acme/payments", base, "main")
		if err != nil {
			b.Fatal(err)
		}
		if len(rng.Changes) != benchPRs {
			b.Fatalf("%d changes", len(rng.Changes))
		}
	}
	b.ReportMetric(float64(s.Total())/benchPRs, "requests/PR")
}
