package bot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestFailureChainShowsTheMessageThenTheTypedRootCause(t *testing.T) {
	root := &os.PathError{Op: "open", Path: "/etc/sockembot.yaml", Err: fs.ErrPermission}
	err := fmt.Errorf("load config: %w", fmt.Errorf("read file: %w", root))
	got := Failure{Doing: "start", Err: err}.Chain()
	want := []string{
		"load config: read file: open /etc/sockembot.yaml: permission denied",
		"open /etc/sockembot.yaml: permission denied (*fs.PathError)",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("chain:\n got %q\nwant %q", got, want)
	}
}

// opaque hides the text of the error it wraps, as some libraries' errors do.
type opaque struct{ err error }

func (o opaque) Error() string { return "upstream failed" }
func (o opaque) Unwrap() error { return o.err }

func TestFailureChainKeepsALayerThatAddsInformation(t *testing.T) {
	err := fmt.Errorf("check acme/pay: %w", opaque{errors.New("connection refused")})
	got := Failure{Doing: "check", Err: err}.Chain()
	want := []string{"check acme/pay: upstream failed", "connection refused", "upstream failed (bot.opaque)"}
	if !slices.Equal(got, want) {
		t.Fatalf("chain:\n got %q\nwant %q", got, want)
	}
}

func TestFailureTextOfAPanicHasTheStack(t *testing.T) {
	err := Safely(func() error { panic("boom") })
	text := Failure{Doing: "render the digest", Err: err}.Text()
	for _, want := range []string{"could not render the digest", "error: panic: boom", "stack trace:", "failure_test.go"} {
		if !strings.Contains(text, want) {
			t.Errorf("failure text lacks %q:\n%s", want, text)
		}
	}
}
