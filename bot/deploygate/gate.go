// Package deploygate is sockembot's deploy gate: `/deploy` in Slack, the digest of every change
// between what runs and what is asked for, Deploy and Cancel, the GitHub deployment and its
// statuses in the digest's thread, Jira after a deploy, environment locks, emergencies with
// their retroactive reviews, and recovery of confirmations a crash cut short. It owns the deploy
// domain: Deploy, State and the evidence each step records.
package deploygate

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"

	"sockembot/bot/check"
	"sockembot/bot/render"
	"sockembot/compliance"
)

// HandlerTimeout bounds the work of one command or click; a check of a big release fits easily.
const HandlerTimeout = 5 * time.Minute

// RecoverEvery is how often the runtime runs RecoverInterrupted.
const RecoverEvery = 5 * time.Minute

// GitHub is what a deploy needs from GitHub.
type GitHub interface {
	ResolveRef(ctx context.Context, repo, ref string) (sha string, err error)
	DefaultBranch(ctx context.Context, repo string) (name, sha string, err error)
	// CurrentDeployment is the newest deployment to env whose latest status is success.
	CurrentDeployment(ctx context.Context, repo, env string) (sha string, id int64, found bool, err error)
	CreateDeployment(ctx context.Context, repo, sha, env string, payload any, description string) (id int64, err error)
	DeploymentPayloads(ctx context.Context, repo, sha, env string) (map[int64]json.RawMessage, error)
	// ReviewProtectionRule answers a GitHub Actions deployment waiting on sockembot's protection
	// rule at callbackURL: state approved or rejected, with a comment shown on the run's page.
	ReviewProtectionRule(ctx context.Context, repo, callbackURL, environment, state, comment string) error
}

// Slack is what the deploy gate says, and where.
type Slack interface {
	Post(ctx context.Context, channel, thread, text string, blocks ...slack.Block) (ts string, err error)
	Update(ctx context.Context, channel, ts, text string, blocks ...slack.Block) error
	Ephemeral(ctx context.Context, channel, user, text string, blocks ...slack.Block) error
	Respond(ctx context.Context, responseURL, channel, text string, blocks ...slack.Block) error
	Permalink(ctx context.Context, channel, ts string) (string, error)
	UserGroupMembers(ctx context.Context, group string) ([]string, error)
}

// Jira is what closing the loop after a deploy asks of Jira.
type Jira interface {
	Comment(ctx context.Context, key, body string) error
	// Transition moves an issue through the transition (or to the status) called name; moved is
	// false when it was there already or finished. status is where it was.
	Transition(ctx context.Context, key, name string) (moved bool, status string, err error)
}

// Store is what the deploy gate keeps: deploys, locks and evidence.
type Store interface {
	Append(ctx context.Context, e compliance.Evidence) (compliance.Record, error)
	AppendOnce(ctx context.Context, scope, key string, e compliance.Evidence) (compliance.Record, bool, error)
	Records(ctx context.Context, kind, subject string, fn func(compliance.Record) error) error
	LastRecord(ctx context.Context, kind, subject string) (compliance.Record, bool, error)
	Once(ctx context.Context, scope, key string) (first bool, err error)
	// Head is the evidence chain's newest record: its seq and MAC.
	Head(ctx context.Context) (seq int64, hash string, err error)

	CreateDeploy(ctx context.Context, d Deploy) (int64, error)
	GetDeploy(ctx context.Context, id int64) (Deploy, error)
	UpdateDeploy(ctx context.Context, id int64, fn func(d *Deploy)) error
	TransitionDeploy(ctx context.Context, id int64, from, to State) (ok bool, err error)
	ClaimConfirm(ctx context.Context, id int64) (ok bool, busy int64, err error)
	DeploysIn(ctx context.Context, state State, before time.Time) ([]Deploy, error)
	DeployByGitHubID(ctx context.Context, repo string, ghID int64) (Deploy, error)
	RecentDeploys(ctx context.Context, service, env string, n int) ([]Deploy, error)

	Lock(ctx context.Context, service, env, by, reason string) (ok bool, existing *Lock, err error)
	Unlock(ctx context.Context, service, env string) (was bool, err error)
	GetLock(ctx context.Context, service, env string) (*Lock, error)
}

// Emergencies is what a break-glass deploy needs besides the deploy itself (bot/emergency).
type Emergencies interface {
	// Announce tells the emergency channel that someone broke glass.
	Announce(ctx context.Context, d Deploy, r compliance.Report) error
	// Open opens a retroactive review of each change d let through despite its violations.
	Open(ctx context.Context, d Deploy, r compliance.Report, p compliance.Policy, deployer string, at time.Time) error
}

// Locks serialises work on one key across goroutines and replicas (the runtime's leases).
type Locks interface {
	Lock(ctx context.Context, key string) (unlock func(), err error)
}

// Notices posts a Slack notice once per key, retried until Slack takes it.
type Notices interface {
	PostOnce(ctx context.Context, key, channel, thread string, text func() (string, error)) error
}

// Service is one deployable service.
type Service struct {
	Repo         string
	Environments []string
}

// Config is the part of sockembot.yaml the deploy gate reads.
type Config struct {
	ReleaseChannel string
	Services       map[string]Service
	// Deployers lists, per environment, the Slack user and user group ids who may deploy there.
	Deployers map[string][]string
	// Emergency lists, per environment, who may break glass.
	Emergency        map[string][]string
	EmergencyChannel string
	// People maps Slack user ids to GitHub logins, for separation of duties.
	People                 map[string]string
	ProductionEnvironments []string
	Policy                 compliance.Policy
}

// Gate is the deploy gate.
type Gate struct {
	Config  Config
	GitHub  GitHub
	Slack   Slack
	Jira    Jira
	Store   Store
	Checker *check.Checker
	Locks   Locks
	Notices Notices
	// Emergencies handles what a break-glass deploy adds (bot/emergency).
	Emergencies Emergencies
	Log         *logrus.Logger
	Now         func() time.Time
}

// State is where a deploy request stands. The strings are stored: never rename them.
type State string

const (
	StateRequested  State = "requested"  // digest posted, check running or done
	StateRefused    State = "refused"    // the check failed and no override was given
	StateReady      State = "ready"      // the Deploy button may be pressed
	StateConfirming State = "confirming" // Deploy pressed: creating the GitHub deployment
	StateDeployed   State = "deployed"
	StateCancelled  State = "cancelled"
	StateFailed     State = "failed"
)

// States are every state, for the store's conformance with them.
var States = []State{StateRequested, StateRefused, StateReady, StateConfirming, StateDeployed, StateCancelled, StateFailed}

// Deploy is one deploy request and what became of it.
type Deploy struct {
	ID                 int64
	Service            string
	Environment        string
	Repo               string
	Ref                string
	HeadSHA            string
	BaseSHA            string
	Requester          string // Slack user id
	Channel            string // Slack channel of the digest message
	TS                 string // Slack ts of the digest message, to thread later events under it
	State              State
	CheckSeq           int64 // evidence seq of the check_run the digest shows
	GitHubDeploymentID int64
	Emergency          bool
	Reason             string
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// Lock is a hold on deploys of a service to an environment (a freeze, an incident).
type Lock struct {
	Service     string
	Environment string
	By          string
	Reason      string
	At          time.Time
}

func (g *Gate) now() time.Time {
	if g.Now != nil {
		return g.Now().UTC()
	}
	return time.Now().UTC()
}

func (g *Gate) log() *logrus.Logger {
	if g.Log == nil {
		g.Log = logrus.New()
	}
	return g.Log
}

// Subject names a deploy in evidence: "deploy/12".
func Subject(id int64) string { return fmt.Sprintf("deploy/%d", id) }

func (g *Gate) record(ctx context.Context, kind, repo, subject string, body any) error {
	if _, err := g.Store.Append(ctx, compliance.Evidence{At: g.now(), Kind: kind, Repo: repo, Subject: subject, Body: body}); err != nil {
		return check.Errorf("record %s: %w", kind, err)
	}
	return nil
}

// postAnchor posts the evidence chain's head in a deploy's thread, once the deploy's outcome is
// on record. Cutting the chain's tail and moving its head back is the one rewrite the MACs cannot
// catch; with the head kept in Slack, outside the database, `audit verify --anchor` catches it.
// The anchor is for auditors: failing to post it is logged, and stops nothing.
func (g *Gate) postAnchor(ctx context.Context, d Deploy) {
	seq, mac, err := g.Store.Head(ctx)
	if err == nil {
		_, err = g.post(ctx, d.Channel, d.TS, fmt.Sprintf("🔗 Evidence chain head: record %d, `%s` — `sockembot audit verify --anchor %d:%s`", seq, mac, seq, mac))
	}
	if err != nil {
		g.log().WithError(err).WithField("deploy_id", d.ID).Warn("deploy: post the evidence chain head")
	}
}

func (g *Gate) post(ctx context.Context, channel, thread, text string, blocks ...slack.Block) (string, error) {
	ts, err := g.Slack.Post(ctx, channel, thread, text, blocks...)
	return ts, check.Trace(err)
}

func (g *Gate) postMessage(ctx context.Context, channel, thread string, m render.Message) (string, error) {
	return g.post(ctx, channel, thread, m.Text, m.Blocks...)
}

func (g *Gate) update(ctx context.Context, channel, ts, text string, blocks ...slack.Block) error {
	return check.Trace(g.Slack.Update(ctx, channel, ts, text, blocks...))
}

func (g *Gate) ephemeral(ctx context.Context, channel, user, text string, blocks ...slack.Block) error {
	return check.Trace(g.Slack.Ephemeral(ctx, channel, user, text, blocks...))
}

// permalink links to a deploy's digest, or "" when Slack will not say.
func (g *Gate) permalink(ctx context.Context, d Deploy) string {
	if d.Channel == "" || d.TS == "" {
		return ""
	}
	link, err := g.Slack.Permalink(ctx, d.Channel, d.TS)
	if err != nil {
		g.log().WithError(err).WithField("deploy_id", d.ID).Warn("slack: chat.getPermalink")
		return ""
	}
	return link
}

// checkRun reads back the check a deploy acted on (CheckRunOf).
func (g *Gate) checkRun(ctx context.Context, d Deploy) (check.CheckRunEvidence, error) {
	return CheckRunOf(ctx, g.Store, d)
}

// Records reads evidence back, oldest first.
type Records interface {
	Records(ctx context.Context, kind, subject string, fn func(compliance.Record) error) error
}

// CheckRunOf reads back the check a deploy acted on, from its check_run evidence: the evidence,
// not memory, is what later steps use, on whichever replica they run.
func CheckRunOf(ctx context.Context, records Records, d Deploy) (check.CheckRunEvidence, error) {
	var ev check.CheckRunEvidence
	found := false
	err := records.Records(ctx, compliance.EvidenceCheckRun, d.HeadSHA, func(r compliance.Record) error {
		if r.Seq != d.CheckSeq {
			return nil
		}
		found = true
		return json.Unmarshal(r.Body, &ev)
	})
	if err != nil {
		return check.CheckRunEvidence{}, check.Errorf("read check run %d of deploy %d: %w", d.CheckSeq, d.ID, err)
	}
	if !found {
		return check.CheckRunEvidence{}, check.Errorf("check run %d of deploy %d: %w", d.CheckSeq, d.ID, compliance.ErrNotFound)
	}
	return ev, nil
}
