// Package bottest holds the rigs the end-to-end tests drive the whole bot with: Hooks (the
// HTTP side, webhooks signed like GitHub's and drained by hand) and Rig (everything running,
// commands typed and buttons pressed in the fake Slack). Only tests import it.
package bottest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sockembot/bot"
	"sockembot/bot/mergegate"
	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	fakejira "sockembot/integrations/fake/jira"
	fakeslack "sockembot/integrations/fake/slack"
	"sockembot/integrations/github"
	"sockembot/integrations/jira"
	slackapi "sockembot/integrations/slack"
	"sockembot/integrations/store"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// The merge-gate tests post real third-party webhook payloads, signed with the secret from
// GitHub's documentation, to the bot's real HTTP handler, and assert on what the fakes saw.

const (
	// Secret is the webhook secret from GitHub's documentation of X-Hub-Signature-256.
	Secret = "It's a Secret to Everybody"
	// Channel is the release channel of the Hooks rig.
	Channel = "C0RELEASE"
	// Octokit is where octokit's webhook examples are, inside testdata.
	Octokit = "octokit+webhooks/payload-examples/api.github.com/"
)

// Hooks is the bot's HTTP side on a fresh SQLite file, served through httptest, talking to the
// fakes through the real clients. The delivery workers are not running: tests drain the queue
// when they choose to.
type Hooks struct {
	T      testing.TB
	Ctx    context.Context
	GitHub *fakegithub.Server
	Jira   *fakejira.Server
	Slack  *fakeslack.Server
	DBPath string
	Key    []byte // the evidence key of every store opened on DBPath
	// AppMode runs the bot as the fake's GitHub App (NewAppHooks) instead of with a token.
	AppMode bool
	Store   *store.Store
	App     *bot.App
	Server  *httptest.Server
	ids     atomic.Int64
}

// NewHooks starts the fakes and an App on a fresh SQLite file, serving its Handler. The bot
// talks to GitHub with a token.
func NewHooks(t testing.TB) *Hooks {
	t.Helper()
	return newHooks(t, fakegithub.Options{Token: "ghs_test"})
}

// NewAppHooks is NewHooks with the bot running as a GitHub App: the fake GitHub wants a JWT
// signed with the App's key for installation tokens, and an installation token on every
// repository call.
func NewAppHooks(t testing.TB) *Hooks {
	t.Helper()
	return newHooks(t, fakegithub.Options{App: &fakegithub.AppOptions{}})
}

func newHooks(t testing.TB, opts fakegithub.Options) *Hooks {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &Hooks{
		T: t, Ctx: ctx, AppMode: opts.App != nil,
		GitHub: fakegithub.New(opts),
		Jira:   fakejira.New(fakejira.Options{Mode: fakejira.Cloud}),
		Slack:  fakeslack.New(fakeslack.Config{}),
		DBPath: filepath.Join(t.TempDir(), "sockembot.db"),
		Key:    store.NewKey(),
	}
	t.Cleanup(e.GitHub.Close)
	t.Cleanup(e.Jira.Close)
	t.Cleanup(e.Slack.Close)
	e.Jira.AddProject("PAY")
	e.Store = e.OpenStore()
	e.App = e.NewApp(e.Store, "replica-1")
	e.Server = httptest.NewServer(e.App.Handler())
	t.Cleanup(e.Server.Close)
	return e
}

// OpenStore opens another store on the rig's database file (a second replica, a restart).
func (e *Hooks) OpenStore() *store.Store {
	e.T.Helper()
	st, err := store.Open(e.Ctx, e.DBPath, store.WithKey(e.Key))
	if err != nil {
		e.T.Fatalf("open store: %v", err)
	}
	e.T.Cleanup(func() { st.Close() })
	return st
}

// NewApp builds an App on st talking to the fakes through the real clients.
func (e *Hooks) NewApp(st *store.Store, replica string) *bot.App {
	e.T.Helper()
	ghOpts := github.Options{BaseURL: e.GitHub.URL(), Token: "ghs_test", Retries: -1}
	var appID int64
	if e.AppMode {
		appID = e.GitHub.AppID()
		ghOpts.Token, ghOpts.App = "", &github.AppAuth{ID: appID, PrivateKey: e.GitHub.AppPrivateKeyPEM()}
	}
	ghc, err := github.New(ghOpts)
	if err != nil {
		e.T.Fatal(err)
	}
	jc, err := jira.New(jira.Options{BaseURL: e.Jira.URL()})
	if err != nil {
		e.T.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	if os.Getenv("SOCKEMBOT_TEST_LOG") != "" {
		log.SetOutput(os.Stderr) // to see why a delivery failed
	}
	cfg := bot.DefaultConfig()
	cfg.ReleaseChannel = Channel
	cfg.Services = map[string]bot.Service{}
	return &bot.App{
		Config: cfg, GitHub: ghc, Jira: jc, Store: st,
		Slack:         slackapi.New(slackapi.Options{BotToken: e.Slack.BotToken(), APIURL: e.Slack.APIURL(), Log: log}),
		WebhookSecret: []byte(Secret),
		GitHubAppID:   appID,
		Log:           log,
		ReplicaID:     replica,
	}
}

// Fixture reads a real payload from the repository's testdata/ (see its README for where each
// came from). A missing file fails the test.
func Fixture(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdata(), rel))
	if err != nil {
		t.Fatalf("fixture %s: %v", rel, err)
	}
	return data
}

// Retarget swaps values minted by GitHub when the payload was recorded (commit SHAs) for the
// ones the fake minted for the same objects. The fake derives SHAs from content, so it cannot
// reproduce the recorded ones; everything else in the payload is sent as recorded.
func Retarget(body []byte, pairs ...string) []byte {
	for i := 0; i+1 < len(pairs); i += 2 {
		body = bytes.ReplaceAll(body, []byte(pairs[i]), []byte(pairs[i+1]))
	}
	return body
}

func Signature(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Deliver posts body as GitHub would, signed with the secret, and returns the status and body.
func (e *Hooks) Deliver(event string, body []byte) (int, string) {
	e.T.Helper()
	return e.DeliverID(event, fmt.Sprintf("delivery-%d", e.ids.Add(1)), body)
}

// DeliverID is Deliver with the delivery id given.
func (e *Hooks) DeliverID(event, id string, body []byte) (int, string) {
	e.T.Helper()
	return e.Post(e.Server.URL, map[string]string{
		"X-GitHub-Event":      event,
		"X-GitHub-Delivery":   id,
		"X-Hub-Signature-256": Signature(Secret, body),
		"Content-Type":        "application/json",
		"User-Agent":          "GitHub-Hookshot/test",
	}, body)
}

// Post sends a webhook request with the headers given to the server at base.
func (e *Hooks) Post(base string, headers map[string]string, body []byte) (int, string) {
	e.T.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/github", bytes.NewReader(body))
	if err != nil {
		e.T.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.T.Fatalf("POST webhook: %v", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(out))
}

// Get fetches path from the rig's server.
func (e *Hooks) Get(path string) (int, string) {
	e.T.Helper()
	resp, err := http.Get(e.Server.URL + path)
	if err != nil {
		e.T.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// Metrics scrapes the App's metrics, which are served by MetricsHandler on a listener of their
// own, not by the public Handler.
func (e *Hooks) Metrics() string {
	e.T.Helper()
	rec := httptest.NewRecorder()
	e.App.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		e.T.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// Drain processes every queued delivery on this goroutine.
func (e *Hooks) Drain() {
	e.T.Helper()
	if err := e.App.DrainDeliveries(e.Ctx); err != nil {
		e.T.Fatalf("drain deliveries: %v", err)
	}
}

// Pending counts the deliveries still queued.
func (e *Hooks) Pending() int64 {
	e.T.Helper()
	n, err := e.Store.PendingDeliveries(e.Ctx)
	if err != nil {
		e.T.Fatal(err)
	}
	return n
}

// Records returns the evidence of kind about subject ("" for any).
func (e *Hooks) Records(kind, subject string) []compliance.Record {
	e.T.Helper()
	var out []compliance.Record
	if err := e.Store.Records(e.Ctx, kind, subject, func(r compliance.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		e.T.Fatal(err)
	}
	return out
}

// Messages are the root messages in the release channel.
func (e *Hooks) Messages() []fakeslack.Message { return e.Slack.Messages(Channel) }

// PRAt makes the fake hold pull request number n of r built from spec (merged with method
// when method is set), filling the numbers below n with throwaway pull requests, since the
// fixtures' PR numbers are GitHub's and the fake numbers from 1.
func PRAt(t testing.TB, r *fakegithub.Repo, n int, spec fakegithub.PR, method fakegithub.MergeMethod) fakegithub.PRInfo {
	t.Helper()
	for i := 1; i < n; i++ {
		if _, ok := r.PR(i); !ok {
			r.OpenPR(fakegithub.PR{Title: fmt.Sprintf("filler %d", i), Author: "filler"})
		}
	}
	if _, ok := r.PR(n); ok {
		t.Fatalf("%s#%d exists already", r.FullName(), n)
	}
	var info fakegithub.PRInfo
	if method != "" {
		info = r.MergePR(spec, method)
	} else {
		info = r.OpenPR(spec)
	}
	if info.Number != n {
		t.Fatalf("fake numbered the pull request %d, want %d", info.Number, n)
	}
	return info
}

// Statuses are the sockembot/compliance statuses on sha as "state: description", oldest first.
func Statuses(r *fakegithub.Repo, sha string) []string {
	var out []string
	for _, s := range r.Statuses(sha) {
		if s.Context == mergegate.StatusContext {
			out = append(out, s.State+": "+s.Description)
		}
	}
	return out
}

// Decode reads a record's body.
func Decode[T any](t testing.TB, r compliance.Record) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("record %d (%s): %v", r.Seq, r.Kind, err)
	}
	return v
}

// WaitFor polls cond until it holds, failing after a generous deadline. It waits for work done
// on other goroutines; it asserts nothing about how long the work took.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CompliantChange is a change report that passes, for rendering tests.
func CompliantChange() compliance.ChangeReport {
	return compliance.ChangeReport{
		Kind: compliance.KindPullRequest, Number: 11, Compliant: true,
		Approvals: []compliance.Approval{{User: "bob"}},
		Tickets:   []compliance.Ticket{{Key: "PAY-11", Found: true, Status: "In Progress", StatusCategory: "indeterminate"}},
	}
}

// testdata is the repository's testdata/ directory, found from this file so a test in any
// package reads the same files.
func testdata() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata")
}
