package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	fakegithub "sockembot/integrations/fake/github"
	fakejira "sockembot/integrations/fake/jira"
)

// BenchmarkCheckCLI1600PRsPeakRSS is a monorepo's quarterly release checked cold by the
// `sockembot check` binary: 1,600 pull requests of 3 commits each, merged with merge commits
// (6,400 commits), GitHub and Jira at 20 ms a request. The fakes run in the benchmark's process,
// the check in its own, so the peak RSS reported is sockembot's alone (from the kernel's rusage
// of the child), with its CPU time.
//
//	go test -run '^$' -bench CheckCLI1600PRsPeakRSS -benchtime=1x .
func BenchmarkCheckCLI1600PRsPeakRSS(b *testing.B) {
	const prs = 1600
	g := fakegithub.New(fakegithub.Options{Token: ghToken, RateLimit: 1 << 30})
	defer g.Close()
	j := fakejira.New(fakejira.Options{Mode: fakejira.Cloud, User: jiraUser, Token: jiraToken})
	defer j.Close()
	j.AddProject("PAY")
	r := g.AddRepo("acme/payments", "main")
	base := r.Commit("initial", "alice")
	for i := 1; i <= prs; i++ {
		key := fmt.Sprintf("PAY-%d", i)
		j.AddIssue(key, "In Progress")
		r.MergePR(fakegithub.PR{Title: key + " change", Author: "alice", Commits: 3,
			Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.MergeCommit)
	}
	g.SetLatency(20 * time.Millisecond)
	j.SetLatency(20 * time.Millisecond)
	w := &world{gh: g, jira: j, repo: r}
	var cpu time.Duration
	var peak int64
	b.ResetTimer()
	for b.Loop() {
		g.ResetLog()
		cmd := exec.Command(binary, "check", "--repo", "acme/payments", "--base", base, "--head", "main", "--format", "json")
		cmd.Env = w.env()
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			b.Fatalf("sockembot check: %v\n%s", err, errb.String())
		}
		var rep struct {
			Compliant bool              `json:"compliant"`
			Changes   []json.RawMessage `json:"changes"`
		}
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil || !rep.Compliant || len(rep.Changes) != prs {
			b.Fatalf("report: %v, compliant %v, %d changes", err, rep.Compliant, len(rep.Changes))
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		peak = max(peak, ru.Maxrss) // kilobytes on Linux
		cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MB")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "CPU-s/check")
	b.ReportMetric(float64(g.Total()+len(j.Requests()))/prs, "requests/PR")
}
