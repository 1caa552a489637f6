package render

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"sockembot/compliance"
)

// Digest is the outcome of a deploy request as data; DigestMessage turns it into Slack blocks.
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
	// status). It is mrkdwn: whoever writes it escapes what people wrote in it.
	Status string
	// Actions marks a deploy a GitHub Actions run asked for (through sockembot's deployment
	// protection rule) rather than /deploy: it has no buttons, its answer is the Status.
	Actions *ActionsRun
}

// ActionsRun is the GitHub Actions run behind a deploy.
type ActionsRun struct {
	URL   string // the run's page
	Actor string // the GitHub login that started the run
}

// DigestMessage renders the root message and, for releases too big to list inline, the thread
// replies carrying the full list of changes.
func DigestMessage(d Digest) (root Message, thread []Message) {
	r := d.Report
	bad := NonCompliant(r)
	// The notification text is read like mrkdwn: mentions in it ping people.
	root.Text = fmt.Sprintf("Deploy %s %s → %s: %s", Esc(d.Service), Esc(OrHead(d.Ref)), Esc(d.Env), summary(r, bad))
	overridden := d.Emergency && !r.Compliant
	header := fmt.Sprintf("%s %s → %s", verdictEmoji(r.Compliant), d.Service, d.Env)
	switch {
	case overridden:
		root.Text = "EMERGENCY deploy, violations overridden: " + root.Text
		header = fmt.Sprintf("🚨 %s → %s · emergency override", d.Service, d.Env)
	case !r.Compliant:
		root.Text = "Deploy refused: " + root.Text
	}
	by := "requested by " + Mention(d.Requester)
	if d.Actions != nil {
		root.Text = "GitHub Actions " + root.Text
		header += " · GitHub Actions"
		run := "GitHub Actions run"
		if u := URL(d.Actions.URL); u != "" {
			run = Link(u, run)
		}
		by = fmt.Sprintf("%s started by %s", run, Code(d.Actions.Actor))
	}

	b := []slack.Block{
		slack.NewHeaderBlock(Plain(Clip(header, MaxHeaderText))),
		Section(fmt.Sprintf("*%s* %s %s  ·  %s",
			Esc(d.Repo), Code(OrHead(d.Ref)), rangeLink(d.CompareURL, r.BaseSHA, r.HeadSHA), by)),
	}
	sum := "*" + summary(r, bad) + "*"
	if len(bad) > 0 {
		sum += "\nNot compliant: " + Esc(strings.Join(bad, ", "))
	}
	for _, t := range SplitText(sum, MaxSectionText) {
		b = append(b, Section(t))
	}

	changes := make([]slack.Block, 0, len(r.Changes))
	for _, c := range r.Changes {
		changes = append(changes, Section(changeText(c)))
	}
	violations := ViolationLines(r)
	// A release lists its changes in the root message only while the whole message stays well
	// inside Slack's limits; past that the root keeps the summary and the thread gets the list.
	inline := len(changes) <= inlineChanges &&
		blocksText(b)+blocksText(changes)+len(strings.Join(violations, "\n"))+1500 <= MaxMessageText
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
		again := "Fix these and run /deploy again."
		if d.Actions != nil {
			again = "Fix these and re-run the workflow job."
		}
		tail = append(tail, refusalBlocks(r, violations, inline, again)...)
	case d.Buttons:
		tail = append(tail, slack.NewActionBlock(fmt.Sprintf("deploy:%d", d.DeployID),
			slack.NewButtonBlockElement(ActionDeploy, fmt.Sprint(d.DeployID), Plain("Deploy")).WithStyle(slack.StylePrimary),
			slack.NewButtonBlockElement(ActionCancel, fmt.Sprint(d.DeployID), Plain("Cancel")).WithStyle(slack.StyleDanger),
		))
	}
	if d.Status != "" {
		tail = append(tail, Section(Clip(d.Status, MaxSectionText)))
	}
	if d.DeployID != 0 {
		note := fmt.Sprintf("deploy #%d · policy %s", d.DeployID, shortHash(d.PolicyHash))
		if facts := FactsSourceText(r); facts != "" {
			note += " · " + facts
		}
		tail = append(tail, contextBlock(note))
	}
	root.Blocks = fitBlocks(b, tail)

	if !inline {
		for i, m := range packMessages(changes) {
			m.Text = fmt.Sprintf("Changes in %s %s → %s (part %d)", Esc(d.Service), Esc(OrHead(d.Ref)), Esc(d.Env), i+1)
			thread = append(thread, m)
		}
	}
	return root, thread
}

// ViolationLines lists every violation of a report, a line each, with its change.
func ViolationLines(r compliance.Report) []string {
	var lines []string
	for _, c := range r.Changes {
		for _, v := range c.Violations {
			lines = append(lines, fmt.Sprintf("• %s: %s", Esc(c.Name()), Esc(v.Message)))
		}
	}
	return lines
}

// overrideBlocks says who broke glass and why, and lists every violation as overridden: the
// emergency path hides nothing.
func overrideBlocks(d Digest, lines []string) []slack.Block {
	text := fmt.Sprintf("*🚨 Emergency override* by %s: _%s_\nThese violations are overridden; each change needs a retroactive review by a second person after the deploy:\n",
		Mention(d.Requester), Esc(d.EmergencyReason))
	marked := make([]string, len(lines))
	for i, l := range lines {
		marked[i] = l + " _(overridden)_"
	}
	parts := SplitText(text+strings.Join(marked, "\n"), MaxSectionText)
	out := []slack.Block{Section(parts[0])}
	if len(parts) > 1 {
		out = append(out, contextBlock(fmt.Sprintf("… %d violations in all; every change is listed with its violations above or in the thread.", len(lines))))
	}
	return out
}

// refusalBlocks names every violation with its change, then Clippy. When the changes are in the
// thread, the list here is cut to one section and points there.
func refusalBlocks(r compliance.Report, lines []string, inline bool, again string) []slack.Block {
	text := "*Deploy refused*\n" + strings.Join(lines, "\n")
	var out []slack.Block
	if inline {
		for _, t := range SplitText(text, MaxSectionText) {
			out = append(out, Section(t))
		}
	} else {
		parts := SplitText(text, MaxSectionText-200)
		t := parts[0]
		if len(parts) > 1 {
			shown := strings.Count(t, "\n")
			t += fmt.Sprintf("\n… and %d more violations: every change, with its violations, is in the thread.", len(lines)-shown)
		}
		out = append(out, Section(t))
	}
	var said []string
	for _, c := range r.Changes {
		if c.Compliant || len(said) == 3 {
			continue
		}
		said = append(said, Clip(fmt.Sprintf("%s: %s", c.Name(), FirstViolation(c)), 100))
	}
	if n := len(NonCompliant(r)); n > len(said) {
		said = append(said, fmt.Sprintf("... and %d more", n-len(said)))
	}
	said = append(said, again)
	out = append(out, Section(CodeBlock(Clippy(said...))))
	return out
}

func changeText(c compliance.ChangeReport) string {
	var b strings.Builder
	mark := "✅"
	if !c.Compliant {
		mark = "❌"
	}
	if c.Kind == compliance.KindDirectPush {
		fmt.Fprintf(&b, "%s *direct push* %s %s — by %s\n", mark, Code(Short(firstOr(c.Commits))), Esc(c.Title), Esc(OrUnknown(c.Author)))
	} else {
		fmt.Fprintf(&b, "%s *%s* — by %s", mark, Link(c.URL, fmt.Sprintf("#%d %s", c.Number, c.Title)), Esc(OrUnknown(c.Author)))
		b.WriteString(" · approved by " + Esc(ApprovalsText(c.Approvals)) + "\n")
	}
	if c.PolicyChange {
		b.WriteString("📜 *Policy change*: edits the repository's `.sockembot.yml`; needs a policy owner's approval\n")
	}
	b.WriteString("Tickets: " + ticketLinks(c.Tickets))
	for _, v := range c.Violations {
		b.WriteString("\n✗ " + Esc(v.Message))
	}
	for _, w := range c.Warnings {
		b.WriteString("\n⚠️ " + Esc(w.Message))
	}
	return Clip(b.String(), MaxSectionText)
}

func ticketLinks(ts []compliance.Ticket) string {
	if len(ts) == 0 {
		return "none"
	}
	parts := make([]string, len(ts))
	for i, t := range ts {
		key := Link(t.URL, t.Key)
		st := Esc(t.Status)
		if !t.Found {
			st = "not found in Jira"
		}
		parts[i] = fmt.Sprintf("%s (%s)", key, st)
	}
	return strings.Join(parts, ", ")
}

// FirstViolation is a change's first violation in words.
func FirstViolation(c compliance.ChangeReport) string {
	if len(c.Violations) == 0 {
		return "not compliant"
	}
	return c.Violations[0].Message
}

// NonCompliant names the changes of a report that are not compliant.
func NonCompliant(r compliance.Report) []string {
	var out []string
	for _, c := range r.Changes {
		if !c.Compliant {
			out = append(out, c.Name())
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
		return fmt.Sprintf("%d %s, %d compliant", n, Plural(n, "change", "changes"), n-len(bad))
	}
}

func verdictEmoji(ok bool) string {
	if ok {
		return "✅"
	}
	return "⛔"
}

func rangeLink(url, base, head string) string {
	text := fmt.Sprintf("%s…%s", Short(base), Short(head))
	if URL(url) == "" {
		return Code(text)
	}
	return Link(url, text)
}

// CompareURL is GitHub's compare page for the range. The web host is taken from a pull request
// link when there is one, so GitHub Enterprise gets its own host.
func CompareURL(r compliance.Report) string {
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
