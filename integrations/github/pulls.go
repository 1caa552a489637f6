package github

import (
	"context"
	"fmt"
	"sort"
	"time"

	gh "github.com/google/go-github/v62/github"

	"sockembot/compliance"
)

// prFacts is everything sockembot needs about one pull request.
type prFacts struct {
	pr      *gh.PullRequest
	reviews []*gh.PullRequestReview
	commits []*gh.RepositoryCommit
	// recorded is set when the facts come from evidence (GatherKnown), not from GitHub: pr and
	// commits then hold only what attribution needs, and toCompliance answers the record.
	recorded *compliance.RecordedPull
}

func (f *prFacts) merged() bool { return f.pr.MergedAt != nil }

// prLoader fetches pull requests of one repository, each at most once.
type prLoader struct {
	c           *Client
	owner, name string
	facts       memo[int, *prFacts]
	// knownCommits, when set, may answer a pull request's commits from data already fetched,
	// saving GET /pulls/{n}/commits.
	knownCommits func(*gh.PullRequest) ([]*gh.RepositoryCommit, bool)
}

func (c *Client) loader(owner, name string) *prLoader {
	return &prLoader{c: c, owner: owner, name: name}
}

// load fetches the pull request, all its reviews and all its commits, in parallel (the commits
// after the pull request when knownCommits may already have them).
func (l *prLoader) load(ctx context.Context, n int) (*prFacts, error) {
	return l.facts.do(n, func() (*prFacts, error) {
		repo := l.owner + "/" + l.name
		f := &prFacts{}
		listCommits := func(ctx context.Context) error {
			var err error
			f.commits, err = allPages(ctx, l.c.concurrency, func(ctx context.Context, opt gh.ListOptions) ([]*gh.RepositoryCommit, *gh.Response, error) {
				cs, resp, err := l.c.gh.PullRequests.ListCommits(ctx, l.owner, l.name, n, &opt)
				return slimCommits(cs), resp, err
			})
			if err != nil {
				return fmt.Errorf("github: commits of %s#%d: %w", repo, n, notFound(err))
			}
			return nil
		}
		tasks := 3
		if l.knownCommits != nil {
			tasks = 2
		}
		err := forEach(ctx, tasks, tasks, func(ctx context.Context, i int) error {
			var err error
			switch i {
			case 0:
				var pr *gh.PullRequest
				pr, _, err = l.c.gh.PullRequests.Get(ctx, l.owner, l.name, n)
				if err != nil {
					return fmt.Errorf("github: pull request %s#%d: %w", repo, n, notFound(err))
				}
				f.pr = slimPull(pr)
			case 1:
				// All pages: a pull request with 130 reviews has its approval on page 2.
				f.reviews, err = allPages(ctx, l.c.concurrency, func(ctx context.Context, opt gh.ListOptions) ([]*gh.PullRequestReview, *gh.Response, error) {
					rs, resp, err := l.c.gh.PullRequests.ListReviews(ctx, l.owner, l.name, n, &opt)
					for i, r := range rs {
						rs[i] = slimReview(r)
					}
					return rs, resp, err
				})
				if err != nil {
					return fmt.Errorf("github: reviews of %s#%d: %w", repo, n, notFound(err))
				}
			case 2:
				return listCommits(ctx)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if l.knownCommits != nil {
			var ok bool
			if f.commits, ok = l.knownCommits(f.pr); !ok {
				if err := listCommits(ctx); err != nil {
					return nil, err
				}
			}
		}
		// GitHub lists at most 250 commits of a pull request. A partial list would hide
		// committers (who may not approve their own work), so fail closed.
		if want := f.pr.GetCommits(); want > len(f.commits) {
			return nil, fmt.Errorf("github: commits of %s#%d: GitHub listed %d of %d commits", repo, n, len(f.commits), want)
		}
		return f, nil
	})
}

func (f *prFacts) toCompliance() compliance.PullRequest {
	if f.recorded != nil {
		pr := f.recorded.PR
		pr.Reviews = append([]compliance.Review{}, pr.Reviews...)
		pr.Commits = append([]compliance.Commit{}, pr.Commits...)
		return pr
	}
	p := f.pr
	out := listedPull(p)
	out.MergedBy = p.GetMergedBy().GetLogin()
	out.Reviews = make([]compliance.Review, 0, len(f.reviews))
	for _, r := range f.reviews {
		login := r.GetUser().GetLogin()
		out.Reviews = append(out.Reviews, compliance.Review{
			User: login, State: r.GetState(), CommitID: r.GetCommitID(),
			SubmittedAt: r.GetSubmittedAt().Time,
			Bot:         isBot(r.GetUser()),
			Association: r.GetAuthorAssociation(),
		})
	}
	out.Commits = make([]compliance.Commit, 0, len(f.commits))
	for _, c := range f.commits {
		out.Commits = append(out.Commits, toCommit(c))
	}
	return out
}

// listedPull maps the fields GitHub returns in pull request lists (which lack merged_by).
func listedPull(p *gh.PullRequest) compliance.PullRequest {
	out := compliance.PullRequest{
		Number: p.GetNumber(), Title: p.GetTitle(), Body: p.GetBody(),
		HeadBranch: p.GetHead().GetRef(), HeadSHA: p.GetHead().GetSHA(), BaseSHA: p.GetBase().GetSHA(), URL: p.GetHTMLURL(),
		Author: p.GetUser().GetLogin(), MergedAt: p.GetMergedAt().Time,
	}
	// An open pull request's merge_commit_sha is GitHub's test merge, not a commit on the branch.
	if p.MergedAt != nil {
		out.MergeSHA = p.GetMergeCommitSHA()
	}
	return out
}

func toCommit(c *gh.RepositoryCommit) compliance.Commit {
	return compliance.Commit{
		SHA: c.GetSHA(), Message: c.GetCommit().GetMessage(),
		Author: c.GetAuthor().GetLogin(), Committer: c.GetCommitter().GetLogin(),
		AuthoredAt: c.GetCommit().GetAuthor().GetDate().Time,
		URL:        c.GetHTMLURL(),
	}
}

// PullRequest fetches one pull request (open or merged) with all its reviews and commits, for
// the merge gate. RangeCommits are the pull request's own commits.
func (c *Client) PullRequest(ctx context.Context, repo string, number int) (compliance.Change, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return compliance.Change{}, err
	}
	f, err := c.loader(owner, name).load(ctx, number)
	if err != nil {
		return compliance.Change{}, err
	}
	pr := f.toCompliance()
	ch := compliance.Change{Kind: compliance.KindPullRequest, PR: &pr}
	for _, cm := range pr.Commits {
		ch.RangeCommits = append(ch.RangeCommits, cm.SHA)
	}
	return ch, nil
}

// MergedPullsSince lists pull requests merged into the default branch after since, oldest merge
// first, for reconciling missed webhooks. They carry what GitHub's list gives: no reviews,
// commits or merged_by (fetch each with PullRequest for those).
func (c *Client) MergedPullsSince(ctx context.Context, repo string, since time.Time) ([]compliance.PullRequest, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	r, _, err := c.gh.Repositories.Get(ctx, owner, name)
	if err != nil {
		return nil, fmt.Errorf("github: repository %s: %w", repo, notFound(err))
	}
	opt := &gh.PullRequestListOptions{
		State: "closed", Base: r.GetDefaultBranch(), Sort: "updated", Direction: "desc",
		ListOptions: gh.ListOptions{PerPage: perPage, Page: 1},
	}
	var out []compliance.PullRequest
	for {
		page, resp, err := c.gh.PullRequests.List(ctx, owner, name, opt)
		if err != nil {
			return nil, fmt.Errorf("github: closed pull requests of %s: %w", repo, notFound(err))
		}
		older := false
		for _, p := range page {
			// A merge updates the pull request, so once updated_at is before since, every
			// later page (sorted by updated_at, newest first) is too.
			if p.GetUpdatedAt().Before(since) {
				older = true
				continue
			}
			if p.MergedAt != nil && p.GetMergedAt().After(since) {
				out = append(out, listedPull(p))
			}
		}
		if older || resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].MergedAt.Before(out[j].MergedAt) })
	return out, nil
}

// PullsForCommit returns the numbers of the merged pull requests into branch base that GitHub
// associates with a commit (for push events: which pull request brought this commit into the
// default branch). A pull request merged into another branch does not count: nothing held it to
// the default branch's protection.
func (c *Client) PullsForCommit(ctx context.Context, repo, sha, base string) ([]int, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	pulls, err := c.pullsWithCommit(ctx, owner, name, sha)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, p := range pulls {
		if p.MergedAt != nil && p.GetBase().GetRef() == base {
			out = append(out, p.GetNumber())
		}
	}
	sort.Ints(out)
	return out, nil
}

func (c *Client) pullsWithCommit(ctx context.Context, owner, name, sha string) ([]*gh.PullRequest, error) {
	pulls, err := allPages(ctx, c.concurrency, func(ctx context.Context, opt gh.ListOptions) ([]*gh.PullRequest, *gh.Response, error) {
		return c.gh.PullRequests.ListPullRequestsWithCommit(ctx, owner, name, sha, &opt)
	})
	if err != nil {
		if hasStatus(err, 404, 422) {
			err = ErrNotFound
		}
		return nil, fmt.Errorf("github: pull requests of commit %s/%s@%s: %w", owner, name, short(sha), err)
	}
	return pulls, nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
