package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

const (
	// maxHandlers bounds the envelopes worked on at once. Acks never wait for it: only the work
	// after the ack queues.
	maxHandlers = 64
	// handlerTimeout bounds one envelope's work; a deploy check of a big release fits easily.
	handlerTimeout = 5 * time.Minute
	// maxRateLimitWaits is how many 429s one Slack call sits out before giving up.
	maxRateLimitWaits = 10
)

// runSocketMode serves Slack over socket mode until ctx is done. Every envelope is acknowledged
// the moment it arrives and handled afterwards: Slack drops a slash command that is not acked
// within 3 s, and a deploy check takes longer than that. slack-go's SocketmodeHandler is not
// used: it leaves the ack to each handler, where it ends up after the work; here the read loop
// acks before any work starts, so no handler can delay it.
func (a *App) runSocketMode(ctx context.Context) error {
	sm := socketmode.New(a.Slack,
		socketmode.OptionDebug(a.DebugSocketMode),
		socketmode.OptionLog(socketLog{a.log()}),
	)
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
					hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handlerTimeout)
					defer cancel()
					a.handleEnvelope(hctx, evt)
				}(evt)
			case socketmode.EventTypeConnected:
				a.log().Info("slack: socket mode connected")
			case socketmode.EventTypeConnectionError, socketmode.EventTypeIncomingError, socketmode.EventTypeErrorWriteFailed, socketmode.EventTypeErrorBadMessage:
				a.log().WithField("event", string(evt.Type)).Warnf("slack: socket mode: %v", evt.Data)
			case socketmode.EventTypeInvalidAuth:
				return errors.New("slack socket mode: invalid auth: check SLACK_APP_TOKEN")
			}
		}
	}
}

// handleEnvelope does the work of one acknowledged envelope, once.
func (a *App) handleEnvelope(ctx context.Context, evt socketmode.Event) {
	req := evt.Request
	log := a.log().WithFields(logrus.Fields{"envelope_id": req.EnvelopeID, "type": req.Type, "retry_attempt": req.RetryAttempt})
	// Slack redelivers an envelope it thinks was missed (retry_attempt > 0), possibly to another
	// replica. The trigger id is the same on every delivery of one user action and differs
	// between two clicks, so it is the key; the envelope id stands in when there is none.
	key := "envelope:" + req.EnvelopeID
	var doing string
	var fail func(Failure)
	switch data := evt.Data.(type) {
	case slack.SlashCommand:
		if data.TriggerID != "" {
			key = "trigger:" + data.TriggerID
		}
		doing = fmt.Sprintf("handle `%s %s`", esc(data.Command), esc(data.Text))
		fail = func(f Failure) {
			// A deploy request reports its own failures where its digest would be; what gets
			// here is a question or a hold (status, history, lock) that could not be answered.
			f.Consequence = "Nothing was deployed by this command. Check `/deploy status` before trying again once the cause is fixed."
			m := failureMessage(f)
			// Through response_url when the bot may not post in that channel.
			r := replyTo{channel: data.ChannelID, user: data.UserID, responseURL: data.ResponseURL}
			if err := a.tellBlocks(ctx, r, m.Text, m.Blocks); err != nil {
				log.WithError(err).Error("slack: could not report a failure")
			}
		}
	case slack.InteractionCallback:
		if data.TriggerID != "" {
			key = "trigger:" + data.TriggerID
		}
		doing = "handle a button click"
		fail = func(f Failure) {
			f.Consequence = "The click may not have taken effect: this thread and the digest above say what became of the deploy."
			m := failureMessage(f)
			// The failure goes into the digest's thread, where everyone involved is looking.
			thread := data.Container.ThreadTs
			if thread == "" {
				thread = data.Container.MessageTs
			}
			if _, err := a.post(ctx, data.Container.ChannelID, thread, m.Text, m.Blocks...); err != nil {
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
		fail(Failure{Doing: doing, Err: fmt.Errorf("record the envelope as seen: %w", err)})
		return
	}
	if !first {
		log.Info("slack: redelivered envelope already handled")
		return
	}
	err = Safely(func() error {
		switch data := evt.Data.(type) {
		case slack.SlashCommand:
			return a.onSlashCommand(ctx, data)
		case slack.InteractionCallback:
			return a.onInteraction(ctx, data)
		}
		return nil
	})
	if err != nil {
		log.WithError(err).Error("slack: handler failed")
		fail(Failure{Doing: doing, Err: err})
	}
}

// post sends a message (a thread reply when threadTS is set) and returns its ts. A 429 is waited
// out and retried: a digest or an alert must not be dropped because Slack asked us to slow down.
func (a *App) post(ctx context.Context, channel, threadTS string, text string, blocks ...slack.Block) (ts string, err error) {
	opts := []slack.MsgOption{slack.MsgOptionText(text, false), slack.MsgOptionDisableLinkUnfurl()}
	if len(blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	err = a.slackCall(ctx, func() error {
		var e error
		_, ts, e = a.Slack.PostMessageContext(ctx, channel, opts...)
		return e
	})
	if err != nil {
		return "", fmt.Errorf("slack: chat.postMessage to %s: %w", channel, err)
	}
	return ts, nil
}

// update replaces a message's text and blocks.
func (a *App) update(ctx context.Context, channel, ts string, text string, blocks ...slack.Block) error {
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	// chat.update keeps the old blocks unless given new ones; an empty list clears them.
	opts = append(opts, slack.MsgOptionBlocks(blocks...))
	err := a.slackCall(ctx, func() error {
		_, _, _, e := a.Slack.UpdateMessageContext(ctx, channel, ts, opts...)
		return e
	})
	if err != nil {
		return fmt.Errorf("slack: chat.update %s/%s: %w", channel, ts, err)
	}
	return nil
}

// ephemeral shows a message to one person in a channel.
func (a *App) ephemeral(ctx context.Context, channel, user string, text string, blocks ...slack.Block) error {
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if len(blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	err := a.slackCall(ctx, func() error {
		_, e := a.Slack.PostEphemeralContext(ctx, channel, user, opts...)
		return e
	})
	if err != nil {
		return fmt.Errorf("slack: chat.postEphemeral to %s in %s: %w", user, channel, err)
	}
	return nil
}

func (a *App) postMessage(ctx context.Context, channel, threadTS string, m Message) (string, error) {
	return a.post(ctx, channel, threadTS, m.Text, m.Blocks...)
}

// slackCall runs one Web API call, sitting out rate limits. Only 429 is retried: Slack did not
// act on a rate-limited call, while a 5xx may have posted the message already.
func (a *App) slackCall(ctx context.Context, call func() error) error {
	for attempt := 0; ; attempt++ {
		err := call()
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) || attempt >= maxRateLimitWaits {
			return err
		}
		wait := rl.RetryAfter
		if wait <= 0 {
			wait = time.Second
		}
		a.log().WithField("retry_after", wait).Warn("slack: rate limited, waiting")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (while waiting out a rate limit: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// socketLog routes slack-go's socket-mode log lines into logrus at debug level.
type socketLog struct{ l *logrus.Logger }

func (s socketLog) Output(_ int, msg string) error {
	s.l.WithField("component", "socketmode").Debug(strings.TrimSpace(msg))
	return nil
}
