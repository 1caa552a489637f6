package bottest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sockembot/bot/demo"
	"sockembot/bot/deploygate"
	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	fakeslack "sockembot/integrations/fake/slack"
	"sockembot/integrations/store"
	"strconv"
	"strings"
	"testing"
	"time"

	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/sirupsen/logrus"
)

// DeployRoute is the fake GitHub's route for creating a deployment.
const DeployRoute = "POST /repos/{owner}/{repo}/deployments"

// Rig is the whole bot running against the fakes, seeded with the demo's repositories and
// tickets, with helpers to wait for what it does.
type Rig struct {
	*demo.World
	T   testing.TB
	Log *logtest.Hook
	// Key is the store's evidence key (random), for a test that verifies the chain itself.
	Key []byte
}

// NewRig starts the bot against fresh fakes; opts adjust the world before it starts.
func NewRig(t testing.TB, opts ...func(*demo.Options)) *Rig {
	t.Helper()
	log := logrus.New()
	log.SetOutput(testLogWriter{t})
	log.SetLevel(logrus.InfoLevel)
	hook := logtest.NewLocal(log)
	o := demo.Options{Dir: t.TempDir(), Log: log, GitHubRetries: -1, EvidenceKey: store.NewKey()}
	for _, f := range opts {
		f(&o)
	}
	w, err := demo.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	demo.Seed(w)
	return &Rig{World: w, T: t, Log: hook, Key: o.EvidenceKey}
}

// testLogWriter sends the bot's log to the test's, shown only when a test fails.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Until waits for what the bot does after its ack. The timeout only stops a broken test from
// hanging; nothing asserts on how long anything took.
func (r *Rig) Until(what string, cond func() bool) {
	r.T.Helper()
	if err := demo.Wait(context.Background(), what, 30*time.Second, cond); err != nil {
		r.T.Fatalf("%v\n%s", err, r.Slack.Render())
	}
}

func (r *Rig) Acked(ids ...string) {
	r.T.Helper()
	for _, id := range ids {
		if _, ok := r.Slack.WaitAck(id, 30*time.Second); !ok {
			r.T.Fatalf("envelope %s was never acked", id)
		}
	}
}

// Digest waits for the n-th root message (1-based) in the release channel.
func (r *Rig) Digest(n int) fakeslack.Message {
	r.T.Helper()
	r.Until(fmt.Sprintf("root message %d in the release channel", n), func() bool { return len(r.Roots()) >= n })
	return r.Roots()[n-1]
}

func (r *Rig) EphemeralTo(user, contains string) fakeslack.Ephemeral {
	r.T.Helper()
	var found fakeslack.Ephemeral
	r.Until(fmt.Sprintf("an ephemeral to %s saying %q", user, contains), func() bool {
		for _, e := range r.Slack.Ephemerals() {
			if e.User == user && strings.Contains(e.Text, contains) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

func (r *Rig) Thread(root fakeslack.Message) []fakeslack.Message {
	return r.Slack.Thread(root.Channel, root.TS)
}

// anchorLine is the evidence chain's head as the deploy gate posts it in a deploy's thread.
var anchorLine = regexp.MustCompile("Evidence chain head: record ([0-9]+), `([0-9a-f]{64})` — `sockembot audit verify --anchor ([0-9]+):([0-9a-f]{64})`")

// Anchor waits for the evidence chain's head in root's thread and returns the newest one posted
// there, as `audit verify --anchor SEQ:MAC` takes it.
func (r *Rig) Anchor(root fakeslack.Message) (seq int64, mac string) {
	r.T.Helper()
	r.Until("the evidence chain head in the thread", func() bool {
		for _, m := range r.Thread(root) {
			if g := anchorLine.FindStringSubmatch(m.Text); g != nil {
				if g[1] != g[3] || g[2] != g[4] {
					r.T.Fatalf("the anchor names two records: %s", m.Text)
				}
				seq, _ = strconv.ParseInt(g[1], 10, 64)
				mac = g[2]
			}
		}
		return mac != ""
	})
	return seq, mac
}

func (r *Rig) Records(kind string) []compliance.Record {
	r.T.Helper()
	var out []compliance.Record
	if err := r.Store.Records(context.Background(), kind, "", func(rec compliance.Record) error {
		out = append(out, rec)
		return nil
	}); err != nil {
		r.T.Fatal(err)
	}
	return out
}

func (r *Rig) Deploys(service, env string) []deploygate.Deploy {
	r.T.Helper()
	ds, err := r.App.Deploys().Store.RecentDeploys(context.Background(), service, env, 100)
	if err != nil {
		r.T.Fatal(err)
	}
	return ds
}

// MadeByBot lists the GitHub deployments sockembot created (the seeded ones are by "deployer").
func MadeByBot(repo *fakegithub.Repo) []fakegithub.Deployment {
	var out []fakegithub.Deployment
	for _, d := range repo.Deployments() {
		if d.Creator != "deployer" {
			out = append(out, d)
		}
	}
	return out
}

// Text is a message's notification text and its blocks as JSON, with <, > and & as written.
func Text(m fakeslack.Message) string {
	var v any
	if err := json.Unmarshal(m.Blocks, &v); err != nil {
		return m.Text
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return m.Text + "\n" + b.String()
}

// NoWebAPIErrors fails on any Web API call Slack would have refused (invalid_blocks, ...),
// rate limits aside.
func (r *Rig) NoWebAPIErrors() {
	r.T.Helper()
	for _, c := range r.Slack.Calls() {
		if c.Error != "" && c.Status != http.StatusTooManyRequests {
			r.T.Errorf("%s answered %s (%v)", c.Method, c.Error, c.Params)
		}
	}
}

// Logged says whether the bot logged msg for the envelope.
func (r *Rig) Logged(msg, envelopeID string) bool {
	for _, e := range r.Log.AllEntries() {
		if e.Message == msg && e.Data["envelope_id"] == envelopeID {
			return true
		}
	}
	return false
}
