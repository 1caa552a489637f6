package bot

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
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"

	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	fakejira "sockembot/integrations/fake/jira"
	fakeslack "sockembot/integrations/fake/slack"
	"sockembot/integrations/github"
	"sockembot/integrations/jira"
	"sockembot/integrations/store"
)

// The merge-gate tests post real third-party webhook payloads, signed with the secret from
// GitHub's documentation, to the bot's real HTTP handler, and assert on what the fakes saw.

const (
	gateSecret  = "It's a Secret to Everybody"
	gateChannel = "C0RELEASE"
	// gateFixtures is ../shared/fixtures beside the repository (bot/ is one level down).
	gateFixtures = "../../shared/fixtures"
	octokit      = "octokit+webhooks/payload-examples/api.github.com/"
)

type gateEnv struct {
	t      testing.TB
	ctx    context.Context
	gh     *fakegithub.Server
	jira   *fakejira.Server
	slack  *fakeslack.Server
	dbPath string
	store  *store.Store
	app    *App
	srv    *httptest.Server
	ids    atomic.Int64
}

// newGateEnv starts the fakes and an App on a fresh SQLite file, serving its Handler. The
// delivery workers are not running: tests drain the queue when they choose to.
func newGateEnv(t testing.TB) *gateEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &gateEnv{
		t: t, ctx: ctx,
		gh:     fakegithub.New(fakegithub.Options{Token: "ghs_test"}),
		jira:   fakejira.New(fakejira.Options{Mode: fakejira.Cloud}),
		slack:  fakeslack.New(fakeslack.Config{}),
		dbPath: filepath.Join(t.TempDir(), "sockembot.db"),
	}
	t.Cleanup(e.gh.Close)
	t.Cleanup(e.jira.Close)
	t.Cleanup(e.slack.Close)
	e.jira.AddProject("PAY")
	e.store = e.openStore()
	e.app = e.newApp(e.store, "replica-1")
	e.srv = httptest.NewServer(e.app.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

func (e *gateEnv) openStore() *store.Store {
	e.t.Helper()
	st, err := store.Open(e.ctx, e.dbPath)
	if err != nil {
		e.t.Fatalf("open store: %v", err)
	}
	e.t.Cleanup(func() { st.Close() })
	return st
}

// newApp builds an App on st talking to the fakes through the real clients.
func (e *gateEnv) newApp(st *store.Store, replica string) *App {
	e.t.Helper()
	ghc, err := github.New(github.Options{BaseURL: e.gh.URL(), Token: "ghs_test", Retries: -1})
	if err != nil {
		e.t.Fatal(err)
	}
	jc, err := jira.New(jira.Options{BaseURL: e.jira.URL()})
	if err != nil {
		e.t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	cfg := DefaultConfig()
	cfg.ReleaseChannel = gateChannel
	cfg.Services = map[string]Service{}
	return &App{
		Config: cfg, GitHub: ghc, Jira: jc, Store: st,
		Slack:         slack.New(e.slack.BotToken(), slack.OptionAPIURL(e.slack.APIURL())),
		WebhookSecret: []byte(gateSecret),
		Log:           log,
		ReplicaID:     replica,
	}
}

// fixture reads a payload from ../shared/fixtures. A missing file fails the test: CI always has
// the fixtures beside the clone.
func fixture(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(gateFixtures, rel))
	if err != nil {
		t.Fatalf("fixture %s: %v", rel, err)
	}
	return data
}

// retarget swaps values minted by GitHub when the payload was recorded (commit SHAs) for the
// ones the fake minted for the same objects. The fake derives SHAs from content, so it cannot
// reproduce the recorded ones; everything else in the payload is sent as recorded.
func retarget(body []byte, pairs ...string) []byte {
	for i := 0; i+1 < len(pairs); i += 2 {
		body = bytes.ReplaceAll(body, []byte(pairs[i]), []byte(pairs[i+1]))
	}
	return body
}

func signature(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// deliver posts body as GitHub would, signed with the secret, and returns the status and body.
func (e *gateEnv) deliver(event string, body []byte) (int, string) {
	e.t.Helper()
	return e.deliverID(event, fmt.Sprintf("delivery-%d", e.ids.Add(1)), body)
}

func (e *gateEnv) deliverID(event, id string, body []byte) (int, string) {
	e.t.Helper()
	return e.post(e.srv.URL, map[string]string{
		"X-GitHub-Event":      event,
		"X-GitHub-Delivery":   id,
		"X-Hub-Signature-256": signature(gateSecret, body),
		"Content-Type":        "application/json",
		"User-Agent":          "GitHub-Hookshot/test",
	}, body)
}

func (e *gateEnv) post(base string, headers map[string]string, body []byte) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/github", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("POST webhook: %v", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(out))
}

func (e *gateEnv) get(path string) (int, string) {
	e.t.Helper()
	resp, err := http.Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// drain processes every queued delivery on this goroutine.
func (e *gateEnv) drain() {
	e.t.Helper()
	if err := e.app.DrainDeliveries(e.ctx); err != nil {
		e.t.Fatalf("drain deliveries: %v", err)
	}
}

func (e *gateEnv) pending() int64 {
	e.t.Helper()
	n, err := e.store.PendingDeliveries(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// records returns the evidence of kind about subject ("" for any).
func (e *gateEnv) records(kind, subject string) []store.Record {
	e.t.Helper()
	var out []store.Record
	if err := e.store.Records(e.ctx, kind, subject, func(r store.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *gateEnv) channel() []fakeslack.Message { return e.slack.Messages(gateChannel) }

// prAt makes the fake hold pull request number n of r built from spec (merged with method
// when method is set), filling the numbers below n with throwaway pull requests, since the
// fixtures' PR numbers are GitHub's and the fake numbers from 1.
func prAt(t testing.TB, r *fakegithub.Repo, n int, spec fakegithub.PR, method fakegithub.MergeMethod) fakegithub.PRInfo {
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

// statuses are the sockembot/compliance statuses on sha as "state: description", oldest first.
func statuses(r *fakegithub.Repo, sha string) []string {
	var out []string
	for _, s := range r.Statuses(sha) {
		if s.Context == StatusContext {
			out = append(out, s.State+": "+s.Description)
		}
	}
	return out
}

func decodeBody[T any](t testing.TB, r store.Record) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("record %d (%s): %v", r.Seq, r.Kind, err)
	}
	return v
}

// waitFor polls cond until it holds, failing after a generous deadline. It waits for work done
// on other goroutines; it asserts nothing about how long the work took.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// compliantChange is a change report that passes, for rendering tests.
func compliantChange() compliance.ChangeReport {
	return compliance.ChangeReport{
		Kind: compliance.KindPullRequest, Number: 11, Compliant: true,
		Approvals: []compliance.Approval{{User: "bob"}},
		Tickets:   []compliance.Ticket{{Key: "PAY-11", Found: true, Status: "In Progress", StatusCategory: "indeterminate"}},
	}
}
