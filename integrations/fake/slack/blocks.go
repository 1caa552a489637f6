package fakeslack

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Block Kit limits Slack enforces on messages. A message over them is
// refused with invalid_blocks, and the bot must not find that out in
// production: the deploy digest for a big release is exactly where they bite.
const (
	maxBlocks          = 50
	maxSectionText     = 3000
	maxSectionFields   = 10
	maxFieldText       = 2000
	maxHeaderText      = 150
	maxActionsElements = 25
	maxContextElements = 10
	maxButtonText      = 75
	maxButtonValue     = 2000
	maxID              = 255 // action_id and block_id
)

// block is the part of a Block Kit block the fake checks and renders. Text
// stays raw: it is an object on most blocks but a string on markdown blocks.
type block struct {
	Type      string          `json:"type"`
	BlockID   string          `json:"block_id"`
	Text      json.RawMessage `json:"text"`
	Fields    []textObj       `json:"fields"`
	Elements  []element       `json:"elements"`
	Accessory *element        `json:"accessory"`
	AltText   string          `json:"alt_text"`
}

type textObj struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// element is a block element, a context element or a rich-text node.
type element struct {
	Type        string          `json:"type"`
	Text        json.RawMessage `json:"text"` // string on context/rich text, object on buttons
	AltText     string          `json:"alt_text"`
	ActionID    string          `json:"action_id"`
	Value       string          `json:"value"`
	URL         string          `json:"url"`
	Placeholder *textObj        `json:"placeholder"`
	Elements    []element       `json:"elements"`
	UserID      string          `json:"user_id"`
	ChannelID   string          `json:"channel_id"`
	Name        string          `json:"name"`
}

// rawText reads a text field that is either a string or a text object.
func rawText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var t textObj
	_ = json.Unmarshal(raw, &t)
	return t.Text
}

func decodeBlocks(raw json.RawMessage) ([]block, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var blocks []block
	err := json.Unmarshal(raw, &blocks)
	return blocks, err
}

// validateBlocks answers like Slack: invalid_blocks_format for JSON that is
// not a block array, invalid_blocks with a json-pointer per broken limit.
func validateBlocks(raw json.RawMessage) *apiError {
	blocks, err := decodeBlocks(raw)
	if err != nil {
		return fail("invalid_blocks_format")
	}
	var msgs []string
	tooLong := func(s string, max int, pointer string, args ...any) {
		if utf8.RuneCountInString(s) > max {
			msgs = append(msgs, fmt.Sprintf("must be less than %d characters [json-pointer:"+pointer+"]", append([]any{max + 1}, args...)...))
		}
	}
	tooMany := func(n, max int, pointer string, args ...any) {
		if n > max {
			msgs = append(msgs, fmt.Sprintf("no more than %d items allowed [json-pointer:"+pointer+"]", append([]any{max}, args...)...))
		}
	}
	tooMany(len(blocks), maxBlocks, "/blocks")
	for i, b := range blocks {
		if b.Type == "" {
			msgs = append(msgs, fmt.Sprintf("missing required field: type [json-pointer:/blocks/%d]", i))
		}
		tooLong(b.BlockID, maxID, "/blocks/%d/block_id", i)
		switch b.Type {
		case "section":
			tooLong(rawText(b.Text), maxSectionText, "/blocks/%d/text/text", i)
			tooMany(len(b.Fields), maxSectionFields, "/blocks/%d/fields", i)
			for j, f := range b.Fields {
				tooLong(f.Text, maxFieldText, "/blocks/%d/fields/%d/text", i, j)
			}
		case "header":
			tooLong(rawText(b.Text), maxHeaderText, "/blocks/%d/text/text", i)
		case "context":
			tooMany(len(b.Elements), maxContextElements, "/blocks/%d/elements", i)
		case "actions":
			tooMany(len(b.Elements), maxActionsElements, "/blocks/%d/elements", i)
			for j, e := range b.Elements {
				tooLong(e.ActionID, maxID, "/blocks/%d/elements/%d/action_id", i, j)
				if e.Type == "button" {
					tooLong(rawText(e.Text), maxButtonText, "/blocks/%d/elements/%d/text/text", i, j)
					tooLong(e.Value, maxButtonValue, "/blocks/%d/elements/%d/value", i, j)
				}
			}
		}
	}
	if len(msgs) > 0 {
		return fail("invalid_blocks", msgs...)
	}
	return nil
}

// flattenBlocks turns blocks into the lines a reader would see.
func flattenBlocks(raw json.RawMessage) []string {
	blocks, err := decodeBlocks(raw)
	if err != nil {
		return []string{"[unreadable blocks]"}
	}
	var lines []string
	add := func(s string) { lines = append(lines, strings.Split(s, "\n")...) }
	for _, b := range blocks {
		switch b.Type {
		case "header":
			add("# " + rawText(b.Text))
		case "section", "markdown":
			var parts []string
			if t := rawText(b.Text); t != "" {
				parts = append(parts, t)
			}
			if len(b.Fields) > 0 {
				fs := make([]string, len(b.Fields))
				for i, f := range b.Fields {
					fs[i] = f.Text
				}
				parts = append(parts, strings.Join(fs, " | "))
			}
			text := strings.Join(parts, "\n")
			if b.Accessory != nil {
				text += " " + elementLabel(*b.Accessory)
			}
			add(text)
		case "context":
			var parts []string
			for _, e := range b.Elements {
				if l := elementLabel(e); l != "" {
					parts = append(parts, l)
				}
			}
			add("~ " + strings.Join(parts, " | "))
		case "actions":
			var parts []string
			for _, e := range b.Elements {
				parts = append(parts, elementLabel(e))
			}
			add(strings.Join(parts, " "))
		case "divider":
			add("---")
		case "image":
			add("[image: " + b.AltText + "]")
		case "rich_text":
			for _, e := range b.Elements {
				add(richText(e))
			}
		default:
			add("[" + b.Type + "]")
		}
	}
	return lines
}

// elementLabel renders a block element: buttons as [Label], menus with a
// trailing v, text as itself.
func elementLabel(e element) string {
	switch e.Type {
	case "button":
		return "[" + rawText(e.Text) + "]"
	case "mrkdwn", "plain_text":
		return rawText(e.Text)
	case "image":
		return ""
	case "static_select", "external_select", "users_select", "conversations_select", "channels_select", "overflow":
		label := e.Type
		if e.Placeholder != nil {
			label = e.Placeholder.Text
		}
		return "[" + label + " v]"
	default:
		return "[" + e.Type + "]"
	}
}

func richText(e element) string {
	switch e.Type {
	case "text":
		return rawText(e.Text)
	case "user":
		return "<@" + e.UserID + ">"
	case "channel":
		return "<#" + e.ChannelID + ">"
	case "link":
		if t := rawText(e.Text); t != "" {
			return t
		}
		return e.URL
	case "emoji":
		return ":" + e.Name + ":"
	}
	var sb strings.Builder
	for _, c := range e.Elements {
		sb.WriteString(richText(c))
	}
	return sb.String()
}

// Flatten turns a message's blocks into the lines a reader would see in Slack (buttons as
// [Deploy], dividers as ---, context lines behind ~), as Render prints them.
func Flatten(blocks json.RawMessage) []string { return flattenBlocks(blocks) }
