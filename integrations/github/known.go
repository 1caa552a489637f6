package github

import (
	"context"
	"fmt"

	gh "github.com/google/go-github/v62/github"

	"sockembot/compliance"
)

// claimRecorded asks known which range commits are merge commits of pull requests recorded
// before, and claims each one's commits for its recorded facts, so they are never fetched. A
// record is only taken at the commit it names as its merge (its merge SHA is what it was looked
// up by), for a merged pull request whose number the loader has not fetched already.
func (a *attribution) claimRecorded(ctx context.Context, l *prLoader, known func(context.Context, []string) (map[string]compliance.RecordedPull, error)) error {
	shas := make([]string, len(a.commits))
	for i, rc := range a.commits {
		shas[i] = rc.sha
	}
	recorded, err := known(ctx, shas)
	if err != nil {
		return fmt.Errorf("recorded pull request facts: %w", err)
	}
	if len(recorded) == 0 {
		return nil
	}
	for _, rc := range a.commits {
		rp, ok := recorded[rc.sha]
		if !ok || rp.PR.Number <= 0 || rp.PR.MergeSHA != rc.sha || rp.PR.MergedAt.IsZero() || !rc.free() {
			continue
		}
		f := recordedFacts(rp)
		// Later lookups of the same number (a hint, GET /commits/{sha}/pulls) get these facts.
		if _, err := l.facts.do(rp.PR.Number, func() (*prFacts, error) { return f, nil }); err != nil {
			return err
		}
		a.claim(f, rc)
	}
	return nil
}

// recordedFacts shapes recorded facts as the attribution reads GitHub's: the merge, the head,
// the commit count, and each commit's SHA, message, author and author date.
func recordedFacts(rp compliance.RecordedPull) *prFacts {
	p := rp.PR
	mergedAt := gh.Timestamp{Time: p.MergedAt}
	f := &prFacts{
		pr: &gh.PullRequest{
			Number: gh.Int(p.Number), State: gh.String("closed"), MergedAt: &mergedAt,
			MergeCommitSHA: gh.String(p.MergeSHA), Head: &gh.PullRequestBranch{SHA: gh.String(p.HeadSHA), Ref: gh.String(p.HeadBranch)},
			Commits: gh.Int(len(p.Commits)),
		},
		recorded: &rp,
	}
	for _, c := range p.Commits {
		date := gh.Timestamp{Time: c.AuthoredAt}
		f.commits = append(f.commits, &gh.RepositoryCommit{
			SHA:    gh.String(c.SHA),
			Author: &gh.User{Login: gh.String(c.Author)},
			Commit: &gh.Commit{Message: gh.String(c.Message), Author: &gh.CommitAuthor{Date: &date}},
		})
	}
	return f
}
