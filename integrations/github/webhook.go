package github

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	gh "github.com/google/go-github/v62/github"

	"sockembot/compliance"
)

// ErrBadSignature means a webhook's X-Hub-Signature-256 does not match its body.
var ErrBadSignature = errors.New("github: webhook signature does not match")

// ErrUnhandledEvent is an event type sockembot does not act on (it may still be a valid one).
var ErrUnhandledEvent = errors.New("github: event type not handled")

// ErrIncompleteEvent is a payload of a handled event type that lacks something the gates need.
var ErrIncompleteEvent = errors.New("github: incomplete event")

// VerifySignature checks a webhook delivery's X-Hub-Signature-256 header ("sha256=<hex>")
// against the HMAC-SHA256 of the raw body. Unlike go-github's ValidatePayload, it never accepts
// the SHA-1 header and never skips the check for an empty secret: an unsigned delivery could
// otherwise forge a merge event.
func VerifySignature(secret, body []byte, header string) error {
	if len(secret) == 0 {
		return errors.New("github: webhook secret is not configured")
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return errors.New("github: webhook has no sha256 signature")
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return errors.New("github: webhook signature is malformed")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// ParseEvent decodes a webhook body for its X-GitHub-Event type with go-github and returns it as
// the plain value the gates act on: compliance.PullRequestEvent, ReviewEvent, PushEvent,
// DeploymentStatusEvent, CheckRunEvent, CheckSuiteEvent, MergeGroupEvent or
// DeploymentProtectionRuleEvent. A body go-github cannot decode is an error; so is an event type
// sockembot does not handle (ErrUnhandledEvent); so is a payload missing something the gates
// need to act on it (ErrIncompleteEvent, naming what is missing). GitHub's deliveries carry all
// of them (every real payload in testdata/ does); a payload without them could only fail on the
// queue, or worse, be acted on with a zero value (a merged pull request taken for unmerged, a
// push to no known branch ignored).
func ParseEvent(eventType string, body []byte) (any, error) {
	ev, err := gh.ParseWebHook(eventType, body)
	if err != nil {
		return nil, fmt.Errorf("github: %s event: %w", eventType, err)
	}
	var missing []string
	need := func(ok bool, what string) {
		if !ok {
			missing = append(missing, what)
		}
	}
	var out any
	switch ev := ev.(type) {
	case *gh.PullRequestEvent:
		pr := ev.GetPullRequest()
		number := ev.GetNumber()
		if number == 0 {
			number = pr.GetNumber()
		}
		need(pr != nil, "pull_request")
		if pr != nil {
			need(number > 0, "number")
			need(pr.GetHead().GetSHA() != "", "pull_request.head.sha")
			need(pr.GetBase().GetSHA() != "", "pull_request.base.sha")
			need(pr.GetState() != "", "pull_request.state")
			// Without it a merged pull request would read as closed unmerged: no merge verdict.
			need(ev.GetAction() != "closed" || pr.Merged != nil, "pull_request.merged")
		}
		needRepo(need, ev.GetRepo() != nil, ev.GetRepo().GetFullName())
		out = compliance.PullRequestEvent{
			Action: ev.GetAction(), Repo: ev.GetRepo().GetFullName(), Number: number,
			HeadSHA: pr.GetHead().GetSHA(), State: pr.GetState(), Merged: pr.GetMerged(),
		}
	case *gh.PullRequestReviewEvent:
		pr, rv := ev.GetPullRequest(), ev.GetReview()
		need(rv != nil, "review")
		if rv != nil {
			need(rv.GetState() != "", "review.state")
		}
		need(pr != nil, "pull_request")
		if pr != nil {
			need(pr.GetNumber() > 0, "pull_request.number")
			need(pr.GetHead().GetSHA() != "", "pull_request.head.sha")
			need(pr.GetBase().GetSHA() != "", "pull_request.base.sha")
			need(pr.GetState() != "", "pull_request.state")
		}
		needRepo(need, ev.GetRepo() != nil, ev.GetRepo().GetFullName())
		out = compliance.ReviewEvent{
			Action: ev.GetAction(), Repo: ev.GetRepo().GetFullName(), Number: pr.GetNumber(),
			HeadSHA: pr.GetHead().GetSHA(), PRState: pr.GetState(),
			Review: compliance.Review{
				User: rv.GetUser().GetLogin(), State: strings.ToUpper(rv.GetState()), CommitID: rv.GetCommitID(),
				SubmittedAt: rv.GetSubmittedAt().Time, Bot: isBot(rv.GetUser()), Association: rv.GetAuthorAssociation(),
			},
		}
	case *gh.PushEvent:
		branch := ev.GetRepo().GetDefaultBranch()
		if branch == "" {
			branch = ev.GetRepo().GetMasterBranch()
		}
		need(ev.GetRef() != "", "ref")
		need(ev.GetAfter() != "", "after")
		// An absent list is not an empty push: without it a direct push would go unseen.
		need(ev.Commits != nil, "commits")
		needRepo(need, ev.GetRepo() != nil, ev.GetRepo().GetFullName())
		if ev.GetRepo() != nil {
			need(branch != "", "repository.default_branch")
		}
		push := compliance.PushEvent{
			Repo: ev.GetRepo().GetFullName(), Ref: ev.GetRef(), DefaultBranch: branch, Deleted: ev.GetDeleted(),
			Pusher: authorLogin(ev.GetPusher()), Compare: ev.GetCompare(),
		}
		for _, c := range ev.Commits {
			push.Commits = append(push.Commits, compliance.Commit{
				SHA: c.GetID(), Message: c.GetMessage(), Author: authorLogin(c.GetAuthor()),
				Committer: authorLogin(c.GetCommitter()), AuthoredAt: c.GetTimestamp().Time, URL: c.GetURL(),
			})
			push.Paths = append(push.Paths, c.Added...)
			push.Paths = append(push.Paths, c.Modified...)
			push.Paths = append(push.Paths, c.Removed...)
		}
		if hc := ev.GetHeadCommit(); hc != nil {
			push.Paths = append(push.Paths, hc.Added...)
			push.Paths = append(push.Paths, hc.Modified...)
			push.Paths = append(push.Paths, hc.Removed...)
		}
		slices.Sort(push.Paths)
		push.Paths = slices.Compact(push.Paths)
		for i, c := range push.Commits {
			if c.SHA == "" {
				need(false, fmt.Sprintf("commits[%d].id", i))
			}
		}
		out = push
	case *gh.DeploymentStatusEvent:
		d, st := ev.GetDeployment(), ev.GetDeploymentStatus()
		need(d != nil, "deployment")
		if d != nil {
			need(d.GetID() != 0, "deployment.id")
		}
		need(st != nil, "deployment_status")
		if st != nil {
			need(st.GetID() != 0, "deployment_status.id")
			need(st.GetState() != "", "deployment_status.state")
		}
		needRepo(need, ev.GetRepo() != nil, ev.GetRepo().GetFullName())
		var payload json.RawMessage
		if d != nil {
			payload = d.Payload
		}
		out = compliance.DeploymentStatusEvent{
			Repo: ev.GetRepo().GetFullName(), DeploymentID: d.GetID(), SHA: d.GetSHA(), Payload: payload,
			StatusID: st.GetID(), State: st.GetState(), Description: st.GetDescription(),
			LogURL: st.GetLogURL(), TargetURL: st.GetTargetURL(), Creator: st.GetCreator().GetLogin(),
			CreatedAt: st.GetCreatedAt().Time,
		}
	case *gh.CheckRunEvent:
		cr := ev.GetCheckRun()
		need(cr != nil, "check_run")
		if cr != nil {
			need(cr.GetID() != 0, "check_run.id")
			need(cr.GetName() != "", "check_run.name")
			need(cr.GetHeadSHA() != "", "check_run.head_sha")
		}
		var requested string
		var prs []int
		if cr != nil {
			prs = pullNumbers(cr.PullRequests)
		}
		if ev.RequestedAction != nil {
			requested = ev.RequestedAction.Identifier
		}
		// Without it a pressed button would do nothing, or the wrong thing.
		need(ev.GetAction() != "requested_action" || requested != "", "requested_action.identifier")
		needRepo(need, ev.GetRepo() != nil, ev.GetRepo().GetFullName())
		out = compliance.CheckRunEvent{
			Action: ev.GetAction(), Repo: ev.GetRepo().GetFullName(), CheckRunID: cr.GetID(),
			Name: cr.GetName(), HeadSHA: cr.GetHeadSHA(), AppID: cr.GetApp().GetID(),
			RequestedAction: requested, PullRequests: prs,
			Sender: ev.GetSender().GetLogin(),
		}
	case *gh.CheckSuiteEvent:
		cs := ev.GetCheckSuite()
		need(cs != nil, "check_suite")
		var prs []int
		if cs != nil {
			need(cs.GetHeadSHA() != "", "check_suite.head_sha")
			prs = pullNumbers(cs.PullRequests)
		}
		needRepo(need, ev.GetRepo() != nil, ev.GetRepo().GetFullName())
		out = compliance.CheckSuiteEvent{
			Action: ev.GetAction(), Repo: ev.GetRepo().GetFullName(), HeadSHA: cs.GetHeadSHA(),
			AppID: cs.GetApp().GetID(), PullRequests: prs,
			Sender: ev.GetSender().GetLogin(),
		}
	case *gh.MergeGroupEvent:
		g := ev.GetMergeGroup()
		need(g != nil, "merge_group")
		if g != nil {
			need(g.GetHeadSHA() != "", "merge_group.head_sha")
			need(g.GetBaseSHA() != "", "merge_group.base_sha")
		}
		needRepo(need, ev.GetRepo() != nil, ev.GetRepo().GetFullName())
		// go-github's MergeGroupEvent has no reason (destroyed: merged, invalidated, dequeued).
		var extra struct {
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal(body, &extra); err != nil {
			return nil, fmt.Errorf("github: %s event: reason: %w", eventType, err)
		}
		out = compliance.MergeGroupEvent{
			Action: ev.GetAction(), Repo: ev.GetRepo().GetFullName(),
			BaseSHA: g.GetBaseSHA(), HeadSHA: g.GetHeadSHA(), BaseRef: g.GetBaseRef(), HeadRef: g.GetHeadRef(),
			Reason: extra.Reason, Sender: ev.GetSender().GetLogin(),
		}
	case *gh.DeploymentProtectionRuleEvent:
		rule, err := protectionRule(ev, body)
		if err != nil {
			return nil, fmt.Errorf("github: %s event: %w", eventType, err)
		}
		need(rule.Environment != "", "environment")
		need(rule.CallbackURL != "", "deployment_callback_url")
		need(rule.SHA != "", "sha (or deployment.sha)")
		need(rule.RunID > 0, "workflow_run.id (or a run id in deployment_callback_url)")
		needRepo(need, ev.GetRepo() != nil, rule.Repo)
		out = rule
	default:
		return nil, fmt.Errorf("%w: %s", ErrUnhandledEvent, eventType)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s event without %s", ErrIncompleteEvent, eventType, strings.Join(missing, ", "))
	}
	return out, nil
}

// needRepo requires the repository and an OWNER/NAME full name: every gate addresses GitHub by it.
func needRepo(need func(bool, string), present bool, fullName string) {
	need(present, "repository")
	if !present {
		return
	}
	owner, name, ok := strings.Cut(fullName, "/")
	need(ok && owner != "" && name != "" && !strings.Contains(name, "/"), "repository.full_name (OWNER/NAME)")
}

// authorLogin is a push's person as sockembot names people: the GitHub login when the payload has
// one, else the name from the commit.
func authorLogin(c *gh.CommitAuthor) string {
	if c == nil {
		return ""
	}
	if c.GetLogin() != "" {
		return c.GetLogin()
	}
	return c.GetName()
}

// isBot says whether a user is a bot account (a GitHub App, an Actions workflow).
func isBot(u *gh.User) bool {
	return u.GetType() == "Bot" || strings.HasSuffix(u.GetLogin(), "[bot]")
}

// pullNumbers are the numbers of the pull requests a check run or suite lists.
func pullNumbers(prs []*gh.PullRequest) []int {
	var out []int
	for _, p := range prs {
		if n := p.GetNumber(); n > 0 {
			out = append(out, n)
		}
	}
	return out
}

var runInCallback = regexp.MustCompile(`/actions/runs/([0-9]{1,19})/`)

// protectionRule maps a deployment_protection_rule delivery. Real deliveries carry the SHA, the
// ref and the workflow run at top level, fields go-github's type lacks, and their deployment may
// be only {id, environment}: the SHA is deployment.sha else sha; the run is workflow_run.id else
// the one the callback URL names.
func protectionRule(ev *gh.DeploymentProtectionRuleEvent, body []byte) (compliance.DeploymentProtectionRuleEvent, error) {
	var extra struct {
		SHA         string `json:"sha"`
		Ref         string `json:"ref"`
		WorkflowRun *struct {
			ID      int64  `json:"id"`
			HTMLURL string `json:"html_url"`
		} `json:"workflow_run"`
	}
	if err := json.Unmarshal(body, &extra); err != nil {
		return compliance.DeploymentProtectionRuleEvent{}, err
	}
	d := ev.GetDeployment()
	out := compliance.DeploymentProtectionRuleEvent{
		Repo: ev.GetRepo().GetFullName(), Environment: ev.GetEnvironment(), Event: ev.GetEvent(),
		CallbackURL: ev.GetDeploymentCallbackURL(), DeploymentID: d.GetID(),
		SHA: d.GetSHA(), Ref: d.GetRef(), Sender: ev.GetSender().GetLogin(),
		PullRequests: pullNumbers(ev.PullRequests),
	}
	if out.SHA == "" {
		out.SHA = extra.SHA
	}
	if out.Ref == "" {
		out.Ref = extra.Ref
	}
	if extra.WorkflowRun != nil {
		out.RunID, out.RunURL = extra.WorkflowRun.ID, extra.WorkflowRun.HTMLURL
	}
	if out.RunID <= 0 {
		if m := runInCallback.FindStringSubmatch(out.CallbackURL); m != nil {
			out.RunID, _ = strconv.ParseInt(m[1], 10, 64)
		}
	}
	if out.RunURL == "" && out.RunID > 0 {
		out.RunURL = runPage(ev.GetRepo(), out.CallbackURL, out.RunID)
	}
	return out, nil
}

// runPage is the web page of a workflow run: under the repository's html_url, else the web host
// the callback URL's API host stands for (api.github.com → github.com; GitHub Enterprise serves
// both on one host, the API under /api/v3). "" when neither says.
func runPage(repo *gh.Repository, callbackURL string, runID int64) string {
	suffix := fmt.Sprintf("/actions/runs/%d", runID)
	if h := strings.TrimSuffix(repo.GetHTMLURL(), "/"); h != "" {
		return h + suffix
	}
	u, err := url.Parse(callbackURL)
	if err != nil || u.Host == "" || repo.GetFullName() == "" {
		return ""
	}
	host := u.Host
	switch {
	case strings.EqualFold(host, "api.github.com"):
		host = "github.com"
	case strings.HasPrefix(u.Path, "/api/v3/"):
	default:
		return ""
	}
	return u.Scheme + "://" + host + "/" + repo.GetFullName() + suffix
}
