// Package demo is sockembot's demo world: the whole bot (bot.App, exactly as `sockembot run`
// builds it, with the real GitHub, Jira and Slack clients and a SQLite store) running against
// in-process fakes of GitHub, Jira and Slack. `sockembot demo` plays a story in it; the end-to-end
// tests drive it. It is the only package outside tests that imports integrations/fake.
package demo

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	slackapi "sockembot/integrations/slack"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v62/github"
	"github.com/sirupsen/logrus"

	"sockembot/bot"
	fakegithub "sockembot/integrations/fake/github"
	fakejira "sockembot/integrations/fake/jira"
	fakeslack "sockembot/integrations/fake/slack"
	"sockembot/integrations/github"
	"sockembot/integrations/jira"
	"sockembot/integrations/store"
)

// The demo workspace. Alice asks for deploys, Bob presses Deploy for production (through the
// S0OPS user group), Mallory is not allowed to deploy there.
const (
	Release   = "C0RELEASE"
	Dev       = "C0DEV"
	Incidents = "C0INCIDENTS"
	Alice     = "U0ALICE"
	Bob       = "U0BOB"
	Mallory   = "U0MALLORY"
	OpsGroup  = "S0OPS"
	Secret    = "demo-webhook-secret"
)

// world is the whole bot running against in-process fakes: the `demo` subcommand and the
// end-to-end tests both drive it. The App is built exactly as `sockembot run` builds it (real
// GitHub, Jira and Slack clients, the SQLite store, socket mode, the HTTP server); only the URLs
// point at the fakes.
type World struct {
	Slack  *fakeslack.Server
	GitHub *fakegithub.Server
	Jira   *fakejira.Server
	Store  *store.Store
	App    *bot.App
	// CD is a plain go-github client standing in for the deployment system that reacts to
	// GitHub deployments and reports their statuses.
	CD *gh.Client

	cancel     context.CancelFunc
	done       chan error
	deliveries atomic.Int64
}

// Options shape a World.
type Options struct {
	Dir string // for the SQLite file; required
	// DatabaseURL, when set, is the store's database instead of the SQLite file in Dir (tests
	// run the world on PostgreSQL with it).
	DatabaseURL string
	// EvidenceKey keys the evidence chain (store.WithKey); nil: a random key, which nobody can
	// verify the chain with after the world is gone.
	EvidenceKey []byte
	Log         *logrus.Logger
	// GitHubRetries is the adapter's retry count for 5xx (0 means the adapter's default).
	GitHubRetries int
	// Configure and WrapJira let tests change the config and the Jira adapter before the App
	// starts.
	Configure func(*bot.Config)
	WrapJira  func(bot.Jira) bot.Jira
	// Now is the bot's clock; StoreNow, when set, the store's (see store.SetClock). The demo
	// sets both to one fixed clock so every run writes the same evidence.
	Now      func() time.Time
	StoreNow func() time.Time
	// App runs the bot as a GitHub App, as `run` does with GITHUB_APP_ID: the fake GitHub then
	// wants the App's JWT for installation tokens and an installation token on every repository
	// call, and the merge gate writes check runs. The demo runs so; the test rigs run with a token
	// unless they ask.
	App bool
}

// The fakes are reached under these names, whatever port they listen on: the links the bot
// posts and the evidence it records read the same on every run.
const (
	GitHubHost = "github.example"
	JiraHost   = "jira.example"
)

// ghOptions are the fake GitHub's options: named github.example, and a GitHub App's host in App mode.
func ghOptions(app bool) fakegithub.Options {
	o := fakegithub.Options{PublicURL: "http://" + GitHubHost}
	if app {
		o.App = &fakegithub.AppOptions{}
	}
	return o
}

func demoConfig() bot.Config {
	cfg := bot.DefaultConfig()
	cfg.ReleaseChannel = Release
	cfg.Services = map[string]bot.Service{
		"payments": {Repo: "acme/payments", Environments: []string{"staging", "production"}},
		"search":   {Repo: "acme/search", Environments: []string{"production"}},
		"billing":  {Repo: "acme/billing", Environments: []string{"production"}},
	}
	cfg.Deployers = map[string][]string{"production": {Alice, OpsGroup}}
	cfg.Emergency = map[string]bot.EmergencyAccess{"production": {BreakGlass: []string{Alice}}}
	cfg.EmergencyChannel = Incidents
	cfg.Policy.Tickets.DeployedTransition = "Done"
	// No scheduled jobs: the story must not depend on the wall clock.
	cfg.Schedules = bot.Schedules{}
	return cfg
}

// Start starts the fakes, opens the store and runs the App until Close.
func Start(ctx context.Context, opts Options) (w *World, err error) {
	log := opts.Log
	if log == nil {
		log = logrus.New()
		log.SetOutput(io.Discard)
	}
	w = &World{
		Slack: fakeslack.New(fakeslack.Config{
			ChannelNames: map[string]string{Release: "releases", Dev: "dev", Incidents: "incidents"},
			UserGroups:   map[string][]string{OpsGroup: {Bob}},
		}),
		GitHub: fakegithub.New(ghOptions(opts.App)),
		Jira:   fakejira.New(fakejira.Options{}),
		done:   make(chan error, 1),
	}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	dbURL, key := opts.DatabaseURL, opts.EvidenceKey
	if dbURL == "" {
		dbURL = "sqlite://" + filepath.Join(opts.Dir, "sockembot.db")
	}
	if key == nil {
		key = store.NewKey()
	}
	w.Store, err = store.Open(ctx, dbURL, store.WithKey(key))
	if err != nil {
		return nil, err
	}
	if opts.StoreNow != nil {
		w.Store.SetClock(opts.StoreNow)
	}
	// The adapters talk to http://github.example and http://jira.example, dialled at the fakes'
	// listeners: the same code path as a real host name, and the same text on every run.
	hc := &http.Client{Transport: hostTransport(map[string]string{
		GitHubHost + ":80": listenAddr(w.GitHub.URL()),
		JiraHost + ":80":   listenAddr(w.Jira.URL()),
	})}
	ghOpts := github.Options{BaseURL: "http://" + GitHubHost + "/api/v3/", HTTPClient: hc, Retries: opts.GitHubRetries, Backoff: 50 * time.Millisecond}
	var appID int64
	if opts.App {
		appID = w.GitHub.AppID()
		ghOpts.App = &github.AppAuth{ID: appID, PrivateKey: w.GitHub.AppPrivateKeyPEM()}
	}
	ghc, err := github.New(ghOpts)
	if err != nil {
		return nil, err
	}
	jc, err := jira.New(jira.Options{BaseURL: "http://" + JiraHost + "/", HTTPClient: hc})
	if err != nil {
		return nil, err
	}
	var cdHTTP *http.Client
	if opts.App {
		// The CD system (GitHub's own side of the story: payloads, deployment statuses) needs an
		// installation token too: it acts as the App's installation on the acme organisation.
		tr, err := ghinstallation.New(http.DefaultTransport, appID, w.GitHub.InstallationID("acme"), w.GitHub.AppPrivateKeyPEM())
		if err != nil {
			return nil, err
		}
		tr.BaseURL = strings.TrimSuffix(w.GitHub.URL(), "/")
		cdHTTP = &http.Client{Transport: tr}
	}
	if w.CD, err = gh.NewClient(cdHTTP).WithEnterpriseURLs(w.GitHub.URL(), w.GitHub.URL()); err != nil {
		return nil, err
	}
	cfg := demoConfig()
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	var jiraAdapter bot.Jira = jc
	if opts.WrapJira != nil {
		jiraAdapter = opts.WrapJira(jc)
	}
	w.App = &bot.App{
		Config:        cfg,
		GitHub:        ghc,
		Jira:          jiraAdapter,
		Store:         w.Store,
		Slack:         slackapi.New(slackapi.Options{BotToken: w.Slack.BotToken(), AppToken: w.Slack.AppToken(), APIURL: w.Slack.APIURL(), Log: log}),
		WebhookSecret: []byte(Secret),
		GitHubAppID:   appID,
		Addr:          "127.0.0.1:0",
		Log:           log,
		ReplicaID:     "demo",
		Now:           opts.Now,
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel = cancel
	go func() { w.done <- w.App.Run(runCtx) }()
	select {
	case <-w.App.Listening():
	case err := <-w.done:
		w.done <- err
		return nil, fmt.Errorf("the bot stopped while starting: %w", err)
	case <-time.After(10 * time.Second):
		return nil, errors.New("the bot's HTTP server did not start")
	}
	if !w.Slack.WaitConnections(1, 10*time.Second) {
		return nil, errors.New("the bot did not connect to Slack in socket mode")
	}
	return w, nil
}

// Close stops the App and the fakes.
func (w *World) Close() {
	if w.cancel != nil {
		w.cancel()
		select {
		case <-w.done:
		case <-time.After(30 * time.Second):
		}
	}
	if w.Store != nil {
		w.Store.Close()
	}
	w.Slack.Close()
	w.GitHub.Close()
	w.Jira.Close()
}

// Command types a slash command as user in channel.
func (w *World) Command(user, channel, text string) string {
	return w.Slack.SendSlashCommand(fakeslack.SlashCommand{UserID: user, ChannelID: channel, Command: "/deploy", Text: text})
}

// Click presses a button on a message.
func (w *World) Click(user, actionID string, m fakeslack.Message) string {
	return w.Slack.SendBlockAction(fakeslack.BlockAction{ActionID: actionID, UserID: user, ChannelID: m.Channel, MessageTS: m.TS})
}

// ReportStatus is the CD system reporting on a deployment: it writes the status to GitHub, and
// GitHub sends the deployment_status webhook, signed, to the bot's endpoint.
func (w *World) ReportStatus(ctx context.Context, repo string, id int64, state, desc string) error {
	body, err := w.StatusEvent(ctx, repo, id, state, desc)
	if err != nil {
		return err
	}
	return w.Deliver(ctx, "deployment_status", body)
}

// StatusEvent writes a deployment status to GitHub and returns the webhook body GitHub would
// send for it, for a test to deliver when it likes (GitHub does not promise order).
func (w *World) StatusEvent(ctx context.Context, repo string, id int64, state, desc string) ([]byte, error) {
	owner, name, _ := strings.Cut(repo, "/")
	st, _, err := w.CD.Repositories.CreateDeploymentStatus(ctx, owner, name, id, &gh.DeploymentStatusRequest{
		State: gh.String(state), Description: gh.String(desc), LogURL: gh.String(fmt.Sprintf("https://ci.example/deploys/%d", id)),
	})
	if err != nil {
		return nil, fmt.Errorf("cd: create %s status on deployment %d: %w", state, id, err)
	}
	deps, _, err := w.CD.Repositories.ListDeployments(ctx, owner, name, &gh.DeploymentsListOptions{ListOptions: gh.ListOptions{PerPage: 100}})
	if err != nil {
		return nil, fmt.Errorf("cd: list deployments: %w", err)
	}
	var dep *gh.Deployment
	for _, d := range deps {
		if d.GetID() == id {
			dep = d
		}
	}
	if dep == nil {
		return nil, fmt.Errorf("cd: deployment %d not found", id)
	}
	r, _, err := w.CD.Repositories.Get(ctx, owner, name)
	if err != nil {
		return nil, fmt.Errorf("cd: get %s: %w", repo, err)
	}
	return json.Marshal(gh.DeploymentStatusEvent{
		Action: gh.String("created"), Deployment: dep, DeploymentStatus: st, Repo: r, Sender: st.Creator,
	})
}

// Deliver posts a webhook the way GitHub does: JSON body, event and delivery headers, and the
// HMAC-SHA256 signature.
func (w *World) Deliver(ctx context.Context, event string, body []byte) error {
	return w.DeliverID(ctx, event, fmt.Sprintf("demo-delivery-%d", w.deliveries.Add(1)), body)
}

// DeliverID is Deliver with the X-GitHub-Delivery id given.
func (w *World) DeliverID(ctx context.Context, event, id string, body []byte) error {
	mac := hmac.New(sha256.New, w.App.WebhookSecret)
	mac.Write(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+w.App.ListenAddr()+"/webhooks/github", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", event, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("webhook %s: %s: %s", event, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// Wait polls until cond holds. The bot works after acking, so the story waits on what it
// posts, not on the command.
func Wait(ctx context.Context, what string, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// Roots returns the root messages the bot posted in the release channel.
func (w *World) Roots() []fakeslack.Message { return w.Slack.Messages(Release) }

func HasAction(m fakeslack.Message, actionID string) bool {
	return bytes.Contains(m.Blocks, []byte(`"action_id":"`+actionID+`"`))
}

// Seed builds the repositories and tickets of the story.
func Seed(w *World) {
	for _, k := range []string{"PAY", "SRCH", "BILL"} {
		w.Jira.AddProject(k)
	}
	w.Jira.AddIssue("PAY-101", "In Progress")
	w.Jira.AddIssue("PAY-102", "Done")

	pay := w.GitHub.AddRepo("acme/payments", "main")
	pay.Commit("Initial import", "alice")
	v1 := pay.Tag("v1.4.0")
	pay.Deploy(v1, "production", "success")
	pay.MergePR(fakegithub.PR{Title: "PAY-101 Refunds endpoint", Author: "alice",
		Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.Squash)
	pay.MergePR(fakegithub.PR{Title: "Retry failed card captures", Body: "Fixes PAY-102", Author: "carol",
		Reviews: []fakegithub.Review{{User: "dave", State: "APPROVED"}}}, fakegithub.MergeCommit)

	search := w.GitHub.AddRepo("acme/search", "main")
	search.Commit("Initial import", "erin")
	search.Deploy(search.Tag("v2.0.0"), "production", "success")
	search.MergePR(fakegithub.PR{Title: "SRCH-7 Faster indexing", Author: "erin",
		Reviews: []fakegithub.Review{{User: "frank", State: "APPROVED"}}}, fakegithub.Squash)
	search.MergePR(fakegithub.PR{Title: "Tweak ranking weights", Author: "frank"}, fakegithub.Squash)
	search.Commit("hotfix: typo in config", "frank")

	billing := w.GitHub.AddRepo("acme/billing", "main")
	billing.Commit("Initial import", "gina")
	billing.Deploy(billing.Tag("v0.9.0"), "production", "success")
	billing.MergePR(fakegithub.PR{Title: "BILL-3 Invoice PDFs", Author: "gina",
		Reviews: []fakegithub.Review{{User: "hank", State: "APPROVED"}}}, fakegithub.Squash)
}

// hostTransport dials the address hosts maps a host:port to, and any other as asked.
func hostTransport(hosts map[string]string) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if to, ok := hosts[addr]; ok {
			addr = to
		}
		return dialer.DialContext(ctx, network, addr)
	}
	return t
}

// listenAddr is the host:port of a fake's URL.
func listenAddr(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return u
	}
	return parsed.Host
}

// PullRequestEvent is the pull_request webhook GitHub sends when number is opened, closed
// (merged), ...: the pull request and repository as the REST API shows them.
func (w *World) PullRequestEvent(ctx context.Context, repo string, number int, action string) ([]byte, error) {
	owner, name, _ := strings.Cut(repo, "/")
	pr, _, err := w.CD.PullRequests.Get(ctx, owner, name, number)
	if err != nil {
		return nil, fmt.Errorf("github: pull request %s#%d: %w", repo, number, err)
	}
	r, _, err := w.CD.Repositories.Get(ctx, owner, name)
	if err != nil {
		return nil, fmt.Errorf("github: repository %s: %w", repo, err)
	}
	return json.Marshal(gh.PullRequestEvent{Action: gh.String(action), Number: gh.Int(number), PullRequest: pr, Repo: r, Sender: pr.User})
}

// ReviewEvent is the pull_request_review webhook for the newest review of number.
func (w *World) ReviewEvent(ctx context.Context, repo string, number int, action string) ([]byte, error) {
	owner, name, _ := strings.Cut(repo, "/")
	pr, _, err := w.CD.PullRequests.Get(ctx, owner, name, number)
	if err != nil {
		return nil, fmt.Errorf("github: pull request %s#%d: %w", repo, number, err)
	}
	reviews, _, err := w.CD.PullRequests.ListReviews(ctx, owner, name, number, &gh.ListOptions{PerPage: 100})
	if err != nil || len(reviews) == 0 {
		return nil, fmt.Errorf("github: reviews of %s#%d: %v", repo, number, err)
	}
	r, _, err := w.CD.Repositories.Get(ctx, owner, name)
	if err != nil {
		return nil, fmt.Errorf("github: repository %s: %w", repo, err)
	}
	rv := reviews[len(reviews)-1]
	return json.Marshal(gh.PullRequestReviewEvent{Action: gh.String(action), Review: rv, PullRequest: pr, Repo: r, Sender: rv.User})
}

// MergeGroupEvent is the merge_group webhook GitHub sends when the merge queue of repo asks for
// the checks of group g (checks_requested) or drops it (destroyed, for reason).
func (w *World) MergeGroupEvent(ctx context.Context, repo string, g fakegithub.MergeGroup, action, reason string) ([]byte, error) {
	owner, name, _ := strings.Cut(repo, "/")
	r, _, err := w.CD.Repositories.Get(ctx, owner, name)
	if err != nil {
		return nil, fmt.Errorf("github: repository %s: %w", repo, err)
	}
	c, _, err := w.CD.Repositories.GetCommit(ctx, owner, name, g.HeadSHA, nil)
	if err != nil {
		return nil, fmt.Errorf("github: commit %s of %s: %w", g.HeadSHA, repo, err)
	}
	body, err := json.Marshal(gh.MergeGroupEvent{
		Action: gh.String(action), Repo: r, Sender: &gh.User{Login: gh.String("github-merge-queue[bot]"), Type: gh.String("Bot")},
		MergeGroup: &gh.MergeGroup{
			HeadSHA: gh.String(g.HeadSHA), HeadRef: gh.String(g.HeadRef), BaseSHA: gh.String(g.BaseSHA), BaseRef: gh.String(g.BaseRef),
			HeadCommit: &gh.Commit{SHA: c.SHA, Message: c.GetCommit().Message, Author: c.GetCommit().Author, Committer: c.GetCommit().Committer},
		},
	})
	if err != nil || reason == "" {
		return body, err
	}
	// go-github has no field for the reason a group was destroyed; GitHub sends it at top level.
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	m["reason"] = reason
	return json.Marshal(m)
}

// ProtectionRuleEvent is the deployment_protection_rule webhook GitHub sends when run, started by
// actor on event, waits to deploy sha to env: the fields GitHub's deliveries carry, the workflow
// run and the SHA included.
func (w *World) ProtectionRuleEvent(ctx context.Context, repo string, run fakegithub.ActionsRun, env, sha, ref, actor, event string) ([]byte, error) {
	owner, name, _ := strings.Cut(repo, "/")
	r, _, err := w.CD.Repositories.Get(ctx, owner, name)
	if err != nil {
		return nil, fmt.Errorf("github: repository %s: %w", repo, err)
	}
	return json.Marshal(map[string]any{
		"action": "requested", "environment": env, "event": event,
		"deployment_callback_url": run.CallbackURL,
		"deployment":              map[string]any{"id": run.DeploymentID, "environment": env, "sha": sha, "ref": ref},
		"pull_requests":           []any{},
		"sha":                     sha, "ref": ref,
		"repository":   r,
		"sender":       map[string]any{"login": actor, "type": "User"},
		"installation": map[string]any{"id": w.GitHub.InstallationID(owner)},
		"workflow_run": map[string]any{"id": run.RunID, "html_url": run.RunURL},
	})
}
