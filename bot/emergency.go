package bot

import (
	"context"
	"fmt"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"
	"github.com/slack-go/slack"

	"sockembot/compliance"
	"sockembot/integrations/store"
)

// actionRetroApprove is the button that closes a retroactive review. Its value is
// "DEPLOY_ID|CHANGE". A contract with posted messages: never rename it.
const actionRetroApprove = "retro_approve"

// retroStore is what retroactive reviews need from the store.
type retroStore interface {
	RetroReviews(ctx context.Context) ([]store.RetroReview, error)
	AppendOnce(ctx context.Context, scope, key string, e store.Evidence) (store.Record, bool, error)
}

// announceEmergency tells the emergency channel (when configured) that someone broke glass.
func (a *App) announceEmergency(ctx context.Context, d store.Deploy, r compliance.Report) error {
	if a.Config.EmergencyChannel == "" || a.Config.EmergencyChannel == d.Channel {
		return nil
	}
	overridden := "no violations to override"
	if n := len(violationCodes(r)); n > 0 {
		overridden = fmt.Sprintf("*%d violation(s) overridden* in %s", n, strings.Join(nonCompliant(r), ", "))
	}
	where := fmt.Sprintf("<#%s>", d.Channel)
	if link := a.permalink(ctx, d); link != "" {
		where = fmt.Sprintf("<%s|the digest>", link)
	}
	text := fmt.Sprintf("🚨 *Emergency deploy* requested by %s: *%s* `%s` → *%s*.\nReason: _%s_\n%s. Details and the Deploy button: %s.",
		mention(d.Requester), esc(d.Service), esc(orHead(d.Ref)), esc(d.Environment), esc(d.Reason), overridden, where)
	_, err := a.postMessage(ctx, a.Config.EmergencyChannel, "", noticeMessage(text))
	if err == nil {
		return nil
	}
	// The note is for visibility; the digest and its evidence are the record. A channel the bot
	// cannot post to must not take down the emergency deploy: say so where people are looking.
	a.log().WithError(err).WithField("deploy_id", d.ID).Error("slack: emergency channel note")
	_, perr := a.post(ctx, d.Channel, d.TS, fmt.Sprintf("⚠️ Could not tell the emergency channel <#%s> about this deploy (%s): tell them by hand. The deploy is not affected.",
		a.Config.EmergencyChannel, esc(err.Error())))
	return perr
}

// openRetroReviews opens a retroactive review for each change an emergency deploy let through
// despite its violations, and posts them in the thread with an approve button each.
func (a *App) openRetroReviews(ctx context.Context, d store.Deploy, r compliance.Report, policy compliance.Policy, deployer string, at time.Time) error {
	due := compliance.AddBusinessDays(at, policy.Emergency.ReviewWithinBusinessDays)
	var blocks []slack.Block
	var names []string
	for _, c := range r.Changes {
		if c.Compliant {
			continue
		}
		ev := store.RetroReviewEvidence{
			Event: store.RetroOpened, DeployID: d.ID, Change: changeName(c), Repo: d.Repo, Author: c.Author,
			Requester: d.Requester, Deployer: deployer, Service: d.Service, Env: d.Environment,
			Channel: d.Channel, TS: d.TS, Reason: d.Reason, Due: due, At: at,
		}
		if c.Kind == compliance.KindPullRequest {
			ev.PRNumber = c.Number
		}
		if err := a.record(ctx, store.KindRetroReview, d.Repo, store.RetroReviewSubject(d.ID), ev); err != nil {
			return err
		}
		names = append(names, ev.Change)
		text := fmt.Sprintf("*%s* %s — by %s\n%s", esc(ev.Change), esc(c.Title), esc(orUnknown(c.Author)), esc(firstViolation(c)))
		blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, clip(text, maxSectionText), false, false), nil,
			slack.NewAccessory(slack.NewButtonBlockElement(actionRetroApprove, fmt.Sprintf("%d|%s", d.ID, ev.Change), plain("Approve retroactively")))))
	}
	if len(names) == 0 {
		return nil
	}
	intro := fmt.Sprintf("🔍 *Retroactive review needed* for %s, due %s. A second person — not %s, who asked for this deploy, nor the change's author — reviews each change and presses *Approve retroactively*, or approves the pull request on GitHub.",
		strings.Join(names, ", "), due.UTC().Format("Mon 2 Jan 15:04 MST"), mention(d.Requester))
	for _, m := range packBlocks(section(intro), blocks) {
		m.Text = "Retroactive review needed for " + strings.Join(names, ", ")
		if _, err := a.postMessage(ctx, d.Channel, d.TS, m); err != nil {
			return err
		}
	}
	return nil
}

// packBlocks puts a heading and blocks into as few messages as Slack's block limit allows.
func packBlocks(head slack.Block, blocks []slack.Block) []Message {
	var out []Message
	cur := []slack.Block{head}
	for _, b := range blocks {
		if len(cur) == maxBlocks {
			out = append(out, Message{Blocks: cur})
			cur = nil
		}
		cur = append(cur, b)
	}
	return append(out, Message{Blocks: cur})
}

// approveRetro handles the Approve retroactively button.
func (a *App) approveRetro(ctx context.Context, cb slack.InteractionCallback, value string) error {
	user, channel := cb.User.ID, cb.Container.ChannelID
	idText, change, ok := strings.Cut(value, "|")
	var id int64
	if _, err := fmt.Sscan(idText, &id); !ok || err != nil {
		return fmt.Errorf("button %s: bad value %q", actionRetroApprove, value)
	}
	rv, found, err := a.retroReview(ctx, id, change)
	if err != nil {
		return err
	}
	if !found {
		return a.ephemeral(ctx, channel, user, fmt.Sprintf("There is no retroactive review of %s in deploy #%d.", esc(change), id))
	}
	o := rv.Opened
	if rv.Closed != nil {
		return a.ephemeral(ctx, channel, user, fmt.Sprintf("%s was already reviewed by %s.", esc(change), reviewerText(*rv.Closed)))
	}
	switch {
	case user == o.Requester || user == o.Deployer:
		return a.refuseRetro(ctx, o, user, channel, "you asked for or pressed this emergency deploy; a second person must review it")
	case o.Author != "" && strings.EqualFold(a.Config.People[user], o.Author):
		return a.refuseRetro(ctx, o, user, channel, "you wrote this change; someone else must review it")
	}
	return a.closeRetro(ctx, o, user, "slack")
}

func (a *App) refuseRetro(ctx context.Context, o store.RetroReviewEvidence, user, channel, why string) error {
	if err := a.denied(ctx, o.Repo, attemptDeniedEvidence{Service: o.Service, Environment: o.Env, User: user, Action: "retro_review " + o.Change, Reason: why, DeployID: o.DeployID, Channel: o.Channel}); err != nil {
		return err
	}
	return a.ephemeral(ctx, channel, user, fmt.Sprintf("You can't approve %s retroactively: %s.", esc(o.Change), why))
}

// closeRetro records a retroactive review as done, once whoever gets there first.
func (a *App) closeRetro(ctx context.Context, o store.RetroReviewEvidence, by, via string) error {
	at := a.now()
	ev := store.RetroReviewEvidence{Event: store.RetroClosed, DeployID: o.DeployID, Change: o.Change, Repo: o.Repo, PRNumber: o.PRNumber, Due: o.Due, By: by, Via: via, At: at}
	// The claim and the record commit together: a button pressed twice, or a press racing a
	// GitHub approval, closes the review once; a record that fails leaves it open to close again.
	_, first, err := a.Store.AppendOnce(ctx, "retro-close", o.Key(),
		store.Evidence{At: at, Kind: store.KindRetroReview, Repo: o.Repo, Subject: store.RetroReviewSubject(o.DeployID), Body: ev})
	if err != nil {
		return fmt.Errorf("record %s: %w", store.KindRetroReview, err)
	}
	if !first {
		return nil
	}
	late := ""
	if at.After(o.Due) {
		late = fmt.Sprintf(" (%s late)", at.Sub(o.Due).Round(time.Hour))
	}
	_, err = a.post(ctx, o.Channel, o.TS, fmt.Sprintf("✅ Retroactive review of *%s* done by %s at %s%s.", esc(o.Change), reviewerText(ev), at.Format("2006-01-02 15:04 MST"), late))
	return err
}

func reviewerText(ev store.RetroReviewEvidence) string {
	if ev.Via == "github_review" {
		return esc(ev.By) + " (approving review on GitHub)"
	}
	return mention(ev.By)
}

func (a *App) retroReview(ctx context.Context, deployID int64, change string) (store.RetroReview, bool, error) {
	all, err := a.Store.RetroReviews(ctx)
	if err != nil {
		return store.RetroReview{}, false, err
	}
	for _, rv := range all {
		if rv.Opened.DeployID == deployID && rv.Opened.Change == change {
			return rv, true, nil
		}
	}
	return store.RetroReview{}, false, nil
}

// onApprovingReview closes the open retroactive reviews of a pull request that a second person
// approved on GitHub after the fact. That person must be independent and able to approve: not
// the change's author, nor whoever asked for or pressed the emergency deploy (so both must be
// mapped in `people`, or GitHub cannot tell them apart and only the thread's button closes
// the review), not a bot, someone with write access to the repository (author_association
// OWNER, MEMBER or COLLABORATOR), and the approval given after the review was opened.
func (a *App) onApprovingReview(ctx context.Context, repo string, number int, review *gh.PullRequestReview) error {
	reviewer := review.GetUser().GetLogin()
	if reviewer == "" || review.GetUser().GetType() == "Bot" || strings.HasSuffix(reviewer, "[bot]") {
		return nil
	}
	switch review.GetAuthorAssociation() {
	case "OWNER", "MEMBER", "COLLABORATOR":
	default:
		return nil
	}
	all, err := a.Store.RetroReviews(ctx)
	if err != nil {
		return err
	}
	for _, rv := range all {
		o := rv.Opened
		if rv.Closed != nil || o.Repo != repo || o.PRNumber != number || strings.EqualFold(o.Author, reviewer) {
			continue
		}
		requester, deployer := a.Config.People[o.Requester], a.Config.People[o.Deployer]
		if requester == "" || deployer == "" || strings.EqualFold(requester, reviewer) || strings.EqualFold(deployer, reviewer) {
			continue
		}
		if at := review.GetSubmittedAt().Time; !at.IsZero() && at.Before(o.At) {
			continue // given before the emergency deploy: not a review after the fact
		}
		if err := a.closeRetro(ctx, o, reviewer, "github_review"); err != nil {
			return err
		}
	}
	return nil
}

// overdueRetroReviews are the open reviews past their deadline at now.
func (a *App) overdueRetroReviews(ctx context.Context, now time.Time) ([]store.RetroReviewEvidence, error) {
	all, err := a.Store.RetroReviews(ctx)
	if err != nil {
		return nil, err
	}
	var out []store.RetroReviewEvidence
	for _, rv := range all {
		if rv.Closed == nil && now.After(rv.Opened.Due) {
			out = append(out, rv.Opened)
		}
	}
	return out, nil
}

// remindOverdue reminds the requester, in the deploy's thread, of each overdue review: once a
// day per review, whichever replica runs the job.
func (a *App) remindOverdue(ctx context.Context, overdue []store.RetroReviewEvidence, now time.Time) error {
	for _, o := range overdue {
		first, err := a.Store.Once(ctx, "retro-remind", o.Key()+" "+now.Format("2006-01-02"))
		if err != nil {
			return err
		}
		if !first {
			continue
		}
		if _, err := a.post(ctx, o.Channel, o.TS, fmt.Sprintf("⏰ %s: the retroactive review of *%s* was due %s and is still open. Ask a second person to review it and press *Approve retroactively*, or to approve the pull request on GitHub.",
			mention(o.Requester), esc(o.Change), o.Due.UTC().Format("Mon 2 Jan 15:04 MST"))); err != nil {
			return err
		}
	}
	return nil
}

// overdueLines are the daily summary's lines about overdue retroactive reviews.
func overdueLines(overdue []store.RetroReviewEvidence, now time.Time) []string {
	var out []string
	for _, o := range overdue {
		out = append(out, fmt.Sprintf("• %s %s in *%s* (deploy #%d, %s → %s): due %s, %s overdue",
			esc(o.Repo), esc(o.Change), esc(o.Service), o.DeployID, mention(o.Requester), esc(o.Env),
			o.Due.UTC().Format("2006-01-02"), now.Sub(o.Due).Round(time.Hour)))
	}
	return out
}
