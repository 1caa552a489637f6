package render_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sockembot/bot/check"
	"sockembot/bot/render"
	"strings"
	"testing"
)

func TestFailureChainShowsTheMessageThenTheTypedRootCause(t *testing.T) {
	root := &os.PathError{Op: "open", Path: "/etc/sockembot.yaml", Err: fs.ErrPermission}
	err := fmt.Errorf("load config: %w", fmt.Errorf("read file: %w", root))
	f := render.Failure{Doing: "start", Err: err}
	// The message once: the wrapped layers only prefix it, so repeating them adds nothing.
	want := []string{"load config: read file: open /etc/sockembot.yaml: permission denied"}
	if got := f.Chain(); !slices.Equal(got, want) {
		t.Fatalf("chain:\n got %q\nwant %q", got, want)
	}
	if got := f.RootCause(); got != "*fs.PathError" {
		t.Errorf("root cause %q, want *fs.PathError", got)
	}
	text := f.Text()
	if strings.Count(text, "permission denied") != 1 || !strings.Contains(text, "root cause: *fs.PathError") {
		t.Errorf("failure text repeats the chain or lacks the root cause:\n%s", text)
	}
}

// opaque hides the text of the error it wraps, as some libraries' errors do.
type opaque struct{ err error }

func (o opaque) Error() string { return "upstream failed" }

func (o opaque) Unwrap() error { return o.err }

func TestFailureChainKeepsALayerThatAddsInformation(t *testing.T) {
	err := fmt.Errorf("check acme/pay: %w", opaque{errors.New("connection refused")})
	f := render.Failure{Doing: "check", Err: err}
	want := []string{"check acme/pay: upstream failed", "connection refused"}
	if got := f.Chain(); !slices.Equal(got, want) {
		t.Fatalf("chain:\n got %q\nwant %q", got, want)
	}
	if got := f.RootCause(); got != "render_test.opaque" {
		t.Errorf("root cause %q", got)
	}
}

func TestFailureTextOfAPanicHasTheStack(t *testing.T) {
	err := check.Safely(func() error { panic("boom") })
	text := render.Failure{Doing: "render the digest", Err: err}.Text()
	for _, want := range []string{"could not render the digest", "error: panic: boom", "stack trace (where it happened):", "sockembot/bot/render/failure_test.go:"} {
		if !strings.Contains(text, want) {
			t.Errorf("failure text lacks %q:\n%s", want, text)
		}
	}
}

func TestFailureConsequenceIsTheCommands(t *testing.T) {
	f := render.Failure{Doing: "verify the evidence chain", Err: errors.New("disk I/O error"),
		Consequence: "The evidence chain was not verified: treat it as unverified, not as intact."}
	text := f.Text()
	if strings.Contains(text, "The check did not complete") || !strings.Contains(text, "not verified") {
		t.Errorf("failure text does not use the command's wording:\n%s", text)
	}
	if !strings.Contains(f.Text(), "could not verify the evidence chain") {
		t.Errorf("failure text lacks what was being done:\n%s", text)
	}
}
