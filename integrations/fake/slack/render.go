package fakeslack

import (
	"encoding/json"
	"strings"
)

// Render prints everything the bot posted as a person would read it: each
// channel's root messages (Block Kit flattened to text, buttons as
// [Deploy] [Cancel]) with their thread replies indented below, then the
// ephemerals each user saw. Messages show their latest version.
func (s *Server) Render() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, ch := range s.channelOrder {
		msgs := s.channels[ch]
		if len(msgs) == 0 {
			continue
		}
		writeHeading(&b, "#"+s.channelName(ch), ch)
		for _, m := range msgs {
			if m.ThreadTS != "" {
				continue
			}
			writeMessage(&b, "", "", m.Text, m.Blocks, m.Edits)
			for _, r := range s.threadLocked(ch, m.TS)[1:] {
				writeMessage(&b, "    ", "", r.Text, r.Blocks, r.Edits)
			}
		}
	}
	var users []string
	byUser := map[string][]*Ephemeral{}
	for _, e := range s.ephemerals {
		if _, ok := byUser[e.User]; !ok {
			users = append(users, e.User)
		}
		byUser[e.User] = append(byUser[e.User], e)
	}
	for _, u := range users {
		writeHeading(&b, "ephemeral to @"+u, "")
		for _, e := range byUser[u] {
			writeMessage(&b, "", "in #"+s.channelName(e.Channel)+": ", e.Text, e.Blocks, e.Edits)
		}
	}
	return b.String()
}

func writeHeading(b *strings.Builder, title, id string) {
	if b.Len() > 0 {
		b.WriteString("\n")
	}
	b.WriteString(title)
	if id != "" && title != "#"+id {
		b.WriteString(" (" + id + ")")
	}
	b.WriteString("\n")
}

// writeMessage writes one message: "- " and label before its first line,
// its other lines aligned under it. Blocks win over text, as in the Slack
// client, where text is only the notification fallback.
func writeMessage(b *strings.Builder, indent, label, text string, blocks json.RawMessage, edits int) {
	lines := strings.Split(text, "\n")
	if blocks != nil {
		lines = flattenBlocks(blocks)
	}
	if len(lines) == 0 {
		lines = []string{""}
	}
	lines[0] = label + lines[0]
	if edits > 0 {
		lines[0] += " (edited)"
	}
	for i, l := range lines {
		prefix := "  "
		if i == 0 {
			prefix = "- "
		}
		b.WriteString(strings.TrimRight(indent+prefix+l, " ") + "\n")
	}
}
