package github

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
// the plain value the gates act on: compliance.PullRequestEvent, ReviewEvent, PushEvent or
// DeploymentStatusEvent. A body go-github cannot decode is an error; so is an event type
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
		}
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
