package rollout

import (
	"testing"

	"sockembot/compliance"
)

func TestStatusURLOnlyPlainLinks(t *testing.T) {
	for u, want := range map[string]string{
		"https://ci.example/deploys/1":      "https://ci.example/deploys/1",
		"https://evil.example/x|<!channel>": "",
		"javascript:alert(1)":               "",
		"https://ci.example/a>b":            "",
		"":                                  "",
	} {
		if got := statusURL(compliance.DeploymentStatusEvent{LogURL: u}); got != want {
			t.Errorf("statusURL(%q) = %q, want %q", u, got, want)
		}
	}
	// The target URL stands in when there is no log URL, under the same rule.
	if got := statusURL(compliance.DeploymentStatusEvent{TargetURL: "https://x|y"}); got != "" {
		t.Errorf("target URL with | linked: %q", got)
	}
}
