package demo_test

import (
	"context"
	"sockembot/bot/demo"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	var b strings.Builder
	if err := demo.Demo(context.Background(), &b, ""); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"#releases", "payments → production", "pressed Deploy", "*in progress*", "*success*",
		"Deploy refused", "It looks like you're trying to ship", "sockembot failed", "500 Internal Server Error",
		"ephemeral to @U0MALLORY", "not allowed to deploy",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// Thread replies are indented under their digest.
	if !strings.Contains(out, "\n    - 🚀") {
		t.Errorf("thread replies not indented:\n%s", out)
	}
}
