package fakeslack

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Slack truncates or refuses message text past 40,000 characters.
const maxTextChars = 40000

// apiError is a Slack error answer: HTTP 200 with ok=false. Messages fill
// response_metadata.messages the way Slack explains invalid_blocks.
type apiError struct {
	code     string
	messages []string
}

func fail(code string, messages ...string) *apiError {
	return &apiError{code: code, messages: messages}
}

type apiRequest struct {
	method string
	token  string
	params map[string]string
	blocks json.RawMessage
	// hasBlocks is true when the caller sent a blocks parameter at all:
	// chat.update keeps the old blocks when it is absent.
	hasBlocks bool
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	req, err := readAPIRequest(r)
	if err != nil {
		writeJSON(w, http.StatusOK, errorBody(fail("invalid_json")))
		return
	}
	call := Call{
		Method:   req.method,
		Params:   req.params,
		Channel:  req.params["channel"],
		Text:     req.params["text"],
		ThreadTS: req.params["thread_ts"],
		TS:       req.params["ts"],
		User:     req.params["user"],
		Status:   http.StatusOK,
	}
	if json.Valid(req.blocks) {
		call.Blocks = req.blocks
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	body, status, aerr := s.dispatchLocked(req, &call)
	call.Status = status
	if aerr != nil {
		call.Error = aerr.code
		body = errorBody(aerr)
	}
	s.calls = append(s.calls, call)
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(s.cfg.RetryAfter))
	}
	writeJSON(w, status, body)
}

func (s *Server) dispatchLocked(req apiRequest, call *Call) (map[string]any, int, *apiError) {
	if code := s.authorize(req.method, req.token); code != "" {
		return nil, http.StatusOK, fail(code)
	}
	if s.rateLimits[req.method] > 0 {
		s.rateLimits[req.method]--
		return nil, http.StatusTooManyRequests, fail("ratelimited")
	}
	var (
		body map[string]any
		aerr *apiError
	)
	switch req.method {
	case "apps.connections.open":
		body = s.appsConnectionsOpenLocked()
	case "auth.test":
		body = s.authTest()
	case "chat.postMessage":
		body, aerr = s.chatPostMessageLocked(req, call)
	case "chat.update":
		body, aerr = s.chatUpdateLocked(req)
	case "chat.postEphemeral":
		body, aerr = s.chatPostEphemeralLocked(req, call)
	case "conversations.replies":
		body, aerr = s.conversationsRepliesLocked(req)
	case "chat.getPermalink":
		body, aerr = s.chatGetPermalinkLocked(req)
	case "usergroups.users.list":
		body, aerr = s.usergroupsUsersListLocked(req)
	case "users.info":
		body, aerr = s.usersInfoLocked(req)
	default:
		aerr = fail("unknown_method")
	}
	if aerr != nil {
		return nil, http.StatusOK, aerr
	}
	body["ok"] = true
	return body, http.StatusOK, nil
}

// authorize answers like Slack: socket mode needs the app-level token, every
// other method here needs the bot token.
func (s *Server) authorize(method, token string) string {
	wantApp := method == "apps.connections.open"
	switch {
	case token == "":
		return "not_authed"
	case token == s.cfg.AppToken && wantApp, token == s.cfg.BotToken && !wantApp:
		return ""
	case token == s.cfg.AppToken, token == s.cfg.BotToken:
		return "not_allowed_token_type"
	default:
		return "invalid_auth"
	}
}

func (s *Server) appsConnectionsOpenLocked() map[string]any {
	ticket := fmt.Sprintf("fake-ticket-%d", s.nextSeq())
	s.tickets[ticket] = true
	url := "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/link/?ticket=" + ticket
	return map[string]any{"url": url}
}

func (s *Server) authTest() map[string]any {
	return map[string]any{
		"url":                   "https://" + s.cfg.TeamDomain + ".slack.com/",
		"team":                  s.cfg.TeamDomain,
		"user":                  "sockembot",
		"team_id":               s.cfg.TeamID,
		"user_id":               s.cfg.BotUserID,
		"bot_id":                s.cfg.BotID,
		"app_id":                s.cfg.AppID,
		"is_enterprise_install": false,
	}
}

// checkContent applies Slack's message limits to text and blocks.
func checkContent(text string, blocks json.RawMessage, hasBlocks bool) *apiError {
	if utf8.RuneCountInString(text) > maxTextChars {
		return fail("msg_too_long")
	}
	if !hasBlocks {
		return nil
	}
	return validateBlocks(blocks)
}

func (s *Server) chatPostMessageLocked(req apiRequest, call *Call) (map[string]any, *apiError) {
	channel, text := req.params["channel"], req.params["text"]
	if channel == "" {
		return nil, fail("channel_not_found")
	}
	if s.notIn[channel] {
		return nil, fail("not_in_channel")
	}
	if aerr := checkContent(text, req.blocks, req.hasBlocks); aerr != nil {
		return nil, aerr
	}
	if text == "" && !hasContent(req.blocks) && req.params["attachments"] == "" {
		return nil, fail("no_text")
	}
	m := s.postLocked(channel, req.params["thread_ts"], text, nonEmpty(req.blocks), "chat.postMessage")
	call.TS = m.TS
	return map[string]any{"channel": channel, "ts": m.TS, "message": s.wireMessage(m)}, nil
}

func (s *Server) chatUpdateLocked(req apiRequest) (map[string]any, *apiError) {
	channel, ts := req.params["channel"], req.params["ts"]
	if channel == "" {
		return nil, fail("channel_not_found")
	}
	m := s.findMessageLocked(channel, ts)
	if m == nil {
		return nil, fail("message_not_found")
	}
	text, hasText := req.params["text"]
	if !hasText && !req.hasBlocks {
		return nil, fail("no_text")
	}
	if aerr := checkContent(text, req.blocks, req.hasBlocks); aerr != nil {
		return nil, aerr
	}
	// chat.update keeps the previous blocks unless blocks is sent; an
	// empty array removes them.
	if hasText {
		m.Text = text
	}
	if req.hasBlocks {
		m.Blocks = nonEmpty(req.blocks)
	}
	m.Edits++
	m.editedTS = s.nextTS()
	return map[string]any{"channel": channel, "ts": ts, "text": m.Text, "message": s.wireMessage(m)}, nil
}

func (s *Server) chatPostEphemeralLocked(req apiRequest, call *Call) (map[string]any, *apiError) {
	channel, user, text := req.params["channel"], req.params["user"], req.params["text"]
	switch {
	case channel == "":
		return nil, fail("channel_not_found")
	case user == "":
		return nil, fail("user_not_found")
	}
	if aerr := checkContent(text, req.blocks, req.hasBlocks); aerr != nil {
		return nil, aerr
	}
	if text == "" && !hasContent(req.blocks) && req.params["attachments"] == "" {
		return nil, fail("no_text")
	}
	e := s.postEphemeralLocked(channel, user, text, nonEmpty(req.blocks), "chat.postEphemeral")
	call.TS = e.TS
	return map[string]any{"message_ts": e.TS}, nil
}

func (s *Server) conversationsRepliesLocked(req apiRequest) (map[string]any, *apiError) {
	channel, ts := req.params["channel"], req.params["ts"]
	if _, ok := s.channels[channel]; !ok {
		return nil, fail("channel_not_found")
	}
	thread := s.threadLocked(channel, ts)
	if thread == nil {
		return nil, fail("thread_not_found")
	}
	msgs := make([]WireMessage, 0, len(thread))
	for i, m := range thread {
		w := s.wireMessage(m)
		if i == 0 && len(thread) > 1 {
			// A root with replies carries its own ts as thread_ts.
			w.ThreadTS = m.TS
			w.ReplyCount = len(thread) - 1
		}
		msgs = append(msgs, w)
	}
	return map[string]any{"messages": msgs, "has_more": false}, nil
}

// chatGetPermalinkLocked answers like Slack: the workspace URL, the channel, and the ts without
// its dot behind a "p" ({"ok":true,"channel":"C1H9RESGA","permalink":"https://ghostbusters.slack.com/archives/C1H9RESGA/p135854651500008"}).
func (s *Server) chatGetPermalinkLocked(req apiRequest) (map[string]any, *apiError) {
	channel, ts := req.params["channel"], req.params["message_ts"]
	if _, ok := s.channels[channel]; !ok {
		return nil, fail("channel_not_found")
	}
	if s.findMessageLocked(channel, ts) == nil {
		return nil, fail("message_not_found")
	}
	return map[string]any{"channel": channel,
		"permalink": PermalinkBase + "/archives/" + channel + "/p" + strings.ReplaceAll(ts, ".", "")}, nil
}

// PermalinkBase is the fake workspace's URL in permalinks.
const PermalinkBase = "https://acme-fake.slack.com"

func (s *Server) usergroupsUsersListLocked(req apiRequest) (map[string]any, *apiError) {
	members, ok := s.groups[req.params["usergroup"]]
	if !ok {
		return nil, fail("no_such_subteam")
	}
	return map[string]any{"users": append([]string{}, members...)}, nil
}

func (s *Server) usersInfoLocked(req apiRequest) (map[string]any, *apiError) {
	u, ok := s.users[req.params["user"]]
	if !ok {
		return nil, fail("user_not_found")
	}
	return map[string]any{"user": map[string]any{
		"id":        u.ID,
		"team_id":   s.cfg.TeamID,
		"name":      u.Name,
		"real_name": u.RealName,
		"deleted":   u.Deleted,
		"is_bot":    u.IsBot,
		"profile": map[string]any{
			"real_name":    u.RealName,
			"display_name": u.Name,
			"email":        u.Email,
		},
	}}, nil
}

// readAPIRequest reads the parameters slack-go sends either as a form (chat.*,
// most methods) or as JSON (apps.connections.open, other SDKs). The token
// comes from the Authorization header or the token parameter.
func readAPIRequest(r *http.Request) (apiRequest, error) {
	req := apiRequest{method: r.PathValue("method"), params: map[string]string{}}
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ctype == "application/json" {
		var body map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			return req, err
		}
		for k, v := range body {
			var str string
			if json.Unmarshal(v, &str) == nil {
				req.params[k] = str
			} else {
				req.params[k] = string(v)
			}
		}
		for k, v := range r.URL.Query() {
			req.params[k] = v[0]
		}
	} else {
		if err := r.ParseForm(); err != nil {
			return req, err
		}
		for k, v := range r.Form {
			req.params[k] = v[0]
		}
	}
	if b, ok := req.params["blocks"]; ok {
		req.hasBlocks = true
		req.blocks = json.RawMessage(b)
	}
	req.token = req.params["token"]
	delete(req.params, "token")
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		req.token = bearer
	}
	return req, nil
}

func errorBody(e *apiError) map[string]any {
	body := map[string]any{"ok": false, "error": e.code}
	if len(e.messages) > 0 {
		body["errors"] = e.messages
		msgs := make([]string, len(e.messages))
		for i, m := range e.messages {
			msgs[i] = "[ERROR] " + m
		}
		body["response_metadata"] = map[string]any{"messages": msgs}
	}
	return body
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func tsString(sec, micros int) string { return fmt.Sprintf("%d.%06d", sec, micros) }

// hasContent reports whether blocks holds at least one block.
func hasContent(blocks json.RawMessage) bool {
	var arr []json.RawMessage
	return json.Unmarshal(blocks, &arr) == nil && len(arr) > 0
}

// nonEmpty drops an empty or null blocks value so stored messages have
// either real blocks or none.
func nonEmpty(blocks json.RawMessage) json.RawMessage {
	if !hasContent(blocks) {
		return nil
	}
	return blocks
}

// --- response_url ---

// responseBody is what apps post to a response_url (and may put in a
// slash-command ack payload).
type responseBody struct {
	Text            string          `json:"text"`
	Blocks          json.RawMessage `json:"blocks"`
	ResponseType    string          `json:"response_type"`
	ReplaceOriginal bool            `json:"replace_original"`
	DeleteOriginal  bool            `json:"delete_original"`
	ThreadTS        string          `json:"thread_ts"`
}

func (s *Server) serveResponseURL(w http.ResponseWriter, r *http.Request) {
	var body responseBody
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	target, ok := s.targets[r.PathValue("id")]
	if !ok {
		http.Error(w, "no_such_response_url", http.StatusNotFound)
		return
	}
	if aerr := s.respondLocked(target, body, "response_url"); aerr != nil {
		// Webhook-style endpoints answer errors as a 400 with the code as
		// plain text, not as ok=false JSON.
		http.Error(w, aerr.code, http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// respondLocked applies a response message the way Slack does: replace or
// delete the message the action was on, or post in the channel
// (response_type in_channel), or by default show it only to the user.
func (s *Server) respondLocked(t *responseTarget, body responseBody, via string) *apiError {
	post := ResponsePost{
		EnvelopeID:      t.envelopeID,
		ResponseType:    body.ResponseType,
		ReplaceOriginal: body.ReplaceOriginal,
		DeleteOriginal:  body.DeleteOriginal,
		Text:            body.Text,
		Blocks:          nonEmpty(body.Blocks),
		Via:             via,
		Status:          http.StatusOK,
	}
	aerr := s.applyResponseLocked(t, body, via)
	if aerr != nil {
		post.Status, post.Error = http.StatusBadRequest, aerr.code
	}
	s.responses = append(s.responses, post)
	return aerr
}

func (s *Server) applyResponseLocked(t *responseTarget, body responseBody, via string) *apiError {
	blocks := nonEmpty(body.Blocks)
	if body.DeleteOriginal {
		if !s.deleteMessageLocked(t.channel, t.messageTS) {
			s.deleteEphemeralLocked(t.channel, t.messageTS)
		}
		return nil
	}
	if body.Text == "" && blocks == nil {
		return fail("no_text")
	}
	if aerr := checkContent(body.Text, blocks, blocks != nil); aerr != nil {
		return aerr
	}
	if body.ReplaceOriginal && t.messageTS != "" {
		if m := s.findMessageLocked(t.channel, t.messageTS); m != nil {
			m.Text, m.Blocks = body.Text, blocks
			m.Edits++
			m.editedTS = s.nextTS()
			return nil
		}
		if e := s.findEphemeralLocked(t.channel, t.messageTS); e != nil {
			e.Text, e.Blocks = body.Text, blocks
			e.Edits++
			return nil
		}
	}
	if body.ResponseType == "in_channel" {
		s.postLocked(t.channel, body.ThreadTS, body.Text, blocks, via)
		return nil
	}
	s.postEphemeralLocked(t.channel, t.user, body.Text, blocks, via)
	return nil
}

func (s *Server) deleteEphemeralLocked(channel, ts string) {
	for i, e := range s.ephemerals {
		if e.Channel == channel && e.TS == ts {
			s.ephemerals = append(s.ephemerals[:i], s.ephemerals[i+1:]...)
			return
		}
	}
}
