package bot

import (
	"context"
	"errors"
	"fmt"
	"sockembot/bot/check"
	"sockembot/bot/deploygate"
	"sockembot/bot/deploygate/command"
	"sockembot/bot/render"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// maxHandlers bounds the envelopes worked on at once. Acks never wait for it: only the work after
// the ack queues.
const maxHandlers = 64

// runSocketMode serves Slack over socket mode until ctx is done. Every envelope is acknowledged
// the moment it arrives and handled afterwards: Slack drops a slash command that is not acked
// within 3 s, and a deploy check takes longer than that. slack-go's SocketmodeHandler is not
// used: it leaves the ack to each handler, where it ends up after the work; here the read loop
// acks before any work starts, so no handler can delay it.
func (a *App) runSocketMode(ctx context.Context) error {
	sm := socketmode.New(a.Slack.API(),
		socketmode.OptionDebug(a.DebugSocketMode),
		socketmode.OptionLog(socketLog{a.log()}),
	)
	// The connection's state, for /healthz: started and not yet connected, then up and down as
	// socket mode reports it, and down once this returns (RunContext failed or shutdown).
	a.state.slack.start(time.Now())
	defer a.state.slack.stop()
	runErr := make(chan error, 1)
	go func() { runErr <- sm.RunContext(ctx) }()

	var wg sync.WaitGroup
	// On shutdown, envelopes already acknowledged are finished, not dropped: Slack will not send
	// them again.
	defer wg.Wait()
	sem := make(chan struct{}, maxHandlers)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-runErr:
			if err == nil || errors.Is(err, context.Canceled) {
				return ctx.Err()
			}
			return fmt.Errorf("slack socket mode: %w", err)
		case evt := <-sm.Events:
			switch evt.Type {
			case socketmode.EventTypeSlashCommand, socketmode.EventTypeInteractive, socketmode.EventTypeEventsAPI:
				if evt.Request == nil {
					continue
				}
				if err := sm.Ack(*evt.Request); err != nil {
					a.log().WithError(err).WithField("envelope_id", evt.Request.EnvelopeID).Error("slack: ack failed")
				}
				if evt.Type == socketmode.EventTypeEventsAPI {
					continue // the app subscribes to no events; acked so Slack stops resending
				}
				wg.Add(1)
				go func(evt socketmode.Event) {
					defer wg.Done()
					sem <- struct{}{}
					defer func() { <-sem }()
					hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deploygate.HandlerTimeout)
					defer cancel()
					a.handleEnvelope(hctx, evt)
				}(evt)
			case socketmode.EventTypeConnected:
				a.state.slack.set(true, time.Now())
				a.log().Info("slack: socket mode connected")
			case socketmode.EventTypeConnecting, socketmode.EventTypeDisconnect:
				a.state.slack.set(false, time.Now())
			case socketmode.EventTypeConnectionError:
				a.state.slack.set(false, time.Now())
				a.log().WithField("event", string(evt.Type)).Warnf("slack: socket mode: %v", evt.Data)
			case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorWriteFailed, socketmode.EventTypeErrorBadMessage:
				a.log().WithField("event", string(evt.Type)).Warnf("slack: socket mode: %v", evt.Data)
			case socketmode.EventTypeInvalidAuth:
				return errors.New("slack socket mode: invalid auth: check SLACK_APP_TOKEN")
			}
		}
	}
}

// handleEnvelope does the work of one acknowledged envelope, once.
func (a *App) handleEnvelope(ctx context.Context, evt socketmode.Event) {
	a.wire()
	req := evt.Request
	log := a.log().WithFields(logrus.Fields{"envelope_id": req.EnvelopeID, "type": req.Type, "retry_attempt": req.RetryAttempt})
	// Slack redelivers an envelope it thinks was missed (retry_attempt > 0), possibly to another
	// replica. The trigger id is the same on every delivery of one user action and differs
	// between two clicks, so it is the key; the envelope id stands in when there is none.
	key := "envelope:" + req.EnvelopeID
	var doing string
	var fail func(render.Failure)
	var run func() error
	switch data := evt.Data.(type) {
	case slack.SlashCommand:
		if data.TriggerID != "" {
			key = "trigger:" + data.TriggerID
		}
		req := deploygate.Request{Channel: data.ChannelID, User: data.UserID, Text: data.Text, ResponseURL: data.ResponseURL, TeamDomain: data.TeamDomain}
		doing = "handle " + render.Code(data.Command+" "+command.Unescape(data.Text))
		run = func() error { return a.deploys.OnCommand(ctx, req) }
		fail = func(f render.Failure) {
			// A deploy request reports its own failures where its digest would be; what gets
			// here is a question or a hold (status, history, lock) that could not be answered.
			f.Consequence = "Nothing was deployed by this command. Check `/deploy status` before trying again once the cause is fixed."
			// Through response_url when the bot may not post in that channel.
			if err := a.deploys.Tell(ctx, req, render.FailureMessage(f)); err != nil {
				log.WithError(err).Error("slack: could not report a failure")
			}
		}
	case slack.InteractionCallback:
		if data.TriggerID != "" {
			key = "trigger:" + data.TriggerID
		}
		if data.Type != slack.InteractionTypeBlockActions {
			return
		}
		click := deploygate.Click{User: data.User.ID, Channel: data.Container.ChannelID, MessageTS: data.Container.MessageTs, ThreadTS: data.Container.ThreadTs}
		for _, act := range data.ActionCallback.BlockActions {
			click.Actions = append(click.Actions, deploygate.Action{ID: act.ActionID, Value: act.Value})
		}
		doing = "handle a button click"
		run = func() error {
			// Each gate acts on its own buttons: Deploy and Cancel, Approve retroactively.
			return errors.Join(a.deploys.OnClick(ctx, click), a.emergencies.OnClick(ctx, click))
		}
		fail = func(f render.Failure) {
			f.Consequence = "The click may not have taken effect: this thread and the digest above say what became of the deploy."
			m := render.FailureMessage(f)
			// The failure goes into the digest's thread, where everyone involved is looking.
			thread := click.ThreadTS
			if thread == "" {
				thread = click.MessageTS
			}
			if _, err := a.Slack.Post(ctx, click.Channel, thread, m.Text, m.Blocks...); err != nil {
				log.WithError(err).Error("slack: could not report a failure")
			}
		}
	default:
		log.Warnf("slack: unexpected envelope payload %T", evt.Data)
		return
	}
	first, err := a.Store.Once(ctx, "slack", key)
	if err != nil {
		// Without the dedupe record a redelivery could run twice; refuse rather than guess.
		log.WithError(err).Error("slack: dedupe")
		fail(render.Failure{Doing: doing, Err: check.Errorf("record the envelope as seen: %w", err)})
		return
	}
	if !first {
		log.Info("slack: redelivered envelope already handled")
		return
	}
	err = check.Safely(run)
	if err != nil {
		log.WithError(err).Error("slack: handler failed")
		fail(render.Failure{Doing: doing, Err: err})
	}
}

// socketLog routes slack-go's socket-mode log lines into logrus at debug level.
type socketLog struct{ l *logrus.Logger }

func (s socketLog) Output(_ int, msg string) error {
	s.l.WithField("component", "socketmode").Debug(strings.TrimSpace(msg))
	return nil
}
