package bot

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
)

// PanicError is a recovered panic, kept with the stack where it happened so the failure report
// can show it: a bot that breaks must say so where the digest would have been.
type PanicError struct {
	Value any
	Stack string
}

func (p *PanicError) Error() string { return fmt.Sprintf("panic: %v", p.Value) }

// Safely runs fn and turns a panic into a *PanicError. Every handler runs under it so one bad
// event never takes the process down.
func Safely(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: string(debug.Stack())}
		}
	}()
	return fn()
}

// Failure is what the bot was doing when it could not finish, and why. Rendered as a failure
// report in Slack, on stderr for the CLI.
type Failure struct {
	Doing string
	Err   error
	// Consequence says what the failure means for the person reading it; by default that the
	// check did not complete and the deploy is refused.
	Consequence string
}

// Chain lists the error and what it wraps, outermost first: the whole message, then each wrapped
// error that says something its wrapper did not (most layers only prefix context to the text of
// the one inside, so repeating them adds nothing), and the innermost error of a telling type
// (*github.ErrorResponse, *url.Error, ...) with that type, as the root cause.
func (f Failure) Chain() []string {
	var layers []error
	for e := f.Err; e != nil; e = errors.Unwrap(e) {
		layers = append(layers, e)
	}
	if len(layers) == 0 {
		return nil
	}
	out := []string{layers[0].Error()}
	shown := map[int]bool{0: true}
	for i := 1; i < len(layers); i++ {
		if msg := layers[i].Error(); !strings.HasSuffix(layers[i-1].Error(), msg) {
			out = append(out, msg)
			shown[i] = true
		}
	}
	for i := len(layers) - 1; i > 0; i-- {
		t := fmt.Sprintf("%T", layers[i])
		if t == "*errors.errorString" || t == "*fmt.wrapError" || t == "*fmt.wrapErrors" || t == "*errors.joinError" {
			continue
		}
		if !shown[i] {
			out = append(out, layers[i].Error()+" ("+t+")")
		}
		break
	}
	return out
}

func (f Failure) consequence() string {
	if f.Consequence != "" {
		return f.Consequence
	}
	return "The check did not complete, so nothing is treated as compliant: *the deploy is refused*. Try again once the cause is fixed."
}

// Stack is the panic stack, or "" for an ordinary error.
func (f Failure) Stack() string {
	var p *PanicError
	if errors.As(f.Err, &p) {
		return p.Stack
	}
	return ""
}

// Text is the plain-text failure report.
func (f Failure) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sockembot failure: could not %s\n", f.Doing)
	fmt.Fprintf(&b, "The check did not complete, so nothing is treated as compliant.\n")
	for i, m := range f.Chain() {
		if i == 0 {
			fmt.Fprintf(&b, "error: %s\n", m)
		} else {
			fmt.Fprintf(&b, "  caused by: %s\n", m)
		}
	}
	if s := f.Stack(); s != "" {
		fmt.Fprintf(&b, "stack trace:\n%s", s)
	}
	return b.String()
}
