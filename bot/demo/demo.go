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
	"net/http"
	"os"
	"path/filepath"
	slackapi "sockembot/integrations/slack"
	"strings"
	"sync/atomic"
	"time"

	gh "github.com/google/go-github/v62/github"
	"github.com/sirupsen/logrus"

	"sockembot/bot"
	"sockembot/bot/render"
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

type Options struct {
	Dir string // for the SQLite file; required
	Log *logrus.Logger
	// GitHubRetries is the adapter's retry count for 5xx (0 means the adapter's default).
	GitHubRetries int
	// Configure and WrapJira let tests change the config and the Jira adapter before the App
	// starts.
	Configure func(*bot.Config)
	WrapJira  func(bot.Jira) bot.Jira
	Now       func() time.Time
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
	cfg.Emergency = map[string][]string{"production": {Alice}}
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
		GitHub: fakegithub.New(fakegithub.Options{}),
		Jira:   fakejira.New(fakejira.Options{}),
		done:   make(chan error, 1),
	}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	w.Store, err = store.Open(ctx, "sqlite://"+filepath.Join(opts.Dir, "sockembot.db"))
	if err != nil {
		return nil, err
	}
	ghc, err := github.New(github.Options{BaseURL: w.GitHub.URL(), Retries: opts.GitHubRetries, Backoff: 50 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	jc, err := jira.New(jira.Options{BaseURL: w.Jira.URL()})
	if err != nil {
		return nil, err
	}
	if w.CD, err = gh.NewClient(nil).WithEnterpriseURLs(w.GitHub.URL(), w.GitHub.URL()); err != nil {
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
	mac := hmac.New(sha256.New, w.App.WebhookSecret)
	mac.Write(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+w.App.ListenAddr()+"/webhooks/github", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("demo-delivery-%d", w.deliveries.Add(1)))
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

// Demo runs the whole bot against built-in fakes and prints what it posted in Slack: a
// compliant deploy (digest, Deploy pressed, GitHub deployment, statuses in the thread, Jira
// tickets updated), a refused deploy, a failure report, someone not allowed to deploy, and an
// emergency deploy past the violations with its retroactive review.
//
// keepDir, when set, is where the demo's SQLite store is kept after it ends (created if need
// be), so `sockembot audit verify` and `audit export` can be run on it; "" uses a temporary
// directory, removed at the end.
func Demo(ctx context.Context, out io.Writer, keepDir string) error {
	dir := keepDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "sockembot-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// One retry keeps the GitHub outage short; `run` uses the adapter's defaults.
	w, err := Start(ctx, Options{Dir: dir, GitHubRetries: 1})
	if err != nil {
		return fmt.Errorf("start the demo: %w", err)
	}
	defer w.Close()
	Seed(w)
	if err := playDemo(ctx, w); err != nil {
		return err
	}
	fmt.Fprint(out, w.Slack.Render())
	return nil
}

func playDemo(ctx context.Context, w *World) error {
	const wait = 30 * time.Second

	// 1. A compliant release: Alice asks, Bob (in @ops) presses Deploy, the CD system reports.
	w.Command(Alice, Release, "payments to production")
	var digest fakeslack.Message
	if err := Wait(ctx, "the payments digest", wait, func() bool {
		for _, m := range w.Roots() {
			if HasAction(m, render.ActionDeploy) {
				digest = m
				return true
			}
		}
		return false
	}); err != nil {
		return err
	}
	w.Click(Bob, render.ActionDeploy, digest)
	pay := w.GitHub.Repo("acme/payments")
	var depID int64
	if err := Wait(ctx, "the GitHub deployment", wait, func() bool {
		for _, d := range pay.Deployments() {
			if d.Creator != "deployer" {
				depID = d.ID
			}
		}
		return depID != 0 && len(w.Slack.Thread(Release, digest.TS)) >= 2
	}); err != nil {
		return err
	}
	for i, st := range []struct{ state, desc string }{{"in_progress", "rolling out to 12 pods"}, {"success", "12/12 pods healthy"}} {
		if err := w.ReportStatus(ctx, "acme/payments", depID, st.state, st.desc); err != nil {
			return err
		}
		if err := Wait(ctx, "the "+st.state+" status in the thread", wait, func() bool {
			return len(w.Slack.Thread(Release, digest.TS)) >= 3+i
		}); err != nil {
			return err
		}
	}

	// 2. A release that breaks the policy: refused, with Clippy.
	n := len(w.Roots())
	w.Command(Alice, Release, "search to production")
	if err := Wait(ctx, "the refused search digest", wait, func() bool { return len(w.Roots()) > n }); err != nil {
		return err
	}

	// 3. GitHub fails for billing: a failure report instead of a digest.
	w.GitHub.FailNext(1000, "/repos/acme/billing", http.StatusInternalServerError)
	n = len(w.Roots())
	w.Command(Alice, Release, "billing to production")
	if err := Wait(ctx, "the billing failure report", wait, func() bool { return len(w.Roots()) > n }); err != nil {
		return err
	}

	// 4. Someone who may not deploy to production.
	w.Command(Mallory, Dev, "payments to production")
	if err := Wait(ctx, "the answer to Mallory", wait, func() bool {
		for _, e := range w.Slack.Ephemerals() {
			if e.User == Mallory {
				return true
			}
		}
		return false
	}); err != nil {
		return err
	}

	// 5. Search is down and the fix can't wait: Alice breaks glass, Bob reviews afterwards.
	n = len(w.Roots())
	w.Command(Alice, Release, `search to production emergency "search is down for every customer"`)
	var emergency fakeslack.Message
	if err := Wait(ctx, "the emergency digest", wait, func() bool {
		if roots := w.Roots(); len(roots) > n && HasAction(roots[len(roots)-1], render.ActionDeploy) {
			emergency = roots[len(roots)-1]
			return true
		}
		return false
	}); err != nil {
		return err
	}
	w.Click(Alice, render.ActionDeploy, emergency)
	var retro fakeslack.Message
	if err := Wait(ctx, "the retroactive reviews", wait, func() bool {
		for _, m := range w.Slack.Thread(Release, emergency.TS) {
			if HasAction(m, render.ActionRetroApprove) {
				retro = m
				return true
			}
		}
		return false
	}); err != nil {
		return err
	}
	before := len(w.Slack.Thread(Release, emergency.TS))
	w.Click(Bob, render.ActionRetroApprove, retro)
	return Wait(ctx, "the retroactive review closed", wait, func() bool {
		return len(w.Slack.Thread(Release, emergency.TS)) > before
	})
}
