// Package command is the grammar of `/deploy`: what a person may type, parsed into a Command, or
// a UsageError saying what was wrong and how to write it. Names are checked against the config
// by the deploy gate; the parser knows the grammar, not the services.
package command

import (
	"fmt"
	"strings"
	"unicode"
)

// Kind says which /deploy subcommand was asked for.
type Kind string

const (
	CmdDeploy  Kind = "deploy"
	CmdHelp    Kind = "help"
	CmdStatus  Kind = "status"
	CmdHistory Kind = "history"
	CmdLock    Kind = "lock"
	CmdUnlock  Kind = "unlock"
)

// Command is one parsed `/deploy` invocation. Names are checked against the config later: the
// parser knows the grammar, not the services.
type Command struct {
	Kind    Kind
	Service string
	// Ref is what to deploy; "" means the head of the repository's default branch.
	Ref string
	// Env is the target environment; "" means the service's first environment (or, for status
	// and history, all of them).
	Env string
	// From overrides the base of the range (what is deployed now).
	From string
	// Reason is the lock reason, or the emergency reason of a break-glass deploy.
	Reason string
	// Emergency asks to deploy past violations (break glass), with Reason saying why.
	Emergency bool
}

// minEmergencyWords is how many words an emergency reason needs: enough for someone reading the
// evidence later to understand why the policy was bypassed.
const minEmergencyWords = 3

// UsageError is a command that could not be understood: what was wrong, then how to write it.
// What the person typed is kept apart from the words around it, so that whoever shows the
// problem quotes it as where it is shown needs: the deploy gate escapes it for Slack.
type UsageError struct {
	format string
	args   []any // a Typed among them is what the person typed
}

// Typed is something a person typed, quoted in a usage error.
type Typed string

// Usagef is a usage error. Its Typed args are what the person typed; the others are the
// parser's (or the config's) own words.
func Usagef(format string, args ...any) *UsageError {
	return &UsageError{format: format, args: args}
}

// Problem says what was wrong, with each thing the person typed passed through quote.
func (e *UsageError) Problem(quote func(string) string) string {
	args := make([]any, len(e.args))
	for i, a := range e.args {
		if t, ok := a.(Typed); ok {
			a = quote(string(t))
		}
		args[i] = a
	}
	return fmt.Sprintf(e.format, args...)
}

// Error is the problem, with what was typed between backticks as written, then the usage: for
// logs. It is not escaped for Slack.
func (e *UsageError) Error() string {
	return e.Problem(func(s string) string { return "`" + s + "`" }) + "\n\n" + Usage
}

// Usage is the /deploy help text (Slack mrkdwn).
const Usage = "*How to use /deploy*\n" +
	"• `/deploy SERVICE[@REF] [to ENV] [from REF]` — check what would ship and offer a Deploy button. " +
	"REF defaults to the head of the default branch, ENV to the service's first environment; " +
	"`from REF` sets the base when nothing has been deployed there yet.\n" +
	"• `/deploy status SERVICE [ENV]` — what is deployed and whether it is locked\n" +
	"• `/deploy history SERVICE [ENV]` — the last 10 deploy requests, with links to their threads\n" +
	"• `/deploy lock SERVICE ENV REASON` — stop deploys to an environment\n" +
	"• `/deploy unlock SERVICE ENV`\n" +
	"• `/deploy SERVICE@REF to ENV emergency \"REASON\"` — break glass: deploy past violations, for people in " +
	"`emergency`; every overridden change must be reviewed by a second person afterwards\n" +
	"• `/deploy help`\n" +
	"Example: `/deploy payments@v1.4.2 to production`"

// Unescape is slash command text as the person typed it: Slack escapes &, < and > in it.
func Unescape(text string) string { return unescaper.Replace(text) }

var unescaper = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

// Parse reads the text after `/deploy`, as Slack sends it.
func Parse(text string) (Command, error) {
	text = Unescape(text)
	words, err := splitWords(text)
	if err != nil {
		return Command{}, err
	}
	if len(words) == 0 {
		return Command{Kind: CmdHelp}, nil
	}
	first, rest := words[0], words[1:]
	switch strings.ToLower(first.text) {
	case "help", "-h", "--help", "?":
		if len(rest) > 0 {
			return Command{}, usagef("`help` takes nothing after it.")
		}
		return Command{Kind: CmdHelp}, nil
	case "status", "history":
		kind := Kind(strings.ToLower(first.text))
		if len(rest) == 0 || len(rest) > 2 {
			return Command{}, usagef("`%s` needs a service and optionally an environment: `/deploy %s SERVICE [ENV]`.", kind, kind)
		}
		c := Command{Kind: kind, Service: rest[0].text}
		if len(rest) == 2 {
			c.Env = rest[1].text
		}
		return c, checkNames(c)
	case "lock":
		if len(rest) < 3 {
			return Command{}, usagef("`lock` needs a service, an environment and a reason: `/deploy lock payments production \"incident 42\"`.")
		}
		c := Command{Kind: CmdLock, Service: rest[0].text, Env: rest[1].text, Reason: strings.TrimSpace(joinWords(rest[2:]))}
		if c.Reason == "" {
			return Command{}, usagef("`lock` needs a reason people can read: `/deploy lock payments production \"incident 42\"`.")
		}
		return c, checkNames(c)
	case "unlock":
		if len(rest) != 2 {
			return Command{}, usagef("`unlock` needs a service and an environment: `/deploy unlock SERVICE ENV`.")
		}
		c := Command{Kind: CmdUnlock, Service: rest[0].text, Env: rest[1].text}
		return c, checkNames(c)
	}
	return parseDeploy(first, rest)
}

func parseDeploy(target word, rest []word) (Command, error) {
	c := Command{Kind: CmdDeploy, Service: target.text}
	if target.quoted {
		return Command{}, usagef("A service name can't be quoted: write `/deploy payments@main to production`.")
	}
	if i := strings.Index(target.text, "@"); i >= 0 {
		c.Service, c.Ref = target.text[:i], target.text[i+1:]
		if c.Ref == "" {
			return Command{}, usagef("Nothing after `@` in %s: give a branch, tag or commit, like %s, or leave `@` out to deploy the default branch.", Typed(target.text), Typed(c.Service+"@main"))
		}
		if strings.Contains(c.Ref, "@") {
			return Command{}, usagef("%s has more than one `@`: write `SERVICE@REF`.", Typed(target.text))
		}
	}
	if c.Service == "" {
		return Command{}, usagef("%s has no service name before `@`.", Typed(target.text))
	}
	// Clauses may come in any order, each once.
	for i := 0; i < len(rest); i++ {
		kw := strings.ToLower(rest[i].text)
		switch kw {
		case "emergency":
			if c.Emergency {
				return Command{}, usagef("`emergency` was given twice.")
			}
			if i+1 >= len(rest) || !rest[i+1].quoted {
				return Command{}, usagef("`emergency` needs a reason in quotes: %s.", Typed("/deploy "+target.text+` to production emergency "checkout is down, hotfix for INC-42"`))
			}
			c.Emergency, c.Reason = true, strings.TrimSpace(rest[i+1].text)
			i++
			if n := len(strings.Fields(c.Reason)); n < minEmergencyWords {
				return Command{}, usagef("An emergency reason needs at least %d words saying why this can't wait for review (got %s).", minEmergencyWords, Typed(c.Reason))
			}
		case "to", "from":
			if i+1 >= len(rest) {
				return Command{}, usagef("`%s` needs a value after it.", kw)
			}
			val := rest[i+1].text
			i++
			if kw == "to" {
				if c.Env != "" {
					return Command{}, usagef("`to` was given twice (%s and %s): deploy to one environment at a time.", Typed(c.Env), Typed(val))
				}
				c.Env = val
			} else {
				if c.From != "" {
					return Command{}, usagef("`from` was given twice (%s and %s).", Typed(c.From), Typed(val))
				}
				c.From = val
			}
		default:
			return Command{}, usagef("I don't understand %s in %s: name the environment with `to ENV` and the base with `from REF`.",
				Typed(rest[i].text), Typed("/deploy "+joinWords(append([]word{target}, rest...))))
		}
	}
	return c, checkNames(c)
}

// checkNames refuses names that cannot be services, environments or git refs, so a stray
// character gets a clear answer instead of a confusing GitHub error.
func checkNames(c Command) error {
	for _, n := range []struct{ what, v string }{{"service", c.Service}, {"environment", c.Env}} {
		if n.v == "" {
			continue
		}
		for _, r := range n.v {
			if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.') {
				return usagef("%s is not a valid %s name (letters, digits, `-`, `_` and `.` only).", Typed(n.v), n.what)
			}
		}
	}
	for _, ref := range []string{c.Ref, c.From} {
		if ref == "" {
			continue
		}
		if strings.ContainsAny(ref, " ~^:?*[\\") || strings.Contains(ref, "..") {
			return usagef("%s is not a valid git ref.", Typed(ref))
		}
	}
	return nil
}

func usagef(format string, args ...any) error { return Usagef(format, args...) }

type word struct {
	text   string
	quoted bool
}

func joinWords(ws []word) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.text
	}
	return strings.Join(parts, " ")
}

// splitWords splits on spaces, keeping "quoted phrases" together. Slack clients turn straight
// quotes into curly ones as people type, so both count.
func splitWords(s string) ([]word, error) {
	var (
		words  []word
		cur    strings.Builder
		inWord bool
		quote  rune // the closing quote we are waiting for, 0 outside quotes
	)
	flush := func(quoted bool) {
		if inWord || quoted {
			words = append(words, word{text: cur.String(), quoted: quoted})
		}
		cur.Reset()
		inWord = false
	}
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote || (quote == '”' && r == '"') {
				quote = 0
				flush(true)
				continue
			}
			cur.WriteRune(r)
		case r == '"' || r == '“' || r == '”':
			if inWord {
				return nil, usagef("A quote in the middle of %s: put quotes around the whole phrase.", Typed(cur.String()+"…"))
			}
			quote = '"'
			if r != '"' {
				quote = '”'
			}
		case unicode.IsSpace(r):
			flush(false)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, usagef("A quote was opened but never closed.")
	}
	flush(false)
	return words, nil
}
