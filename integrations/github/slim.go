package github

import gh "github.com/google/go-github/v62/github"

// GitHub's answers carry far more than a check reads: a pull request embeds both of its
// repositories (a hundred fields each), a commit its author's and committer's whole accounts.
// A 1,600-PR release holds thousands of them at once, so each is cut down, as soon as it is
// decoded, to the fields sockembot reads; the rest is garbage straight away.

// slimUser keeps who a user is.
func slimUser(u *gh.User) *gh.User {
	if u == nil {
		return nil
	}
	return &gh.User{Login: u.Login, Type: u.Type}
}

// slimCommit keeps what attribution and compliance.Commit read of a commit.
func slimCommit(c *gh.RepositoryCommit) *gh.RepositoryCommit {
	if c == nil {
		return nil
	}
	out := &gh.RepositoryCommit{SHA: c.SHA, HTMLURL: c.HTMLURL, Author: slimUser(c.Author), Committer: slimUser(c.Committer)}
	if cm := c.Commit; cm != nil {
		out.Commit = &gh.Commit{Message: cm.Message, Author: slimIdentity(cm.Author), Committer: slimIdentity(cm.Committer)}
	}
	if len(c.Parents) > 0 {
		out.Parents = make([]*gh.Commit, len(c.Parents))
		for i, p := range c.Parents {
			out.Parents[i] = &gh.Commit{SHA: p.SHA}
		}
	}
	return out
}

func slimIdentity(a *gh.CommitAuthor) *gh.CommitAuthor {
	if a == nil {
		return nil
	}
	return &gh.CommitAuthor{Email: a.Email, Date: a.Date}
}

func slimCommits(cs []*gh.RepositoryCommit) []*gh.RepositoryCommit {
	for i, c := range cs {
		cs[i] = slimCommit(c)
	}
	return cs
}

// slimPull keeps what a check reads of a pull request.
func slimPull(p *gh.PullRequest) *gh.PullRequest {
	if p == nil {
		return nil
	}
	out := &gh.PullRequest{
		Number: p.Number, State: p.State, Title: p.Title, Body: p.Body, HTMLURL: p.HTMLURL,
		User: slimUser(p.User), MergedBy: slimUser(p.MergedBy), MergedAt: p.MergedAt, MergeCommitSHA: p.MergeCommitSHA,
		Commits: p.Commits, UpdatedAt: p.UpdatedAt,
	}
	if h := p.Head; h != nil {
		out.Head = &gh.PullRequestBranch{Ref: h.Ref, SHA: h.SHA}
	}
	if b := p.Base; b != nil {
		out.Base = &gh.PullRequestBranch{Ref: b.Ref, SHA: b.SHA}
	}
	return out
}

// slimReview keeps what compliance.Review reads of a review.
func slimReview(r *gh.PullRequestReview) *gh.PullRequestReview {
	if r == nil {
		return nil
	}
	return &gh.PullRequestReview{User: slimUser(r.User), State: r.State, CommitID: r.CommitID, SubmittedAt: r.SubmittedAt, AuthorAssociation: r.AuthorAssociation}
}
