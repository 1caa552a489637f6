package slack_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	goslack "github.com/slack-go/slack"

	fakeslack "sockembot/integrations/fake/slack"
	slackapi "sockembot/integrations/slack"
)

// newClient is the adapter against a fresh fake Slack, with its log captured.
func newClient(t *testing.T, cfg fakeslack.Config) (*slackapi.Client, *fakeslack.Server, *logtest.Hook) {
	t.Helper()
	f := fakeslack.New(cfg)
	t.Cleanup(f.Close)
	log := logrus.New()
	log.SetOutput(testWriter{t})
	hook := logtest.NewLocal(log)
	c := slackapi.New(slackapi.Options{BotToken: f.BotToken(), AppToken: f.AppToken(), APIURL: f.APIURL(), Log: log})
	return c, f, hook
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestPostThreadUpdateAndPermalink(t *testing.T) {
	c, f, _ := newClient(t, fakeslack.Config{})
	ctx := context.Background()
	blocks := []goslack.Block{goslack.NewSectionBlock(goslack.NewTextBlockObject(goslack.MarkdownType, "*digest*", false, false), nil, nil)}
	root, err := c.Post(ctx, "C0RELEASE", "", "digest", blocks...)
	if err != nil || root == "" {
		t.Fatalf("post: %q, %v", root, err)
	}
	if _, err := c.Post(ctx, "C0RELEASE", root, "a reply"); err != nil {
		t.Fatal(err)
	}
	if err := c.Update(ctx, "C0RELEASE", root, "digest, deployed"); err != nil {
		t.Fatal(err)
	}
	th := f.Thread("C0RELEASE", root)
	if len(th) != 2 || th[1].Text != "a reply" || th[0].Text != "digest, deployed" || th[0].Edits != 1 || len(th[0].Blocks) > 2 {
		t.Fatalf("thread %+v: want the root edited (its blocks cleared) and one reply", th)
	}
	link, err := c.Permalink(ctx, "C0RELEASE", root)
	if err != nil || !strings.Contains(link, "/archives/C0RELEASE/p") {
		t.Fatalf("permalink %q, %v", link, err)
	}
}

// Slack did not act on a rate-limited call: it is waited out (Retry-After) and made again,
// and the wait is logged. A 429 never drops a digest.
func TestRateLimitedCallIsWaitedOutAndRetried(t *testing.T) {
	c, f, hook := newClient(t, fakeslack.Config{RetryAfter: 1})
	f.RateLimit("chat.postMessage", 2)
	if _, err := c.Post(context.Background(), "C0RELEASE", "", "hello"); err != nil {
		t.Fatal(err)
	}
	calls := f.CallsTo("chat.postMessage")
	if len(calls) != 3 || calls[0].Status != http.StatusTooManyRequests || calls[1].Status != http.StatusTooManyRequests || calls[2].Error != "" {
		t.Fatalf("calls %+v, want two 429s then the post", calls)
	}
	if !slices.ContainsFunc(hook.AllEntries(), func(e *logrus.Entry) bool { return e.Message == "slack: rate limited, waiting" }) {
		t.Error("the wait was not logged")
	}
}

// A caller that gives up while a rate limit is being waited out gets its context's error, and
// the reason it was waiting.
func TestRateLimitWaitEndsWithTheContext(t *testing.T) {
	c, f, _ := newClient(t, fakeslack.Config{RetryAfter: 30})
	f.RateLimit("chat.postMessage", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Post(ctx, "C0RELEASE", "", "hello")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("err %v, want the deadline, naming the rate limit", err)
	}
}

// A refusal is an error naming the call and the channel, never a silent success.
func TestRefusalsAreErrors(t *testing.T) {
	c, f, _ := newClient(t, fakeslack.Config{})
	f.NotInChannel("C0PRIVATE")
	_, err := c.Post(context.Background(), "C0PRIVATE", "", "hello")
	if err == nil || !strings.Contains(err.Error(), "chat.postMessage to C0PRIVATE") || !strings.Contains(err.Error(), "not_in_channel") {
		t.Fatalf("post to a channel the bot is not in: %v", err)
	}
}

func TestUserGroupMembers(t *testing.T) {
	c, _, _ := newClient(t, fakeslack.Config{UserGroups: map[string][]string{"S0OPS": {"U0BOB", "U0CAROL"}}})
	got, err := c.UserGroupMembers(context.Background(), "S0OPS")
	if err != nil || !slices.Equal(got, []string{"U0BOB", "U0CAROL"}) {
		t.Fatalf("members %v, %v", got, err)
	}
	if _, err := c.UserGroupMembers(context.Background(), "S0NOPE"); err == nil {
		t.Fatal("an unknown user group answered")
	}
}
