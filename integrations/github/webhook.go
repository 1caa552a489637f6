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
// sockembot does not handle (ErrUnhandledEvent).
func ParseEvent(eventType string, body []byte) (any, error) {
	ev, err := gh.ParseWebHook(eventType, body)
	if err != nil {
		return nil, fmt.Errorf("github: %s event: %w", eventType, err)
	}
	switch ev := ev.(type) {
	case *gh.PullRequestEvent:
		pr := ev.GetPullRequest()
		number := ev.GetNumber()
		if number == 0 {
			number = pr.GetNumber()
		}
		return compliance.PullRequestEvent{
			Action: ev.GetAction(), Repo: ev.GetRepo().GetFullName(), Number: number,
			HeadSHA: pr.GetHead().GetSHA(), State: pr.GetState(), Merged: pr.GetMerged(),
		}, nil
	case *gh.PullRequestReviewEvent:
		pr, rv := ev.GetPullRequest(), ev.GetReview()
		return compliance.ReviewEvent{
			Action: ev.GetAction(), Repo: ev.GetRepo().GetFullName(), Number: pr.GetNumber(),
			HeadSHA: pr.GetHead().GetSHA(), PRState: pr.GetState(),
			Review: compliance.Review{
				User: rv.GetUser().GetLogin(), State: strings.ToUpper(rv.GetState()), CommitID: rv.GetCommitID(),
				SubmittedAt: rv.GetSubmittedAt().Time, Bot: isBot(rv.GetUser()), Association: rv.GetAuthorAssociation(),
			},
		}, nil
	case *gh.PushEvent:
		branch := ev.GetRepo().GetDefaultBranch()
		if branch == "" {
			branch = ev.GetRepo().GetMasterBranch()
		}
		out := compliance.PushEvent{
			Repo: ev.GetRepo().GetFullName(), Ref: ev.GetRef(), DefaultBranch: branch, Deleted: ev.GetDeleted(),
			Pusher: authorLogin(ev.GetPusher()), Compare: ev.GetCompare(),
		}
		for _, c := range ev.Commits {
			out.Commits = append(out.Commits, compliance.Commit{
				SHA: c.GetID(), Message: c.GetMessage(), Author: authorLogin(c.GetAuthor()),
				Committer: authorLogin(c.GetCommitter()), AuthoredAt: c.GetTimestamp().Time, URL: c.GetURL(),
			})
		}
		return out, nil
	case *gh.DeploymentStatusEvent:
		d, st := ev.GetDeployment(), ev.GetDeploymentStatus()
		var payload json.RawMessage
		if d != nil { // a partial payload must not panic: the gate finds no deploy and ignores it
			payload = d.Payload
		}
		return compliance.DeploymentStatusEvent{
			Repo: ev.GetRepo().GetFullName(), DeploymentID: d.GetID(), SHA: d.GetSHA(), Payload: payload,
			StatusID: st.GetID(), State: st.GetState(), Description: st.GetDescription(),
			LogURL: st.GetLogURL(), TargetURL: st.GetTargetURL(), Creator: st.GetCreator().GetLogin(),
			CreatedAt: st.GetCreatedAt().Time,
		}, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnhandledEvent, eventType)
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
