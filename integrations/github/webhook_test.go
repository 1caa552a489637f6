package github_test

import (
	"errors"
	"os"
	"testing"

	"sockembot/compliance"
	"sockembot/integrations/github"
)

// fixtures is the repository's testdata/ (this package is two levels deep).
const fixtures = "../../testdata/"

func TestVerifySignature(t *testing.T) {
	// GitHub docs, "Validating webhook deliveries".
	secret, body := []byte("It's a Secret to Everybody"), []byte("Hello, World!")
	const good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if err := github.VerifySignature(secret, body, good); err != nil {
		t.Fatalf("docs vector rejected: %v", err)
	}
	for name, tc := range map[string]struct {
		secret, body []byte
		header       string
	}{
		"tampered body":  {secret, []byte("Hello, World?"), good},
		"wrong secret":   {[]byte("another"), body, good},
		"empty secret":   {nil, body, good},
		"missing header": {secret, body, ""},
		"sha1 only":      {secret, body, "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"},
		"not hex":        {secret, body, "sha256=zz07107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
		"truncated":      {secret, body, good[:40]},
		"uppercase algo": {secret, body, "SHA256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
	} {
		if err := github.VerifySignature(tc.secret, tc.body, tc.header); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := github.VerifySignature(secret, []byte("x"), good); !errors.Is(err, github.ErrBadSignature) {
		t.Errorf("mismatch error %v, want ErrBadSignature", err)
	}
}

func TestParseEventFixtures(t *testing.T) {
	read := func(path string) []byte {
		t.Helper()
		b, err := os.ReadFile(fixtures + path)
		if err != nil {
			t.Fatalf("fixture %s: %v", path, err)
		}
		return b
	}
	ev, err := github.ParseEvent("pull_request", read("atmos+hubot-deploy/test/fixtures/pull_requests/pull_request_merged.json"))
	if err != nil {
		t.Fatal(err)
	}
	if pr, ok := ev.(compliance.PullRequestEvent); !ok || pr.Action != "closed" || !pr.Merged || pr.Repo != "atmos/hubot-deploy" ||
		pr.Number != 32 || pr.HeadSHA != "c95e3c0492c0c0456c396389b97ea486fa32c9af" {
		t.Errorf("merged pull_request: %T %+v", ev, ev)
	}
	ev, err = github.ParseEvent("pull_request_review", read("kubernetes-sigs+prow/cmd/phony/examples/review_approve_submitted.json"))
	if rv, ok := ev.(compliance.ReviewEvent); err != nil || !ok || rv.Review.State != compliance.StateApproved ||
		rv.Repo != "kubernetes/kubernetes" || rv.Number != 66686 || rv.Review.User == "" || rv.Review.SubmittedAt.IsZero() {
		t.Errorf("review: %+v %v", ev, err)
	}
	ev, err = github.ParseEvent("push", read("octokit+webhooks/payload-examples/api.github.com/push/payload.json"))
	if p, ok := ev.(compliance.PushEvent); err != nil || !ok || p.Repo != "Codertocat/Hello-World" || p.Ref != "refs/tags/simple-tag" ||
		p.DefaultBranch != "master" || p.Pusher != "Codertocat" {
		t.Errorf("push: %+v %v", ev, err)
	}
	ev, err = github.ParseEvent("deployment_status", read("octokit+webhooks/payload-examples/api.github.com/deployment_status/payload.json"))
	if d, ok := ev.(compliance.DeploymentStatusEvent); err != nil || !ok || d.DeploymentID == 0 || d.StatusID == 0 || d.State != "success" ||
		d.Repo != "Codertocat/Hello-World" || d.Creator != "Codertocat" {
		t.Errorf("deployment_status: %+v %v", ev, err)
	}
	// A partial payload (no deployment) decodes to zero values, never a panic.
	if _, err := github.ParseEvent("deployment_status", []byte(`{"action":"created","deployment_status":{"id":1,"state":"success"}}`)); err != nil {
		t.Errorf("partial deployment_status: %v", err)
	}
	// A valid event sockembot does not act on is said to be so.
	if _, err := github.ParseEvent("ping", read("octokit+webhooks/payload-examples/api.github.com/ping/payload.json")); !errors.Is(err, github.ErrUnhandledEvent) {
		t.Errorf("ping: %v, want ErrUnhandledEvent", err)
	}
	// Timestamps that are not RFC 3339 (a real octokit example) are an error, not a zero value.
	if _, err := github.ParseEvent("check_run", read("octokit+webhooks/payload-examples/api.github.com/check_run/rerequested.payload.json")); err == nil {
		t.Error("undecodable check_run accepted")
	}
	if _, err := github.ParseEvent("no_such_event", []byte(`{}`)); err == nil {
		t.Error("unknown event type accepted")
	}
}
