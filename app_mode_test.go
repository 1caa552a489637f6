package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sockembot/bot"
	"sockembot/bot/bottest"
	fakegithub "sockembot/integrations/fake/github"
	fakejira "sockembot/integrations/fake/jira"
	fakeslack "sockembot/integrations/fake/slack"
)

// The binary as a GitHub App, black box: only GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY_FILE and
// GITHUB_APP_INSTALLATION_ID (no GITHUB_TOKEN), webhooks signed as GitHub signs them, the fake
// GitHub accepting nothing but a JWT signed with the App's key (for installation tokens) and an
// installation token (for everything else). Check runs go green and red on pull request heads,
// merge groups pass and fail, GitHub Actions deployments are approved and rejected.
func TestRunAsGitHubAppEndToEnd(t *testing.T) {
	gh := fakegithub.New(fakegithub.Options{App: &fakegithub.AppOptions{}})
	t.Cleanup(gh.Close)
	jr := fakejira.New(fakejira.Options{Mode: fakejira.Cloud, User: jiraUser, Token: jiraToken})
	t.Cleanup(jr.Close)
	jr.AddProject("PAY")
	jr.AddIssue("PAY-1", "In Progress")
	jr.AddIssue("PAY-2", "In Progress")
	sl := fakeslack.New(fakeslack.Config{ChannelNames: map[string]string{"C0RELEASE": "releases"}})
	t.Cleanup(sl.Close)

	// One organisation, one installation: octo-org/hello (pull requests and a merge queue) and
	// octo-org/payments (deployed from GitHub Actions).
	hello := gh.AddRepo("octo-org/hello", "main")
	hello.Commit("Initial commit", "alice")
	good := hello.OpenPR(fakegithub.PR{Title: "PAY-1 Refunds", Author: "alice", Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}})
	bad := hello.OpenPR(fakegithub.PR{Title: "Tweak retries", Author: "mallory"})
	good2 := hello.OpenPR(fakegithub.PR{Title: "PAY-2 Receipts", Author: "carol", Reviews: []fakegithub.Review{{User: "dave", State: "APPROVED"}}})
	pay := gh.AddRepo("octo-org/payments", "main")
	pay.Commit("Initial import", "alice")
	pay.Deploy(pay.Tag("v1"), "production", "success")
	pay.MergePR(fakegithub.PR{Title: "PAY-1 Refunds endpoint", Author: "alice", Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.Squash)
	approveSHA := pay.Head()
	approveRun := pay.WaitingRun("production", approveSHA, "main", "alice")

	dir := t.TempDir()
	keyFile := filepath.Join(dir, "sockembot.private-key.pem")
	if err := os.WriteFile(keyFile, gh.AppPrivateKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "sockembot.yaml")
	os.WriteFile(cfg, []byte("release_channel: C0RELEASE\nservices:\n  payments:\n    repo: octo-org/payments\n    environments: [production]\nschedules: {reconcile: \"\", daily_summary: \"\"}\n"), 0o600)
	port := freePort(t)
	const hookSecret = "app-hook-secret"
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"GITHUB_API_URL=" + gh.URL(),
		"GITHUB_APP_ID=" + fmt.Sprint(gh.AppID()),
		"GITHUB_APP_PRIVATE_KEY_FILE=" + keyFile,
		"GITHUB_APP_INSTALLATION_ID=" + fmt.Sprint(gh.InstallationID("octo-org")),
		"JIRA_URL=" + jr.URL(), "JIRA_USER=" + jiraUser, "JIRA_TOKEN=" + jiraToken,
		"SOCKEMBOT_EVIDENCE_KEY=" + testEvidenceKey,
		"SLACK_APP_TOKEN=" + sl.AppToken(), "SLACK_BOT_TOKEN=" + sl.BotToken(), "SLACK_API_URL=" + sl.APIURL(),
		"GITHUB_WEBHOOK_SECRET=" + hookSecret, "PORT=" + port, "DATABASE_URL=" + filepath.Join(dir, "evidence.db"),
		"SOCKEMBOT_CONFIG=" + cfg, "METRICS_ADDR=off",
	}

	bot := startRun(t, env, dir, sl)
	until, stderr := bot.until, bot.stderr
	deliveries := 0
	deliver := func(event string, body []byte) {
		t.Helper()
		deliveries++
		mac := hmac.New(sha256.New, []byte(hookSecret))
		mac.Write(body)
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+port+"/webhooks/github", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("app-e2e-%d", deliveries))
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		var resp *http.Response
		until("the webhook endpoint", func() bool {
			var err error
			resp, err = http.DefaultClient.Do(req.Clone(req.Context()))
			if err == nil {
				return true
			}
			req.Body, _ = req.GetBody()
			return false
		})
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s delivery: %s", event, resp.Status)
		}
	}
	conclusion := func(r *fakegithub.Repo, sha string) string {
		runs := r.CheckRuns(sha)
		if len(runs) == 0 || runs[len(runs)-1].Status != "completed" {
			return ""
		}
		return runs[len(runs)-1].Conclusion
	}

	// Pull requests: octokit's "opened" example, made into each pull request of octo-org/hello.
	opened := bottest.Fixture(t, bottest.Octokit+"pull_request/opened.payload.json")
	for _, pr := range []fakegithub.PRInfo{good, bad} {
		deliver("pull_request", bottest.Retarget(opened, bottest.OctokitHead, pr.HeadSHA, "Codertocat/Hello-World", "octo-org/hello",
			`"number": 2`, fmt.Sprintf(`"number": %d`, pr.Number), "/pulls/2", fmt.Sprintf("/pulls/%d", pr.Number)))
	}
	until("check runs on both pull requests", func() bool {
		return conclusion(hello, good.HeadSHA) != "" && conclusion(hello, bad.HeadSHA) != ""
	})
	if got := conclusion(hello, good.HeadSHA); got != "success" {
		t.Errorf("compliant pull request: check run %s", got)
	}
	if got := conclusion(hello, bad.HeadSHA); got != "failure" {
		t.Errorf("non-compliant pull request: check run %s", got)
	}

	// Merge queue: octokit's merge_group example, one group of compliant pull requests, one with
	// the non-compliant one.
	groupPayload := bottest.Fixture(t, bottest.Octokit+"merge_group/checks_requested.payload.json")
	okGroup := hello.QueuePRs(fakegithub.MergeCommit, good.Number, good2.Number)
	badGroup := hello.QueuePRs(fakegithub.MergeCommit, good.Number, bad.Number)
	for _, g := range []fakegithub.MergeGroup{okGroup, badGroup} {
		deliver("merge_group", bottest.Retarget(groupPayload, "2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d", g.HeadSHA,
			"380387fbc80638b734a49e1be1c4dfec1c01b33c", g.BaseSHA, "refs/heads/gh-readonly-queue/main/pr-104-929f8209d40f77f4abc622a499c93a83babdbe64", g.HeadRef,
			"octo-org/octo-repo", "octo-org/hello"))
	}
	until("check runs on both merge groups", func() bool {
		return conclusion(hello, okGroup.HeadSHA) != "" && conclusion(hello, badGroup.HeadSHA) != ""
	})
	if got := conclusion(hello, okGroup.HeadSHA); got != "success" {
		t.Errorf("compliant merge group: check run %s", got)
	}
	if got := conclusion(hello, badGroup.HeadSHA); got != "failure" {
		t.Errorf("merge group with a non-compliant pull request: check run %s", got)
	}

	// GitHub Actions: a compliant release is approved; then one with an unreviewed change is
	// rejected.
	protection := bottest.Fixture(t, "open-security-tools+ost-environment-gate/testdata/deployment-protection-requested.json")
	protect := func(run fakegithub.ActionsRun, sha string) []byte {
		return bottest.Retarget(protection,
			"https://api.github.com/repos/zaniebot/release-authenticator-example/actions/runs/23625057533/deployment_protection_rule", run.CallbackURL,
			`"environment": "release"`, `"environment": "production"`, "zaniebot/release-authenticator-example", "octo-org/payments",
			"47efb7196c2a1a2fd3f52f2c59f0e2dd3d0e4d54", sha, "23625057533", fmt.Sprint(run.RunID), "4189575565", fmt.Sprint(run.DeploymentID))
	}
	deliver("deployment_protection_rule", protect(approveRun, approveSHA))
	until("the answer to the first Actions deployment", func() bool { return len(gh.ProtectionReviews()) == 1 })
	pay.Deploy(approveSHA, "production", "success")
	pay.MergePR(fakegithub.PR{Title: "Tweak retries", Author: "mallory"}, fakegithub.Squash)
	rejectSHA := pay.Head()
	rejectRun := pay.WaitingRun("production", rejectSHA, "main", "mallory")
	deliver("deployment_protection_rule", protect(rejectRun, rejectSHA))
	until("the answer to the second Actions deployment", func() bool { return len(gh.ProtectionReviews()) == 2 })
	reviews := gh.ProtectionReviews()
	if reviews[0].RunID != approveRun.RunID || reviews[0].State != "approved" {
		t.Errorf("first Actions deployment: %+v", reviews[0])
	}
	if reviews[1].RunID != rejectRun.RunID || reviews[1].State != "rejected" || !strings.Contains(reviews[1].Comment, "missing_approval") {
		t.Errorf("second Actions deployment: %+v", reviews[1])
	}
	until("both digests", func() bool { return len(sl.Messages("C0RELEASE")) >= 2 })

	bot.stop()

	// No repository call without an installation token; tokens only ever minted with the JWT.
	for _, rq := range gh.Requests() {
		switch {
		case strings.HasPrefix(rq.Route, "POST /app/installations/"), strings.HasPrefix(rq.Route, "GET /app"):
			if rq.Auth != "jwt" {
				t.Errorf("%s %s with auth %q, want the App's JWT", rq.Method, rq.Path, rq.Auth)
			}
		case strings.Contains(rq.Path, "/repos/"):
			if rq.Auth != "installation" || rq.Status == http.StatusUnauthorized {
				t.Errorf("%s %s with auth %q (status %d), want an installation token", rq.Method, rq.Path, rq.Auth, rq.Status)
			}
		}
	}
	if gh.TokensIssued() == 0 {
		t.Error("no installation token was minted")
	}
	if strings.Contains(stderr.String(), "ghs_") || strings.Contains(stderr.String(), "PRIVATE KEY") {
		t.Error("run logged an installation token or the key")
	}
	var started map[string]any
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, "sockembot starting") {
			json.Unmarshal([]byte(line), &started)
		}
	}
	if started["github"] != "app" {
		t.Errorf("start log %v, want github=app", started)
	}

	// `check` runs as the App too, with the key as text this time.
	checkEnv := append(withoutVar(env, "GITHUB_APP_PRIVATE_KEY_FILE"), "GITHUB_APP_PRIVATE_KEY="+strings.ReplaceAll(string(gh.AppPrivateKeyPEM()), "\n", `\n`))
	res := sockembot(t, checkEnv, dir, "check", "--repo", "octo-org/payments", "--base", "v1", "--head", approveSHA)
	if res.code != 0 || !strings.Contains(res.stdout, "#1") {
		t.Errorf("check as the App: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
}

// The App's settings are refused at start when they cannot work, naming the variables and never
// printing a key.
func TestRunRefusesBadGitHubAppSettings(t *testing.T) {
	w := newWorld(t, fakejira.Cloud)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sockembot.yaml")
	os.WriteFile(cfg, []byte("release_channel: C0RELEASE\nservices:\n  payments:\n    repo: acme/payments\n    environments: [production]\n"), 0o600)
	notKey := filepath.Join(dir, "not-a-key.pem")
	os.WriteFile(notKey, []byte("-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END RSA PRIVATE KEY-----\n"), 0o600)
	base := append(w.env("SOCKEMBOT_CONFIG="+cfg), "SLACK_APP_TOKEN=xapp-1-A0-1-x", "SLACK_BOT_TOKEN=xoxb-x", "GITHUB_WEBHOOK_SECRET=x")
	noToken := withoutVar(base, "GITHUB_TOKEN")
	with := func(env []string, extra ...string) []string { return append(slices.Clone(env), extra...) }
	for _, c := range []struct {
		name string
		env  []string
		says string
	}{
		{"token and App both", with(base, "GITHUB_APP_ID=4242", "GITHUB_APP_PRIVATE_KEY_FILE="+notKey), "GITHUB_TOKEN and GITHUB_APP_ID are both set"},
		{"App without a key", with(noToken, "GITHUB_APP_ID=4242"), "GITHUB_APP_PRIVATE_KEY_FILE"},
		{"key without an App", with(noToken, "GITHUB_APP_PRIVATE_KEY_FILE="+notKey), "GITHUB_APP_ID is not set"},
		{"App id not a number", with(noToken, "GITHUB_APP_ID=sockembot", "GITHUB_APP_PRIVATE_KEY_FILE="+notKey), `GITHUB_APP_ID must be the App's numeric id (got "sockembot")`},
		{"both key forms", with(noToken, "GITHUB_APP_ID=4242", "GITHUB_APP_PRIVATE_KEY_FILE="+notKey, "GITHUB_APP_PRIVATE_KEY=x"), "set one"},
		{"key file missing", with(noToken, "GITHUB_APP_ID=4242", "GITHUB_APP_PRIVATE_KEY_FILE="+filepath.Join(dir, "absent.pem")), "absent.pem"},
		{"key not a key", with(noToken, "GITHUB_APP_ID=4242", "GITHUB_APP_PRIVATE_KEY_FILE="+notKey), "private key"},
		{"installation not a number", with(noToken, "GITHUB_APP_ID=4242", "GITHUB_APP_PRIVATE_KEY_FILE="+notKey, "GITHUB_APP_INSTALLATION_ID=all"), "GITHUB_APP_INSTALLATION_ID must be a numeric"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := sockembot(t, c.env, dir, "run")
			if res.code != 2 || !strings.Contains(res.stderr, "refusing to start") || !strings.Contains(res.stderr, c.says) {
				t.Fatalf("exit %d, want 2 saying %q:\n%s", res.code, c.says, res.stderr)
			}
			if strings.Contains(res.stderr, "c2VjcmV0") {
				t.Error("the key's content was printed")
			}
		})
	}
}

// The App manifest subscribes to exactly the events the bot acts on, and asks for the least the
// bot needs: nothing is written that is not in this list.
func TestGitHubAppManifest(t *testing.T) {
	data, err := os.ReadFile("github-app-manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Name           string               `json:"name"`
		HookAttributes struct{ URL string } `json:"hook_attributes"`
		Public         *bool                `json:"public"`
		Permissions    map[string]string    `json:"default_permissions"`
		Events         []string             `json:"default_events"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	events := slices.Sorted(slices.Values(m.Events))
	if want := bot.WebhookEvents(); !slices.Equal(events, want) {
		t.Errorf("manifest events %v, want the events the bot handles %v", events, want)
	}
	want := map[string]string{
		"metadata": "read", "contents": "read", "pull_requests": "write", "checks": "write", "statuses": "write",
		"deployments": "write", "actions": "read", "merge_queues": "read",
	}
	if fmt.Sprint(m.Permissions) != fmt.Sprint(want) {
		t.Errorf("manifest permissions %v, want %v", m.Permissions, want)
	}
	if m.Public == nil || *m.Public || !strings.HasSuffix(m.HookAttributes.URL, "/webhooks/github") || m.Name == "" {
		t.Errorf("manifest: public %v, hook %q, name %q", m.Public, m.HookAttributes.URL, m.Name)
	}
}
