package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"

	gh "github.com/google/go-github/v62/github"

	"sockembot/compliance"
)

// `sockembot audit report --github` checks that the evidence is the whole population: it asks
// GitHub which deployments reached an environment and which commits reached the default branch
// in the audit period, to find those sockembot did not make or check. Both lists are read whole
// (a missing page would hide exactly what the audit looks for) and fail closed, within a bound.

// AuditLimit bounds one audit listing: at most this many deployments or commits are read (200
// pages of 100). Past it the listing fails with ErrAuditLimit instead of reading on: a period
// that holds more is audited in shorter periods.
const AuditLimit = 20000

// listLimit is AuditLimit, or the lower limit a test set (so it need not build 20,000 items).
func (c *Client) listLimit() int {
	if c.auditLimit > 0 {
		return c.auditLimit
	}
	return AuditLimit
}

// ErrAuditLimit means a listing would read more than AuditLimit items.
var ErrAuditLimit = errors.New("too many to list for one audit")

// Deployment is one GitHub deployment as an audit lists it (a plain value of the domain, so the
// audit reads it without importing this adapter).
type Deployment = compliance.Deployment

// Deployments lists the deployments of repo to env created in [from, to), newest first. GitHub lists
// newest first, so paging stops at the first page reaching past from. env "" means every environment.
//
// GitHub's list has no date filter (its query parameters are sha, ref, task and environment), so
// the period is applied here, to created_at; the deployments newer than to are read too, as they
// come first, and count towards AuditLimit. A deployment listed twice (new ones pushed the list
// along while it was read) is kept once. A list that is not newest first (by ID) is an error, as
// stopping early would then be wrong.
func (c *Client) Deployments(ctx context.Context, repo, env string, from, to time.Time) ([]Deployment, error) {
	owner, name, err := auditRepo(repo)
	if err != nil {
		return nil, err
	}
	if err := checkEnvName(env); err != nil {
		return nil, err
	}
	if err := checkPeriod(from, to); err != nil {
		return nil, err
	}
	where := repo + " to every environment"
	if env != "" {
		where = fmt.Sprintf("%s to %s", repo, env)
	}
	opt := &gh.DeploymentsListOptions{Environment: env, ListOptions: gh.ListOptions{PerPage: perPage, Page: 1}}
	var (
		out  []Deployment
		seen = map[int64]bool{}
		last int64 // the ID of the last deployment read; each next one is older
		read int
	)
	for {
		deps, resp, err := c.gh.Repositories.ListDeployments(ctx, owner, name, opt)
		if err != nil {
			return nil, fmt.Errorf("github: deployments of %s: %w", where, notFound(err))
		}
		read += len(deps)
		past := false
		for _, d := range deps {
			id := d.GetID()
			if seen[id] {
				continue
			}
			if last != 0 && id > last {
				return nil, fmt.Errorf("github: deployments of %s: GitHub listed deployment %d after %d, not newest first", where, id, last)
			}
			seen[id], last = true, id
			at := d.GetCreatedAt().Time
			switch {
			case at.Before(from):
				past = true
			case at.Before(to):
				out = append(out, auditDeployment(d))
			}
		}
		if past || resp.NextPage == 0 {
			return out, nil
		}
		if read >= c.listLimit() {
			return nil, fmt.Errorf("github: deployments of %s since %s: %w: more than %d deployments to read back to then (GitHub lists them newest first, with no date filter)",
				where, stamp(from), ErrAuditLimit, c.listLimit())
		}
		opt.Page = resp.NextPage
	}
}

func auditDeployment(d *gh.Deployment) Deployment {
	payload := d.Payload
	if len(payload) == 0 || string(payload) == "null" {
		payload = json.RawMessage(`{}`)
	}
	return Deployment{
		ID: d.GetID(), SHA: d.GetSHA(), Ref: d.GetRef(), Environment: d.GetEnvironment(), Task: d.GetTask(),
		Creator: d.GetCreator().GetLogin(), Description: d.GetDescription(), CreatedAt: d.GetCreatedAt().Time,
		Payload: payload, URL: d.GetURL(),
	}
}

// BranchCommits lists the commits reachable from branch whose committer date lies in [from, to), newest
// first (GET /repos/{o}/{r}/commits?sha=BRANCH&since=FROM&until=TO, every page), as compliance.Commit
// (SHA, Message, Author login (or name when GitHub has no account), Committer, AuthoredAt, URL html_url).
//
// GitHub filters as `git log --since --until` does: on the committer date (so a commit authored
// before the period but rebased or cherry-picked onto the branch in it is in), both ends
// included, in whole seconds. The docs say only "Only show results that were last updated after
// the given time" and "Only commits before this date will be returned". So since is sent as
// from and until as to (both cut to the second), and the commits GitHub returns are kept only
// when from <= committer date < to: the one committed exactly at to belongs to the next period.
// Like git, GitHub stops walking history at commits older than since, so a commit of the period
// behind an older-dated one (a committer clock set wrong) can be missed; the audit inherits that.
//
// The pages are read in parallel when GitHub says how many there are (a listing whose last page
// lies past AuditLimit then fails at once, having read one page), else one after the other. A
// commit listed twice, because a push moved the pages along while they were read, is kept once,
// and what the push moved past the last page is read too.
func (c *Client) BranchCommits(ctx context.Context, repo, branch string, from, to time.Time) ([]compliance.Commit, error) {
	owner, name, err := auditRepo(repo)
	if err != nil {
		return nil, err
	}
	if err := checkRefName(branch); err != nil {
		return nil, err
	}
	if err := checkPeriod(from, to); err != nil {
		return nil, err
	}
	where := fmt.Sprintf("%s@%s from %s to %s", repo, branch, stamp(from), stamp(to))
	opts := func(page int) *gh.CommitsListOptions {
		return &gh.CommitsListOptions{
			SHA: branch, Since: from.UTC().Truncate(time.Second), Until: to.UTC().Truncate(time.Second),
			ListOptions: gh.ListOptions{Page: page, PerPage: perPage},
		}
	}
	tooMany := func(more string) error {
		return fmt.Errorf("github: commits of %s: %w: more than %d commits%s; audit a shorter period", where, ErrAuditLimit, c.listLimit(), more)
	}
	first, resp, err := c.gh.Repositories.ListCommits(ctx, owner, name, opts(1))
	if err != nil {
		return nil, fmt.Errorf("github: commits of %s: %w", where, notFound(err))
	}
	pages := [][]datedCommit{datedCommits(first)}
	read, next := len(first), resp.NextPage
	if resp.LastPage > 1 { // GitHub says how many pages: the rest are asked for at once
		if (resp.LastPage-1)*perPage+1 > c.listLimit() {
			return nil, tooMany(fmt.Sprintf(" (GitHub lists %d pages of %d)", resp.LastPage, perPage))
		}
		rest := make([][]datedCommit, resp.LastPage-1)
		var lastNext int
		err := forEach(ctx, len(rest), c.concurrency, func(ctx context.Context, i int) error {
			cs, r, err := c.gh.Repositories.ListCommits(ctx, owner, name, opts(i+2))
			rest[i] = datedCommits(cs)
			if err == nil && i == len(rest)-1 {
				lastNext = r.NextPage
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("github: commits of %s: %w", where, notFound(err))
		}
		for _, p := range rest {
			read += len(p)
		}
		pages = append(pages, rest...)
		// Commits pushed while the pages were read (committed in the period, pushed after it
		// began) move the older ones to later pages: the last page then links to one more.
		next = lastNext
	}
	for next != 0 { // rel="next", page by page
		if read >= c.listLimit() {
			return nil, tooMany("")
		}
		cs, r, err := c.gh.Repositories.ListCommits(ctx, owner, name, opts(next))
		if err != nil {
			return nil, fmt.Errorf("github: commits of %s: %w", where, notFound(err))
		}
		pages = append(pages, datedCommits(cs))
		read += len(cs)
		next = r.NextPage
	}
	var out []compliance.Commit
	seen := map[string]bool{}
	for _, page := range pages {
		for _, dc := range page {
			if seen[dc.SHA] {
				continue
			}
			seen[dc.SHA] = true
			if dc.committed.IsZero() {
				return nil, fmt.Errorf("github: commits of %s: GitHub gave commit %s no committer date", where, short(dc.SHA))
			}
			if dc.committed.Before(from) || !dc.committed.Before(to) {
				continue
			}
			out = append(out, dc.Commit)
		}
	}
	return out, nil
}

// datedCommit is a listed commit as the audit keeps it, with the date GitHub filtered on. Pages
// are converted as they arrive, so the whole commits (accounts and all) are garbage at once.
type datedCommit struct {
	compliance.Commit
	committed time.Time
}

func datedCommits(cs []*gh.RepositoryCommit) []datedCommit {
	out := make([]datedCommit, len(cs))
	for i, c := range cs {
		out[i] = datedCommit{auditCommit(c), c.GetCommit().GetCommitter().GetDate().Time}
	}
	return out
}

// auditCommit names each person by login, or by the name in the commit when GitHub maps the
// e-mail to no account (it then sends author or committer null): an audit must say who, and a
// name is better than nothing.
func auditCommit(c *gh.RepositoryCommit) compliance.Commit {
	who := func(u *gh.User, id *gh.CommitAuthor) string {
		if login := u.GetLogin(); login != "" {
			return login
		}
		return id.GetName()
	}
	return compliance.Commit{
		SHA: c.GetSHA(), Message: c.GetCommit().GetMessage(),
		Author:     who(c.GetAuthor(), c.GetCommit().GetAuthor()),
		Committer:  who(c.GetCommitter(), c.GetCommit().GetCommitter()),
		AuthoredAt: c.GetCommit().GetAuthor().GetDate().Time, URL: c.GetHTMLURL(),
	}
}

// An audit's repository comes from the evidence or the command line. go-github puts owner and
// name into the URL path unescaped, and resolves dot segments: "acme/.." would ask GitHub about
// another path altogether. So only names GitHub could have pass, before any request.
var (
	// Owners: letters, digits and hyphens (underscores for Enterprise Managed Users).
	ownerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$`)
	// Repositories: letters, digits, '.', '-' and '_', at most 100.
	repoName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
)

func auditRepo(repo string) (owner, name string, err error) {
	owner, name, err = splitRepo(repo)
	if err != nil {
		return "", "", err
	}
	if !ownerName.MatchString(owner) || !repoName.MatchString(name) || name == "." || name == ".." {
		return "", "", fmt.Errorf("github: repository %q is not a GitHub owner/name", repo)
	}
	return owner, name, nil
}

// checkRefName refuses a branch git could not have (git check-ref-format's rules, roughly): it
// is sent as a query parameter, which is escaped, but a name like that is a mistake to report,
// not a question for GitHub.
func checkRefName(ref string) error {
	bad := ref == "" || len(ref) > 255 || strings.Contains(ref, "..") || strings.Contains(ref, "@{") ||
		strings.Contains(ref, "//") || strings.HasPrefix(ref, "-") || strings.HasPrefix(ref, "/") ||
		strings.HasSuffix(ref, "/") || strings.HasSuffix(ref, ".") || strings.HasSuffix(ref, ".lock") ||
		strings.ContainsAny(ref, " ~^:?*[\\")
	for _, r := range ref {
		bad = bad || unicode.IsControl(r)
	}
	if bad {
		return fmt.Errorf("github: %q is not a branch name", ref)
	}
	return nil
}

// checkEnvName refuses an environment name GitHub could not have (at most 255 characters, no
// control characters).
func checkEnvName(env string) error {
	bad := len(env) > 255
	for _, r := range env {
		bad = bad || unicode.IsControl(r)
	}
	if bad {
		return fmt.Errorf("github: %q is not an environment name", env)
	}
	return nil
}

// GitHub's docs: "Due to limitations of Git, timestamps must be between 1970-01-01 and
// 2099-12-31 (inclusive) or unexpected results may be returned."
var (
	earliest = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	latest   = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

func checkPeriod(from, to time.Time) error {
	switch {
	case from.IsZero() || to.IsZero():
		return errors.New("github: an audit period needs a start and an end")
	case !from.Before(to):
		return fmt.Errorf("github: audit period [%s, %s) is empty", stamp(from), stamp(to))
	case from.Before(earliest) || to.After(latest):
		return fmt.Errorf("github: audit period [%s, %s) is outside 1970-2099, where GitHub's dates hold", stamp(from), stamp(to))
	}
	return nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
