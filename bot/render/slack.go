// Package render turns values into what people read: Slack Block Kit messages (the digest, the
// failure report, notices, the daily summary), GitHub markdown (the pull request comment, the
// commit status line) and terminal text (the check report, the failure report). It is pure: no
// I/O, no clock, no logging; each output is a function of its input, and golden files hold them.
package render

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// Slack's Block Kit limits. A message over them is rejected outright (invalid_blocks), so a big
// release would get no digest at all: everything here is packed to fit.
const (
	MaxBlocks      = 50   // blocks per message
	MaxSectionText = 3000 // characters in one section's text
	MaxHeaderText  = 150  // characters in a header block
	// MaxMessageText keeps one message's total text well under what Slack renders without
	// collapsing ("msg_blocks_too_long" starts around 13k characters).
	MaxMessageText = 12000
	// inlineChanges is how many changes the root message lists before moving the list to the
	// thread: past that a digest stops being readable at a glance.
	inlineChanges = 15
)

// Button action ids. They are a contract with messages already posted: never rename them.
const (
	ActionDeploy = "deploy_confirm"
	ActionCancel = "deploy_cancel"
	// ActionRetroApprove closes a retroactive review; its value is "DEPLOY_ID|CHANGE".
	ActionRetroApprove = "retro_approve"
)

// Message is one Slack message: the notification text and its blocks.
type Message struct {
	Text   string
	Blocks []slack.Block
}

// Notice is a one-section message: thread replies, ephemerals, alerts.
func Notice(text string) Message {
	var b []slack.Block
	for _, t := range SplitText(text, MaxSectionText) {
		b = append(b, Section(t))
	}
	return Message{Text: Clip(text, MaxSectionText), Blocks: fitBlocks(b, nil)}
}

// PackBlocks puts a heading and blocks into as few messages as Slack's block limit allows.
func PackBlocks(head slack.Block, blocks []slack.Block) []Message {
	var out []Message
	cur := []slack.Block{head}
	for _, b := range blocks {
		if len(cur) == MaxBlocks {
			out = append(out, Message{Blocks: cur})
			cur = nil
		}
		cur = append(cur, b)
	}
	return append(out, Message{Blocks: cur})
}

// fitBlocks keeps a message within MaxBlocks and MaxMessageText, always keeping tail (the
// buttons or the refusal) and cutting from the end of body.
func fitBlocks(body, tail []slack.Block) []slack.Block {
	budget := MaxBlocks - len(tail)
	chars := MaxMessageText - blocksText(tail)
	var out []slack.Block
	for i, b := range body {
		n := BlockText(b)
		need := 1 // this block, and room for the note saying what was cut if more follow
		if i < len(body)-1 {
			need = 2
		}
		if len(out)+need > budget || n > chars {
			out = append(out, contextBlock(fmt.Sprintf("… %d more blocks cut to fit Slack's limits", len(body)-i)))
			break
		}
		out = append(out, b)
		chars -= n
	}
	return append(out, tail...)
}

// packMessages groups blocks into as few messages as fit Slack's limits, in order.
func packMessages(blocks []slack.Block) []Message {
	var out []Message
	var cur []slack.Block
	chars := 0
	for _, b := range blocks {
		n := BlockText(b)
		if len(cur) > 0 && (len(cur) == MaxBlocks || chars+n > MaxMessageText) {
			out = append(out, Message{Blocks: cur})
			cur, chars = nil, 0
		}
		cur = append(cur, b)
		chars += n
	}
	if len(cur) > 0 {
		out = append(out, Message{Blocks: cur})
	}
	return out
}

func blocksText(bs []slack.Block) int {
	n := 0
	for _, b := range bs {
		n += BlockText(b)
	}
	return n
}

// BlockText is the visible text length of a block, as Slack counts it (characters).
func BlockText(b slack.Block) int {
	n := 0
	switch v := b.(type) {
	case *slack.SectionBlock:
		if v.Text != nil {
			n += utf8.RuneCountInString(v.Text.Text)
		}
		for _, f := range v.Fields {
			n += utf8.RuneCountInString(f.Text)
		}
	case *slack.HeaderBlock:
		n += utf8.RuneCountInString(v.Text.Text)
	case *slack.ContextBlock:
		for _, e := range v.ContextElements.Elements {
			if t, ok := e.(*slack.TextBlockObject); ok {
				n += utf8.RuneCountInString(t.Text)
			}
		}
	}
	return n
}

// SplitText cuts text into pieces of at most max characters, at line ends where it can.
func SplitText(text string, max int) []string {
	var out []string
	for utf8.RuneCountInString(text) > max {
		cut := byteIndexOfRune(text, max)
		if nl := strings.LastIndex(text[:cut], "\n"); nl > 0 {
			out = append(out, text[:nl])
			text = text[nl+1:]
			continue
		}
		if sp := strings.LastIndex(text[:cut], ", "); sp > 0 {
			out = append(out, text[:sp+1])
			text = text[sp+2:]
			continue
		}
		out = append(out, text[:cut])
		text = text[cut:]
	}
	if text != "" || len(out) == 0 {
		out = append(out, text)
	}
	return out
}

// Clip shortens text to max characters, marking the cut.
func Clip(text string, max int) string {
	if utf8.RuneCountInString(text) <= max {
		return text
	}
	return text[:byteIndexOfRune(text, max-1)] + "…"
}

func byteIndexOfRune(s string, n int) int {
	i := 0
	for pos := range s {
		if i == n {
			return pos
		}
		i++
	}
	return len(s)
}

func codeBlock(s string) string {
	// Three backticks inside would end the block early.
	return "```\n" + strings.ReplaceAll(s, "```", "'''") + "\n```"
}

// Section is a mrkdwn section block.
func Section(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

func contextBlock(text string) *slack.ContextBlock {
	return slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, Clip(text, MaxSectionText), false, false))
}

// Plain is plain text, for headers and buttons.
func Plain(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, text, true, false)
}

// Esc escapes the three characters Slack's mrkdwn treats as control characters.
func Esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Mention mentions a Slack user.
func Mention(user string) string {
	if user == "" {
		return "someone"
	}
	return "<@" + user + ">"
}

// OrHead names a ref, "" being the default branch.
func OrHead(ref string) string {
	if ref == "" {
		return "default branch"
	}
	return ref
}

// Plural picks the word for n.
func Plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
