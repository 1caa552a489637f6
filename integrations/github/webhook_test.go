package github_test

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
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
	// A partial payload (no deployment) is an error naming what is missing, never a panic.
	if _, err := github.ParseEvent("deployment_status", []byte(`{"action":"created","deployment_status":{"id":1,"state":"success"},"repository":{"full_name":"a/b"}}`)); !errors.Is(err, github.ErrIncompleteEvent) ||
		!strings.Contains(err.Error(), "without deployment") {
		t.Errorf("deployment_status without deployment: %v", err)
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

// webhookPayloads are the real deliveries in testdata/ of every event sockembot handles.
var webhookPayloads = []struct{ event, file string }{
	{"pull_request", "octokit+webhooks/payload-examples/api.github.com/pull_request/opened.payload.json"},
	{"pull_request", "octokit+webhooks/payload-examples/api.github.com/pull_request/reopened.payload.json"},
	{"pull_request", "octokit+webhooks/payload-examples/api.github.com/pull_request/synchronize.payload.json"},
	{"pull_request", "octokit+webhooks/payload-examples/api.github.com/pull_request/closed.payload.json"},
	{"pull_request", "atmos+hubot-deploy/test/fixtures/pull_requests/pull_request_merged.json"},
	{"pull_request_review", "octokit+webhooks/payload-examples/api.github.com/pull_request_review/submitted.payload.json"},
	{"pull_request_review", "octokit+webhooks/payload-examples/api.github.com/pull_request_review/dismissed.payload.json"},
	{"pull_request_review", "google+github-owners-bot/test/fixtures/actions/pull_request_review.35.submitted.json"},
	{"pull_request_review", "kubernetes-sigs+prow/cmd/phony/examples/review_approve_submitted.json"},
	{"push", "octokit+webhooks/payload-examples/api.github.com/push/payload.json"},
	{"push", "octokit+webhooks/payload-examples/api.github.com/push/with-new-branch.payload.json"},
	{"push", "kubernetes-sigs+prow/cmd/phony/examples/push.json"},
	{"deployment_status", "octokit+webhooks/payload-examples/api.github.com/deployment_status/payload.json"},
	{"check_run", "octokit+webhooks/payload-examples/api.github.com/check_run/created.payload.json"},
	{"check_run", "octokit+webhooks/payload-examples/api.github.com/check_run/requested_action.payload.json"},
	{"check_suite", "octokit+webhooks/payload-examples/api.github.com/check_suite/rerequested.payload.json"},
	{"merge_group", "octokit+webhooks/payload-examples/api.github.com/merge_group/checks_requested.payload.json"},
	{"deployment_protection_rule", "open-security-tools+ost-environment-gate/testdata/deployment-protection-requested.json"},
}

// requiredTopLevel are the top-level objects of each event that ParseEvent must refuse to do
// without; every other top-level field of the real payloads (action, sender, installation, ...)
// may be missing.
var requiredTopLevel = map[string][]string{
	"pull_request":        {"pull_request", "repository"},
	"pull_request_review": {"pull_request", "repository", "review"},
	"push":                {"after", "commits", "ref", "repository"},
	"deployment_status":   {"deployment", "deployment_status", "repository"},
	// requested_action is only required of a requested_action delivery.
	"check_run":   {"check_run", "repository", "requested_action"},
	"check_suite": {"check_suite", "repository"},
	"merge_group": {"merge_group", "repository"},
	// The real delivery has its SHA at top level only (its deployment is {id, environment}); its
	// run id is also in the callback URL, so workflow_run may go.
	"deployment_protection_rule": {"deployment_callback_url", "environment", "repository", "sha"},
}

func readFixture(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixtures + path)
	if err != nil {
		t.Fatalf("fixture %s: %v", path, err)
	}
	return b
}

// withoutEach is body once without each of its top-level fields, in the fields' sorted order.
func withoutEach(t testing.TB, body []byte) (fields []string, partial [][]byte) {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		t.Fatal(err)
	}
	for k := range obj {
		fields = append(fields, k)
	}
	slices.Sort(fields)
	for _, k := range fields {
		rest := make(map[string]json.RawMessage, len(obj)-1)
		for kk, v := range obj {
			if kk != k {
				rest[kk] = v
			}
		}
		b, err := json.Marshal(rest)
		if err != nil {
			t.Fatal(err)
		}
		partial = append(partial, b)
	}
	return fields, partial
}

// Each real payload without each of its top-level fields: a field the gates need is refused
// by name; any other is decoded with everything required still set.
func TestParseEventWithoutEachTopLevelField(t *testing.T) {
	for _, p := range webhookPayloads {
		fields, partial := withoutEach(t, readFixture(t, p.file))
		for i, field := range fields {
			ev, err := github.ParseEvent(p.event, partial[i])
			if slices.Contains(requiredTopLevel[p.event], field) {
				if !errors.Is(err, github.ErrIncompleteEvent) || !strings.Contains(err.Error(), field) {
					t.Errorf("%s without %s: %v, want ErrIncompleteEvent naming %s", p.file, field, err, field)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s without the optional %s: %v", p.file, field, err)
				continue
			}
			if problem := incomplete(ev); problem != "" {
				t.Errorf("%s without %s: %s in %+v", p.file, field, problem, ev)
			}
		}
	}
}

// incomplete names a required field an accepted event lacks, "" when it has them all.
func incomplete(ev any) string {
	repoOK := func(r string) bool {
		owner, name, ok := strings.Cut(r, "/")
		return ok && owner != "" && name != "" && !strings.Contains(name, "/")
	}
	switch ev := ev.(type) {
	case compliance.PullRequestEvent:
		switch {
		case !repoOK(ev.Repo):
			return "repo"
		case ev.Number <= 0:
			return "number"
		case ev.HeadSHA == "":
			return "head sha"
		case ev.State == "":
			return "state"
		}
	case compliance.ReviewEvent:
		switch {
		case !repoOK(ev.Repo):
			return "repo"
		case ev.Number <= 0:
			return "number"
		case ev.HeadSHA == "":
			return "head sha"
		case ev.PRState == "":
			return "pull request state"
		case ev.Review.State == "":
			return "review state"
		}
	case compliance.PushEvent:
		switch {
		case !repoOK(ev.Repo):
			return "repo"
		case ev.Ref == "":
			return "ref"
		case ev.DefaultBranch == "":
			return "default branch"
		}
		for _, c := range ev.Commits {
			if c.SHA == "" {
				return "commit id"
			}
		}
	case compliance.DeploymentStatusEvent:
		switch {
		case !repoOK(ev.Repo):
			return "repo"
		case ev.DeploymentID == 0:
			return "deployment id"
		case ev.StatusID == 0:
			return "status id"
		case ev.State == "":
			return "state"
		}
	case compliance.CheckRunEvent:
		switch {
		case !repoOK(ev.Repo):
			return "repo"
		case ev.CheckRunID == 0:
			return "check run id"
		case ev.Name == "":
			return "check run name"
		case ev.HeadSHA == "":
			return "head sha"
		case ev.Action == "requested_action" && ev.RequestedAction == "":
			return "requested action"
		}
	case compliance.CheckSuiteEvent:
		switch {
		case !repoOK(ev.Repo):
			return "repo"
		case ev.HeadSHA == "":
			return "head sha"
		}
	case compliance.MergeGroupEvent:
		switch {
		case !repoOK(ev.Repo):
			return "repo"
		case ev.HeadSHA == "":
			return "head sha"
		case ev.BaseSHA == "":
			return "base sha"
		}
	case compliance.DeploymentProtectionRuleEvent:
		switch {
		case !repoOK(ev.Repo):
			return "repo"
		case ev.Environment == "":
			return "environment"
		case ev.CallbackURL == "":
			return "callback url"
		case ev.SHA == "":
			return "sha"
		case ev.RunID <= 0:
			return "run id"
		}
	default:
		return "an event of another type"
	}
	return ""
}

// FuzzParseEvent feeds ParseEvent the real payloads, each also without each top-level field, and
// what the fuzzer makes of them: it never panics, and whatever it accepts has every field the
// gates need.
//
//	go test -run '^$' -fuzz FuzzParseEvent -fuzztime 20000x ./integrations/github/
func FuzzParseEvent(f *testing.F) {
	for _, p := range webhookPayloads {
		body := readFixture(f, p.file)
		f.Add(p.event, body)
		_, partial := withoutEach(f, body)
		for _, b := range partial {
			f.Add(p.event, b)
		}
	}
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		ev, err := github.ParseEvent(event, body)
		if err != nil {
			if ev != nil {
				t.Fatalf("an error (%v) and an event %+v", err, ev)
			}
			return
		}
		if problem := incomplete(ev); problem != "" {
			t.Fatalf("accepted a %s event without its %s: %+v", event, problem, ev)
		}
	})
}

func TestParseEventChecksAndQueues(t *testing.T) {
	ev, err := github.ParseEvent("check_run", readFixture(t, "octokit+webhooks/payload-examples/api.github.com/check_run/requested_action.payload.json"))
	want := compliance.CheckRunEvent{
		Action: "requested_action", Repo: "electron/electron", CheckRunID: 1494503112, Name: "API Review",
		HeadSHA: "5bd5f196a46b8222fb7484f05faba41a73cf34bd", AppID: 25811, RequestedAction: "lgtm|26764",
		PullRequests: []int{26764}, Sender: "codebytere",
	}
	if err != nil || !reflect.DeepEqual(ev, want) {
		t.Errorf("check_run requested_action:\n got %+v, %v\nwant %+v", ev, err, want)
	}
	ev, err = github.ParseEvent("check_run", readFixture(t, "octokit+webhooks/payload-examples/api.github.com/check_run/created.payload.json"))
	want = compliance.CheckRunEvent{
		Action: "created", Repo: "Codertocat/Hello-World", CheckRunID: 128620228, Name: "Octocoders-linter",
		HeadSHA: "ec26c3e57ca3a959ca5aad62de7213c562f8c821", AppID: 29310, PullRequests: []int{2}, Sender: "Codertocat",
	}
	if err != nil || !reflect.DeepEqual(ev, want) {
		t.Errorf("check_run created:\n got %+v, %v\nwant %+v", ev, err, want)
	}
	ev, err = github.ParseEvent("check_suite", readFixture(t, "octokit+webhooks/payload-examples/api.github.com/check_suite/rerequested.payload.json"))
	wantSuite := compliance.CheckSuiteEvent{
		Action: "rerequested", Repo: "Codertocat/Hello-World", HeadSHA: "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
		AppID: 29310, PullRequests: []int{2}, Sender: "octocoders-linter[bot]",
	}
	if err != nil || !reflect.DeepEqual(ev, wantSuite) {
		t.Errorf("check_suite rerequested:\n got %+v, %v\nwant %+v", ev, err, wantSuite)
	}

	queued := readFixture(t, "octokit+webhooks/payload-examples/api.github.com/merge_group/checks_requested.payload.json")
	ev, err = github.ParseEvent("merge_group", queued)
	wantGroup := compliance.MergeGroupEvent{
		Action: "checks_requested", Repo: "octo-org/octo-repo",
		BaseSHA: "380387fbc80638b734a49e1be1c4dfec1c01b33c", HeadSHA: "2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d",
		BaseRef: "refs/heads/main", HeadRef: "refs/heads/gh-readonly-queue/main/pr-104-929f8209d40f77f4abc622a499c93a83babdbe64",
		Sender: "Codertocat",
	}
	if err != nil || !reflect.DeepEqual(ev, wantGroup) {
		t.Errorf("merge_group checks_requested:\n got %+v, %v\nwant %+v", ev, err, wantGroup)
	}
	// No real "destroyed" delivery is published: the real one, edited as GitHub documents it.
	var obj map[string]any
	if err := json.Unmarshal(queued, &obj); err != nil {
		t.Fatal(err)
	}
	obj["action"], obj["reason"] = "destroyed", "dequeued"
	destroyed, _ := json.Marshal(obj)
	ev, err = github.ParseEvent("merge_group", destroyed)
	wantGroup.Action, wantGroup.Reason = "destroyed", "dequeued"
	if err != nil || !reflect.DeepEqual(ev, wantGroup) {
		t.Errorf("merge_group destroyed:\n got %+v, %v\nwant %+v", ev, err, wantGroup)
	}
	obj["reason"] = 7
	bad, _ := json.Marshal(obj)
	if ev, err := github.ParseEvent("merge_group", bad); err == nil {
		t.Errorf("a numeric reason accepted: %+v", ev)
	}

	// Without requested_action, a pressed button cannot be told apart: refused by name.
	if _, err := github.ParseEvent("check_run", []byte(`{"action":"requested_action","check_run":{"id":1,"name":"sockembot","head_sha":"abc"},"repository":{"full_name":"a/b"}}`)); !errors.Is(err, github.ErrIncompleteEvent) ||
		!strings.Contains(err.Error(), "requested_action.identifier") {
		t.Errorf("requested_action without its identifier: %v", err)
	}
	for event, body := range map[string]string{
		"check_run":   `{"action":"created","check_run":{"id":1,"name":"sockembot"},"repository":{"full_name":"a/b"}}`,
		"check_suite": `{"action":"rerequested","check_suite":{"id":1},"repository":{"full_name":"a/b"}}`,
		"merge_group": `{"action":"checks_requested","merge_group":{"head_sha":"abc"},"repository":{"full_name":"a/b"}}`,
	} {
		if _, err := github.ParseEvent(event, []byte(body)); !errors.Is(err, github.ErrIncompleteEvent) || !strings.Contains(err.Error(), "sha") {
			t.Errorf("%s without a sha: %v", event, err)
		}
	}
	// Timestamps that are not RFC 3339 (a real octokit example): a clean error, never a panic.
	if ev, err := github.ParseEvent("check_run", readFixture(t, "octokit+webhooks/payload-examples/api.github.com/check_run/rerequested.payload.json")); err == nil || ev != nil {
		t.Errorf("undecodable check_run: %+v, %v", ev, err)
	}
}

func TestParseEventDeploymentProtectionRule(t *testing.T) {
	body := readFixture(t, "open-security-tools+ost-environment-gate/testdata/deployment-protection-requested.json")
	ev, err := github.ParseEvent("deployment_protection_rule", body)
	want := compliance.DeploymentProtectionRuleEvent{
		Repo: "zaniebot/release-authenticator-example", Environment: "release", Event: "workflow_dispatch",
		CallbackURL:  "https://api.github.com/repos/zaniebot/release-authenticator-example/actions/runs/23625057533/deployment_protection_rule",
		DeploymentID: 4189575565, SHA: "47efb7196c2a1a2fd3f52f2c59f0e2dd3d0e4d54", Ref: "main", RunID: 23625057533,
		// The payload's repository has no html_url: the page is github.com's, for api.github.com.
		RunURL: "https://github.com/zaniebot/release-authenticator-example/actions/runs/23625057533",
		Sender: "zaniebot",
	}
	if err != nil || !reflect.DeepEqual(ev, want) {
		t.Fatalf("deployment_protection_rule:\n got %+v, %v\nwant %+v", ev, err, want)
	}

	edit := func(f func(map[string]any)) []byte {
		var obj map[string]any
		if err := json.Unmarshal(body, &obj); err != nil {
			t.Fatal(err)
		}
		f(obj)
		b, _ := json.Marshal(obj)
		return b
	}
	// The documented shape: deployment.sha, workflow_run.html_url, the repository's html_url.
	ev, err = github.ParseEvent("deployment_protection_rule", edit(func(o map[string]any) {
		o["deployment"] = map[string]any{"id": 1, "sha": "aaaa", "ref": "release/1", "environment": "release"}
		o["workflow_run"] = map[string]any{"id": 99, "html_url": "https://ghe.example/o/r/actions/runs/99"}
		o["pull_requests"] = []any{map[string]any{"number": 5}}
	}))
	if d, ok := ev.(compliance.DeploymentProtectionRuleEvent); err != nil || !ok || d.SHA != "aaaa" || d.Ref != "release/1" || d.RunID != 99 ||
		d.RunURL != "https://ghe.example/o/r/actions/runs/99" || !reflect.DeepEqual(d.PullRequests, []int{5}) {
		t.Errorf("documented shape: %+v, %v", ev, err)
	}
	ev, err = github.ParseEvent("deployment_protection_rule", edit(func(o map[string]any) {
		delete(o, "workflow_run")
		o["repository"].(map[string]any)["html_url"] = "https://github.com/zaniebot/release-authenticator-example"
	}))
	if d, ok := ev.(compliance.DeploymentProtectionRuleEvent); err != nil || !ok || d.RunID != 23625057533 ||
		d.RunURL != "https://github.com/zaniebot/release-authenticator-example/actions/runs/23625057533" {
		t.Errorf("run from the callback URL: %+v, %v", ev, err)
	}
	ev, err = github.ParseEvent("deployment_protection_rule", edit(func(o map[string]any) {
		delete(o, "workflow_run")
		o["deployment_callback_url"] = "https://api.github.com/repos/zaniebot/release-authenticator-example/deployment_protection_rule"
	}))
	if !errors.Is(err, github.ErrIncompleteEvent) || !strings.Contains(err.Error(), "workflow_run.id") {
		t.Errorf("no run id anywhere: %+v, %v", ev, err)
	}
}

// A push names every path its commits added, modified or removed, once each, sorted.
func TestParsePushPaths(t *testing.T) {
	push := func(t *testing.T, body []byte) compliance.PushEvent {
		t.Helper()
		ev, err := github.ParseEvent("push", body)
		if err != nil {
			t.Fatal(err)
		}
		p, ok := ev.(compliance.PushEvent)
		if !ok {
			t.Fatalf("%T", ev)
		}
		return p
	}
	newBranch := readFixture(t, "octokit+webhooks/payload-examples/api.github.com/push/with-new-branch.payload.json")
	if got := push(t, newBranch).Paths; !reflect.DeepEqual(got, []string{"README.md"}) {
		t.Errorf("octokit's push adding README.md: %q", got)
	}
	// prow's two commits modify the same three files.
	prow := readFixture(t, "kubernetes-sigs+prow/cmd/phony/examples/push.json")
	want := []string{"prow/Makefile", "prow/cluster/splice_deployment.yaml", "prow/cmd/splice/main.go"}
	if got := push(t, prow).Paths; !reflect.DeepEqual(got, want) {
		t.Errorf("prow's push: %q, want %q", got, want)
	}
	// The same push, its first commit also deleting the repository policy.
	removed := strings.Replace(string(prow), "\"removed\": [\n\n      ]", "\"removed\": [\".sockembot.yml\"]", 1)
	if removed == string(prow) {
		t.Fatal("fixture changed: no empty removed list to fill")
	}
	if got := push(t, []byte(removed)).Paths; !reflect.DeepEqual(got, append([]string{".sockembot.yml"}, want...)) {
		t.Errorf("a push deleting the policy: %q", got)
	}
	// A tag push has no commits, and no paths.
	if got := push(t, readFixture(t, "octokit+webhooks/payload-examples/api.github.com/push/payload.json")).Paths; len(got) != 0 {
		t.Errorf("tag push: %q", got)
	}
}
