package fakeslack

import "encoding/json"

// Wire shapes of what Slack writes on a socket-mode connection. They are
// shaped on the envelopes recorded by Slack's own SDKs (see
// testdata/_extracted/...): the tests decode every fixture into
// these types with unknown fields disallowed and re-encode it unchanged, so a
// field the fake leaves out or invents shows up there. Pointer fields mark
// keys that Slack sends on some payloads and omits on others.

// Hello is the first message on every socket-mode connection.
type Hello struct {
	Type           string         `json:"type"`
	NumConnections int            `json:"num_connections"`
	DebugInfo      DebugInfo      `json:"debug_info"`
	ConnectionInfo ConnectionInfo `json:"connection_info"`
}

// Disconnect asks the client to open a new connection ("refresh_requested",
// "warning", "too_many_websockets", ...).
type Disconnect struct {
	Type           string          `json:"type"`
	Reason         string          `json:"reason"`
	NumConnections int             `json:"num_connections,omitempty"`
	DebugInfo      DebugInfo       `json:"debug_info"`
	ConnectionInfo *ConnectionInfo `json:"connection_info,omitempty"`
}

// DebugInfo names the Slack host behind a connection.
type DebugInfo struct {
	Host                      string `json:"host"`
	BuildNumber               int    `json:"build_number,omitempty"`
	ApproximateConnectionTime int    `json:"approximate_connection_time,omitempty"`
}

// ConnectionInfo says which app a connection belongs to.
type ConnectionInfo struct {
	AppID string `json:"app_id"`
}

// Envelope wraps every event, command and interaction Slack delivers; the app
// must answer with an AckMessage carrying the same envelope_id within 3 s.
type Envelope struct {
	EnvelopeID             string          `json:"envelope_id"`
	Payload                json.RawMessage `json:"payload"`
	Type                   string          `json:"type"`
	AcceptsResponsePayload bool            `json:"accepts_response_payload"`
	// Slack sends the retry fields on events_api envelopes always and on
	// the others only when it redelivers.
	RetryAttempt *int    `json:"retry_attempt,omitempty"`
	RetryReason  *string `json:"retry_reason,omitempty"`
}

// AckMessage is what the app writes back: the envelope_id and, for slash
// commands, an optional response message.
type AckMessage struct {
	EnvelopeID string          `json:"envelope_id"`
	Payload    json.RawMessage `json:"payload,omitempty"`
}

// SlashCommand is the payload of a slash_commands envelope. SendSlashCommand
// fills the fields a test leaves empty (token, team, app, response_url,
// trigger_id, channel_name, user_name).
type SlashCommand struct {
	Token               string `json:"token"`
	TeamID              string `json:"team_id"`
	TeamDomain          string `json:"team_domain"`
	EnterpriseID        string `json:"enterprise_id,omitempty"`
	EnterpriseName      string `json:"enterprise_name,omitempty"`
	IsEnterpriseInstall bool   `json:"is_enterprise_install,omitempty"`
	ChannelID           string `json:"channel_id"`
	ChannelName         string `json:"channel_name"`
	UserID              string `json:"user_id"`
	UserName            string `json:"user_name"`
	Command             string `json:"command"`
	Text                string `json:"text"`
	APIAppID            string `json:"api_app_id"`
	ResponseURL         string `json:"response_url"`
	TriggerID           string `json:"trigger_id"`
}

// BlockActionsPayload is the payload of an interactive envelope of type
// block_actions (a button click on a message, or an element in a view).
type BlockActionsPayload struct {
	Type                string          `json:"type"`
	User                PayloadUser     `json:"user"`
	APIAppID            string          `json:"api_app_id"`
	Token               string          `json:"token"`
	Container           Container       `json:"container"`
	TriggerID           string          `json:"trigger_id"`
	Team                Team            `json:"team"`
	Enterprise          json.RawMessage `json:"enterprise,omitempty"`
	IsEnterpriseInstall *bool           `json:"is_enterprise_install,omitempty"`
	Channel             *PayloadChannel `json:"channel,omitempty"`
	Message             *WireMessage    `json:"message,omitempty"`
	View                json.RawMessage `json:"view,omitempty"`
	ResponseURL         string          `json:"response_url,omitempty"`
	Actions             []Action        `json:"actions"`
}

// PayloadUser is the user who acted, as interaction payloads carry it.
type PayloadUser struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name,omitempty"`
	TeamID   string `json:"team_id"`
}

// Container says where the clicked element lives: a message or a view.
type Container struct {
	Type        string `json:"type"`
	MessageTS   string `json:"message_ts,omitempty"`
	ChannelID   string `json:"channel_id,omitempty"`
	IsEphemeral *bool  `json:"is_ephemeral,omitempty"`
	ThreadTS    string `json:"thread_ts,omitempty"`
	ViewID      string `json:"view_id,omitempty"`
}

// Team is the workspace of an interaction.
type Team struct {
	ID     string `json:"id"`
	Domain string `json:"domain"`
}

// PayloadChannel is the channel of an interaction.
type PayloadChannel struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Action is one element the user acted on. block_id must always be present:
// slack-go tells block actions from legacy attachment actions by it.
type Action struct {
	ActionID       string          `json:"action_id"`
	BlockID        string          `json:"block_id"`
	Text           *TextObject     `json:"text,omitempty"`
	Value          string          `json:"value,omitempty"`
	Type           string          `json:"type"`
	SelectedOption json.RawMessage `json:"selected_option,omitempty"`
	ActionTS       string          `json:"action_ts"`
}

// TextObject is a Block Kit text object.
type TextObject struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

// WireMessage is a message as the Web API and interaction payloads return it.
type WireMessage struct {
	BotID      string          `json:"bot_id,omitempty"`
	Type       string          `json:"type"`
	Text       string          `json:"text"`
	User       string          `json:"user,omitempty"`
	TS         string          `json:"ts"`
	Team       string          `json:"team,omitempty"`
	AppID      string          `json:"app_id,omitempty"`
	ThreadTS   string          `json:"thread_ts,omitempty"`
	ReplyCount int             `json:"reply_count,omitempty"`
	Blocks     json.RawMessage `json:"blocks,omitempty"`
	Edited     *Edited         `json:"edited,omitempty"`
}

// Edited marks a message changed by chat.update.
type Edited struct {
	User string `json:"user"`
	TS   string `json:"ts"`
}
