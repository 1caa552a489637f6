package bot

import (
	"fmt"
	"runtime/debug"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"sockembot/compliance"
	"sockembot/integrations/store"
)

// Slack's Block Kit limits. A message over them is rejected outright (invalid_blocks), so a big
// release would get no digest at all: everything below is packed to fit.
const (
	maxBlocks      = 50   // blocks per message
	maxSectionText = 3000 // characters in one section's text
	maxHeaderText  = 150  // characters in a header block
	// maxMessageText keeps one message's total text well under what Slack renders without
	// collapsing ("msg_blocks_too_long" starts around 13k characters).
	maxMessageText = 12000
	// inlineChanges is how many changes the root message lists before moving the list to the
	// thread: past that a digest stops being readable at a glance.
	inlineChanges = 15
)

// Button action ids. They are a contract with messages already posted: never rename them.
const (
	actionDeploy = "deploy_confirm"
	actionCancel = "deploy_cancel"
)

// Digest is the outcome of a deploy request as data; digestMessage turns it into Slack blocks.
type Digest struct {
	DeployID   int64
	Service    string
	Env        string
	Repo       string
	Ref        string // what was asked for ("main", "v1.4.2")
	Requester  string // Slack user id
	CompareURL string
	Report     compliance.Report
	PolicyHash string
	// Emergency is a break-glass request: violations are shown overridden, with the reason.
	Emergency       bool
	EmergencyReason string
	// Buttons offers Deploy and Cancel; only while the request is ready.
	Buttons bool
	// Status replaces the buttons once something happened (confirmed, cancelled, a deployment
	// status).
	Status string
}

// Message is one Slack message: the notification text and its blocks.
type Message struct {
	Text   string
	Blocks []slack.Block
}

// digestMessage renders the root message and, for releases too big to list inline, the thread
// replies carrying the full list of changes.
func digestMessage(d Digest) (root Message, thread []Message) {
	r := d.Report
	bad := nonCompliant(r)
	root.Text = fmt.Sprintf("Deploy %s %s → %s: %s", d.Service, orHead(d.Ref), d.Env, summary(r, bad))
	overridden := d.Emergency && !r.Compliant
	header := fmt.Sprintf("%s %s → %s", verdictEmoji(r.Compliant), d.Service, d.Env)
	switch {
	case overridden:
		root.Text = "EMERGENCY deploy, violations overridden: " + root.Text
		header = fmt.Sprintf("🚨 %s → %s · emergency override", d.Service, d.Env)
	case !r.Compliant:
		root.Text = "Deploy refused: " + root.Text
	}

	b := []slack.Block{
		slack.NewHeaderBlock(plain(clip(header, maxHeaderText))),
		section(fmt.Sprintf("*%s* `%s` %s  ·  requested by %s",
			esc(d.Repo), esc(orHead(d.Ref)), rangeLink(d.CompareURL, r.BaseSHA, r.HeadSHA), mention(d.Requester))),
	}
	sum := "*" + summary(r, bad) + "*"
	if len(bad) > 0 {
		sum += "\nNot compliant: " + strings.Join(bad, ", ")
	}
	for _, t := range splitText(sum, maxSectionText) {
		b = append(b, section(t))
	}

	changes := make([]slack.Block, 0, len(r.Changes))
	for _, c := range r.Changes {
		changes = append(changes, section(changeText(c)))
	}
	violations := violationLines(r)
	// A release lists its changes in the root message only while the whole message stays well
	// inside Slack's limits; past that the root keeps the summary and the thread gets the list.
	inline := len(changes) <= inlineChanges &&
		blocksText(b)+blocksText(changes)+len(strings.Join(violations, "\n"))+1500 <= maxMessageText
	if inline {
		if len(changes) > 0 {
			b = append(b, slack.NewDividerBlock())
		}
		b = append(b, changes...)
	} else {
		b = append(b, contextBlock(fmt.Sprintf("The full list of %d changes is in the thread 🧵", len(changes))))
	}

	var tail []slack.Block
	if overridden {
		tail = append(tail, slack.NewDividerBlock())
		tail = append(tail, overrideBlocks(d, violations)...)
	}
	switch {
	case !r.Compliant && !overridden:
		tail = append(tail, slack.NewDividerBlock())
		tail = append(tail, refusalBlocks(r, violations, inline)...)
	case d.Buttons:
		tail = append(tail, slack.NewActionBlock(fmt.Sprintf("deploy:%d", d.DeployID),
			slack.NewButtonBlockElement(actionDeploy, fmt.Sprint(d.DeployID), plain("Deploy")).WithStyle(slack.StylePrimary),
			slack.NewButtonBlockElement(actionCancel, fmt.Sprint(d.DeployID), plain("Cancel")).WithStyle(slack.StyleDanger),
		))
	}
	if d.Status != "" {
		tail = append(tail, section(clip(d.Status, maxSectionText)))
	}
	if d.DeployID != 0 {
		tail = append(tail, contextBlock(fmt.Sprintf("deploy #%d · policy %s", d.DeployID, shortHash(d.PolicyHash))))
	}
	root.Blocks = fitBlocks(b, tail)

	if !inline {
		for i, m := range packMessages(changes) {
			m.Text = fmt.Sprintf("Changes in %s %s → %s (part %d)", d.Service, orHead(d.Ref), d.Env, i+1)
			thread = append(thread, m)
		}
	}
	return root, thread
}

func violationLines(r compliance.Report) []string {
	var lines []string
	for _, c := range r.Changes {
		for _, v := range c.Violations {
			lines = append(lines, fmt.Sprintf("• %s: %s", esc(changeName(c)), esc(v.Message)))
		}
	}
	return lines
}

// overrideBlocks says who broke glass and why, and lists every violation as overridden: the
// emergency path hides nothing.
func overrideBlocks(d Digest, lines []string) []slack.Block {
	text := fmt.Sprintf("*🚨 Emergency override* by %s: _%s_\nThese violations are overridden; each change needs a retroactive review by a second person after the deploy:\n",
		mention(d.Requester), esc(d.EmergencyReason))
	marked := make([]string, len(lines))
	for i, l := range lines {
		marked[i] = l + " _(overridden)_"
	}
	parts := splitText(text+strings.Join(marked, "\n"), maxSectionText)
	out := []slack.Block{section(parts[0])}
	if len(parts) > 1 {
		out = append(out, contextBlock(fmt.Sprintf("… %d violations in all; every change is listed with its violations above or in the thread.", len(lines))))
	}
	return out
}

// refusalBlocks names every violation with its change, then Clippy. When the changes are in the
// thread, the list here is cut to one section and points there.
func refusalBlocks(r compliance.Report, lines []string, inline bool) []slack.Block {
	text := "*Deploy refused*\n" + strings.Join(lines, "\n")
	var out []slack.Block
	if inline {
		for _, t := range splitText(text, maxSectionText) {
			out = append(out, section(t))
		}
	} else {
		parts := splitText(text, maxSectionText-200)
		t := parts[0]
		if len(parts) > 1 {
			shown := strings.Count(t, "\n")
			t += fmt.Sprintf("\n… and %d more violations: every change, with its violations, is in the thread.", len(lines)-shown)
		}
		out = append(out, section(t))
	}
	var said []string
	for _, c := range r.Changes {
		if c.Compliant || len(said) == 3 {
			continue
		}
		said = append(said, clip(fmt.Sprintf("%s: %s", changeName(c), firstViolation(c)), 100))
	}
	if n := len(nonCompliant(r)); n > len(said) {
		said = append(said, fmt.Sprintf("... and %d more", n-len(said)))
	}
	said = append(said, "Fix these and run /deploy again.")
	out = append(out, section(codeBlock(Clippy(said...))))
	return out
}

// failureMessage is the report shown in place of a digest when the bot itself failed: what it
// was doing, the error, and the stack when it panicked. The deploy is refused, said in words.
// f.Doing is mrkdwn written by the bot (escape anything a person typed into it); notes go
// underneath as context lines.
func failureMessage(f Failure, notes ...string) Message {
	text := fmt.Sprintf("sockembot failed: could not %s", f.Doing)
	b := []slack.Block{
		slack.NewHeaderBlock(plain("⚠️ sockembot failed")),
		section(clip(fmt.Sprintf("Could not *%s*.\n%s", f.Doing, f.consequence()), maxSectionText)),
	}
	var lines []string
	for i, m := range f.Chain() {
		if i == 0 {
			lines = append(lines, "error: "+m)
		} else {
			lines = append(lines, "  caused by: "+m)
		}
	}
	for _, t := range splitText(strings.Join(lines, "\n"), maxSectionText-8) {
		b = append(b, section(codeBlock(t)))
	}
	st, label := f.Stack(), "*Stack trace*"
	if st == "" {
		// An error carries no stack of its own: show where it was caught and reported, which
		// names the handler and the step that failed.
		st, label = string(debug.Stack()), "*Stack trace* (where the error was reported)"
	}
	b = append(b, section(label))
	for i, p := range splitText(st, maxSectionText-8) {
		if i == 10 {
			b = append(b, contextBlock(fmt.Sprintf("… stack trace cut after %d parts", i)))
			break
		}
		b = append(b, section(codeBlock(p)))
	}
	var tail []slack.Block
	for _, n := range notes {
		tail = append(tail, contextBlock(n))
	}
	return Message{Text: text, Blocks: fitBlocks(b, tail)}
}

// noticeMessage is a one-section message: thread replies, ephemerals, alerts.
func noticeMessage(text string) Message {
	var b []slack.Block
	for _, t := range splitText(text, maxSectionText) {
		b = append(b, section(t))
	}
	return Message{Text: clip(text, maxSectionText), Blocks: fitBlocks(b, nil)}
}

func changeText(c compliance.ChangeReport) string {
	var b strings.Builder
	mark := "✅"
	if !c.Compliant {
		mark = "❌"
	}
	if c.Kind == compliance.KindDirectPush {
		fmt.Fprintf(&b, "%s *direct push* `%s` %s — by %s\n", mark, short(firstOr(c.Commits)), esc(c.Title), esc(orUnknown(c.Author)))
	} else {
		name := fmt.Sprintf("#%d %s", c.Number, c.Title)
		if c.URL != "" {
			name = fmt.Sprintf("<%s|%s>", c.URL, esc(name))
		} else {
			name = esc(name)
		}
		fmt.Fprintf(&b, "%s *%s* — by %s", mark, name, esc(orUnknown(c.Author)))
		b.WriteString(" · approved by " + esc(ApprovalsText(c.Approvals)) + "\n")
	}
	b.WriteString("Tickets: " + ticketLinks(c.Tickets))
	for _, v := range c.Violations {
		b.WriteString("\n✗ " + esc(v.Message))
	}
	for _, w := range c.Warnings {
		b.WriteString("\n⚠️ " + esc(w.Message))
	}
	return clip(b.String(), maxSectionText)
}

func ticketLinks(ts []compliance.Ticket) string {
	if len(ts) == 0 {
		return "none"
	}
	parts := make([]string, len(ts))
	for i, t := range ts {
		key := esc(t.Key)
		if t.URL != "" {
			key = fmt.Sprintf("<%s|%s>", t.URL, key)
		}
		st := esc(t.Status)
		if !t.Found {
			st = "not found in Jira"
		}
		parts[i] = fmt.Sprintf("%s (%s)", key, st)
	}
	return strings.Join(parts, ", ")
}

func changeName(c compliance.ChangeReport) string { return store.ChangeName(c) }

func firstViolation(c compliance.ChangeReport) string {
	if len(c.Violations) == 0 {
		return "not compliant"
	}
	return c.Violations[0].Message
}

func nonCompliant(r compliance.Report) []string {
	var out []string
	for _, c := range r.Changes {
		if !c.Compliant {
			out = append(out, changeName(c))
		}
	}
	return out
}

func summary(r compliance.Report, bad []string) string {
	n := len(r.Changes)
	switch {
	case n == 0:
		return "no changes"
	case len(bad) == 0 && n == 1:
		return "1 change, compliant"
	case len(bad) == 0:
		return fmt.Sprintf("%d changes, all compliant", n)
	default:
		return fmt.Sprintf("%d %s, %d compliant", n, plural(n, "change", "changes"), n-len(bad))
	}
}

func verdictEmoji(ok bool) string {
	if ok {
		return "✅"
	}
	return "⛔"
}

func rangeLink(url, base, head string) string {
	text := fmt.Sprintf("%s…%s", short(base), short(head))
	if url == "" {
		return "`" + text + "`"
	}
	return fmt.Sprintf("<%s|%s>", url, text)
}

// compareURL is GitHub's compare page for the range. The web host is taken from a pull request
// link when there is one, so GitHub Enterprise gets its own host.
func compareURL(r compliance.Report) string {
	if r.BaseSHA == "" || r.HeadSHA == "" {
		return ""
	}
	web := "https://github.com/" + r.Repo
	for _, c := range r.Changes {
		if i := strings.Index(c.URL, "/pull/"); i > 0 {
			web = c.URL[:i]
			break
		}
	}
	return fmt.Sprintf("%s/compare/%s...%s", web, r.BaseSHA, r.HeadSHA)
}

// fitBlocks keeps a message within maxBlocks and maxMessageText, always keeping tail (the
// buttons or the refusal) and cutting from the end of body.
func fitBlocks(body, tail []slack.Block) []slack.Block {
	budget := maxBlocks - len(tail)
	chars := maxMessageText - blocksText(tail)
	var out []slack.Block
	for i, b := range body {
		n := blockText(b)
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
		n := blockText(b)
		if len(cur) > 0 && (len(cur) == maxBlocks || chars+n > maxMessageText) {
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
		n += blockText(b)
	}
	return n
}

// blockText is the visible text length of a block, as Slack counts it (characters).
func blockText(b slack.Block) int {
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

// splitText cuts text into pieces of at most max characters, at line ends where it can.
func splitText(text string, max int) []string {
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

// clip shortens text to max characters, marking the cut.
func clip(text string, max int) string {
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

func section(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

func contextBlock(text string) *slack.ContextBlock {
	return slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, clip(text, maxSectionText), false, false))
}

func plain(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, text, true, false)
}

// esc escapes the three characters Slack's mrkdwn treats as control characters.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func mention(user string) string {
	if user == "" {
		return "someone"
	}
	return "<@" + user + ">"
}

func orHead(ref string) string {
	if ref == "" {
		return "default branch"
	}
	return ref
}

func plural(n int, one, many string) string {
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
