package render

import (
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"
)

// Failure is what sockembot was doing when it could not finish, and why: rendered as a failure
// report in Slack where the digest would have been, and on stderr for the CLI. A bot that breaks
// must say so, in words that fit the command.
type Failure struct {
	// Doing completes "could not …": "check acme/pay v1.3.0..v1.4.0". In Slack it is mrkdwn
	// written by the bot: escape anything a person typed into it.
	Doing string
	Err   error
	// Consequence says what the failure means for the reader. The default is a deploy check's:
	// nothing is treated as compliant, and the deploy is refused.
	Consequence string
}

// stackTracer is an error that knows the stack where it happened (a recovered panic, or an error
// traced where it first appeared): bot/check makes them.
type stackTracer interface {
	error
	StackTrace() string
}

// Chain lists what the failure's message says, without repeating it: the whole message first,
// then each wrapped error that says something its wrapper did not (most layers only prefix
// context to the text of the one inside, so repeating them adds nothing).
func (f Failure) Chain() []string {
	layers := f.layers()
	if len(layers) == 0 {
		return nil
	}
	out := []string{layers[0].Error()}
	for i := 1; i < len(layers); i++ {
		if msg := layers[i].Error(); !strings.HasSuffix(layers[i-1].Error(), msg) {
			out = append(out, msg)
		}
	}
	return out
}

// RootCause is the Go type of the innermost error of a telling type (*github.ErrorResponse,
// *url.Error, *fs.PathError ...), which names the system that failed; "" when there is none.
func (f Failure) RootCause() string {
	layers := f.layers()
	for i := len(layers) - 1; i > 0; i-- {
		if _, traced := layers[i].(stackTracer); traced {
			continue
		}
		t := fmt.Sprintf("%T", layers[i])
		switch t {
		case "*errors.errorString", "*fmt.wrapError", "*fmt.wrapErrors", "*errors.joinError":
			continue
		}
		return t
	}
	return ""
}

func (f Failure) layers() []error {
	var layers []error
	for e := f.Err; e != nil; e = errors.Unwrap(e) {
		layers = append(layers, e)
	}
	return layers
}

// Stack is the stack where the error happened: the panic's, or the one recorded where the error
// first appeared (the innermost record, if it was traced more than once). "" when none was.
func (f Failure) Stack() string {
	stack := ""
	for _, e := range f.layers() {
		if st, ok := e.(stackTracer); ok {
			stack = st.StackTrace()
		}
	}
	if stack == "" {
		var st stackTracer
		if errors.As(f.Err, &st) {
			stack = st.StackTrace()
		}
	}
	return stack
}

func (f Failure) consequence(slackText bool) string {
	switch {
	case f.Consequence != "":
		return f.Consequence
	case slackText:
		return "The check did not complete, so nothing is treated as compliant: *the deploy is refused*. Try again once the cause is fixed."
	}
	return "The check did not complete, so nothing is treated as compliant."
}

// report is the error and the stack where it happened, in plain text: the failure report
// without what sockembot was doing and what that means.
func (f Failure) report() string {
	var b strings.Builder
	for _, l := range f.errorLines() {
		fmt.Fprintf(&b, "%s\n", l)
	}
	if s := f.Stack(); s != "" {
		fmt.Fprintf(&b, "stack trace (where it happened):\n%s", s)
	}
	return b.String()
}

func (f Failure) errorLines() []string {
	var lines []string
	for i, m := range f.Chain() {
		if i == 0 {
			lines = append(lines, "error: "+m)
		} else {
			lines = append(lines, "  caused by: "+m)
		}
	}
	if t := f.RootCause(); t != "" {
		lines = append(lines, "  root cause: "+t)
	}
	return lines
}

// Text is the plain-text failure report, for a terminal (see Terminal: an error can quote what
// others wrote).
func (f Failure) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sockembot failure: could not %s\n", f.Doing)
	fmt.Fprintf(&b, "%s\n", f.consequence(false))
	b.WriteString(f.report())
	return Terminal(b.String())
}

// FailureMessage is the report shown in place of a digest (or in a thread) when sockembot itself
// failed: what it was doing, what that means, the error, and the stack where it happened. Notes
// go underneath as context lines.
func FailureMessage(f Failure, notes ...string) Message {
	text := fmt.Sprintf("sockembot failed: could not %s", f.Doing)
	b := []slack.Block{
		slack.NewHeaderBlock(Plain("⚠️ sockembot failed")),
		Section(Clip(fmt.Sprintf("Could not *%s*.\n%s", f.Doing, f.consequence(true)), MaxSectionText)),
	}
	// Inside a code block Slack still reads <!channel> and <url|text>, and an error can quote
	// what a person wrote (a branch name, a policy file): escaped like any other text, then cut
	// into code blocks that fit a section (the cuts never split an escape).
	for _, t := range SplitText(Esc(strings.Join(f.errorLines(), "\n")), MaxSectionText-8) {
		b = append(b, Section(fence(t)))
	}
	if st := f.Stack(); st != "" {
		b = append(b, Section("*Stack trace* (where it happened)"))
		for i, p := range SplitText(Esc(st), MaxSectionText-8) {
			if i == 10 {
				b = append(b, contextBlock(fmt.Sprintf("… stack trace cut after %d parts", i)))
				break
			}
			b = append(b, Section(fence(p)))
		}
	}
	var tail []slack.Block
	for _, n := range notes {
		tail = append(tail, contextBlock(n))
	}
	return Message{Text: text, Blocks: fitBlocks(b, tail)}
}
