package bottest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"sockembot/bot"
	"sockembot/bot/demo"
	"sockembot/bot/render"
	fakegithub "sockembot/integrations/fake/github"
	fakeslack "sockembot/integrations/fake/slack"
)

// EmergencyChannel is the emergency channel of NewEmergencyRig.
const EmergencyChannel = "C0EMERG"

// Clock is a settable time source for the bot, so deadlines are tested without waiting.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// NewEmergencyRig is the demo world where alice may break glass in production, with the clock on
// Tuesday 2026-11-24 10:00 UTC.
func NewEmergencyRig(t *testing.T, configure ...func(*bot.Config)) (*Rig, *Clock) {
	t.Helper()
	clk := NewClock(time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC))
	r := NewRig(t, func(o *demo.Options) {
		o.Now = clk.Now
		o.Configure = func(c *bot.Config) {
			c.Emergency = map[string]bot.EmergencyAccess{"production": {BreakGlass: []string{demo.Alice}}}
			c.EmergencyChannel = EmergencyChannel
			c.People = map[string]string{demo.Alice: "alice", demo.Bob: "bob"}
			for _, f := range configure {
				f(c)
			}
		}
	})
	return r, clk
}

// ThreadSays says whether a reply in root's thread contains s.
func (r *Rig) ThreadSays(root fakeslack.Message, s string) bool {
	for _, m := range r.Thread(root) {
		if strings.Contains(m.Text, s) {
			return true
		}
	}
	return false
}

// ConfirmPayments requests and confirms a compliant payments deploy to production, and returns
// the digest root and the GitHub deployment id once the deployment exists and the thread has
// the confirmation and the evidence chain's head, in that order, before anything else.
func (r *Rig) ConfirmPayments() (fakeslack.Message, int64) {
	r.T.Helper()
	r.Command(demo.Alice, demo.Release, "payments to production")
	root := r.Digest(1)
	r.Click(demo.Alice, render.ActionDeploy, root)
	pay := r.GitHub.Repo("acme/payments")
	r.Until("the GitHub deployment", func() bool { return len(MadeByBot(pay)) == 1 && r.ThreadSays(root, "Evidence chain head") })
	return root, MadeByBot(pay)[0].ID
}

// DeployPayments is ConfirmPayments, then the CD system reporting success.
func (r *Rig) DeployPayments() (fakeslack.Message, int64) {
	r.T.Helper()
	root, id := r.ConfirmPayments()
	if err := r.ReportStatus(context.Background(), "acme/payments", id, "success", "12/12 pods healthy"); err != nil {
		r.T.Fatal(err)
	}
	return root, id
}

// OpenedPR is octokit's pull_request "opened" example, Codertocat/Hello-World#2, made real in the
// fake GitHub: the payload with the fake's head SHA in place of the recorded one.
func (e *Hooks) OpenedPR() (*fakegithub.Repo, fakegithub.PRInfo, []byte) {
	e.T.Helper()
	r := e.GitHub.AddRepo("Codertocat/Hello-World", "master")
	r.Commit("Initial commit", "Codertocat")
	info := PRAt(e.T, r, 2, fakegithub.PR{
		Title: "Update the README with new information.", Body: "This is a pretty simple change that we need to pull into master.",
		Author: "Codertocat", Branch: "changes",
	}, "")
	body := Retarget(Fixture(e.T, Octokit+"pull_request/opened.payload.json"), OctokitHead, info.HeadSHA)
	return r, info, body
}

// OctokitHead is the head SHA in octokit's pull_request examples.
const OctokitHead = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"

// NewReconcileHooks is NewHooks with acme/payments configured as a service, with the app's clock on the fake
// GitHub's synthetic clock so "merged since" windows line up.
func NewReconcileHooks(t *testing.T) (*Hooks, *fakegithub.Repo) {
	e := NewHooks(t)
	e.App.Now = e.GitHub.Now
	e.App.Config.Services = map[string]bot.Service{
		"payments": {Repo: "acme/payments", Environments: []string{"production"}},
		"hubot":    {Repo: "atmos/hubot-deploy", Environments: []string{"production"}},
	}
	e.Jira.AddIssue("PAY-1", "In Progress")
	r := e.GitHub.AddRepo("acme/payments", "main")
	r.Commit("Initial commit", "alice")
	return e, r
}
