package fakeslack_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	fakeslack "sockembot/integrations/fake/slack"
)

var tsPattern = regexp.MustCompile(`^\d{10}\.\d{6}$`)

func newAPI(t *testing.T, cfg fakeslack.Config, opts ...slack.Option) (*fakeslack.Server, *slack.Client) {
	t.Helper()
	fake := fakeslack.New(cfg)
	t.Cleanup(fake.Close)
	opts = append([]slack.Option{slack.OptionAPIURL(fake.APIURL()), slack.OptionAppLevelToken(fake.AppToken())}, opts...)
	return fake, slack.New(fake.BotToken(), opts...)
}

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

func TestPostMessageRateLimitedThenSucceeds(t *testing.T) {
	fake, api := newAPI(t, fakeslack.Config{})
	fake.RateLimit("chat.postMessage", 1)

	_, _, err := api.PostMessage("C1", slack.MsgOptionText("digest", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Fatalf("first post: err = %v, want *slack.RateLimitedError retrying after 1s", err)
	}
	if _, ts, err := api.PostMessage("C1", slack.MsgOptionText("digest", false)); err != nil || ts == "" {
		t.Fatalf("second post: ts %q err %v", ts, err)
	}
	calls := fake.CallsTo("chat.postMessage")
	if len(calls) != 2 || calls[0].Status != http.StatusTooManyRequests || calls[0].Error != "ratelimited" || calls[1].Error != "" {
		t.Errorf("calls = %+v", calls)
	}
	if msgs := fake.Messages("C1"); len(msgs) != 1 {
		t.Errorf("a rate-limited post was stored: %+v", msgs)
	}
}

func TestRetryingClientRidesOutRateLimit(t *testing.T) {
	fake, api := newAPI(t, fakeslack.Config{}, slack.OptionRetry(1))
	fake.RateLimit("chat.postMessage", 1)
	if _, _, err := api.PostMessage("C1", slack.MsgOptionText("digest", false)); err != nil {
		t.Fatalf("post with one retry: %v", err)
	}
	if calls := fake.CallsTo("chat.postMessage"); len(calls) != 2 || calls[0].Error != "ratelimited" || calls[1].Error != "" {
		t.Errorf("calls = %+v", calls)
	}
}

func TestBlockKitLimits(t *testing.T) {
	fake, api := newAPI(t, fakeslack.Config{})
	blocks := func(n int) []slack.Block {
		out := make([]slack.Block, n)
		for i := range out {
			out[i] = section(fmt.Sprintf("change %d", i))
		}
		return out
	}
	tests := []struct {
		name    string
		blocks  []slack.Block
		wantErr string
		wantMsg string
	}{
		{name: "50 blocks is the most a message may have", blocks: blocks(50)},
		{name: "51 blocks", blocks: blocks(51), wantErr: "invalid_blocks", wantMsg: "no more than 50 items allowed [json-pointer:/blocks]"},
		{name: "section text of 3000 characters", blocks: []slack.Block{section(strings.Repeat("x", 3000))}},
		{name: "section text of 3001 characters", blocks: []slack.Block{section(strings.Repeat("x", 3001))}, wantErr: "invalid_blocks", wantMsg: "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"},
		{name: "header over 150 characters", blocks: []slack.Block{slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, strings.Repeat("h", 151), false, false))}, wantErr: "invalid_blocks"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(fake.Messages("C1"))
			_, _, err := api.PostMessage("C1", slack.MsgOptionText("fallback", false), slack.MsgOptionBlocks(tc.blocks...))
			stored := len(fake.Messages("C1")) - before
			if tc.wantErr == "" {
				if err != nil || stored != 1 {
					t.Fatalf("err = %v, stored %d; want accepted", err, stored)
				}
				return
			}
			var serr slack.SlackErrorResponse
			if !errors.As(err, &serr) || serr.Err != tc.wantErr {
				t.Fatalf("err = %v, want %s", err, tc.wantErr)
			}
			if tc.wantMsg != "" && !slices.Contains(serr.ResponseMetadata.Messages, "[ERROR] "+tc.wantMsg) {
				t.Errorf("response_metadata.messages = %q, want %q", serr.ResponseMetadata.Messages, tc.wantMsg)
			}
			if stored != 0 {
				t.Errorf("rejected message was stored")
			}
		})
	}
	calls := fake.CallsTo("chat.postMessage")
	if calls[1].Error != "invalid_blocks" || len(calls[1].Blocks) == 0 {
		t.Errorf("rejected call recorded as error %q with %d bytes of blocks", calls[1].Error, len(calls[1].Blocks))
	}
}

func TestMalformedBlocks(t *testing.T) {
	fake, _ := newAPI(t, fakeslack.Config{})
	form := url.Values{"token": {fake.BotToken()}, "channel": {"C1"}, "blocks": {`{"type":"section"}`}}
	resp, err := http.PostForm(fake.APIURL()+"chat.postMessage", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Error string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error != "invalid_blocks_format" {
		t.Errorf("error = %q (%v), want invalid_blocks_format", body.Error, err)
	}
}

func TestTokens(t *testing.T) {
	fake, api := newAPI(t, fakeslack.Config{})

	wrong := slack.New("xoxb-wrong", slack.OptionAPIURL(fake.APIURL()))
	if _, err := wrong.AuthTest(); err == nil || err.Error() != "invalid_auth" {
		t.Errorf("wrong token: %v, want invalid_auth", err)
	}
	// Socket mode needs the app-level token, not the bot token.
	botAsApp := slack.New(fake.BotToken(), slack.OptionAPIURL(fake.APIURL()), slack.OptionAppLevelToken(fake.BotToken()))
	if _, _, err := botAsApp.StartSocketModeContext(t.Context()); err == nil || err.Error() != "not_allowed_token_type" {
		t.Errorf("bot token on apps.connections.open: %v", err)
	}
	_, wsURL, err := api.StartSocketModeContext(t.Context())
	if err != nil || !strings.HasPrefix(wsURL, "ws://127.0.0.1:") || !strings.Contains(wsURL, "/link/?ticket=") {
		t.Errorf("apps.connections.open = %q, %v", wsURL, err)
	}
	for _, c := range fake.Calls() {
		if _, ok := c.Params["token"]; ok {
			t.Errorf("%s recorded the token", c.Method)
		}
	}
}

func TestWebAPIMethods(t *testing.T) {
	fake, api := newAPI(t, fakeslack.Config{
		BotUserID:  "U0BOT",
		UserGroups: map[string][]string{"S0APPROVERS": {"U1", "U2"}},
		Users:      []fakeslack.User{{ID: "U1", Name: "alice", RealName: "Alice A", Email: "alice@example.com"}},
	})

	auth, err := api.AuthTest()
	if err != nil || auth.UserID != "U0BOT" || auth.TeamID == "" || auth.BotID == "" {
		t.Errorf("auth.test = %+v, %v", auth, err)
	}

	members, err := api.GetUserGroupMembers("S0APPROVERS")
	if err != nil || !slices.Equal(members, []string{"U1", "U2"}) {
		t.Errorf("usergroup members = %v, %v", members, err)
	}
	fake.SetUserGroup("S0APPROVERS", "U3")
	if members, _ := api.GetUserGroupMembers("S0APPROVERS"); !slices.Equal(members, []string{"U3"}) {
		t.Errorf("after SetUserGroup: %v", members)
	}
	if _, err := api.GetUserGroupMembers("S0NOPE"); err == nil || err.Error() != "no_such_subteam" {
		t.Errorf("unknown usergroup: %v", err)
	}

	u, err := api.GetUserInfo("U1")
	if err != nil || u.Name != "alice" || u.RealName != "Alice A" || u.Profile.Email != "alice@example.com" {
		t.Errorf("users.info = %+v, %v", u, err)
	}
	if _, err := api.GetUserInfo("U404"); err == nil || err.Error() != "user_not_found" {
		t.Errorf("unknown user: %v", err)
	}

	ch, rootTS, err := api.PostMessage("C1", slack.MsgOptionText("digest", false), slack.MsgOptionBlocks(section("*3 changes*")))
	if err != nil || ch != "C1" {
		t.Fatalf("post root: %s %v", ch, err)
	}
	_, replyTS, err := api.PostMessage("C1", slack.MsgOptionText("first reply", false), slack.MsgOptionTS(rootTS))
	if err != nil {
		t.Fatal(err)
	}
	// A reply to a reply lands in the root's thread, as in Slack.
	if _, _, err := api.PostMessage("C1", slack.MsgOptionText("second reply", false), slack.MsgOptionTS(replyTS)); err != nil {
		t.Fatal(err)
	}
	if !tsPattern.MatchString(rootTS) || !tsPattern.MatchString(replyTS) || rootTS >= replyTS {
		t.Errorf("timestamps %q %q are not unique increasing Slack ts", rootTS, replyTS)
	}
	if _, _, _, err := api.UpdateMessage("C1", rootTS, slack.MsgOptionText("digest v2", false)); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := api.UpdateMessage("C1", "1.000000", slack.MsgOptionText("x", false)); err == nil || err.Error() != "message_not_found" {
		t.Errorf("update of unknown ts: %v", err)
	}

	replies, _, _, err := api.GetConversationReplies(&slack.GetConversationRepliesParameters{ChannelID: "C1", Timestamp: rootTS})
	if err != nil || len(replies) != 3 {
		t.Fatalf("conversations.replies = %d messages, %v", len(replies), err)
	}
	if replies[0].Text != "digest v2" || replies[0].ReplyCount != 2 || len(replies[0].Blocks.BlockSet) != 1 ||
		replies[1].Text != "first reply" || replies[2].Text != "second reply" || replies[2].ThreadTimestamp != rootTS {
		t.Errorf("thread = %+v", replies)
	}
	if thread := fake.Thread("C1", rootTS); len(thread) != 3 || thread[0].Edits != 1 || thread[0].Blocks == nil {
		t.Errorf("Thread() = %+v", thread)
	}

	ets, err := api.PostEphemeral("C1", "U1", slack.MsgOptionText("only you", false))
	if err != nil || ets == "" {
		t.Fatalf("postEphemeral: %q %v", ets, err)
	}

	calls := fake.Calls()
	var methods []string
	for _, c := range calls {
		methods = append(methods, c.Method)
	}
	want := []string{"auth.test", "usergroups.users.list", "usergroups.users.list", "usergroups.users.list", "users.info", "users.info",
		"chat.postMessage", "chat.postMessage", "chat.postMessage", "chat.update", "chat.update", "conversations.replies", "chat.postEphemeral"}
	if !slices.Equal(methods, want) {
		t.Fatalf("methods = %v\nwant %v", methods, want)
	}
	root, reply, eph := calls[6], calls[7], calls[12]
	if root.Channel != "C1" || root.TS != rootTS || !strings.Contains(string(root.Blocks), `"*3 changes*"`) {
		t.Errorf("root call = %+v", root)
	}
	if reply.ThreadTS != rootTS || reply.Text != "first reply" || reply.TS != replyTS {
		t.Errorf("reply call = %+v", reply)
	}
	if eph.User != "U1" || eph.Text != "only you" || eph.TS != ets {
		t.Errorf("ephemeral call = %+v", eph)
	}
}

func TestJSONBodyAccepted(t *testing.T) {
	fake, _ := newAPI(t, fakeslack.Config{})
	body := `{"channel":"C1","text":"hi","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"hello"}}]}`
	req, _ := http.NewRequest(http.MethodPost, fake.APIURL()+"chat.postMessage", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+fake.BotToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		OK bool
		TS string
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || !out.OK {
		t.Fatalf("JSON post: %+v %v", out, err)
	}
	msgs := fake.Messages("C1")
	if len(msgs) != 1 || msgs[0].Text != "hi" || !strings.Contains(string(msgs[0].Blocks), "hello") {
		t.Errorf("messages = %+v", msgs)
	}
}
