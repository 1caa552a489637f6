package bot_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"sockembot/bot/demo"
	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
)

// BenchmarkDeployDigest200PRsSeenAtMerge measures a /deploy of a 200-PR release whose pull
// requests were all judged when they merged (their merge webhooks were delivered, so their facts
// are recorded): from the command to the digest in the release channel, with GitHub and Jira
// slowed to 20 ms a request. It reports the seconds to the digest and the requests it cost.
//
//	go test -run '^$' -bench BenchmarkDeployDigest -benchtime 5x ./bot/
func BenchmarkDeployDigest200PRsSeenAtMerge(b *testing.B) {
	const prs = 200
	ctx := context.Background()
	log := logrus.New()
	log.SetOutput(io.Discard)
	w, err := demo.Start(ctx, demo.Options{Dir: b.TempDir(), Log: log})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	w.Jira.AddProject("PAY")
	pay := w.GitHub.AddRepo("acme/payments", "main")
	pay.Commit("Initial import", "alice")
	pay.Deploy(pay.Tag("v1.4.0"), "production", "success")
	for i := 1; i <= prs; i++ {
		key := fmt.Sprintf("PAY-%d", i)
		w.Jira.AddIssue(key, "In Progress")
		info := pay.MergePR(fakegithub.PR{Title: key + " change", Author: "alice", Commits: 3,
			Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.MergeCommit)
		body, err := w.PullRequestEvent(ctx, "acme/payments", info.Number, "closed")
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Deliver(ctx, "pull_request", body); err != nil {
			b.Fatal(err)
		}
	}
	recorded := func() int {
		n := 0
		w.Store.Records(ctx, compliance.EvidencePullFacts, "", func(compliance.Record) error { n++; return nil })
		return n
	}
	if err := demo.Wait(ctx, "every merge recorded", 2*time.Minute, func() bool { return recorded() == prs && len(w.Roots()) >= prs }); err != nil {
		b.Fatal(err)
	}
	w.GitHub.SetLatency(20 * time.Millisecond)
	w.Jira.SetLatency(20 * time.Millisecond)

	var total time.Duration
	requests := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		before := len(w.Roots())
		w.GitHub.ResetLog()
		w.Jira.ResetRequests()
		b.StartTimer()
		start := time.Now()
		w.Command(demo.Alice, demo.Release, "payments to production")
		for len(w.Roots()) == before {
			time.Sleep(time.Millisecond)
		}
		total += time.Since(start)
		b.StopTimer()
		if root := w.Roots()[before]; !strings.Contains(root.Text, "payments") || !strings.Contains(string(root.Blocks), "facts recorded: 200 of 200") {
			b.Fatalf("not the digest of a release checked from recorded facts: %.300s", root.Blocks)
		}
		requests += w.GitHub.Total() + len(w.Jira.Requests())
		if i == 0 || i == b.N-1 {
			b.Logf("digest %d: GitHub %v, Jira %d requests", i+1, w.GitHub.Counts(), len(w.Jira.Requests()))
		}
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/digest")
	b.ReportMetric(float64(requests)/float64(b.N), "requests/digest")
}
