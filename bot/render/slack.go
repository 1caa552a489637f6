// Package render turns values into what people read: Slack Block Kit messages (the digest, the
// failure report, notices, the daily summary), GitHub markdown (the pull request comment, the
// commit status line) and terminal text (the check report, the failure report). It is pure: no
// I/O, no clock, no logging; each output is a function of its input, and golden files hold them.
package render

import (
	"fmt"
	"regexp"
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

// Notice is a one-section message (more when it is long): thread replies, ephemerals, alerts.
// text is mrkdwn, with what people wrote in it escaped (Esc, Code, Link).
func Notice(text string) Message {
	if strings.TrimSpace(text) == "" {
		// Slack refuses a section without text (invalid_blocks): a blank notice still says
		// something rather than nothing at all.
		text = "…"
	}
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

// SplitText cuts text into pieces of at most max characters, at line ends where it can, and never
// inside an escape or a link (see safeCut).
func SplitText(text string, max int) []string {
	var out []string
	for utf8.RuneCountInString(text) > max {
		limit := byteIndexOfRune(text, max)
		cut := safeCut(text, limit)
		if cut == 0 {
			// One link longer than a whole piece: cutting through it beats never finishing.
			cut = limit
		}
		if nl := lastOutsideLinks(text[:cut], "\n"); nl > 0 {
			out = append(out, text[:nl])
			text = text[nl+1:]
			continue
		}
		if sp := lastOutsideLinks(text[:cut], ", "); sp > 0 {
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

// Clip shortens text to max characters, marking the cut, which is never inside an escape or a
// link (see safeCut). Text not escaped yet may come out a little shorter than max: a < or & of
// its own near the cut is taken for the start of a link or an escape.
func Clip(text string, max int) string {
	if utf8.RuneCountInString(text) <= max {
		return text
	}
	return text[:safeCut(text, byteIndexOfRune(text, max-1))] + "…"
}

// safeCut moves a cut at byte i of mrkdwn s back, so that it splits neither an escape ("&amp;"
// half sent shows as "&am") nor a <url|label> or <@mention> (half of one shows its markup, and
// the rest of the message can be read as its label).
func safeCut(s string, i int) int {
	// An escape is at most five bytes: one that starts in the four before the cut may run past it.
	from := max(0, i-4)
	if j := strings.LastIndexByte(s[from:i], '&'); j >= 0 {
		j += from
		for _, e := range []string{"&amp;", "&lt;", "&gt;"} {
			if strings.HasPrefix(s[j:], e) && j+len(e) > i {
				i = j
				break
			}
		}
	}
	// Escaped text has no < of its own: each one opens a link or mention sockembot wrote, which
	// the next > closes.
	if j := insideLink(s, i); j >= 0 {
		i = j
	}
	return i
}

// insideLink is where the link or mention around byte i of s starts, or -1 when i is not inside one.
func insideLink(s string, i int) int {
	j := strings.LastIndexByte(s[:i], '<')
	if j < 0 || strings.IndexByte(s[j:i], '>') >= 0 {
		return -1
	}
	return j
}

// lastOutsideLinks is the last index of sep in s that is not inside a link or mention, or -1.
func lastOutsideLinks(s, sep string) int {
	i := strings.LastIndex(s, sep)
	for i >= 0 {
		j := insideLink(s, i)
		if j < 0 {
			return i
		}
		i = strings.LastIndex(s[:j], sep)
	}
	return -1
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

// Section is a mrkdwn section block. text is mrkdwn: what people wrote in it is escaped (Esc,
// Code, Link) by whoever builds it.
func Section(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

func contextBlock(text string) *slack.ContextBlock {
	return slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, Clip(text, MaxSectionText), false, false))
}

// Plain is plain text, for headers and buttons. sockembot puts only its own words there, and
// service and environment names, which the /deploy grammar limits to letters, digits, "-", "_"
// and ".": nothing in it is escaped.
func Plain(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, text, true, false)
}

// Esc is the one way text sockembot did not write (titles, branches, refs, commit messages,
// logins, ticket statuses, reasons, error messages) gets into a Slack message, whether as mrkdwn,
// inside inline code or a code block, or as a notification text. Slack reads <!channel>,
// <!here>, <@U…> and <url|label> everywhere, code included, so its three control characters
// become the escapes Slack asks for: & → &amp;, < → &lt;, > → &gt;. A backtick becomes ˋ
// (U+02CB, which looks like one), so that text can neither close the code span it is quoted in
// nor open one that swallows the words sockembot puts after it.
func Esc(s string) string { return escaper.Replace(s) }

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "`", "ˋ")

// Code quotes text as inline code, escaped (Esc). Inline code is one line: each run of white
// space, line breaks included, becomes one space.
func Code(s string) string {
	return "`" + Esc(strings.Join(strings.Fields(s), " ")) + "`"
}

// CodeBlock puts text in a code block, escaped (Esc): no backtick is left in it to end the
// block early.
func CodeBlock(s string) string { return fence(Esc(s)) }

// fence wraps text escaped already in a code block.
func fence(escaped string) string { return "```\n" + escaped + "\n```" }

// Link is a link to url labelled label (escaped). A URL Slack could not take as it is (see URL)
// is left out, and the label stands alone.
func Link(url, label string) string {
	u := URL(url)
	if u == "" {
		return Esc(label)
	}
	if label == "" {
		label = u
	}
	// Slack reads escapes inside links too (its own messages carry "&amp;" in URLs).
	return "<" + strings.ReplaceAll(u, "&", "&amp;") + "|" + Esc(label) + ">"
}

// URL is u when it is a plain http(s) URL that can sit inside Slack's <url|label>, else "". Who
// writes a deployment status's log URL, or a link in a payload, chooses it: a "|" or ">" in it
// would end the URL early and let the rest pose as the label, "<" would open another link, and
// another scheme (javascript:, slack:) does not go to a web page.
func URL(u string) string {
	if strings.ContainsAny(u, "<>|`\"") || strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return ""
	}
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok || (!strings.EqualFold(scheme, "https") && !strings.EqualFold(scheme, "http")) || rest == "" || rest[0] == '/' {
		return ""
	}
	return u
}

// Mention mentions a Slack user (U…, W…) or user group (S…). Anything else is not an id Slack
// gave out, and is shown as text.
func Mention(id string) string {
	switch {
	case id == "":
		return "someone"
	case !slackID.MatchString(id):
		return Esc(id)
	case id[0] == 'S':
		return "<!subteam^" + id + ">"
	}
	return "<@" + id + ">"
}

// Channel links to a Slack channel by its id.
func Channel(id string) string {
	if !slackID.MatchString(id) {
		return Code(id)
	}
	return "<#" + id + ">"
}

// slackID is the shape of the ids Slack gives users, groups and channels.
var slackID = regexp.MustCompile(`^[A-Z][A-Z0-9]{2,}$`)

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
