package fakeslack

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const writeTimeout = 5 * time.Second

// ErrNoConnection is returned when a socket operation needs an open
// connection and the app has none.
var ErrNoConnection = errors.New("fakeslack: no open socket-mode connection")

// conn is one socket-mode WebSocket.
type conn struct {
	id   int
	ws   *websocket.Conn
	mu   sync.Mutex // gorilla/websocket allows one writer at a time
	done chan struct{}
	once sync.Once
}

func (c *conn) writeJSON(v any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.ws.WriteJSON(v)
}

func (c *conn) close() {
	c.once.Do(func() {
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeTimeout))
		_ = c.ws.Close()
	})
}

// serveLink is the WebSocket endpoint apps.connections.open points to.
// Tickets are single-use, like Slack's.
func (s *Server) serveLink(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	ok := s.tickets[ticket] && !s.closed
	delete(s.tickets, ticket)
	s.mu.Unlock()
	if !ok {
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &conn{ws: ws, done: make(chan struct{})}
	ws.SetPingHandler(func(data string) error {
		s.mu.Lock()
		s.pingsReceived++
		s.mu.Unlock()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeTimeout))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	ws.SetPongHandler(func(string) error {
		s.mu.Lock()
		s.pongs++
		s.mu.Unlock()
		return nil
	})

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.close()
		return
	}
	s.connSeq++
	c.id = s.connSeq
	s.conns[c] = true
	hello := Hello{
		Type:           "hello",
		NumConnections: len(s.conns),
		DebugInfo: DebugInfo{
			Host:                      fmt.Sprintf("applink-fake-%d", c.id),
			BuildNumber:               1,
			ApproximateConnectionTime: 18060,
		},
		ConnectionInfo: ConnectionInfo{AppID: s.cfg.AppID},
	}
	s.mu.Unlock()

	// hello goes first; only then does the connection take envelopes (sends wait on sendMu).
	// It is counted before it is written, so a client that has read it sees it counted.
	s.sendMu.Lock()
	s.mu.Lock()
	prev := s.current
	s.current = c
	s.hellos++
	s.mu.Unlock()
	err = c.writeJSON(hello)
	s.mu.Lock()
	if err != nil {
		s.current = prev
		s.hellos--
	}
	s.signalLocked()
	s.mu.Unlock()
	s.sendMu.Unlock()

	if err == nil {
		go s.pingLoop(c)
		s.flush()
		s.readLoop(c)
	}

	c.close()
	close(c.done)
	s.mu.Lock()
	delete(s.conns, c)
	if s.current == c {
		s.current = nil
	}
	s.signalLocked()
	s.mu.Unlock()
}

// readLoop reads acks until the socket fails or closes.
func (s *Server) readLoop(c *conn) {
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var msg AckMessage
		if err := json.Unmarshal(data, &msg); err != nil {
			s.mu.Lock()
			s.strays = append(s.strays, string(data))
			s.mu.Unlock()
			continue
		}
		s.recordAck(c, msg)
	}
}

func (s *Server) recordAck(c *conn, msg AckMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ack := Ack{EnvelopeID: msg.EnvelopeID, Connection: c.id}
	if len(msg.Payload) > 0 && string(msg.Payload) != "null" {
		ack.Payload = msg.Payload
	}
	d, ok := s.deliveries[msg.EnvelopeID]
	if !ok || !d.sent {
		ack.Unknown = true
		s.acks = append(s.acks, ack)
		s.signalLocked()
		return
	}
	ack.Type = d.env.Type
	ack.RetryAttempt = d.sentAttempt
	ack.Latency = time.Since(d.sentAt)
	s.acks = append(s.acks, ack)
	// A slash command's ack may carry its first response; Slack shows it
	// like a response_url post. Other envelope types ignore ack payloads.
	if d.env.AcceptsResponsePayload && ack.Payload != nil && d.target != nil {
		var body responseBody
		if json.Unmarshal(ack.Payload, &body) == nil && (body.Text != "" || hasContent(body.Blocks)) {
			_ = s.respondLocked(d.target, body, "ack")
		}
	}
	s.signalLocked()
}

func (s *Server) pingLoop(c *conn) {
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-s.stop:
			return
		case <-t.C:
			if err := c.ws.WriteControl(websocket.PingMessage, []byte("fakeslack"), time.Now().Add(writeTimeout)); err != nil {
				return
			}
			s.mu.Lock()
			s.pingsSent++
			s.mu.Unlock()
		}
	}
}

// flush writes queued envelopes, in order, to the current connection. An
// envelope whose write fails stays queued for the next connection.
func (s *Server) flush() {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	for {
		s.mu.Lock()
		c := s.current
		if c == nil || len(s.pending) == 0 {
			s.mu.Unlock()
			return
		}
		env := s.pending[0]
		// Marked sent before it is written: a client can read it and ack before the write
		// call returns here, and that ack must find it sent.
		d := s.deliveries[env.EnvelopeID]
		d.sent, d.sentAt, d.sentAttempt = true, time.Now(), 0
		if env.RetryAttempt != nil {
			d.sentAttempt = *env.RetryAttempt
		}
		s.mu.Unlock()

		if err := c.writeJSON(env); err != nil {
			// Still pending: written again on the next connection.
			c.close()
			s.mu.Lock()
			if s.current == c {
				s.current = nil
			}
			s.mu.Unlock()
			return
		}

		s.mu.Lock()
		s.pending = s.pending[1:]
		s.mu.Unlock()
	}
}

// SendEnvelope queues an envelope of type typ ("slash_commands",
// "interactive", "events_api") with payload (a value to marshal or a
// json.RawMessage) and delivers it on the current connection, or on the next
// one if the app is between connections. It returns the envelope_id.
func (s *Server) SendEnvelope(typ string, payload any, retryAttempt int, retryReason string) string {
	raw, err := toRaw(payload)
	if err != nil {
		// A payload that cannot be marshaled is a bug in the test itself.
		panic(fmt.Sprintf("fakeslack: marshal %s payload: %v", typ, err))
	}
	s.mu.Lock()
	id := s.newEnvelopeIDLocked()
	s.enqueueLocked(id, typ, raw, retryAttempt, retryReason, nil)
	s.mu.Unlock()
	s.flush()
	return id
}

// Redeliver sends the same envelope (same envelope_id and payload) again
// with retry_attempt one higher, the way Slack retries an envelope that was
// not acked in time.
func (s *Server) Redeliver(envelopeID, retryReason string) error {
	s.mu.Lock()
	d, ok := s.deliveries[envelopeID]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("fakeslack: redeliver %s: no such envelope", envelopeID)
	}
	attempt := 1
	if d.env.RetryAttempt != nil {
		attempt = *d.env.RetryAttempt + 1
	}
	s.enqueueLocked(envelopeID, d.env.Type, d.env.Payload, attempt, retryReason, d.target)
	s.mu.Unlock()
	s.flush()
	return nil
}

func (s *Server) newEnvelopeIDLocked() string {
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", s.nextSeq())
}

func (s *Server) enqueueLocked(id, typ string, payload json.RawMessage, attempt int, reason string, target *responseTarget) {
	env := Envelope{
		EnvelopeID: id,
		Payload:    payload,
		Type:       typ,
		// Only slash commands may answer with a message in the ack.
		AcceptsResponsePayload: typ == "slash_commands",
	}
	if typ == "events_api" || attempt > 0 {
		env.RetryAttempt, env.RetryReason = &attempt, &reason
	}
	prev := s.deliveries[id]
	d := &delivery{env: env, target: target}
	if prev != nil {
		// Keep what was last sent until the redelivery is written, so an
		// ack racing it is matched to the right attempt.
		d.sent, d.sentAt, d.sentAttempt = prev.sent, prev.sentAt, prev.sentAttempt
		if d.target == nil {
			d.target = prev.target
		}
	}
	s.deliveries[id] = d
	s.pending = append(s.pending, env)
}

// SendSlashCommand delivers a slash_commands envelope. Empty fields get the
// workspace's values; ResponseURL and TriggerID are always the fake's own.
func (s *Server) SendSlashCommand(cmd SlashCommand) string {
	s.mu.Lock()
	id := s.newEnvelopeIDLocked()
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&cmd.Token, "fake-verification-token")
	def(&cmd.TeamID, s.cfg.TeamID)
	def(&cmd.TeamDomain, s.cfg.TeamDomain)
	def(&cmd.APIAppID, s.cfg.AppID)
	def(&cmd.ChannelName, s.channelName(cmd.ChannelID))
	def(&cmd.UserName, cmd.UserID)
	target := &responseTarget{envelopeID: id, channel: cmd.ChannelID, user: cmd.UserID}
	cmd.ResponseURL = s.newResponseURLLocked(target)
	cmd.TriggerID = s.newTriggerIDLocked()
	raw, _ := json.Marshal(cmd)
	s.enqueueLocked(id, "slash_commands", raw, 0, "", target)
	s.mu.Unlock()
	s.flush()
	return id
}

// BlockAction describes a click on an interactive element of a message the
// bot posted. Empty BlockID, Text and Type are looked up in the message's
// blocks by ActionID.
type BlockAction struct {
	ActionID  string
	BlockID   string
	Value     string
	Type      string // element type; "button" when it cannot be found
	Text      string // the element's label
	UserID    string
	UserName  string
	ChannelID string
	MessageTS string // ts of the message (or ephemeral) the element is on
}

// SendBlockAction delivers an interactive block_actions envelope shaped like
// Slack's: the user, the container message, the message itself with its
// current blocks (omitted for ephemerals, as Slack does), the action, and
// a response_url and trigger_id on the fake.
func (s *Server) SendBlockAction(a BlockAction) string {
	s.mu.Lock()
	id := s.newEnvelopeIDLocked()
	if a.UserName == "" {
		a.UserName = a.UserID
	}
	ephemeral := false
	container := Container{Type: "message", MessageTS: a.MessageTS, ChannelID: a.ChannelID, IsEphemeral: &ephemeral}
	var msg *WireMessage
	var blocks json.RawMessage
	if m := s.findMessageLocked(a.ChannelID, a.MessageTS); m != nil {
		w := s.wireMessage(m)
		msg, blocks = &w, m.Blocks
		container.ThreadTS = m.ThreadTS
	} else if e := s.findEphemeralLocked(a.ChannelID, a.MessageTS); e != nil {
		ephemeral = true
		blocks = e.Blocks
	}
	fillFromBlocks(&a, blocks)
	if a.Type == "" {
		a.Type = "button"
	}
	action := Action{ActionID: a.ActionID, BlockID: a.BlockID, Value: a.Value, Type: a.Type, ActionTS: s.nextTS()}
	if a.Text != "" {
		action.Text = &TextObject{Type: "plain_text", Text: a.Text, Emoji: true}
	}
	notEnterprise := false
	payload := BlockActionsPayload{
		Type:                "block_actions",
		User:                PayloadUser{ID: a.UserID, Username: a.UserName, Name: a.UserName, TeamID: s.cfg.TeamID},
		APIAppID:            s.cfg.AppID,
		Token:               "fake-verification-token",
		Container:           container,
		TriggerID:           s.newTriggerIDLocked(),
		Team:                Team{ID: s.cfg.TeamID, Domain: s.cfg.TeamDomain},
		Enterprise:          json.RawMessage("null"),
		IsEnterpriseInstall: &notEnterprise,
		Channel:             &PayloadChannel{ID: a.ChannelID, Name: s.channelName(a.ChannelID)},
		Message:             msg,
		Actions:             []Action{action},
	}
	target := &responseTarget{envelopeID: id, channel: a.ChannelID, user: a.UserID, messageTS: a.MessageTS}
	payload.ResponseURL = s.newResponseURLLocked(target)
	raw, _ := json.Marshal(payload)
	s.enqueueLocked(id, "interactive", raw, 0, "", target)
	s.mu.Unlock()
	s.flush()
	return id
}

// fillFromBlocks completes an action from the element it names.
func fillFromBlocks(a *BlockAction, raw json.RawMessage) {
	blocks, _ := decodeBlocks(raw)
	for _, b := range blocks {
		elems := b.Elements
		if b.Accessory != nil {
			elems = append(elems, *b.Accessory)
		}
		for _, e := range elems {
			if e.ActionID != a.ActionID || e.ActionID == "" {
				continue
			}
			if a.BlockID == "" {
				a.BlockID = b.BlockID
			}
			if a.Type == "" {
				a.Type = e.Type
			}
			if a.Text == "" && e.Type == "button" {
				a.Text = rawText(e.Text)
			}
			if a.Value == "" {
				a.Value = e.Value
			}
			return
		}
	}
}

func (s *Server) newResponseURLLocked(t *responseTarget) string {
	key := fmt.Sprintf("%d", s.nextSeq())
	s.targets[key] = t
	return s.srv.URL + "/response/" + key
}

func (s *Server) newTriggerIDLocked() string {
	return fmt.Sprintf("%d.%s.fake%06d", 1000+s.nextSeq(), s.cfg.TeamID, s.seq)
}

func toRaw(payload any) (json.RawMessage, error) {
	switch p := payload.(type) {
	case json.RawMessage:
		return p, nil
	case []byte:
		return json.RawMessage(p), nil
	default:
		return json.Marshal(p)
	}
}

// Disconnect sends Slack's disconnect message (reason "refresh_requested",
// "warning", ...) on the current connection and closes it once the client
// has gone or DisconnectGrace has passed. Envelopes sent meanwhile wait for
// the client's next connection, which slack-go opens through
// apps.connections.open.
func (s *Server) Disconnect(reason string) error {
	s.sendMu.Lock()
	s.mu.Lock()
	c := s.current
	if c == nil {
		s.mu.Unlock()
		s.sendMu.Unlock()
		return ErrNoConnection
	}
	s.current = nil
	msg := Disconnect{
		Type:           "disconnect",
		Reason:         reason,
		NumConnections: len(s.conns),
		DebugInfo:      DebugInfo{Host: fmt.Sprintf("applink-fake-%d", c.id)},
		ConnectionInfo: &ConnectionInfo{AppID: s.cfg.AppID},
	}
	s.mu.Unlock()
	err := c.writeJSON(msg)
	s.sendMu.Unlock()

	go func() {
		t := time.NewTimer(s.cfg.DisconnectGrace)
		defer t.Stop()
		select {
		case <-c.done:
		case <-t.C:
		case <-s.stop:
		}
		c.close()
	}()
	if err != nil {
		return fmt.Errorf("fakeslack: disconnect: %w", err)
	}
	return nil
}

// DropConnection closes the current socket without a disconnect message,
// the way a network failure would.
func (s *Server) DropConnection() error {
	s.sendMu.Lock()
	s.mu.Lock()
	c := s.current
	s.current = nil
	s.mu.Unlock()
	s.sendMu.Unlock()
	if c == nil {
		return ErrNoConnection
	}
	_ = c.ws.Close()
	return nil
}

// WaitAck waits for the ack of the latest delivery of envelopeID.
func (s *Server) WaitAck(envelopeID string, timeout time.Duration) (Ack, bool) {
	var found Ack
	ok := s.waitFor(timeout, func() bool {
		want := 0
		if d, ok := s.deliveries[envelopeID]; ok && d.env.RetryAttempt != nil {
			want = *d.env.RetryAttempt
		}
		for _, a := range s.acks {
			if a.EnvelopeID == envelopeID && a.RetryAttempt == want {
				found = a
				return true
			}
		}
		return false
	})
	return found, ok
}

// WaitConnections waits until n socket-mode connections have been opened
// (and greeted with hello) since the server started.
func (s *Server) WaitConnections(n int, timeout time.Duration) bool {
	return s.waitFor(timeout, func() bool { return s.hellos >= n })
}

// waitFor polls cond, with s.mu held, on every socket event until it holds
// or timeout passes.
func (s *Server) waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return true
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// Acks returns every ack received, in order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ack(nil), s.acks...)
}

// Connections is how many socket-mode connections have been opened.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hellos
}

// Pings reports the WebSocket pings the fake sent and the pongs it got
// back (slack-go answers every ping), plus the pings the client sent.
func (s *Server) Pings() (sent, pongs, received int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pingsSent, s.pongs, s.pingsReceived
}

// Strays returns socket messages from the app that were not acks.
func (s *Server) Strays() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.strays...)
}
