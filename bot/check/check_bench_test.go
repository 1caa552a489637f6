package check_test

import (
	"context"
	"fmt"
	"sockembot/bot/check"
	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	fakejira "sockembot/integrations/fake/jira"
	"sockembot/integrations/github"
	"sockembot/integrations/jira"
	"sockembot/integrations/store/storetest"
	"testing"
	"time"

	gojira "github.com/andygrunwald/go-jira"
	gh "github.com/google/go-github/v62/github"
)

const (
	checkBenchPRs     = 200
	checkBenchLatency = 20 * time.Millisecond
)

type checkBench struct {
	gh   *fakegithub.Server
	jira *fakejira.Server
	base string
}

func newCheckBench(b *testing.B) checkBench {
	b.Helper()
	g := fakegithub.New(fakegithub.Options{RateLimit: 1 << 30})
	b.Cleanup(g.Close)
	j := fakejira.New(fakejira.Options{Mode: fakejira.Cloud})
	b.Cleanup(j.Close)
	r := g.AddRepo("acme/payments", "main")
	base := r.Commit("initial", "alice")
	for i := 1; i <= checkBenchPRs; i++ {
		j.AddIssue(fmt.Sprintf("PAY-%d", i), "In Progress")
		r.MergePR(fakegithub.PR{Title: fmt.Sprintf("PAY-%d change", i), Author: "alice", Commits: 3,
			Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.MergeCommit)
	}
	g.SetLatency(checkBenchLatency)
	j.SetLatency(checkBenchLatency)
	return checkBench{gh: g, jira: j, base: base}
}

func (cb checkBench) reset() {
	cb.gh.ResetLog()
	cb.jira.ResetRequests()
}

func (cb checkBench) report(b *testing.B) {
	b.ReportMetric(float64(len(cb.gh.Requests())+len(cb.jira.Requests()))/checkBenchPRs, "requests/PR")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/check")
}

func BenchmarkCheck200PRs(b *testing.B) {
	cb := newCheckBench(b)
	g, err := github.New(github.Options{BaseURL: cb.gh.URL()})
	if err != nil {
		b.Fatal(err)
	}
	j, err := jira.New(jira.Options{BaseURL: cb.jira.URL()})
	if err != nil {
		b.Fatal(err)
	}
	// As `run` and `check` have it: the repository policy at the base, and the changes to it.
	c := &check.Checker{GitHub: g, Jira: j, Files: g}
	b.ResetTimer()
	for b.Loop() {
		cb.reset()
		run, err := c.Check(context.Background(), check.Request{Repo: "acme/payments", Base: cb.base, Head: "main", Policy: compliance.DefaultPolicy(), Trigger: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if len(run.Report.Changes) != checkBenchPRs || !run.Report.Compliant {
			b.Fatalf("%d changes, compliant %v", len(run.Report.Changes), run.Report.Compliant)
		}
	}
	cb.report(b)
}

// BenchmarkCheck200PRsWarm is the same release checked a second time from one evidence store:
// the first check (not timed) recorded every pull request's facts, so this one asks GitHub for
// the range and the policy file only. It logs the requests by endpoint, cold and warm.
//
//	go test -run '^$' -bench Check200PRsWarm -benchtime=3x ./bot/check/
func BenchmarkCheck200PRsWarm(b *testing.B) {
	cb := newCheckBench(b)
	g, err := github.New(github.Options{BaseURL: cb.gh.URL()})
	if err != nil {
		b.Fatal(err)
	}
	j, err := jira.New(jira.Options{BaseURL: cb.jira.URL()})
	if err != nil {
		b.Fatal(err)
	}
	st := storetest.SQLite(b)
	// As `run` has it: the policy file read through the cache of reads at a commit.
	c := &check.Checker{GitHub: g, Jira: j, Files: check.NewCachedFiles(g, 0), Evidence: st, Facts: st}
	req := check.Request{Repo: "acme/payments", Base: cb.base, Head: "main", Policy: compliance.DefaultPolicy(), Trigger: "bench"}
	cb.reset()
	start := time.Now()
	if _, err := c.Check(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	b.Logf("cold: %.2f s, GitHub %d requests %v, Jira %d", time.Since(start).Seconds(), cb.gh.Total(), cb.gh.Counts(), len(cb.jira.Requests()))
	b.ResetTimer()
	for b.Loop() {
		cb.reset()
		run, err := c.Check(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		if len(run.Report.Changes) != checkBenchPRs || !run.Report.Compliant || run.Report.Changes[0].Recorded == nil {
			b.Fatalf("%d changes, compliant %v", len(run.Report.Changes), run.Report.Compliant)
		}
	}
	b.Logf("warm: GitHub %d requests %v, Jira %d", cb.gh.Total(), cb.gh.Counts(), len(cb.jira.Requests()))
	b.ReportMetric(float64(cb.gh.Total()), "GitHub-requests")
	b.ReportMetric(float64(len(cb.jira.Requests())), "Jira-requests")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/check")
}

func BenchmarkCheck200PRsNaiveSequential(b *testing.B) {
	cb := newCheckBench(b)
	g, err := gh.NewClient(nil).WithEnterpriseURLs(cb.gh.URL(), cb.gh.URL())
	if err != nil {
		b.Fatal(err)
	}
	j, err := gojira.NewClient(nil, cb.jira.URL())
	if err != nil {
		b.Fatal(err)
	}
	n := naive{gh: g, jira: j}
	b.ResetTimer()
	for b.Loop() {
		cb.reset()
		report, err := n.check(context.Background(), "acme", "payments", cb.base, "main")
		if err != nil {
			b.Fatal(err)
		}
		if len(report.Changes) != checkBenchPRs || !report.Compliant {
			b.Fatalf("%d changes, compliant %v", len(report.Changes), report.Compliant)
		}
	}
	cb.report(b)
}

// naive is the obvious client, for comparison: one request after another, every commit looked
// up with GET /commits/{sha}/pulls, each pull request's details, reviews and commits fetched
// once, each ticket fetched on its own. It pages 100 at a time like the real client, and feeds
// the same engine, so the difference is how the facts are fetched.
type naive struct {
	gh   *gh.Client
	jira *gojira.Client
}

func (n naive) check(ctx context.Context, owner, repo, base, head string) (compliance.Report, error) {
	baseSHA, _, err := n.gh.Repositories.GetCommitSHA1(ctx, owner, repo, base, "")
	if err != nil {
		return compliance.Report{}, err
	}
	headSHA, _, err := n.gh.Repositories.GetCommitSHA1(ctx, owner, repo, head, "")
	if err != nil {
		return compliance.Report{}, err
	}
	var commits []*gh.RepositoryCommit
	for opt := (&gh.ListOptions{PerPage: 100, Page: 1}); ; {
		cmp, resp, err := n.gh.Repositories.CompareCommits(ctx, owner, repo, baseSHA, headSHA, opt)
		if err != nil {
			return compliance.Report{}, err
		}
		commits = append(commits, cmp.Commits...)
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	rng := compliance.Range{Repo: owner + "/" + repo, Base: base, Head: head, BaseSHA: baseSHA, HeadSHA: headSHA}
	index := map[int]int{}
	for _, c := range commits {
		pulls, _, err := n.gh.PullRequests.ListPullRequestsWithCommit(ctx, owner, repo, c.GetSHA(), &gh.ListOptions{PerPage: 100})
		if err != nil {
			return compliance.Report{}, err
		}
		number := 0
		for _, p := range pulls {
			if p.MergedAt != nil {
				number = p.GetNumber()
			}
		}
		if number == 0 {
			cm := compliance.Commit{SHA: c.GetSHA(), Message: c.GetCommit().GetMessage()}
			rng.Changes = append(rng.Changes, compliance.Change{Kind: compliance.KindDirectPush, Push: &cm, RangeCommits: []string{c.GetSHA()}})
			continue
		}
		if i, ok := index[number]; ok {
			rng.Changes[i].RangeCommits = append(rng.Changes[i].RangeCommits, c.GetSHA())
			continue
		}
		pr, err := n.pull(ctx, owner, repo, number)
		if err != nil {
			return compliance.Report{}, err
		}
		index[number] = len(rng.Changes)
		rng.Changes = append(rng.Changes, compliance.Change{Kind: compliance.KindPullRequest, PR: pr, RangeCommits: []string{c.GetSHA()}})
	}
	facts := compliance.Facts{Range: rng, JiraProjects: []string{"PAY"}, Tickets: map[string]compliance.Ticket{}}
	p := compliance.DefaultPolicy()
	for _, key := range compliance.LookupKeys(p, rng, facts.JiraProjects) {
		issue, _, err := n.jira.Issue.GetWithContext(ctx, key, nil)
		if err != nil {
			return compliance.Report{}, err
		}
		st := issue.Fields.Status
		facts.Tickets[key] = compliance.Ticket{Key: key, Found: true, Status: st.Name, StatusCategory: st.StatusCategory.Key}
	}
	return compliance.Evaluate(p, facts), nil
}

func (n naive) pull(ctx context.Context, owner, repo string, number int) (*compliance.PullRequest, error) {
	p, _, err := n.gh.PullRequests.Get(ctx, owner, repo, number)
	if err != nil {
		return nil, err
	}
	pr := &compliance.PullRequest{Number: number, Title: p.GetTitle(), Author: p.GetUser().GetLogin(),
		HeadSHA: p.GetHead().GetSHA(), MergedBy: p.GetMergedBy().GetLogin()}
	for opt := (&gh.ListOptions{PerPage: 100, Page: 1}); ; {
		reviews, resp, err := n.gh.PullRequests.ListReviews(ctx, owner, repo, number, opt)
		if err != nil {
			return nil, err
		}
		for _, r := range reviews {
			pr.Reviews = append(pr.Reviews, compliance.Review{User: r.GetUser().GetLogin(), State: r.GetState(), CommitID: r.GetCommitID()})
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	for opt := (&gh.ListOptions{PerPage: 100, Page: 1}); ; {
		commits, resp, err := n.gh.PullRequests.ListCommits(ctx, owner, repo, number, opt)
		if err != nil {
			return nil, err
		}
		for _, c := range commits {
			pr.Commits = append(pr.Commits, compliance.Commit{SHA: c.GetSHA(), Message: c.GetCommit().GetMessage(),
				Author: c.GetAuthor().GetLogin(), Committer: c.GetCommitter().GetLogin()})
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	return pr, nil
}
