// Package fakeslack is a small, real Slack for tests and `sockembot demo`: an
// httptest server with the Web API methods the bot calls under /api/, a
// socket-mode WebSocket endpoint the real slack-go socketmode client connects
// to, and response_url endpoints. Everything the bot does is kept in
// inspectable state: every Web API call, every message per channel with its
// thread, every ephemeral, every ack with its latency, and Render() prints it
// the way a person would read the channel.
package fakeslack

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Config describes the workspace the fake pretends to be. Zero values get
// defaults from New.
type Config struct {
	BotToken   string // xoxb- token for the Web API
	AppToken   string // xapp- token; only apps.connections.open accepts it
	TeamID     string
	TeamDomain string
	AppID      string
	BotUserID  string
	BotID      string

	// PingInterval is how often the fake pings each socket. slack-go drops a
	// connection that got no ping for its maxPingInterval (30 s by default)
	// and reconnects, so this must stay well below that.
	PingInterval time.Duration
	// DisconnectGrace is how long the fake keeps a socket open after sending
	// a disconnect message, waiting for the client to close it first (Slack
	// keeps it about 10 s).
	DisconnectGrace time.Duration
	// RetryAfter is the Retry-After (whole seconds) on injected 429s.
	RetryAfter int

	ChannelNames map[string]string   // channel ID -> name, used in payloads and Render
	UserGroups   map[string][]string // usergroup ID -> member user IDs
	Users        []User              // answered by users.info
}

// User is a workspace member as users.info returns it.
type User struct {
	ID       string
	Name     string
	RealName string
	Email    string
	IsBot    bool
	Deleted  bool
}

// Call is one Web API request as the fake received it. Params holds every
// parameter except the token, which is never recorded.
type Call struct {
	Method   string
	Params   map[string]string
	Blocks   json.RawMessage // the decoded `blocks` parameter, if any
	Channel  string
	Text     string
	ThreadTS string
	TS       string // the ts the call targeted (chat.update) or created
	User     string // recipient of an ephemeral; subject of users.info
	Status   int    // HTTP status answered
	Error    string // Slack error code; "" when the call succeeded
}

// Message is a channel message in its latest version.
type Message struct {
	Channel  string
	TS       string
	ThreadTS string // the root's ts for a thread reply; "" for a root
	User     string // author
	Text     string
	Blocks   json.RawMessage
	Edits    int    // how many times chat.update (or replace_original) changed it
	Via      string // chat.postMessage, response_url or ack

	editedTS string
}

// Ephemeral is a message only User sees.
type Ephemeral struct {
	Channel string
	User    string
	TS      string
	Text    string
	Blocks  json.RawMessage
	Edits   int
	Via     string // chat.postEphemeral, response_url or ack
}

// ResponsePost is one message posted to a response_url (or carried by a
// slash-command ack, which Slack treats the same way).
type ResponsePost struct {
	EnvelopeID      string
	ResponseType    string
	ReplaceOriginal bool
	DeleteOriginal  bool
	Text            string
	Blocks          json.RawMessage
	Via             string // response_url or ack
	Status          int
	Error           string
}

// Ack is one acknowledgement the app wrote on the socket.
type Ack struct {
	EnvelopeID   string
	Type         string          // envelope type acked; "" for an unknown envelope_id
	Payload      json.RawMessage // nil when the ack carried none
	RetryAttempt int             // retry_attempt of the delivery that was acked
	Latency      time.Duration   // from writing the envelope to reading the ack
	Connection   int             // which connection (1-based) carried it
	Unknown      bool            // the envelope_id was never sent
}

// Server is the fake Slack. All methods are safe for concurrent use.
type Server struct {
	cfg      Config
	srv      *httptest.Server
	upgrader websocket.Upgrader
	stop     chan struct{}

	// sendMu orders writes of text frames across connections, so envelopes
	// reach the client in the order they were sent.
	sendMu sync.Mutex

	mu           sync.Mutex
	closed       bool
	calls        []Call
	rateLimits   map[string]int
	seq          int // ts and id sequence
	channels     map[string][]*Message
	channelOrder []string
	ephemerals   []*Ephemeral
	responses    []ResponsePost
	targets      map[string]*responseTarget // response_url id -> what it answers
	users        map[string]User
	groups       map[string][]string
	notIn        map[string]bool // private channels the bot was not invited to

	tickets       map[string]bool
	conns         map[*conn]bool
	connSeq       int
	current       *conn
	hellos        int
	pingsSent     int
	pongs         int
	pingsReceived int
	pending       []Envelope // waiting for a connection, in send order
	deliveries    map[string]*delivery
	acks          []Ack
	strays        []string
	changed       chan struct{} // closed and replaced on every socket event
}

// responseTarget is where a response_url (or a slash-command ack payload)
// posts: the invoking user's channel, and the message an action was on.
type responseTarget struct {
	envelopeID string
	channel    string
	user       string
	messageTS  string
}

type delivery struct {
	env         Envelope
	target      *responseTarget
	sentAttempt int
	sentAt      time.Time
	sent        bool
}

// New starts a fake Slack on a local port. Close it when done.
func New(cfg Config) *Server {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&cfg.BotToken, "xoxb-fake-bot-token")
	def(&cfg.AppToken, "xapp-fake-app-token")
	def(&cfg.TeamID, "T0FAKE")
	def(&cfg.TeamDomain, "sockembot")
	def(&cfg.AppID, "A0SOCKEMBOT")
	def(&cfg.BotUserID, "U0SOCKEMBOT")
	def(&cfg.BotID, "B0SOCKEMBOT")
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 10 * time.Second
	}
	if cfg.DisconnectGrace <= 0 {
		cfg.DisconnectGrace = time.Second
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 1
	}
	s := &Server{
		cfg:        cfg,
		stop:       make(chan struct{}),
		rateLimits: map[string]int{},
		channels:   map[string][]*Message{},
		targets:    map[string]*responseTarget{},
		users:      map[string]User{},
		groups:     map[string][]string{},
		notIn:      map[string]bool{},
		tickets:    map[string]bool{},
		conns:      map[*conn]bool{},
		deliveries: map[string]*delivery{},
		changed:    make(chan struct{}),
		// slack-go dials with Origin: https://api.slack.com, which the
		// default same-origin check would refuse.
		upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
	}
	cfg.ChannelNames = maps.Clone(cfg.ChannelNames)
	for _, u := range cfg.Users {
		s.users[u.ID] = u
	}
	for id, members := range cfg.UserGroups {
		s.groups[id] = slices.Clone(members)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.serveAPI)
	mux.HandleFunc("GET /link/", s.serveLink)
	mux.HandleFunc("POST /response/{id}", s.serveResponseURL)
	s.srv = httptest.NewServer(mux)
	return s
}

// Close closes every socket and stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.stop)
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	s.srv.Close()
}

// URL is the server's base URL.
func (s *Server) URL() string { return s.srv.URL }

// APIURL is the value for slack.OptionAPIURL (it ends in a slash).
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// BotToken is the xoxb- token the Web API accepts.
func (s *Server) BotToken() string { return s.cfg.BotToken }

// AppToken is the xapp- token apps.connections.open accepts.
func (s *Server) AppToken() string { return s.cfg.AppToken }

// BotUserID is the bot's own user ID (the author of what it posts).
func (s *Server) BotUserID() string { return s.cfg.BotUserID }

// RateLimit makes the next n calls of method answer 429 ratelimited.
func (s *Server) RateLimit(method string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimits[method] += n
}

// NotInChannel makes channel one the bot is not a member of, as a private channel it was never
// invited to: chat.postMessage there answers not_in_channel, as Slack does.
func (s *Server) NotInChannel(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notIn[channel] = true
}

// Invite makes the bot a member of channel again (see NotInChannel).
func (s *Server) Invite(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.notIn, channel)
}

// SetUserGroup sets the members usergroups.users.list returns for id.
func (s *Server) SetUserGroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = slices.Clone(members)
}

// AddUser adds or replaces a user answered by users.info.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = u
}

// Calls returns every Web API call so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsTo returns the calls of one method, in order.
func (s *Server) CallsTo(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Channels lists the channels that have messages, in order of first post.
func (s *Server) Channels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.channelOrder)
}

// Messages returns the root messages of a channel, oldest first.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.channels[channel] {
		if m.ThreadTS == "" {
			out = append(out, *m)
		}
	}
	return out
}

// Thread returns a root message followed by its replies, like
// conversations.replies; nil if the channel has no message ts.
func (s *Server) Thread(channel, ts string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.threadLocked(channel, ts) {
		out = append(out, *m)
	}
	return out
}

// Ephemerals returns every ephemeral message, in order.
func (s *Server) Ephemerals() []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Ephemeral, 0, len(s.ephemerals))
	for _, e := range s.ephemerals {
		out = append(out, *e)
	}
	return out
}

// Responses returns every response_url post and slash-command ack response.
func (s *Server) Responses() []ResponsePost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.responses)
}

// nextSeq must be called with s.mu held.
func (s *Server) nextSeq() int {
	s.seq++
	return s.seq
}

// nextTS returns a unique, increasing Slack timestamp. They are not wall
// clock times, so demo output is the same on every run.
// Must be called with s.mu held.
func (s *Server) nextTS() string {
	micros := s.nextSeq() * 100
	return tsString(1_700_000_000+micros/1_000_000, micros%1_000_000)
}

// signalLocked wakes everything waiting in WaitAck / WaitConnections.
func (s *Server) signalLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) channelName(id string) string {
	if n, ok := s.cfg.ChannelNames[id]; ok {
		return n
	}
	return id
}

func (s *Server) findMessageLocked(channel, ts string) *Message {
	for _, m := range s.channels[channel] {
		if m.TS == ts {
			return m
		}
	}
	return nil
}

func (s *Server) findEphemeralLocked(channel, ts string) *Ephemeral {
	for _, e := range s.ephemerals {
		if e.Channel == channel && e.TS == ts {
			return e
		}
	}
	return nil
}

func (s *Server) threadLocked(channel, ts string) []*Message {
	root := s.findMessageLocked(channel, ts)
	if root == nil || root.ThreadTS != "" {
		return nil
	}
	out := []*Message{root}
	for _, m := range s.channels[channel] {
		if m.ThreadTS == ts {
			out = append(out, m)
		}
	}
	return out
}

// postLocked stores a new channel message. A thread_ts naming a reply
// threads under that reply's root, as Slack does; one naming no message
// posts unthreaded (Slack does this when the parent was deleted).
func (s *Server) postLocked(channel, threadTS, text string, blocks json.RawMessage, via string) *Message {
	if threadTS != "" {
		parent := s.findMessageLocked(channel, threadTS)
		switch {
		case parent == nil:
			threadTS = ""
		case parent.ThreadTS != "":
			threadTS = parent.ThreadTS
		}
	}
	m := &Message{
		Channel:  channel,
		TS:       s.nextTS(),
		ThreadTS: threadTS,
		User:     s.cfg.BotUserID,
		Text:     text,
		Blocks:   blocks,
		Via:      via,
	}
	if _, ok := s.channels[channel]; !ok {
		s.channelOrder = append(s.channelOrder, channel)
	}
	s.channels[channel] = append(s.channels[channel], m)
	return m
}

func (s *Server) deleteMessageLocked(channel, ts string) bool {
	msgs := s.channels[channel]
	for i, m := range msgs {
		if m.TS == ts {
			s.channels[channel] = slices.Delete(msgs, i, i+1)
			return true
		}
	}
	return false
}

func (s *Server) postEphemeralLocked(channel, user, text string, blocks json.RawMessage, via string) *Ephemeral {
	e := &Ephemeral{Channel: channel, User: user, TS: s.nextTS(), Text: text, Blocks: blocks, Via: via}
	s.ephemerals = append(s.ephemerals, e)
	return e
}

func (s *Server) wireMessage(m *Message) WireMessage {
	w := WireMessage{
		BotID:    s.cfg.BotID,
		Type:     "message",
		Text:     m.Text,
		User:     m.User,
		TS:       m.TS,
		Team:     s.cfg.TeamID,
		AppID:    s.cfg.AppID,
		ThreadTS: m.ThreadTS,
		Blocks:   m.Blocks,
	}
	if m.Edits > 0 {
		w.Edited = &Edited{User: m.User, TS: m.editedTS}
	}
	return w
}
