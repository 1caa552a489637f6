// Package slack is sockembot's Slack Web API adapter, on slack-go: messages, thread replies,
// ephemerals, edits, permalinks and user groups, each sitting out Slack's rate limits. Socket
// mode (the inbound side) runs in bot/ on the same client.
package slack

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"
)

// maxRateLimitWaits is how many 429s one call sits out before giving up.
const maxRateLimitWaits = 10

// Options configure a Client. Tokens come from the environment, read by main.
type Options struct {
	BotToken string // xoxb-...
	AppToken string // xapp-..., for socket mode
	APIURL   string // default https://slack.com/api/ (tests point it at the fake)
	Log      *logrus.Logger
}

// Client talks to Slack's Web API.
type Client struct {
	api *slack.Client
	log *logrus.Logger
}

// New builds a client. It makes no request.
func New(o Options) *Client {
	opts := []slack.Option{}
	if o.AppToken != "" {
		opts = append(opts, slack.OptionAppLevelToken(o.AppToken))
	}
	if o.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(o.APIURL))
	}
	log := o.Log
	if log == nil {
		log = logrus.New()
	}
	return &Client{api: slack.New(o.BotToken, opts...), log: log}
}

// API is the slack-go client underneath, for socket mode.
func (c *Client) API() *slack.Client { return c.api }

// Post sends a message (a thread reply when thread is a message ts) and returns its ts. A 429 is
// waited out and retried: a digest or an alert must not be dropped because Slack asked us to
// slow down.
func (c *Client) Post(ctx context.Context, channel, thread, text string, blocks ...slack.Block) (string, error) {
	opts := []slack.MsgOption{slack.MsgOptionText(text, false), slack.MsgOptionDisableLinkUnfurl()}
	if len(blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	if thread != "" {
		opts = append(opts, slack.MsgOptionTS(thread))
	}
	var ts string
	err := c.call(ctx, func() error {
		var e error
		_, ts, e = c.api.PostMessageContext(ctx, channel, opts...)
		return e
	})
	if err != nil {
		return "", fmt.Errorf("slack: chat.postMessage to %s: %w", channel, err)
	}
	return ts, nil
}

// Update replaces a message's text and blocks.
func (c *Client) Update(ctx context.Context, channel, ts, text string, blocks ...slack.Block) error {
	// chat.update keeps the old blocks unless given new ones; an empty list clears them.
	opts := []slack.MsgOption{slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...)}
	err := c.call(ctx, func() error {
		_, _, _, e := c.api.UpdateMessageContext(ctx, channel, ts, opts...)
		return e
	})
	if err != nil {
		return fmt.Errorf("slack: chat.update %s/%s: %w", channel, ts, err)
	}
	return nil
}

// Ephemeral shows a message to one person in a channel. It only works where the bot is a
// member; Respond works anywhere the person typed a command.
func (c *Client) Ephemeral(ctx context.Context, channel, user, text string, blocks ...slack.Block) error {
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if len(blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	err := c.call(ctx, func() error {
		_, e := c.api.PostEphemeralContext(ctx, channel, user, opts...)
		return e
	})
	if err != nil {
		return fmt.Errorf("slack: chat.postEphemeral to %s in %s: %w", user, channel, err)
	}
	return nil
}

// Respond answers a slash command through its response_url, visible only to the person who typed
// it: valid for 30 minutes, wherever the command was typed.
func (c *Client) Respond(ctx context.Context, responseURL, channel, text string, blocks ...slack.Block) error {
	err := c.call(ctx, func() error {
		_, _, e := c.api.PostMessageContext(ctx, channel,
			slack.MsgOptionResponseURL(responseURL, slack.ResponseTypeEphemeral),
			slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
		return e
	})
	if err != nil {
		return fmt.Errorf("slack: response_url: %w", err)
	}
	return nil
}

// Permalink links to a message.
func (c *Client) Permalink(ctx context.Context, channel, ts string) (string, error) {
	var link string
	err := c.call(ctx, func() error {
		var e error
		link, e = c.api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: channel, Ts: ts})
		return e
	})
	if err != nil {
		return "", fmt.Errorf("slack: chat.getPermalink %s/%s: %w", channel, ts, err)
	}
	return link, nil
}

// UserGroupMembers lists the users of a user group (S...).
func (c *Client) UserGroupMembers(ctx context.Context, group string) ([]string, error) {
	var members []string
	err := c.call(ctx, func() error {
		var e error
		members, e = c.api.GetUserGroupMembersContext(ctx, group)
		return e
	})
	if err != nil {
		return nil, fmt.Errorf("slack: members of user group %s: %w", group, err)
	}
	return members, nil
}

// call runs one Web API call, sitting out rate limits. Only 429 is retried: Slack did not act on
// a rate-limited call, while a 5xx may have posted the message already.
func (c *Client) call(ctx context.Context, call func() error) error {
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
		c.log.WithField("retry_after", wait).Warn("slack: rate limited, waiting")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (while waiting out a rate limit: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}
