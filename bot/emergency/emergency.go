// Package emergency is the break-glass path of the deploy gate: the note to the emergency
// channel when someone deploys past violations, and the retroactive review each overridden change
// then needs from a second person (a button in the deploy's thread, or an approving review on
// GitHub), with reminders once it is overdue. The reviews live in the evidence: an open review is
// an "opened" record with no "closed" one.
package emergency

import (
	"encoding/json"
	"errors"
	"sockembot/bot/check"
	"sockembot/bot/deploygate"
	"sort"

	"github.com/sirupsen/logrus"

	"context"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"sockembot/bot/render"
	"sockembot/compliance"
)

// Slack is what the emergency path says, and where.
type Slack interface {
	Post(ctx context.Context, channel, thread, text string, blocks ...slack.Block) (ts string, err error)
	Ephemeral(ctx context.Context, channel, user, text string, blocks ...slack.Block) error
	Permalink(ctx context.Context, channel, ts string) (string, error)
	UserGroupMembers(ctx context.Context, group string) ([]string, error)
}

// Store is where the reviews are kept: the evidence.
type Store interface {
	Append(ctx context.Context, e compliance.Evidence) (compliance.Record, error)
	AppendOnce(ctx context.Context, scope, key string, e compliance.Evidence) (compliance.Record, bool, error)
	Records(ctx context.Context, kind, subject string, fn func(compliance.Record) error) error
	Once(ctx context.Context, scope, key string) (first bool, err error)
}

// Config is the part of sockembot.yaml the emergency path reads.
type Config struct {
	EmergencyChannel string            // also hears of every emergency deploy; "" for none
	People           map[string]string // Slack user id -> GitHub login
	// Reviewers are, per environment, the Slack user and user group ids who may close its
	// retroactive reviews (sockembot.yaml's emergency.ENV.reviewers, else the deployers). An
	// environment without any has nobody: the review stays open and overdue.
	Reviewers map[string][]string
}

// Reviews runs the emergency path.
type Reviews struct {
	Config Config
	Slack  Slack
	Store  Store
	Log    *logrus.Logger
	Now    func() time.Time
}

func (em *Reviews) now() time.Time {
	if em.Now != nil {
		return em.Now().UTC()
	}
	return time.Now().UTC()
}

func (em *Reviews) log() *logrus.Logger {
	if em.Log == nil {
		em.Log = logrus.New()
	}
	return em.Log
}

func (em *Reviews) record(ctx context.Context, kind, repo, subject string, body any) error {
	if _, err := em.Store.Append(ctx, compliance.Evidence{At: em.now(), Kind: kind, Repo: repo, Subject: subject, Body: body}); err != nil {
		return check.Errorf("record %s: %w", kind, err)
	}
	return nil
}

func (em *Reviews) post(ctx context.Context, channel, thread, text string, blocks ...slack.Block) (string, error) {
	ts, err := em.Slack.Post(ctx, channel, thread, text, blocks...)
	return ts, check.Trace(err)
}

func (em *Reviews) postMessage(ctx context.Context, channel, thread string, m render.Message) (string, error) {
	return em.post(ctx, channel, thread, m.Text, m.Blocks...)
}

func (em *Reviews) ephemeral(ctx context.Context, channel, user, text string) error {
	return check.Trace(em.Slack.Ephemeral(ctx, channel, user, text))
}

// permalink links to a message, or "" when Slack will not say.
func (em *Reviews) permalink(ctx context.Context, channel, ts string) string {
	if channel == "" || ts == "" {
		return ""
	}
	link, err := em.Slack.Permalink(ctx, channel, ts)
	if err != nil {
		em.log().WithError(err).Warn("slack: chat.getPermalink")
		return ""
	}
	return link
}

// Announce tells the emergency channel (when configured) that someone broke glass.
func (em *Reviews) Announce(ctx context.Context, d deploygate.Deploy, r compliance.Report) error {
	if em.Config.EmergencyChannel == "" || em.Config.EmergencyChannel == d.Channel {
		return nil
	}
	overridden := "no violations to override"
	if n := len(deploygate.ViolationCodes(r)); n > 0 {
		overridden = fmt.Sprintf("*%d violation(s) overridden* in %s", n, render.Esc(strings.Join(render.NonCompliant(r), ", ")))
	}
	where := render.Channel(d.Channel)
	if link := em.permalink(ctx, d.Channel, d.TS); link != "" {
		where = render.Link(link, "the digest")
	}
	text := fmt.Sprintf("🚨 *Emergency deploy* requested by %s: *%s* %s → *%s*.\nReason: _%s_\n%s. Details and the Deploy button: %s.",
		render.Mention(d.Requester), render.Esc(d.Service), render.Code(render.OrHead(d.Ref)), render.Esc(d.Environment), render.Esc(d.Reason), overridden, where)
	_, err := em.postMessage(ctx, em.Config.EmergencyChannel, "", render.Notice(text))
	if err == nil {
		return nil
	}
	// The note is for visibility; the digest and its evidence are the record. A channel the bot
	// cannot post to must not take down the emergency deploy: say so where people are looking.
	em.log().WithError(err).WithField("deploy_id", d.ID).Error("slack: emergency channel note")
	_, perr := em.post(ctx, d.Channel, d.TS, fmt.Sprintf("⚠️ Could not tell the emergency channel %s about this deploy (%s): tell them by hand. The deploy is not affected.",
		render.Channel(em.Config.EmergencyChannel), render.Esc(err.Error())))
	return perr
}

// Open opens a retroactive review for each change an emergency deploy let through
// despite its violations, and posts them in the thread with an approve button each.
func (em *Reviews) Open(ctx context.Context, d deploygate.Deploy, r compliance.Report, policy compliance.Policy, deployer string, at time.Time) error {
	due := compliance.AddBusinessDays(at, policy.Emergency.ReviewWithinBusinessDays)
	var blocks []slack.Block
	var names []string
	for _, c := range r.Changes {
		if c.Compliant {
			continue
		}
		ev := RetroReviewEvidence{
			Event: retroOpened, DeployID: d.ID, Change: c.Name(), Repo: d.Repo, Author: c.Author,
			Requester: d.Requester, Deployer: deployer, Service: d.Service, Env: d.Environment,
			Channel: d.Channel, TS: d.TS, Reason: d.Reason, Due: due, At: at,
		}
		if c.Kind == compliance.KindPullRequest {
			ev.PRNumber = c.Number
		}
		if err := em.record(ctx, compliance.EvidenceRetroReview, d.Repo, deploygate.Subject(d.ID), ev); err != nil {
			return err
		}
		names = append(names, ev.Change)
		text := fmt.Sprintf("*%s* %s — by %s\n%s", render.Esc(ev.Change), render.Esc(c.Title), render.Esc(render.OrUnknown(c.Author)), render.Esc(render.FirstViolation(c)))
		section := render.Section(render.Clip(text, render.MaxSectionText))
		section.Accessory = slack.NewAccessory(slack.NewButtonBlockElement(render.ActionRetroApprove, fmt.Sprintf("%d|%s", d.ID, ev.Change), render.Plain("Approve retroactively")))
		blocks = append(blocks, section)
	}
	if len(names) == 0 {
		return nil
	}
	intro := fmt.Sprintf("🔍 *Retroactive review needed* for %s, due %s. A second person — not %s, who asked for this deploy, nor the change's author — reviews each change and presses *Approve retroactively*, or approves the pull request on GitHub.",
		render.Esc(strings.Join(names, ", ")), due.UTC().Format("Mon 2 Jan 15:04 MST"), render.Mention(d.Requester))
	for _, m := range render.PackBlocks(render.Section(intro), blocks) {
		m.Text = "Retroactive review needed for " + render.Esc(strings.Join(names, ", "))
		if _, err := em.postMessage(ctx, d.Channel, d.TS, m); err != nil {
			return err
		}
	}
	return nil
}

// OnClick handles the Approve retroactively buttons of a click; other buttons are the deploy
// gate's.
func (em *Reviews) OnClick(ctx context.Context, cb deploygate.Click) error {
	var errs []error
	for _, act := range cb.Actions {
		if act.ID == render.ActionRetroApprove {
			errs = append(errs, em.approve(ctx, cb.User, cb.Channel, act.Value))
		}
	}
	return errors.Join(errs...)
}

// approve handles one Approve retroactively button.
func (em *Reviews) approve(ctx context.Context, user, channel, value string) error {
	idText, change, ok := strings.Cut(value, "|")
	var id int64
	if _, err := fmt.Sscan(idText, &id); !ok || err != nil {
		return fmt.Errorf("button %s: bad value %q", render.ActionRetroApprove, value)
	}
	rv, found, err := em.retroReview(ctx, id, change)
	if err != nil {
		return err
	}
	if !found {
		return em.ephemeral(ctx, channel, user, fmt.Sprintf("There is no retroactive review of %s in deploy #%d.", render.Esc(change), id))
	}
	o := rv.Opened
	if rv.Closed != nil {
		return em.ephemeral(ctx, channel, user, fmt.Sprintf("%s was already reviewed by %s.", render.Esc(change), reviewerText(*rv.Closed)))
	}
	switch {
	case user == o.Requester || user == o.Deployer:
		return em.refuseRetro(ctx, o, user, channel, "you asked for or pressed this emergency deploy; a second person must review it")
	case o.Author != "" && strings.EqualFold(em.Config.People[user], o.Author):
		return em.refuseRetro(ctx, o, user, channel, "you wrote this change; someone else must review it")
	}
	may, err := em.mayReview(ctx, user, o.Env)
	if err != nil {
		return err
	}
	if !may {
		return em.refuseRetro(ctx, o, user, channel, em.reviewersText(o.Env))
	}
	return em.closeRetro(ctx, o, user, "slack")
}

// mayReview says whether a Slack user is one of env's retroactive reviewers.
func (em *Reviews) mayReview(ctx context.Context, user, env string) (bool, error) {
	return deploygate.MemberOf(ctx, em.Slack, user, em.Config.Reviewers[env])
}

func (em *Reviews) reviewersText(env string) string {
	ids := em.Config.Reviewers[env]
	if len(ids) == 0 {
		return fmt.Sprintf("nobody is configured to review emergency deploys to %s (emergency.%s.reviewers in sockembot.yaml)", env, env)
	}
	return fmt.Sprintf("only the reviewers of emergency deploys to %s may: %s", env, deploygate.IDsText(ids))
}

// slackUsers are the Slack users a GitHub login belongs to, by the config's people.
func (em *Reviews) slackUsers(login string) []string {
	var ids []string
	for id, l := range em.Config.People {
		if strings.EqualFold(l, login) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func (em *Reviews) refuseRetro(ctx context.Context, o RetroReviewEvidence, user, channel, why string) error {
	if err := em.record(ctx, compliance.EvidenceDeployAttemptDenied, o.Repo, o.Service+"/"+o.Env, deploygate.AttemptDeniedEvidence{Service: o.Service, Environment: o.Env, User: user, Action: "retro_review " + o.Change, Reason: why, DeployID: o.DeployID, Channel: o.Channel}); err != nil {
		return err
	}
	return em.ephemeral(ctx, channel, user, fmt.Sprintf("You can't approve %s retroactively: %s.", render.Esc(o.Change), why))
}

// closeRetro records a retroactive review as done, once whoever gets there first.
func (em *Reviews) closeRetro(ctx context.Context, o RetroReviewEvidence, by, via string) error {
	at := em.now()
	ev := RetroReviewEvidence{Event: retroClosed, DeployID: o.DeployID, Change: o.Change, Repo: o.Repo, PRNumber: o.PRNumber, Due: o.Due, By: by, Via: via, At: at}
	// The claim and the record commit together: a button pressed twice, or a press racing a
	// GitHub approval, closes the review once; a record that fails leaves it open to close again.
	_, first, err := em.Store.AppendOnce(ctx, "retro-close", o.Key(),
		compliance.Evidence{At: at, Kind: compliance.EvidenceRetroReview, Repo: o.Repo, Subject: deploygate.Subject(o.DeployID), Body: ev})
	if err != nil {
		return check.Errorf("record %s: %w", compliance.EvidenceRetroReview, err)
	}
	if !first {
		return nil
	}
	late := ""
	if at.After(o.Due) {
		late = fmt.Sprintf(" (%s late)", at.Sub(o.Due).Round(time.Hour))
	}
	_, err = em.post(ctx, o.Channel, o.TS, fmt.Sprintf("✅ Retroactive review of *%s* done by %s at %s%s.", render.Esc(o.Change), reviewerText(ev), at.Format("2006-01-02 15:04 MST"), late))
	return err
}

func reviewerText(ev RetroReviewEvidence) string {
	if ev.Via == "github_review" {
		return render.Esc(ev.By) + " (approving review on GitHub)"
	}
	return render.Mention(ev.By)
}

func (em *Reviews) retroReview(ctx context.Context, deployID int64, change string) (RetroReview, bool, error) {
	all, err := RetroReviews(ctx, em.Store)
	if err != nil {
		return RetroReview{}, false, err
	}
	for _, rv := range all {
		if rv.Opened.DeployID == deployID && rv.Opened.Change == change {
			return rv, true, nil
		}
	}
	return RetroReview{}, false, nil
}

// OnReview closes retroactive reviews with an approval given on GitHub after an emergency deploy.
// Such an approval usually arrives once the pull request is merged and closed.
func (em *Reviews) OnReview(ctx context.Context, ev compliance.ReviewEvent) error {
	if ev.Action != "submitted" || !strings.EqualFold(ev.Review.State, compliance.StateApproved) {
		return nil
	}
	return em.onApprovingReview(ctx, ev.Repo, ev.Number, ev.Review)
}

// onApprovingReview closes the open retroactive reviews of a pull request that a second person
// approved on GitHub after the fact. That person must be independent and able to approve: not
// the change's author, nor whoever asked for or pressed the emergency deploy (so both must be
// mapped in `people`, or GitHub cannot tell them apart and only the thread's button closes
// the review), not a bot, someone with write access to the repository (author_association
// OWNER, MEMBER or COLLABORATOR), and the approval given after the review was opened.
func (em *Reviews) onApprovingReview(ctx context.Context, repo string, number int, review compliance.Review) error {
	reviewer := review.User
	if reviewer == "" || review.Bot {
		return nil
	}
	switch review.Association {
	case "OWNER", "MEMBER", "COLLABORATOR":
	default:
		return nil
	}
	all, err := RetroReviews(ctx, em.Store)
	if err != nil {
		return err
	}
	for _, rv := range all {
		o := rv.Opened
		if rv.Closed != nil || o.Repo != repo || o.PRNumber != number || strings.EqualFold(o.Author, reviewer) {
			continue
		}
		requester, deployer := em.Config.People[o.Requester], em.Config.People[o.Deployer]
		if requester == "" || deployer == "" || strings.EqualFold(requester, reviewer) || strings.EqualFold(deployer, reviewer) {
			continue
		}
		if at := review.SubmittedAt; !at.IsZero() && at.Before(o.At) {
			continue // given before the emergency deploy: not a review after the fact
		}
		// Only a configured reviewer closes it, as from Slack: their login must map (people)
		// to a Slack user who is one.
		reviewerOK := false
		for _, id := range em.slackUsers(reviewer) {
			if reviewerOK || id == o.Requester || id == o.Deployer {
				continue
			}
			if reviewerOK, err = em.mayReview(ctx, id, o.Env); err != nil {
				return err
			}
		}
		if !reviewerOK {
			em.log().WithFields(logrus.Fields{"repo": repo, "pr": number, "reviewer": reviewer}).
				Info("emergency: an approval on GitHub from someone who is not a retroactive reviewer does not close the review")
			continue
		}
		if err := em.closeRetro(ctx, o, reviewer, "github_review"); err != nil {
			return err
		}
	}
	return nil
}

// OverdueRetroReviews are the open reviews past their deadline at now.
func (em *Reviews) OverdueRetroReviews(ctx context.Context, now time.Time) ([]RetroReviewEvidence, error) {
	all, err := RetroReviews(ctx, em.Store)
	if err != nil {
		return nil, err
	}
	var out []RetroReviewEvidence
	for _, rv := range all {
		if rv.Closed == nil && now.After(rv.Opened.Due) {
			out = append(out, rv.Opened)
		}
	}
	return out, nil
}

// RemindOverdue reminds the requester, in the deploy's thread, of each overdue review: once a
// day per review, whichever replica runs the job.
func (em *Reviews) RemindOverdue(ctx context.Context, overdue []RetroReviewEvidence, now time.Time) error {
	for _, o := range overdue {
		first, err := em.Store.Once(ctx, "retro-remind", o.Key()+" "+now.Format("2006-01-02"))
		if err != nil {
			return err
		}
		if !first {
			continue
		}
		if _, err := em.post(ctx, o.Channel, o.TS, fmt.Sprintf("⏰ %s: the retroactive review of *%s* was due %s and is still open. Ask a second person to review it and press *Approve retroactively*, or to approve the pull request on GitHub.",
			render.Mention(o.Requester), render.Esc(o.Change), o.Due.UTC().Format("Mon 2 Jan 15:04 MST"))); err != nil {
			return err
		}
	}
	return nil
}

// OverdueLines are the daily summary's lines about overdue retroactive reviews.
func OverdueLines(overdue []RetroReviewEvidence, now time.Time) []string {
	var out []string
	for _, o := range overdue {
		out = append(out, fmt.Sprintf("• %s %s in *%s* (deploy #%d, %s → %s): due %s, %s overdue",
			render.Esc(o.Repo), render.Esc(o.Change), render.Esc(o.Service), o.DeployID, render.Mention(o.Requester), render.Esc(o.Env),
			o.Due.UTC().Format("2006-01-02"), now.Sub(o.Due).Round(time.Hour)))
	}
	return out
}

// Retroactive review events, the Event of a retro_review record.
const (
	retroOpened = "opened"
	retroClosed = "closed"
)

// RetroReviewEvidence is the body of a retro_review record. An emergency deploy that overrode
// violations opens one per non-compliant change; a second person's approval afterwards closes it.
// The evidence is the state: an open review is one with an "opened" record and no "closed" one.
type RetroReviewEvidence struct {
	Event    string `json:"event"` // retroOpened or retroClosed
	DeployID int64  `json:"deploy_id"`
	Change   string `json:"change"` // "#12" or "direct push abc1234"
	Repo     string `json:"repo"`
	PRNumber int    `json:"pr_number,omitempty"`
	Author   string `json:"author,omitempty"` // GitHub login of the change's author
	// On opening: who asked for and who pressed the emergency deploy (Slack ids), where its
	// thread is, and when the review is due.
	Requester string    `json:"requester,omitempty"`
	Deployer  string    `json:"deployer,omitempty"`
	Service   string    `json:"service,omitempty"`
	Env       string    `json:"environment,omitempty"`
	Channel   string    `json:"channel,omitempty"`
	TS        string    `json:"ts,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Due       time.Time `json:"due,omitempty"`
	// On closing: who approved (a Slack id, or a GitHub login with Via "github_review") and how.
	By  string    `json:"by,omitempty"`
	Via string    `json:"via,omitempty"` // "slack" or "github_review"
	At  time.Time `json:"at"`
}

// RetroReview is one retroactive review as the evidence tells it.
type RetroReview struct {
	Opened RetroReviewEvidence
	Closed *RetroReviewEvidence
}

// Key identifies a review: a deploy and one of its changes.
func (r RetroReviewEvidence) Key() string { return fmt.Sprintf("deploy/%d %s", r.DeployID, r.Change) }

// retroReviewSubject is the evidence subject of a deploy's retro reviews.
func retroReviewSubject(deployID int64) string { return fmt.Sprintf("deploy/%d", deployID) }

// Records reads evidence back, oldest first.
type Records interface {
	Records(ctx context.Context, kind, subject string, fn func(compliance.Record) error) error
}

// RetroReviews folds every retro_review record into reviews, oldest opening first. Emergency
// deploys are rare, so this reads them all.
func RetroReviews(ctx context.Context, records Records) ([]RetroReview, error) {
	byKey := map[string]*RetroReview{}
	var order []string
	err := records.Records(ctx, compliance.EvidenceRetroReview, "", func(r compliance.Record) error {
		var ev RetroReviewEvidence
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			return check.Errorf("retro_review %d: %w", r.Seq, err)
		}
		k := ev.Key()
		switch ev.Event {
		case retroOpened:
			if _, ok := byKey[k]; !ok {
				byKey[k] = &RetroReview{Opened: ev}
				order = append(order, k)
			}
		case retroClosed:
			if rv, ok := byKey[k]; ok && rv.Closed == nil {
				c := ev
				rv.Closed = &c
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]RetroReview, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Opened.At.Before(out[j].Opened.At) })
	return out, nil
}
