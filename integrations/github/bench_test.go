package github_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"

	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	"sockembot/integrations/github"
)

// Run with: go test -run '^$' -bench . -benchtime=1x ./integrations/github/

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

func BenchmarkNaiveSequential(b *testing.B) {
	s, base := benchRepo(b)
	client, err := gh.NewClient(nil).WithEnterpriseURLs(s.URL(), s.URL())
	if err != nil {
		b.Fatal(err)
	}
	n := naive{gh: client}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.ResetLog()
		changes, err := n.gather(context.Background(), "acme", "payments", base, "main")
		if err != nil {
			b.Fatal(err)
		}
		if len(changes) != benchPRs {
			b.Fatalf("%d changes", len(changes))
		}
	}
	b.ReportMetric(float64(s.Total())/benchPRs, "requests/PR")
}

// naive is the obvious client, for comparison: one request after another, every commit looked
// up with GET /commits/{sha}/pulls, each pull request's details fetched once, page by page.
// It uses 100 items per page like the real client, so the difference is the method alone.
type naive struct{ gh *gh.Client }

func (n naive) gather(ctx context.Context, owner, repo, base, head string) ([]compliance.Change, error) {
	baseSHA, _, err := n.gh.Repositories.GetCommitSHA1(ctx, owner, repo, base, "")
	if err != nil {
		return nil, err
	}
	headSHA, _, err := n.gh.Repositories.GetCommitSHA1(ctx, owner, repo, head, "")
	if err != nil {
		return nil, err
	}
	var commits []*gh.RepositoryCommit
	for opt := (&gh.ListOptions{PerPage: 100, Page: 1}); ; {
		cmp, resp, err := n.gh.Repositories.CompareCommits(ctx, owner, repo, baseSHA, headSHA, opt)
		if err != nil {
			return nil, err
		}
		commits = append(commits, cmp.Commits...)
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	var changes []compliance.Change
	index := map[int]int{}
	for _, c := range commits {
		pulls, _, err := n.gh.PullRequests.ListPullRequestsWithCommit(ctx, owner, repo, c.GetSHA(), &gh.ListOptions{PerPage: 100})
		if err != nil {
			return nil, err
		}
		number := 0
		for _, p := range pulls {
			if p.MergedAt != nil {
				number = p.GetNumber()
			}
		}
		if number == 0 {
			cm := compliance.Commit{SHA: c.GetSHA()}
			changes = append(changes, compliance.Change{Kind: compliance.KindDirectPush, Push: &cm, RangeCommits: []string{c.GetSHA()}})
			continue
		}
		if i, ok := index[number]; ok {
			changes[i].RangeCommits = append(changes[i].RangeCommits, c.GetSHA())
			continue
		}
		pr, err := n.pull(ctx, owner, repo, number)
		if err != nil {
			return nil, err
		}
		index[number] = len(changes)
		changes = append(changes, compliance.Change{Kind: compliance.KindPullRequest, PR: pr, RangeCommits: []string{c.GetSHA()}})
	}
	return changes, nil
}

func (n naive) pull(ctx context.Context, owner, repo string, number int) (*compliance.PullRequest, error) {
	p, _, err := n.gh.PullRequests.Get(ctx, owner, repo, number)
	if err != nil {
		return nil, err
	}
	pr := &compliance.PullRequest{Number: number, HeadSHA: p.GetHead().GetSHA(), MergedBy: p.GetMergedBy().GetLogin()}
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
			pr.Commits = append(pr.Commits, compliance.Commit{SHA: c.GetSHA(), Message: c.GetCommit().GetMessage()})
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	return pr, nil
}
