package fakeslack_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"

	fakeslack "sockembot/integrations/fake/slack"
)

// roundTrip decodes raw into T refusing unknown fields, encodes it again and
// requires the same JSON: T neither drops nor invents anything Slack sent.
func roundTrip[T any](t *testing.T, name string, raw []byte) T {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var v T
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: decode into %T: %v", name, v, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("%s: re-encoded %T differs\n got %s\nwant %s", name, v, out, raw)
	}
	return v
}

func TestFixturesRoundTripThroughFakeTypes(t *testing.T) {
	for _, f := range []string{
		"_extracted/slackapi+python-slack-sdk/hello_message.json",
		"_extracted/slackapi+java-slack-sdk/hello.json",
		"_extracted/slack-go+slack/socketmode_EventHello.json",
	} {
		roundTrip[fakeslack.Hello](t, f, readFixture(t, f))
	}
	for _, f := range []string{
		"_extracted/slackapi+python-slack-sdk/disconnect_message.json",
		"_extracted/slack-go+slack/socketmode_EventDisconnect.json",
	} {
		roundTrip[fakeslack.Disconnect](t, f, readFixture(t, f))
	}
	roundTrip[fakeslack.AckMessage](t, "ack_with_payload", readFixture(t, "_extracted/slackapi+python-slack-sdk/ack_with_payload.json"))

	envelopes := map[string]string{
		"_extracted/slackapi+python-slack-sdk/envelope_0_slash_commands_command.json":    "slash_commands",
		"_extracted/slackapi+python-slack-sdk/envelope_1_events_api_app_mention.json":    "events_api",
		"_extracted/slackapi+python-slack-sdk/envelope_2_interactive_shortcut.json":      "interactive",
		"_extracted/slackapi+python-slack-sdk/envelope_3_events_api_message.json":        "events_api",
		"_extracted/slackapi+python-slack-sdk/envelope_4_interactive_block_actions.json": "interactive",
		"_extracted/slackapi+java-slack-sdk/commandEnvelope.json":                        "slash_commands",
		"_extracted/slackapi+java-slack-sdk/eventsEnvelope.json":                         "events_api",
		"_extracted/slackapi+java-slack-sdk/interactiveEnvelope.json":                    "interactive",
		"_extracted/slack-go+slack/socketmode_EventAppMention.json":                      "events_api",
	}
	blockActions := 0
	for f, typ := range envelopes {
		env := roundTrip[fakeslack.Envelope](t, f, readFixture(t, f))
		if env.Type != typ || env.EnvelopeID == "" {
			t.Errorf("%s: type %q id %q", f, env.Type, env.EnvelopeID)
		}
		switch {
		case env.Type == "slash_commands":
			cmd := roundTrip[fakeslack.SlashCommand](t, f+" payload", env.Payload)
			if cmd.Command == "" || cmd.ResponseURL == "" || !env.AcceptsResponsePayload {
				t.Errorf("%s: command %+v", f, cmd)
			}
		case env.Type == "interactive" && bytes.Contains(env.Payload, []byte(`"block_actions"`)):
			p := roundTrip[fakeslack.BlockActionsPayload](t, f+" payload", env.Payload)
			if p.Type != "block_actions" || len(p.Actions) != 1 || p.Actions[0].ActionID == "" {
				t.Errorf("%s: payload %+v", f, p)
			}
			blockActions++
		}
	}
	if blockActions != 2 {
		t.Errorf("decoded %d block_actions payloads, want 2", blockActions)
	}

	// The Java SDK's schema skeleton lists every slash-command field.
	dec := json.NewDecoder(bytes.NewReader(readFixture(t, "slackapi+java-slack-sdk/json-logs/samples/app-backend/slash-commands/SlashCommandPayload.json")))
	dec.DisallowUnknownFields()
	var cmd fakeslack.SlashCommand
	if err := dec.Decode(&cmd); err != nil {
		t.Errorf("SlashCommandPayload skeleton: %v", err)
	}
}

// rawSocket opens a socket-mode connection with a bare WebSocket client, so
// the test sees the exact frames the fake writes.
func rawSocket(t *testing.T, fake *fakeslack.Server, api *slack.Client) (*websocket.Conn, func() []byte) {
	t.Helper()
	_, wsURL, err := api.StartSocketModeContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws, func() []byte {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(waitTimeout))
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		return b
	}
}

func samePaths(t *testing.T, what string, got []byte, fixture string) {
	t.Helper()
	want := keyPaths(t, readFixture(t, fixture))
	g := keyPaths(t, got)
	if m := missing(want, g); len(m) > 0 {
		t.Errorf("%s lacks %v that %s has\n%s", what, m, fixture, got)
	}
	if m := missing(g, want); len(m) > 0 {
		t.Errorf("%s has %v that %s lacks\n%s", what, m, fixture, got)
	}
}

func TestSentFramesMatchFixtureShapes(t *testing.T) {
	fake, api := newAPI(t, fakeslack.Config{ChannelNames: map[string]string{"C111": "random"}})
	ws, read := rawSocket(t, fake, api)

	hello := read()
	samePaths(t, "hello", hello, "_extracted/slackapi+python-slack-sdk/hello_message.json")
	samePaths(t, "hello", hello, "_extracted/slack-go+slack/socketmode_EventHello.json")

	// The Java SDK's mock replays a command envelope; the fake's must have
	// exactly its keys.
	id := fake.SendSlashCommand(fakeslack.SlashCommand{Command: "/hi-socket-mode", UserID: "U111", UserName: "test", ChannelID: "C111"})
	cmdFrame := read()
	samePaths(t, "slash command envelope", cmdFrame, "_extracted/slackapi+java-slack-sdk/commandEnvelope.json")
	samePaths(t, "slash command envelope", cmdFrame, "_extracted/slackapi+python-slack-sdk/envelope_0_slash_commands_command.json")
	roundTrip[fakeslack.Envelope](t, "sent slash envelope", cmdFrame)

	// Ack it the way the Python SDK's test does, with a response payload.
	ack := bytes.Replace(readFixture(t, "_extracted/slackapi+python-slack-sdk/ack_with_payload.json"),
		[]byte("1d3c79ab-0ffb-41f3-a080-d19e85f53649"), []byte(id), 1)
	if err := ws.WriteMessage(websocket.TextMessage, ack); err != nil {
		t.Fatal(err)
	}
	got, ok := fake.WaitAck(id, waitTimeout)
	if !ok || string(got.Payload) != `{"text":"Thanks!"}` {
		t.Errorf("ack = %+v (payload %s), %v", got, got.Payload, ok)
	}

	// Recreate the Java SDK's interactive fixture: the bot's message with a
	// "Click Me!" button, clicked.
	_, ts, err := api.PostMessage("C111", slack.MsgOptionText("This content can't be displayed.", false), slack.MsgOptionBlocks(
		slack.NewActionBlock("b", slack.NewButtonBlockElement("a", "underlying", slack.NewTextBlockObject(slack.PlainTextType, "Click Me!", true, false)))))
	if err != nil {
		t.Fatal(err)
	}
	fake.SendBlockAction(fakeslack.BlockAction{ActionID: "a", UserID: "U111", UserName: "test", ChannelID: "C111", MessageTS: ts})
	actFrame := read()
	env := roundTrip[fakeslack.Envelope](t, "sent interactive envelope", actFrame)
	roundTrip[fakeslack.BlockActionsPayload](t, "sent block_actions payload", env.Payload)
	javaFixture := "_extracted/slackapi+java-slack-sdk/interactiveEnvelope.json"
	sent := keyPaths(t, actFrame)
	if m := missing(keyPaths(t, readFixture(t, javaFixture)), sent); len(m) > 0 {
		t.Errorf("block_actions envelope lacks %v that %s has\n%s", m, javaFixture, actFrame)
	}
	skeleton := readFixture(t, "slackapi+java-slack-sdk/json-logs/samples/app-backend/interactive-components/BlockActionPayload.json")
	known := union(
		keyPaths(t, readFixture(t, javaFixture)),
		keyPaths(t, readFixture(t, "_extracted/slackapi+python-slack-sdk/envelope_4_interactive_block_actions.json")),
		keyPaths(t, []byte(`{"envelope_id":"","type":"","accepts_response_payload":false,"payload":`+string(skeleton)+`}`)),
	)
	if m := missing(sent, known); len(m) > 0 {
		t.Errorf("block_actions envelope has %v that no Slack sample has", m)
	}

	if err := fake.Disconnect("too_many_websockets"); err != nil {
		t.Fatal(err)
	}
	disc := read()
	samePaths(t, "disconnect", disc, "_extracted/slackapi+python-slack-sdk/disconnect_message.json")
	if !strings.Contains(string(disc), `"reason":"too_many_websockets"`) {
		t.Errorf("disconnect = %s", disc)
	}
}

func TestWebAPIResponsesFollowSchemaSkeletons(t *testing.T) {
	fake, _ := newAPI(t, fakeslack.Config{})
	post := func(method string, req *http.Request) []byte {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(resp.Body); err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(buf.Bytes(), []byte(`"ok":true`)) {
			t.Fatalf("%s: %s", method, buf.Bytes())
		}
		return buf.Bytes()
	}
	form := func(method string, v url.Values) *http.Request {
		v.Set("token", fake.BotToken())
		req, _ := http.NewRequest(http.MethodPost, fake.APIURL()+method, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	open, _ := http.NewRequest(http.MethodPost, fake.APIURL()+"apps.connections.open", nil)
	open.Header.Set("Content-Type", "application/json")
	open.Header.Set("Authorization", "Bearer "+fake.AppToken())

	for _, tc := range []struct {
		method string
		req    *http.Request
		need   []string
	}{
		{"apps.connections.open", open, []string{"ok", "url"}},
		{"auth.test", form("auth.test", url.Values{}), []string{"ok", "url", "team", "user", "team_id", "user_id", "bot_id"}},
		{"chat.postMessage", form("chat.postMessage", url.Values{"channel": {"C1"}, "text": {"hi"}, "blocks": {`[{"type":"section","text":{"type":"mrkdwn","text":"hi"}}]`}}),
			[]string{"ok", "channel", "ts", "message.ts", "message.text", "message.type", "message.bot_id", "message.user", "message.blocks"}},
	} {
		got := keyPaths(t, post(tc.method, tc.req))
		schema := keyPaths(t, readFixture(t, "slackapi+java-slack-sdk/json-logs/samples/api/"+tc.method+".json"))
		if m := missing(got, schema); len(m) > 0 {
			t.Errorf("%s answers %v, not in Slack's schema", tc.method, m)
		}
		for _, p := range tc.need {
			if !got[p] {
				t.Errorf("%s answer lacks %s", tc.method, p)
			}
		}
	}
}
