package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"unicode/utf8"

	gh "github.com/google/go-github/v62/github"
)

// maxStatusDescription is GitHub's limit on a commit status description; longer ones are
// rejected with 422, which would leave the merge gate without a verdict.
const maxStatusDescription = 140

// SetStatus writes a commit status (state: pending, success, failure or error). The description
// is cut to GitHub's 140 characters; an empty targetURL is left out.
func (c *Client) SetStatus(ctx context.Context, repo, sha, state, statusContext, description, targetURL string) error {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return err
	}
	st := &gh.RepoStatus{State: &state, Context: &statusContext, Description: gh.String(truncate(description, maxStatusDescription))}
	if targetURL != "" {
		st.TargetURL = &targetURL
	}
	if _, _, err := c.gh.Repositories.CreateStatus(ctx, owner, name, sha, st); err != nil {
		return fmt.Errorf("github: status %q on %s@%s: %w", statusContext, repo, short(sha), notFound(err))
	}
	return nil
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// FindComment finds the first comment on an issue or pull request that contains marker (a
// hidden HTML comment such as "<!-- sockembot -->").
func (c *Client) FindComment(ctx context.Context, repo string, number int, marker string) (id int64, body string, found bool, err error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return 0, "", false, err
	}
	if marker == "" {
		return 0, "", false, errors.New("github: comment marker is empty")
	}
	comments, err := allPages(ctx, c.concurrency, func(ctx context.Context, opt gh.ListOptions) ([]*gh.IssueComment, *gh.Response, error) {
		return c.gh.Issues.ListComments(ctx, owner, name, number, &gh.IssueListCommentsOptions{ListOptions: opt})
	})
	if err != nil {
		return 0, "", false, fmt.Errorf("github: comments of %s#%d: %w", repo, number, notFound(err))
	}
	self, err := c.whoami(ctx)
	if err != nil {
		return 0, "", false, err
	}
	for _, cm := range comments {
		// Only sockembot's own comment counts: anyone can paste the marker into theirs.
		mine := cm.GetUser().GetLogin() == self
		if self == "" {
			mine = cm.GetUser().GetType() == "Bot"
		}
		if mine && strings.Contains(cm.GetBody(), marker) {
			return cm.GetID(), cm.GetBody(), true, nil
		}
	}
	return 0, "", false, nil
}

// whoami is the login sockembot acts as. As a GitHub App (Options.App) it is "<slug>[bot]", the
// slug from GET /app. With a token it is the token's user; an installation token given as
// Options.Token has no user (GET /user answers 403, or 404 on some servers): then "", and
// sockembot's comments are the ones by a bot.
func (c *Client) whoami(ctx context.Context) (string, error) {
	c.selfMu.Lock()
	defer c.selfMu.Unlock()
	if c.self != nil {
		return *c.self, nil
	}
	var login string
	if c.app != nil {
		app, _, err := c.gh.Apps.Get(ctx, "")
		if err != nil {
			return "", fmt.Errorf("github: which GitHub App sockembot is (GET /app): %w", err)
		}
		if app.GetSlug() == "" {
			return "", errors.New("github: GET /app named no App slug")
		}
		login = app.GetSlug() + "[bot]"
	} else {
		u, _, err := c.gh.Users.Get(ctx, "")
		login = u.GetLogin()
		if hasStatus(err, 403, 404) {
			login, err = "", nil
		}
		if err != nil {
			return "", fmt.Errorf("github: who the token is: %w", err)
		}
	}
	c.self = &login
	return login, nil
}

// UpsertComment keeps one comment per pull request: it edits the comment holding marker, or
// creates one. The marker is added to body if body lacks it, so the comment is found next time.
func (c *Client) UpsertComment(ctx context.Context, repo string, number int, marker, body string) (id int64, created bool, err error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return 0, false, err
	}
	if !strings.Contains(body, marker) {
		body = marker + "\n" + body
	}
	id, old, found, err := c.FindComment(ctx, repo, number, marker)
	if err != nil {
		return 0, false, err
	}
	if found {
		if old == body {
			return id, false, nil
		}
		if _, _, err := c.gh.Issues.EditComment(ctx, owner, name, id, &gh.IssueComment{Body: &body}); err != nil {
			return 0, false, fmt.Errorf("github: edit comment %d on %s#%d: %w", id, repo, number, notFound(err))
		}
		return id, false, nil
	}
	// Sent once: a retry after a lost answer could post a second comment. The caller's retry
	// (the webhook delivery's) finds the first one and edits it instead.
	cm, _, err := c.gh.Issues.CreateComment(sendOnce(ctx), owner, name, number, &gh.IssueComment{Body: &body})
	if err != nil {
		return 0, false, fmt.Errorf("github: comment on %s#%d: %w", repo, number, notFound(err))
	}
	return cm.GetID(), true, nil
}

// CreateDeployment records a deployment of sha to env and returns its ID.
func (c *Client) CreateDeployment(ctx context.Context, repo, sha, env string, payload any, description string) (int64, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return 0, err
	}
	req := &gh.DeploymentRequest{
		Ref: &sha, Task: gh.String("deploy"), Environment: &env, Payload: payload,
		Description: &description,
		// sockembot has already judged the range (tickets, approvals) before deploying, and the
		// deployment must be of exactly this SHA: so no auto-merge of the default branch into
		// it, and no required status contexts (GitHub would otherwise refuse the deployment
		// while unrelated checks, or sockembot's own pending status, are not green).
		AutoMerge:        gh.Bool(false),
		RequiredContexts: &[]string{},
	}
	d, resp, err := c.gh.Repositories.CreateDeployment(sendOnce(ctx), owner, name, req)
	if err != nil && (resp == nil || resp.Response == nil || resp.StatusCode >= 500) && !notSent(err) {
		// No answer (a timeout, a broken connection, a shutdown), or a 5xx: the deployment may
		// exist. Never sent twice (sendOnce).
		return 0, fmt.Errorf("github: create deployment of %s@%s to %s: %w: %w", repo, short(sha), env, ErrOutcomeUnknown, err)
	}
	if err != nil {
		return 0, fmt.Errorf("github: deployment of %s@%s to %s: %w", repo, short(sha), env, notFound(err))
	}
	return d.GetID(), nil
}

// notSent says an error means the request never reached GitHub, or GitHub refused it without
// acting: the connection could not be made, a rate limit was never waited out, or no GitHub App
// credential could be had for it.
func notSent(err error) bool {
	var (
		op *net.OpError
		ce *credentialError // no credential could be had: nothing was sent
	)
	return errors.Is(err, ErrRateLimited) || (errors.As(err, &op) && op.Op == "dial") || errors.As(err, &ce)
}

// CreateDeploymentStatus adds a status (queued, in_progress, success, failure, error, inactive)
// to a deployment.
func (c *Client) CreateDeploymentStatus(ctx context.Context, repo string, id int64, state, description, logURL string) error {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return err
	}
	req := &gh.DeploymentStatusRequest{State: &state, Description: gh.String(truncate(description, maxStatusDescription))}
	if logURL != "" {
		req.LogURL = &logURL
	}
	if _, _, err := c.gh.Repositories.CreateDeploymentStatus(sendOnce(ctx), owner, name, id, req); err != nil {
		return fmt.Errorf("github: status of deployment %d of %s: %w", id, repo, notFound(err))
	}
	return nil
}

// CurrentDeployment finds what runs in env: the newest deployment to env whose latest status is
// success. found is false when there is none.
//
// GitHub lists deployments, and each deployment's statuses, newest first, but a deployment's
// latest status takes a request of its own. So the deployments are listed 100 to a page and
// their latest statuses asked for in waves, newest first: the newest deployment alone (usually
// the one running, so 2 requests in all), then as many at a time as the client's concurrency
// allows, until a wave holds a success. The answer is the one asking deployment by deployment
// would give: the first, newest first, whose latest status is success, unless asking about a
// deployment newer than it failed, which fails the whole call (it is never "none found").
func (c *Client) CurrentDeployment(ctx context.Context, repo, env string) (sha string, id int64, found bool, err error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return "", 0, false, err
	}
	opt := &gh.DeploymentsListOptions{Environment: env, ListOptions: gh.ListOptions{PerPage: perPage, Page: 1}}
	wave := 1
	for {
		deps, resp, err := c.gh.Repositories.ListDeployments(ctx, owner, name, opt)
		if err != nil {
			return "", 0, false, fmt.Errorf("github: deployments of %s to %s: %w", repo, env, notFound(err))
		}
		for len(deps) > 0 {
			batch := deps[:min(wave, len(deps))]
			deps, wave = deps[len(batch):], max(c.concurrency, 1)
			// Every answer of the wave is kept, so they are read in order below, as one by one.
			latest, errs := make([]string, len(batch)), make([]error, len(batch))
			err := forEach(ctx, len(batch), c.concurrency, func(ctx context.Context, i int) error {
				statuses, _, err := c.gh.Repositories.ListDeploymentStatuses(ctx, owner, name, batch[i].GetID(), &gh.ListOptions{PerPage: 1})
				if err != nil {
					errs[i] = fmt.Errorf("github: statuses of deployment %d of %s: %w", batch[i].GetID(), repo, notFound(err))
				} else if len(statuses) > 0 {
					latest[i] = statuses[0].GetState()
				}
				return nil
			})
			if err != nil { // only the context's: the wave may not all have been asked
				return "", 0, false, fmt.Errorf("github: statuses of deployments of %s to %s: %w", repo, env, err)
			}
			for i, d := range batch {
				switch {
				case errs[i] != nil:
					return "", 0, false, errs[i]
				case latest[i] == "success":
					return d.GetSHA(), d.GetID(), true, nil
				}
			}
		}
		if resp.NextPage == 0 {
			return "", 0, false, nil
		}
		opt.Page = resp.NextPage
	}
}

// DeploymentPayloads lists the deployments of sha to env, newest first, as id → payload. It is
// how an interrupted confirmation finds out whether GitHub got its deployment.
func (c *Client) DeploymentPayloads(ctx context.Context, repo, sha, env string) (map[int64]json.RawMessage, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	out := map[int64]json.RawMessage{}
	opt := &gh.DeploymentsListOptions{SHA: sha, Environment: env, ListOptions: gh.ListOptions{PerPage: perPage, Page: 1}}
	for {
		deps, resp, err := c.gh.Repositories.ListDeployments(ctx, owner, name, opt)
		if err != nil {
			return nil, fmt.Errorf("github: deployments of %s@%s to %s: %w", repo, short(sha), env, notFound(err))
		}
		for _, d := range deps {
			out[d.GetID()] = d.Payload
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opt.Page = resp.NextPage
	}
}

// DefaultBranch returns the repository's default branch and the SHA at its tip.
func (c *Client) DefaultBranch(ctx context.Context, repo string) (name, sha string, err error) {
	owner, rname, err := splitRepo(repo)
	if err != nil {
		return "", "", err
	}
	// The branch's name and its tip at the same time: HEAD is the default branch. Both are
	// waited for, and the repository's error wins, so a failure reads the same every time.
	var errs [2]error
	forEach(ctx, 2, 2, func(ctx context.Context, i int) error {
		if i == 1 {
			sha, errs[1] = c.lookupRef(ctx, owner, rname, "HEAD")
			return nil
		}
		r, _, err := c.gh.Repositories.Get(ctx, owner, rname)
		if err != nil {
			errs[0] = fmt.Errorf("github: repository %s: %w", repo, notFound(err))
			return nil
		}
		name = r.GetDefaultBranch()
		return nil
	})
	for _, err := range errs {
		if err != nil {
			return "", "", err
		}
	}
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	if name == "" {
		return "", "", fmt.Errorf("github: repository %s: GitHub names no default branch", repo)
	}
	return name, sha, nil
}

// File reads a file at ref ("" for the default branch). found is false only when GitHub's tree
// at ref confirms there is no such file: a 404 from the contents API alone proves nothing (a
// token that lost access to the repository, or a proxy, answers 404 too), and any doubt is an
// error, so a caller never falls back to a default on a guess.
func (c *Client) File(ctx context.Context, repo, path, ref string) (content []byte, found bool, err error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return nil, false, err
	}
	var opt *gh.RepositoryContentGetOptions
	if ref != "" {
		opt = &gh.RepositoryContentGetOptions{Ref: ref}
	}
	file, dir, _, err := c.gh.Repositories.GetContents(ctx, owner, name, path, opt)
	if hasStatus(err, 404) {
		if err := c.confirmAbsent(ctx, owner, name, path, ref); err != nil {
			return nil, false, fmt.Errorf("github: file %s of %s@%s: the contents API answered 404, but %w", path, repo, ref, err)
		}
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("github: file %s of %s@%s: %w", path, repo, ref, err)
	}
	if file == nil || dir != nil {
		return nil, false, fmt.Errorf("github: file %s of %s@%s: is a directory", path, repo, ref)
	}
	text, err := file.GetContent()
	if err != nil {
		return nil, false, fmt.Errorf("github: file %s of %s@%s: %w", path, repo, ref, err)
	}
	return []byte(text), true, nil
}

// confirmAbsent reads the repository's tree at ref and returns nil only if it is complete and
// does not list path.
func (c *Client) confirmAbsent(ctx context.Context, owner, name, path, ref string) error {
	if ref == "" {
		ref = "HEAD"
	}
	recursive := strings.Contains(path, "/")
	tree, _, err := c.gh.Git.GetTree(ctx, owner, name, ref, recursive)
	if err != nil {
		return fmt.Errorf("the tree at that commit could not be read to confirm it: %w", err)
	}
	if tree.GetTruncated() {
		return errors.New("the tree at that commit is too large for GitHub to list whole, so the file's absence cannot be confirmed")
	}
	for _, e := range tree.Entries {
		if e.GetPath() == path {
			return errors.New("the tree at that commit lists it")
		}
	}
	return nil
}

// PathCommits lists the SHAs of the commits reachable from ref that changed path, newest first,
// as `git log ref -- path` does (GET /commits?sha=ref&path=path).
func (c *Client) PathCommits(ctx context.Context, repo, ref, path string) ([]string, error) {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return nil, err
	}
	commits, err := allPages(ctx, c.concurrency, func(ctx context.Context, opt gh.ListOptions) ([]*gh.RepositoryCommit, *gh.Response, error) {
		return c.gh.Repositories.ListCommits(ctx, owner, name, &gh.CommitsListOptions{SHA: ref, Path: path, ListOptions: opt})
	})
	if err != nil {
		return nil, fmt.Errorf("github: commits of %s@%s that change %s: %w", repo, short(ref), path, notFound(err))
	}
	shas := make([]string, 0, len(commits))
	for _, rc := range commits {
		shas = append(shas, rc.GetSHA())
	}
	return shas, nil
}
