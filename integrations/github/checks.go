package github

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"

	"sockembot/compliance"
)

// RecheckAction is the identifier of the check run's Re-check button (check_run requested_action).
const RecheckAction = "recheck"

const (
	// maxCheckText is GitHub's limit on a check run's output summary (and text): 65,535
	// characters. Longer is a 422, which would leave the pull request without a verdict.
	maxCheckText = 65535
	// maxCheckTitle keeps a check run's output title to one readable line.
	maxCheckTitle = 255
	// maxProtectionComment is GitHub's limit on a deployment protection rule review's comment.
	maxProtectionComment = 65535
)

// checkConclusions are the conclusions a check run can be completed with ("stale" is GitHub's
// own).
var checkConclusions = map[string]bool{
	"success": true, "failure": true, "neutral": true, "cancelled": true,
	"skipped": true, "timed_out": true, "action_required": true,
}

// StartCheckRun creates check run `name` on headSHA, status in_progress, and returns its id.
// It needs GitHub App auth: GitHub answers 403 to a user's token.
//
// The POST is retried after a lost answer like a status: at worst GitHub gets two runs of the
// same name, and shows (and requires) the newer, which is the one whose id this returns.
func (c *Client) StartCheckRun(ctx context.Context, repo, headSHA, name string) (int64, error) {
	owner, rname, err := splitRepo(repo)
	if err != nil {
		return 0, err
	}
	if name == "" {
		return 0, fmt.Errorf("github: check run on %s@%s: no name", repo, short(headSHA))
	}
	run, _, err := c.gh.Checks.CreateCheckRun(ctx, owner, rname, gh.CreateCheckRunOptions{
		Name: name, HeadSHA: headSHA, Status: gh.String("in_progress"),
		StartedAt: &gh.Timestamp{Time: time.Now()},
	})
	if err != nil {
		return 0, fmt.Errorf("github: start check run %q on %s@%s: %w", name, repo, short(headSHA), notFound(err))
	}
	return run.GetID(), nil
}

// FinishCheckRun completes the check run id (or, when id is 0 because starting it failed, creates
// it completed): conclusion (success, failure, neutral, ...), output title and summary (markdown),
// and when recheck is true a "Re-check" button (identifier RecheckAction). The summary is clipped
// to GitHub's 65,535 characters, the title to 255. A check run GitHub no longer knows (404) is
// created anew, completed: the verdict must land.
func (c *Client) FinishCheckRun(ctx context.Context, repo, headSHA, name string, id int64, conclusion, title, summary string, recheck bool) error {
	owner, rname, err := splitRepo(repo)
	if err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("github: check run on %s@%s: no name", repo, short(headSHA))
	}
	if !checkConclusions[conclusion] {
		return fmt.Errorf("github: check run %q on %s@%s: %q is not a check run conclusion", name, repo, short(headSHA), conclusion)
	}
	if title == "" {
		title = name
	}
	output := &gh.CheckRunOutput{
		Title:   gh.String(truncate(strings.TrimSpace(title), maxCheckTitle)),
		Summary: gh.String(truncate(summary, maxCheckText)),
	}
	var actions []*gh.CheckRunAction
	if recheck {
		actions = []*gh.CheckRunAction{{
			Label:       "Re-check",                          // ≤ 20 characters
			Description: "Check tickets and approvals again", // ≤ 40 characters
			Identifier:  RecheckAction,                       // ≤ 20 characters
		}}
	}
	now := &gh.Timestamp{Time: time.Now()}
	if id != 0 {
		_, _, err := c.gh.Checks.UpdateCheckRun(ctx, owner, rname, id, gh.UpdateCheckRunOptions{
			Name: name, Status: gh.String("completed"), Conclusion: &conclusion, CompletedAt: now,
			Output: output, Actions: actions,
		})
		if err == nil {
			return nil
		}
		if !hasStatus(err, 404) {
			return fmt.Errorf("github: finish check run %d (%q) on %s@%s: %w", id, name, repo, short(headSHA), err)
		}
	}
	_, _, err = c.gh.Checks.CreateCheckRun(ctx, owner, rname, gh.CreateCheckRunOptions{
		Name: name, HeadSHA: headSHA, Status: gh.String("completed"), Conclusion: &conclusion,
		CompletedAt: now, Output: output, Actions: actions,
	})
	if err != nil {
		return fmt.Errorf("github: check run %q (%s) on %s@%s: %w", name, conclusion, repo, short(headSHA), notFound(err))
	}
	return nil
}

// ReviewProtectionRule answers a GitHub Actions deployment protection rule: POST callbackURL
// {environment_name, state (approved|rejected), comment}. It needs GitHub App auth (the App
// that the environment's protection rule names).
//
// The callback URL comes from a webhook: it is only followed when it is this client's API base
// and the path is repos/<repo>/actions/runs/<run id>/deployment_protection_rule of this same
// repository. Anything else is refused without a request: the installation token only ever goes
// to GitHub, and only for the repository it answers for. The comment is clipped to 65,535
// characters. A lost answer is retried: answering the same way twice is harmless, while a job
// left without an answer waits for days.
func (c *Client) ReviewProtectionRule(ctx context.Context, repo, callbackURL, environment, state, comment string) error {
	owner, name, err := splitRepo(repo)
	if err != nil {
		return err
	}
	if state != "approved" && state != "rejected" {
		return fmt.Errorf("github: deployment protection rule of %s: state %q is neither approved nor rejected", repo, state)
	}
	if environment == "" {
		return fmt.Errorf("github: deployment protection rule of %s: no environment", repo)
	}
	path, err := c.protectionCallback(owner, name, callbackURL)
	if err != nil {
		return err
	}
	body := struct {
		Environment string `json:"environment_name"`
		State       string `json:"state"`
		Comment     string `json:"comment"`
	}{environment, state, truncate(comment, maxProtectionComment)}
	req, err := c.gh.NewRequest("POST", path, body)
	if err != nil {
		return fmt.Errorf("github: deployment protection rule of %s: %w", repo, err)
	}
	if _, err := c.gh.Do(ctx, req, nil); err != nil {
		if hasStatus(err, http.StatusUnprocessableEntity) {
			// GitHub takes one answer per run and environment: a repeat (a retry whose first
			// answer landed, a redelivery) is refused with 422.
			return fmt.Errorf("github: %s deployment to %s of %s (%s): %w (or the environment does not wait on sockembot): %w", state, environment, repo, path, compliance.ErrAlreadyAnswered, err)
		}
		return fmt.Errorf("github: %s deployment to %s of %s (%s): %w", state, environment, repo, path, notFound(err))
	}
	return nil
}

// protectionPath is a callback's path under the API base. Owner and repository names are
// GitHub's characters only: nothing in them can change where the request goes.
var protectionPath = regexp.MustCompile(`^repos/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)/actions/runs/([0-9]{1,19})/deployment_protection_rule$`)

// protectionCallback checks a deployment protection rule's callback URL (see
// ReviewProtectionRule) and returns its path relative to the API base.
func (c *Client) protectionCallback(owner, name, callbackURL string) (string, error) {
	refuse := func(why string) (string, error) {
		return "", fmt.Errorf("github: refusing deployment protection callback %.200q for %s/%s: %s", callbackURL, owner, name, why)
	}
	u, err := url.Parse(callbackURL)
	if err != nil {
		return refuse("not a URL")
	}
	base := c.gh.BaseURL
	if !strings.EqualFold(u.Scheme, base.Scheme) || !strings.EqualFold(u.Host, base.Host) || u.User != nil {
		return refuse("not on the GitHub API (" + base.Scheme + "://" + base.Host + ")")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.RawPath != "" {
		return refuse("unexpected query, fragment or escapes")
	}
	rel, ok := strings.CutPrefix(u.Path, base.Path)
	if !ok {
		return refuse("not under the API base path " + base.Path)
	}
	m := protectionPath.FindStringSubmatch(rel)
	if m == nil || strings.Trim(m[1], ".") == "" || strings.Trim(m[2], ".") == "" {
		return refuse("path is not repos/OWNER/NAME/actions/runs/ID/deployment_protection_rule")
	}
	if !strings.EqualFold(m[1], owner) || !strings.EqualFold(m[2], name) {
		return refuse("it is another repository's")
	}
	// Rebuilt from the checked parts, relative to the base: nothing else of the URL is used.
	return fmt.Sprintf("repos/%s/%s/actions/runs/%s/deployment_protection_rule", m[1], m[2], m[3]), nil
}
