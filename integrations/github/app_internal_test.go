package github

import (
	"context"
	"strings"
	"testing"
	"time"

	fakegithub "sockembot/integrations/fake/github"
)

// Requests the public API does not make, routed by hand: a non-repository endpoint needs a
// fixed installation, and no credential leaves for another host.
func TestAppRouterRefuses(t *testing.T) {
	s := fakegithub.New(fakegithub.Options{App: &fakegithub.AppOptions{ID: 4242, Slug: "sockembot", TokenTTL: time.Hour}})
	defer s.Close()
	ctx := context.Background()
	newApp := func(installation int64) *Client {
		c, err := New(Options{BaseURL: s.URL(), Backoff: time.Millisecond,
			App: &AppAuth{ID: s.AppID(), PrivateKey: s.AppPrivateKeyPEM(), InstallationID: installation}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	c := newApp(0)
	if _, _, err := c.gh.Users.Get(ctx, ""); err == nil || !strings.Contains(err.Error(), "not a repository's endpoint") {
		t.Errorf("GET /user without a fixed installation: %v", err)
	}
	req, err := c.gh.NewRequest("GET", "https://evil.example/api/v3/repos/acme/payments", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.gh.Do(ctx, req, nil); err == nil || !strings.Contains(err.Error(), "refusing to send GitHub App credentials") {
		t.Errorf("another host: %v", err)
	}
	req, _ = c.gh.NewRequest("GET", strings.TrimSuffix(s.URL(), "/api/v3/")+"/repos/acme/payments", nil)
	if _, err := c.gh.Do(ctx, req, nil); err == nil || !strings.Contains(err.Error(), "not under the API base") {
		t.Errorf("outside the API base: %v", err)
	}
	if s.Total() != 0 {
		t.Errorf("%d requests made: %v", s.Total(), s.Counts())
	}

	// With a fixed installation, its token goes to any endpoint (GitHub answers /user 403).
	s.AddRepo("acme/payments", "main")
	c = newApp(s.InstallationID("acme"))
	if _, _, err := c.gh.Users.Get(ctx, ""); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("GET /user with an installation token: %v", err)
	}
	for _, r := range s.Requests() {
		if r.Route == "GET /user" && r.Auth != "installation" {
			t.Errorf("GET /user sent with %q", r.Auth)
		}
	}
}
