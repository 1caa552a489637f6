package fakeslack_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	fakeslack "sockembot/integrations/fake/slack"
)

func TestHelloOnConnect(t *testing.T) {
	h := start(t, fakeslack.Config{AppID: "A0TEST"})

	evt := h.next(t, socketmode.EventTypeHello)
	if evt.Request.NumConnections != 1 || evt.Request.ConnectionInfo.AppID != "A0TEST" || evt.Request.DebugInfo.Host == "" {
		t.Errorf("hello = %+v, want 1 connection of app A0TEST with a debug host", evt.Request)
	}
	if got := h.fake.Connections(); got != 1 {
		t.Errorf("Connections() = %d, want 1", got)
	}
	if n := len(h.fake.CallsTo("apps.connections.open")); n != 1 {
		t.Errorf("apps.connections.open called %d times, want 1", n)
	}
}

func TestSlashCommandAckedWithResponsePayload(t *testing.T) {
	h := start(t, fakeslack.Config{ChannelNames: map[string]string{"C0DEPLOY": "deploys"}})
	h.next(t, socketmode.EventTypeHello)

	id := h.fake.SendSlashCommand(fakeslack.SlashCommand{
		Command:   "/deploy",
		Text:      "payments@v1.2.3 to production",
		UserID:    "U123",
		UserName:  "alice",
		ChannelID: "C0DEPLOY",
	})
	evt := h.next(t, socketmode.EventTypeSlashCommand)
	cmd, ok := evt.Data.(slack.SlashCommand)
	if !ok {
		t.Fatalf("event data is %T, want slack.SlashCommand", evt.Data)
	}
	if evt.Request.EnvelopeID != id || !evt.Request.AcceptsResponsePayload {
		t.Errorf("request = %+v, want envelope %s accepting a response payload", evt.Request, id)
	}
	if cmd.Command != "/deploy" || cmd.Text != "payments@v1.2.3 to production" || cmd.UserID != "U123" ||
		cmd.UserName != "alice" || cmd.ChannelID != "C0DEPLOY" || cmd.ChannelName != "deploys" {
		t.Errorf("slash command = %+v", cmd)
	}
	if !strings.HasPrefix(cmd.ResponseURL, h.fake.URL()+"/response/") || cmd.TriggerID == "" || cmd.TeamID == "" || cmd.APIAppID == "" {
		t.Errorf("slash command lacks fake response_url / trigger / team / app: %+v", cmd)
	}

	if err := h.sm.Ack(*evt.Request, map[string]any{"text": "Checking payments@v1.2.3..."}); err != nil {
		t.Fatal(err)
	}
	ack, ok := h.fake.WaitAck(id, waitTimeout)
	if !ok {
		t.Fatal("ack never recorded")
	}
	if ack.Type != "slash_commands" || ack.Unknown || ack.Connection != 1 || ack.Latency <= 0 {
		t.Errorf("ack = %+v", ack)
	}
	var payload struct{ Text string }
	if err := json.Unmarshal(ack.Payload, &payload); err != nil || payload.Text != "Checking payments@v1.2.3..." {
		t.Errorf("ack payload = %s (%v)", ack.Payload, err)
	}
	// Slack shows a slash command's ack payload to the invoking user.
	eph := h.fake.Ephemerals()
	if len(eph) != 1 || eph[0].User != "U123" || eph[0].Channel != "C0DEPLOY" || eph[0].Via != "ack" || eph[0].Text != "Checking payments@v1.2.3..." {
		t.Errorf("ephemerals = %+v", eph)
	}

	// Later answers go through response_url; in_channel makes them public.
	_, _, err := h.api.PostMessage("", slack.MsgOptionText("Deploy approved", false), slack.MsgOptionResponseURL(cmd.ResponseURL, slack.ResponseTypeInChannel))
	if err != nil {
		t.Fatalf("response_url post: %v", err)
	}
	msgs := h.fake.Messages("C0DEPLOY")
	if len(msgs) != 1 || msgs[0].Text != "Deploy approved" || msgs[0].Via != "response_url" {
		t.Errorf("channel messages = %+v", msgs)
	}
	if err := slack.PostWebhook(cmd.ResponseURL, &slack.WebhookMessage{Text: "only for you"}); err != nil {
		t.Fatalf("webhook-style response_url post: %v", err)
	}
	if eph := h.fake.Ephemerals(); len(eph) != 2 || eph[1].Text != "only for you" || eph[1].User != "U123" {
		t.Errorf("ephemerals = %+v", eph)
	}
	if rs := h.fake.Responses(); len(rs) != 3 || rs[0].Via != "ack" || rs[1].ResponseType != "in_channel" || rs[2].EnvelopeID != id {
		t.Errorf("responses = %+v", rs)
	}
}

func TestBlockActionDecodedAsInteractionCallback(t *testing.T) {
	h := start(t, fakeslack.Config{})
	h.next(t, socketmode.EventTypeHello)

	_, ts, err := h.api.PostMessage("C0DEPLOY", slack.MsgOptionText("Deploy payments?", false), slack.MsgOptionBlocks(
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "Deploy *payments@v1.2.3*?", false, false), nil, nil),
		slack.NewActionBlock("deploy_actions",
			slack.NewButtonBlockElement("deploy_approve", "payments@v1.2.3", slack.NewTextBlockObject(slack.PlainTextType, "Deploy", false, false)),
			slack.NewButtonBlockElement("deploy_cancel", "payments@v1.2.3", slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false)),
		),
	))
	if err != nil {
		t.Fatal(err)
	}

	id := h.fake.SendBlockAction(fakeslack.BlockAction{ActionID: "deploy_approve", UserID: "U456", UserName: "bob", ChannelID: "C0DEPLOY", MessageTS: ts})
	evt := h.next(t, socketmode.EventTypeInteractive)
	cb, ok := evt.Data.(slack.InteractionCallback)
	if !ok {
		t.Fatalf("event data is %T, want slack.InteractionCallback", evt.Data)
	}
	if cb.Type != slack.InteractionTypeBlockActions || evt.Request.EnvelopeID != id || evt.Request.AcceptsResponsePayload {
		t.Errorf("type %q envelope %q accepts %v", cb.Type, evt.Request.EnvelopeID, evt.Request.AcceptsResponsePayload)
	}
	if len(cb.ActionCallback.BlockActions) != 1 {
		t.Fatalf("block actions = %+v", cb.ActionCallback)
	}
	a := cb.ActionCallback.BlockActions[0]
	if a.ActionID != "deploy_approve" || a.BlockID != "deploy_actions" || a.Value != "payments@v1.2.3" || a.Text.Text != "Deploy" || a.ActionTs == "" {
		t.Errorf("action = %+v (text %+v)", a, a.Text)
	}
	if cb.User.ID != "U456" || cb.User.Name != "bob" || cb.Channel.ID != "C0DEPLOY" || cb.Container.MessageTs != ts ||
		cb.Container.Type != "message" || cb.Container.IsEphemeral || cb.ResponseURL == "" || cb.TriggerID == "" {
		t.Errorf("callback = user %+v channel %+v container %+v response_url %q trigger %q", cb.User, cb.Channel.ID, cb.Container, cb.ResponseURL, cb.TriggerID)
	}
	if cb.Message.Timestamp != ts || len(cb.Message.Blocks.BlockSet) != 2 {
		t.Errorf("message = ts %q with %d blocks, want the clicked message with 2", cb.Message.Timestamp, len(cb.Message.Blocks.BlockSet))
	}

	if err := h.sm.Ack(*evt.Request); err != nil {
		t.Fatal(err)
	}
	if ack, ok := h.fake.WaitAck(id, waitTimeout); !ok || ack.Payload != nil || ack.Type != "interactive" {
		t.Errorf("ack = %+v, %v", ack, ok)
	}

	// replace_original through the action's response_url updates the message.
	_, _, err = h.api.PostMessage("", slack.MsgOptionText("Deploying payments@v1.2.3", false), slack.MsgOptionReplaceOriginal(cb.ResponseURL))
	if err != nil {
		t.Fatalf("replace_original: %v", err)
	}
	msgs := h.fake.Messages("C0DEPLOY")
	if len(msgs) != 1 || msgs[0].Text != "Deploying payments@v1.2.3" || msgs[0].Blocks != nil || msgs[0].Edits != 1 {
		t.Errorf("messages after replace_original = %+v", msgs)
	}
}

func TestBlockActionOnEphemeralOmitsMessage(t *testing.T) {
	h := start(t, fakeslack.Config{})
	h.next(t, socketmode.EventTypeHello)

	ts, err := h.api.PostEphemeral("C0DEPLOY", "U123", slack.MsgOptionBlocks(
		slack.NewActionBlock("b", slack.NewButtonBlockElement("retry", "x", slack.NewTextBlockObject(slack.PlainTextType, "Retry", false, false))),
	))
	if err != nil {
		t.Fatal(err)
	}
	h.fake.SendBlockAction(fakeslack.BlockAction{ActionID: "retry", UserID: "U123", ChannelID: "C0DEPLOY", MessageTS: ts})
	cb := h.next(t, socketmode.EventTypeInteractive).Data.(slack.InteractionCallback)
	if !cb.Container.IsEphemeral || cb.Message.Timestamp != "" || cb.ActionCallback.BlockActions[0].BlockID != "b" {
		t.Errorf("container %+v message ts %q action %+v", cb.Container, cb.Message.Timestamp, cb.ActionCallback.BlockActions[0])
	}
}

func TestRedeliveredEnvelopeCarriesRetryAttempt(t *testing.T) {
	h := start(t, fakeslack.Config{})
	h.next(t, socketmode.EventTypeHello)

	id := h.fake.SendSlashCommand(fakeslack.SlashCommand{Command: "/deploy", Text: "api@v2 to staging", UserID: "U1", ChannelID: "C1"})
	first := h.next(t, socketmode.EventTypeSlashCommand)
	if first.Request.RetryAttempt != 0 {
		t.Errorf("first delivery retry_attempt = %d", first.Request.RetryAttempt)
	}
	// The app did not ack in time; Slack sends the same envelope again.
	if err := h.fake.Redeliver(id, "timeout"); err != nil {
		t.Fatal(err)
	}
	again := h.next(t, socketmode.EventTypeSlashCommand)
	if again.Request.EnvelopeID != id || again.Request.RetryAttempt != 1 || again.Request.RetryReason != "timeout" {
		t.Errorf("redelivery = %+v", again.Request)
	}
	if a, b := first.Data.(slack.SlashCommand), again.Data.(slack.SlashCommand); a != b {
		t.Errorf("redelivered payload differs:\n%+v\n%+v", a, b)
	}
	if err := h.sm.Ack(*again.Request); err != nil {
		t.Fatal(err)
	}
	if ack, ok := h.fake.WaitAck(id, waitTimeout); !ok || ack.RetryAttempt != 1 {
		t.Errorf("ack = %+v, %v; want the ack of retry 1", ack, ok)
	}

	// SendEnvelope sends any payload; here a real events_api app_mention.
	var fixture struct{ Payload json.RawMessage }
	if err := json.Unmarshal(readFixture(t, "_extracted/slackapi+python-slack-sdk/envelope_1_events_api_app_mention.json"), &fixture); err != nil {
		t.Fatal(err)
	}
	eid := h.fake.SendEnvelope("events_api", fixture.Payload, 2, "http_error")
	evt := h.next(t, socketmode.EventTypeEventsAPI)
	if evt.Request.EnvelopeID != eid || evt.Request.RetryAttempt != 2 || evt.Request.RetryReason != "http_error" {
		t.Errorf("events_api request = %+v", evt.Request)
	}
	ev, ok := evt.Data.(slackevents.EventsAPIEvent)
	if !ok {
		t.Fatalf("event data is %T", evt.Data)
	}
	if _, ok := ev.InnerEvent.Data.(*slackevents.AppMentionEvent); !ok {
		t.Errorf("inner event is %T, want app mention", ev.InnerEvent.Data)
	}
}

func TestDisconnectRefreshReconnectsAndDeliversQueued(t *testing.T) {
	h := start(t, fakeslack.Config{})
	h.next(t, socketmode.EventTypeHello)

	if err := h.fake.Disconnect("refresh_requested"); err != nil {
		t.Fatal(err)
	}
	// Sent while the client is between connections: it must wait for the
	// next one, not vanish on the closing socket.
	id := h.fake.SendSlashCommand(fakeslack.SlashCommand{Command: "/deploy", Text: "web@v9 to production", UserID: "U1", ChannelID: "C1"})

	hello := h.next(t, socketmode.EventTypeHello)
	if hello.Request.DebugInfo.Host != "applink-fake-2" {
		t.Errorf("second hello from %q, want the new connection", hello.Request.DebugInfo.Host)
	}
	evt := h.next(t, socketmode.EventTypeSlashCommand)
	if evt.Request.EnvelopeID != id || evt.Data.(slack.SlashCommand).Text != "web@v9 to production" {
		t.Errorf("queued envelope = %+v", evt.Request)
	}
	if err := h.sm.Ack(*evt.Request); err != nil {
		t.Fatal(err)
	}
	ack, ok := h.fake.WaitAck(id, waitTimeout)
	if !ok || ack.Connection != 2 {
		t.Errorf("ack = %+v, %v; want it on connection 2", ack, ok)
	}
	if got := h.fake.Connections(); got != 2 {
		t.Errorf("Connections() = %d, want 2", got)
	}
	if n := len(h.fake.CallsTo("apps.connections.open")); n != 2 {
		t.Errorf("apps.connections.open called %d times, want 2", n)
	}
}

func TestDroppedConnectionReconnects(t *testing.T) {
	h := start(t, fakeslack.Config{})
	h.next(t, socketmode.EventTypeHello)
	if err := h.fake.DropConnection(); err != nil {
		t.Fatal(err)
	}
	if !h.fake.WaitConnections(2, waitTimeout) {
		t.Fatal("client did not reconnect after the socket dropped")
	}
	if err := h.fake.DropConnection(); err != nil && err != fakeslack.ErrNoConnection {
		t.Fatal(err)
	}
}

func TestDisconnectWithoutConnection(t *testing.T) {
	fake := fakeslack.New(fakeslack.Config{})
	defer fake.Close()
	if err := fake.Disconnect("refresh_requested"); err != fakeslack.ErrNoConnection {
		t.Errorf("Disconnect() = %v, want ErrNoConnection", err)
	}
}

func TestPingsAnsweredWithPongs(t *testing.T) {
	h := start(t, fakeslack.Config{PingInterval: 10 * time.Millisecond})
	h.next(t, socketmode.EventTypeHello)
	eventually(t, "slack-go answers three pings", func() bool {
		_, pongs, _ := h.fake.Pings()
		return pongs >= 3
	})
}
