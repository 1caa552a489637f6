package main

// End-to-end tests of the sockembot binary: built once, run as a process against the fake GitHub
// (served under /api/v3/, like GitHub Enterprise) and the fake Jira, with only the environment
// the README documents. They pin the CLI contract other tools parse: exit codes, the JSON shape
// and the failure report.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"sockembot/bot/bottest"
	"sockembot/bot/demo"
	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	fakejira "sockembot/integrations/fake/jira"
	fakeslack "sockembot/integrations/fake/slack"
	"sockembot/integrations/store"
	"sockembot/integrations/store/storetest"
)

// Distinctive secrets: no output may ever contain them.
const (
	ghToken   = "ghp_e2eSecretToken0123456789abcdef"
	jiraUser  = "ci-bot@acme.test"
	jiraToken = "ATATT3xE2ESecretJiraToken9876543210"
)

// testEvidenceKey is the SOCKEMBOT_EVIDENCE_KEY the tests' worlds run with: random, and, like the
// tokens, never in any output.
var testEvidenceKey = hex.EncodeToString(store.NewKey())

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sockembot-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sockembot")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build sockembot: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// world is one repository with a base tag and the outside systems it lives in.
type world struct {
	gh   *fakegithub.Server
	jira *fakejira.Server
	repo *fakegithub.Repo
	base string // tag name
}

func newWorld(t *testing.T, mode fakejira.Mode) *world {
	t.Helper()
	gh := fakegithub.New(fakegithub.Options{Token: ghToken})
	t.Cleanup(gh.Close)
	opts := fakejira.Options{Mode: mode, Token: jiraToken}
	if mode == fakejira.Cloud {
		opts.User = jiraUser
	}
	jr := fakejira.New(opts)
	t.Cleanup(jr.Close)
	jr.AddProject("PAY")
	jr.AddIssue("PAY-1", "In Progress")
	jr.AddIssue("PAY-2", "Done")
	jr.AddIssue("PAY-3", "To Do")
	r := gh.AddRepo("acme/payments", "main")
	r.Commit("Initial commit", "alice")
	r.Tag("v1.0.0")
	return &world{gh: gh, jira: jr, repo: r, base: "v1.0.0"}
}

func (w *world) env(extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"GITHUB_API_URL=" + w.gh.URL(),
		"GITHUB_TOKEN=" + ghToken,
		"JIRA_URL=" + w.jira.URL(),
		"JIRA_TOKEN=" + jiraToken,
		"SOCKEMBOT_EVIDENCE_KEY=" + testEvidenceKey,
	}
	if w.jira.Mode() == fakejira.Cloud {
		env = append(env, "JIRA_USER="+jiraUser)
	}
	return append(env, extra...)
}

// compliantPR merges a PR with a ticket and an independent approval on its last commit.
func (w *world) compliantPR(title string) fakegithub.PRInfo {
	return w.repo.MergePR(fakegithub.PR{Title: title, Author: "alice", MergedBy: "alice",
		Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.Squash)
}

type result struct {
	code           int
	stdout, stderr string
}

// sockembot runs the binary in dir (a temp dir unless given) with env.
func sockembot(t *testing.T, env []string, dir string, args ...string) result {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := result{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		t.Fatalf("run sockembot %v: %v", args, err)
	}
	for _, secret := range []string{ghToken, jiraToken, testEvidenceKey} {
		if strings.Contains(res.stdout, secret) || strings.Contains(res.stderr, secret) {
			t.Errorf("sockembot %v printed a token or the evidence key", args)
		}
	}
	for _, kv := range env {
		// Whatever key a test ran it with.
		if key, ok := strings.CutPrefix(kv, "SOCKEMBOT_EVIDENCE_KEY="); ok && len(key) >= 8 && strings.Contains(res.stdout+res.stderr, key) {
			t.Errorf("sockembot %v printed the evidence key", args)
		}
	}
	return res
}

// check runs `sockembot check` of base..main. Unless extra names a DATABASE_URL, it runs twice
// with one new store: the first run fetches every fact from GitHub and records the merged pull
// requests' facts, the second reuses them. Both must come to the same verdict, exit code and
// output (apart from saying where the facts came from); the second run's result is returned.
func (w *world) check(t *testing.T, format string, extra ...string) result {
	t.Helper()
	args := []string{"check", "--repo", "acme/payments", "--base", w.base, "--head", "main", "--format", format}
	if slices.ContainsFunc(extra, func(kv string) bool { return strings.HasPrefix(kv, "DATABASE_URL=") }) {
		return sockembot(t, w.env(extra...), "", args...)
	}
	env := w.env(append(extra, "DATABASE_URL=sqlite://"+filepath.Join(t.TempDir(), "evidence.db"))...)
	cold := sockembot(t, env, "", args...)
	warm := sockembot(t, env, "", args...)
	if warm.code != cold.code || withoutRecorded(warm.stdout) != withoutRecorded(cold.stdout) {
		t.Errorf("the same check from a warm store differs:\ncold (exit %d):\n%s\nwarm (exit %d):\n%s", cold.code, cold.stdout, warm.code, warm.stdout)
	}
	return warm
}

// What says where a change's facts came from: a "recorded" object in the JSON report, a line in
// the text one.
var (
	recordedJSON = regexp.MustCompile(`(?s),?\s*"recorded": \{[^}]*\}`)
	recordedText = regexp.MustCompile(`(?m)^.*facts recorded.*\n`)
)

// withoutRecorded is a report without what says where its facts came from.
func withoutRecorded(out string) string {
	return recordedText.ReplaceAllString(recordedJSON.ReplaceAllString(out, ""), "")
}

// The JSON contract, field by field, as the issue states it.
type jsonReport struct {
	Repo      *string      `json:"repo"`
	Base      *string      `json:"base"`
	Head      *string      `json:"head"`
	BaseSHA   *string      `json:"base_sha"`
	HeadSHA   *string      `json:"head_sha"`
	Compliant *bool        `json:"compliant"`
	Changes   []jsonChange `json:"changes"`
}

type jsonChange struct {
	Kind     string   `json:"kind"`
	Number   int      `json:"number"`
	Title    string   `json:"title"`
	URL      string   `json:"url"`
	Author   string   `json:"author"`
	MergedBy string   `json:"merged_by"`
	MergeSHA string   `json:"merge_sha"`
	Commits  []string `json:"commits"`
	Tickets  []struct {
		Key    string `json:"key"`
		Status string `json:"status"`
		URL    string `json:"url"`
	} `json:"tickets"`
	Approvals []struct {
		User string    `json:"user"`
		At   time.Time `json:"at"`
	} `json:"approvals"`
	Compliant  *bool `json:"compliant"`
	Violations []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"violations"`
}

func decodeReport(t *testing.T, res result) jsonReport {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(res.stdout), &raw); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s\nstderr: %s", err, res.stdout, res.stderr)
	}
	for _, k := range []string{"repo", "base", "head", "base_sha", "head_sha", "compliant", "changes"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	var rep jsonReport
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Compliant == nil || rep.Repo == nil || rep.HeadSHA == nil {
		t.Fatalf("JSON lacks required fields: %s", res.stdout)
	}
	var changes []map[string]json.RawMessage
	json.Unmarshal(raw["changes"], &changes)
	for _, c := range changes {
		for _, k := range []string{"kind", "number", "title", "url", "author", "merged_by", "merge_sha", "commits", "tickets", "approvals", "compliant", "violations"} {
			if _, ok := c[k]; !ok {
				t.Errorf("a change lacks %q: %v", k, c)
			}
		}
	}
	return rep
}

func codes(c jsonChange) []string {
	var out []string
	for _, v := range c.Violations {
		out = append(out, v.Code)
	}
	return out
}

func TestCheckCompliantRangeExitsZero(t *testing.T) {
	for _, mode := range []fakejira.Mode{fakejira.Cloud, fakejira.DataCenter} {
		t.Run(mode.String(), func(t *testing.T) {
			w := newWorld(t, mode)
			pr := w.compliantPR("PAY-1 Refunds endpoint")
			res := w.check(t, "json")
			if res.code != 0 {
				t.Fatalf("exit %d, want 0\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
			}
			rep := decodeReport(t, res)
			if !*rep.Compliant || *rep.Repo != "acme/payments" || *rep.Base != "v1.0.0" || *rep.Head != "main" ||
				*rep.HeadSHA != w.repo.Head() || len(*rep.BaseSHA) != 40 {
				t.Fatalf("report header wrong: %s", res.stdout)
			}
			if len(rep.Changes) != 1 {
				t.Fatalf("want 1 change, got %d", len(rep.Changes))
			}
			c := rep.Changes[0]
			if c.Kind != "pull_request" || c.Number != pr.Number || c.Author != "alice" || c.MergedBy != "alice" ||
				c.MergeSHA != pr.MergeSHA || !strings.HasSuffix(c.URL, fmt.Sprintf("/acme/payments/pull/%d", pr.Number)) ||
				len(c.Commits) != 1 || c.Commits[0] != pr.MergeSHA || c.Compliant == nil || !*c.Compliant || len(c.Violations) != 0 {
				t.Errorf("change wrong: %+v", c)
			}
			if len(c.Tickets) != 1 || c.Tickets[0].Key != "PAY-1" || c.Tickets[0].Status != "In Progress" ||
				!strings.HasSuffix(c.Tickets[0].URL, "/browse/PAY-1") {
				t.Errorf("tickets wrong: %+v", c.Tickets)
			}
			if len(c.Approvals) != 1 || c.Approvals[0].User != "bob" || c.Approvals[0].At.IsZero() {
				t.Errorf("approvals wrong: %+v", c.Approvals)
			}
		})
	}
}

func TestCheckNonCompliantRangeExitsOneNamingEveryViolation(t *testing.T) {
	w := newWorld(t, fakejira.Cloud)
	w.jira.AddIssue("PAY-4", "In Progress")
	prs := []fakegithub.PRInfo{
		// missing_ticket + missing_approval
		w.repo.MergePR(fakegithub.PR{Title: "Tweak ranking weights", Author: "frank"}, fakegithub.MergeCommit),
		// ticket_not_found ("UTF-8" is not a ticket: no such project)
		w.repo.MergePR(fakegithub.PR{Title: "PAY-999 handle UTF-8 names", Author: "alice",
			Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.Squash),
		// ticket_status
		w.repo.MergePR(fakegithub.PR{Title: "PAY-3 not started yet", Author: "alice",
			Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.Rebase),
		// stale_approval: approved the first of two commits
		w.repo.MergePR(fakegithub.PR{Title: "PAY-1 pushed after approval", Author: "alice", Commits: 2,
			Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED", OnCommit: 1}}}, fakegithub.Squash),
		// changes_requested: carol's latest review requests changes
		w.repo.MergePR(fakegithub.PR{Title: "PAY-4 risky change", Author: "alice",
			Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}, {User: "carol", State: "CHANGES_REQUESTED"}}}, fakegithub.Squash),
	}
	push := w.repo.Commit("hotfix: typo in config", "frank") // direct_push

	res := w.check(t, "json")
	if res.code != 1 {
		t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	rep := decodeReport(t, res)
	if *rep.Compliant {
		t.Fatal("report says compliant")
	}
	byNumber := map[int]jsonChange{}
	var direct *jsonChange
	for i, c := range rep.Changes {
		if c.Kind == "direct_push" {
			direct = &rep.Changes[i]
			continue
		}
		byNumber[c.Number] = c
	}
	want := map[int][]string{
		prs[0].Number: {"missing_ticket", "missing_approval"},
		prs[1].Number: {"ticket_not_found"},
		prs[2].Number: {"ticket_status"},
		prs[3].Number: {"stale_approval"},
		prs[4].Number: {"changes_requested"},
	}
	for n, wantCodes := range want {
		c, ok := byNumber[n]
		if !ok {
			t.Errorf("PR #%d missing from the report", n)
			continue
		}
		got := codes(c)
		for _, code := range wantCodes {
			if !slices.Contains(got, code) {
				t.Errorf("PR #%d: violations %v lack %s", n, got, code)
			}
		}
		if *c.Compliant {
			t.Errorf("PR #%d marked compliant", n)
		}
		for _, v := range c.Violations {
			if v.Message == "" {
				t.Errorf("PR #%d: violation %s has no message", n, v.Code)
			}
		}
	}
	if c := byNumber[prs[1].Number]; len(c.Tickets) != 1 || c.Tickets[0].Key != "PAY-999" {
		t.Errorf("UTF-8 must not be taken for a ticket: %+v", c.Tickets)
	}
	if c := byNumber[prs[2].Number]; len(c.Commits) != 1 {
		t.Errorf("a rebase-merged single-commit PR owns its one copied commit, got %v", c.Commits)
	}
	if direct == nil || !slices.Equal(direct.Commits, []string{push}) || !slices.Contains(codes(*direct), "direct_push") {
		t.Errorf("direct push not reported: %+v", direct)
	} else if direct.Number != 0 || !strings.HasSuffix(direct.URL, "/acme/payments/commit/"+push) || direct.Author != "frank" {
		t.Errorf("direct push: number %d, url %q, author %q", direct.Number, direct.URL, direct.Author)
	}

	// The same range as text: a readable digest naming the failures.
	text := w.check(t, "text")
	if text.code != 1 {
		t.Fatalf("text: exit %d", text.code)
	}
	for _, s := range []string{fmt.Sprintf("#%d", prs[0].Number), "PAY-999", "direct push", push[:7]} {
		if !strings.Contains(text.stdout, s) {
			t.Errorf("text digest lacks %q:\n%s", s, text.stdout)
		}
	}
}

func TestCheckGitHubDownExitsTwoWithAFailureReport(t *testing.T) {
	w := newWorld(t, fakejira.Cloud)
	w.compliantPR("PAY-1 Refunds endpoint")
	w.gh.FailNext(1000, "/compare/", http.StatusInternalServerError)
	res := w.check(t, "json")
	if res.code != 2 {
		t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	if strings.Contains(res.stdout, `"compliant"`) {
		t.Errorf("stdout claims a verdict: %s", res.stdout)
	}
	for _, s := range []string{"could not", "error:", "500"} {
		if !strings.Contains(res.stderr, s) {
			t.Errorf("failure report lacks %q:\n%s", s, res.stderr)
		}
	}
}

// Swapped refs compare to nothing: that is not an empty, compliant release.
func TestCheckSwappedRefsExitTwo(t *testing.T) {
	w := newWorld(t, fakejira.Cloud)
	w.compliantPR("PAY-1 Refunds endpoint")
	res := sockembot(t, w.env(), "", "check", "--repo", "acme/payments", "--base", "main", "--head", w.base, "--format", "json")
	if res.code != 2 || !strings.Contains(res.stderr, "head is behind base") || !strings.Contains(res.stderr, "swapped") {
		t.Fatalf("exit %d, want 2 saying head is behind base\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
}

func TestCheckJiraOutageExitsTwoNeverZero(t *testing.T) {
	for _, mode := range []fakejira.Mode{fakejira.Cloud, fakejira.DataCenter} {
		t.Run(mode.String(), func(t *testing.T) {
			w := newWorld(t, mode)
			w.compliantPR("PAY-1 Refunds endpoint")
			w.jira.SetOutage(true)
			res := w.check(t, "json")
			if res.code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
			}
			if !strings.Contains(res.stderr, "503") {
				t.Errorf("failure report does not say Jira answered 503:\n%s", res.stderr)
			}
		})
	}
}

func TestCheckSecondaryRateLimitThatClearsExitsZero(t *testing.T) {
	for _, status := range []int{http.StatusForbidden, http.StatusTooManyRequests} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			w := newWorld(t, fakejira.Cloud)
			w.compliantPR("PAY-1 Refunds endpoint")
			w.gh.SecondaryRateLimit(2, status)
			res := w.check(t, "json")
			if res.code != 0 {
				t.Fatalf("exit %d, want 0\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
			}
			limited := 0
			for _, r := range w.gh.Requests() {
				if r.Status == status {
					limited++
				}
			}
			if limited != 2 {
				t.Errorf("the fake rate-limited %d requests, want 2 (the test did not exercise the wait)", limited)
			}
		})
	}
}

func TestCheckBadInvocationsExitTwoWithUsage(t *testing.T) {
	w := newWorld(t, fakejira.Cloud)
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(policy, []byte("approvals:\n  requried: 2\n"), 0o600)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no repo", []string{"check", "--base", "v1", "--head", "v2"}, "--repo is required (OWNER/NAME)"},
		{"repo not OWNER/NAME", []string{"check", "--repo", "acme", "--base", "v1", "--head", "v2"}, `--repo must be OWNER/NAME (got "acme")`},
		{"no head", []string{"check", "--repo", "a/b", "--base", "v1"}, "--head is required"},
		{"stray argument", []string{"check", "--repo", "a/b", "--base", "v1", "--head", "v2", "extra"}, `unexpected argument "extra"`},
		{"unknown flag", []string{"check", "--repo", "a/b", "--base", "v1", "--head", "v2", "--verbose"}, "flag provided but not defined"},
		{"bad format", []string{"check", "--repo", "a/b", "--base", "v1", "--head", "v2", "--format", "yaml"}, `--format must be text or json (got "yaml")`},
		{"policy typo", []string{"check", "--repo", "acme/payments", "--base", "v1.0.0", "--head", "main", "--policy", policy}, "requried"},
		{"unknown command", []string{"chekc"}, "unknown command"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := sockembot(t, w.env(), "", c.args...)
			if res.code != 2 || !strings.Contains(res.stderr, c.want) {
				t.Fatalf("exit %d (want 2), stderr lacks %q:\n%s", res.code, c.want, res.stderr)
			}
		})
	}
	t.Run("no Jira", func(t *testing.T) {
		env := slices.DeleteFunc(w.env(), func(s string) bool { return strings.HasPrefix(s, "JIRA_URL=") })
		res := sockembot(t, env, "", "check", "--repo", "acme/payments", "--base", "v1.0.0", "--head", "main")
		if res.code != 2 || !strings.Contains(res.stderr, "JIRA_URL") {
			t.Fatalf("exit %d, stderr:\n%s", res.code, res.stderr)
		}
	})
}

func TestCheckRecordsEvidenceOnlyWithAStore(t *testing.T) {
	w := newWorld(t, fakejira.Cloud)
	w.compliantPR("PAY-1 Refunds endpoint")

	// Without DATABASE_URL nothing is written, not even the default SQLite file.
	dir := t.TempDir()
	res := sockembot(t, w.env(), dir, "check", "--repo", "acme/payments", "--base", "v1.0.0", "--head", "main")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("check without DATABASE_URL wrote files: %v", entries)
	}

	db := filepath.Join(t.TempDir(), "evidence.db")
	env := w.env("DATABASE_URL=" + db)
	// Evidence written without the key could be rewritten by anyone who can write the database.
	if res := sockembot(t, withoutVar(env, "SOCKEMBOT_EVIDENCE_KEY"), "", "check", "--repo", "acme/payments", "--base", "v1.0.0", "--head", "main"); res.code != 2 ||
		!strings.Contains(res.stderr, "SOCKEMBOT_EVIDENCE_KEY is not set") || !strings.Contains(res.stderr, "openssl rand -hex 32") {
		t.Fatalf("check with a store but no evidence key: exit %d\n%s", res.code, res.stderr)
	}
	if res := sockembot(t, env, "", "check", "--repo", "acme/payments", "--base", "v1.0.0", "--head", "main"); res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	verify := sockembot(t, env, "", "audit", "verify")
	// The check, and the facts of the merged pull request it fetched (kept for later checks).
	if verify.code != 0 || !strings.Contains(verify.stdout, "2 evidence records") {
		t.Fatalf("audit verify: exit %d\n%s%s", verify.code, verify.stdout, verify.stderr)
	}
	// The head line anchors the chain: a later verify checks the record still has that hash.
	var seq int64
	var hash string
	if _, err := fmt.Sscanf(verify.stdout[strings.Index(verify.stdout, "head:"):], "head: record %d, MAC %s", &seq, &hash); err != nil || seq != 2 || len(hash) != 64 {
		t.Fatalf("head line: %v in %q", err, verify.stdout)
	}
	if res := sockembot(t, env, "", "audit", "verify", "--anchor", fmt.Sprintf("%d:%s", seq, hash)); res.code != 0 || !strings.Contains(res.stdout, "anchor: record 2 still has MAC") {
		t.Fatalf("verify with the right anchor: %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	other := strings.Repeat("0", 64)
	if res := sockembot(t, env, "", "audit", "verify", "--anchor", "1:"+other); res.code != 1 || !strings.Contains(res.stdout, "TAMPERED: evidence record 1 no longer has the anchored MAC") {
		t.Fatalf("verify with an anchor the chain no longer matches: %d\n%s", res.code, res.stdout)
	}
	if res := sockembot(t, env, "", "audit", "verify", "--anchor", "one:abc"); res.code != 2 || !strings.Contains(res.stderr, "--anchor is SEQ:MAC") {
		t.Fatalf("verify with a malformed anchor: %d\n%s", res.code, res.stderr)
	}
	export := sockembot(t, env, "", "audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--format", "csv")
	if export.code != 0 || !strings.HasPrefix(export.stdout, "deployed_at,") {
		t.Fatalf("audit export: exit %d\n%s%s", export.code, export.stdout, export.stderr)
	}
	events := sockembot(t, env, "", "audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--kind", "events", "--format", "json")
	if events.code != 0 || !strings.Contains(events.stdout, `"kind":"check_run"`) {
		t.Fatalf("audit export --kind events: exit %d\n%s%s", events.code, events.stdout, events.stderr)
	}
	if bad := sockembot(t, env, "", "audit", "export", "--from", "yesterday"); bad.code != 2 || !strings.Contains(bad.stderr, "usage") {
		t.Fatalf("audit export with a bad date: exit %d\n%s", bad.code, bad.stderr)
	}
	// A word that is not a flag would end flag parsing and drop the --repo after it.
	if bad := sockembot(t, env, "", "audit", "export", "--from", "2026-01-01", "--to", "2026-03-31", "extra", "--repo", "acme/other"); bad.code != 2 || !strings.Contains(bad.stderr, `unexpected argument "extra"`) {
		t.Fatalf("audit export with a stray word: exit %d\n%s%s", bad.code, bad.stdout, bad.stderr)
	}
	for _, period := range [][2]string{{"2026-03-31", "2026-01-01"}, {"2026-01-01", "2300-01-01"}, {"1600-01-01", "2026-01-01"}} {
		if bad := sockembot(t, env, "", "audit", "export", "--from", period[0], "--to", period[1]); bad.code != 2 || !strings.Contains(bad.stderr, "period") {
			t.Errorf("audit export %s..%s: exit %d, want 2 naming the period\n%s%s", period[0], period[1], bad.code, bad.stdout, bad.stderr)
		}
	}
}

// An auditor who runs audit in the wrong directory, or with a mistyped DATABASE_URL, must not be
// told "chain intact" about an empty database the command just created.
func TestAuditNeedsAnExistingStore(t *testing.T) {
	dir := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	for _, args := range [][]string{{"audit", "verify"}, {"audit", "export", "--from", "2026-01-01", "--to", "2026-03-31"}} {
		res := sockembot(t, env, dir, args...)
		if res.code != 2 || !strings.Contains(res.stderr, "no evidence store at sockembot.db") {
			t.Errorf("%v in an empty directory: exit %d, want 2 naming the missing store\n%s%s", args, res.code, res.stdout, res.stderr)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("audit created files: %v", entries)
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if res := sockembot(t, append(env, "DATABASE_URL="+empty), dir, "audit", "verify"); res.code != 2 || !strings.Contains(res.stderr, "holds no sockembot evidence store") {
		t.Errorf("audit verify on a database without the schema: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

func TestCheckHonoursTheRepositoryPolicy(t *testing.T) {
	w := newWorld(t, fakejira.Cloud)
	w.compliantPR("PAY-1 Refunds endpoint")
	w.repo.SetFile(".sockembot.yml", "approvals:\n  required: 2\n")
	if res := w.check(t, "json"); res.code != 1 || !strings.Contains(res.stdout, "missing_approval") ||
		!strings.Contains(res.stdout, `"policy_source": "acme/payments/.sockembot.yml@`) {
		t.Fatalf("a repository asking for two approvals: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	// The caller asked for another policy: the output says which one decided.
	lax := filepath.Join(t.TempDir(), "lax.yaml")
	if err := os.WriteFile(lax, []byte("approvals: {required: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"check", "--repo", "acme/payments", "--base", w.base, "--head", "main", "--policy", lax}
	if res := sockembot(t, w.env(), "", args...); res.code != 1 || !strings.Contains(res.stderr, "the repository's own policy acme/payments/.sockembot.yml@") ||
		!strings.Contains(res.stdout, "policy: acme/payments/.sockembot.yml") {
		t.Fatalf("--policy beside a repository policy: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	w.repo.SetFile(".sockembot.yml", "approvals:\n  requried: 2\n")
	res := w.check(t, "json")
	if res.code != 2 || !strings.Contains(res.stderr, ".sockembot.yml in acme/payments is invalid") || !strings.Contains(res.stderr, "requried") {
		t.Fatalf("an invalid repository policy: exit %d\n%s", res.code, res.stderr)
	}
}

// A change in the range that edits .sockembot.yml is named a policy change in check's output and
// needs a policy owner, whom the CLI does not know: not compliant, and it says why.
func TestCheckLabelsAPolicyChange(t *testing.T) {
	w := newWorld(t, fakejira.Cloud)
	w.repo.MergePR(fakegithub.PR{Title: "PAY-1 Relax the policy", Author: "alice", Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}},
		Files: map[string]string{".sockembot.yml": "approvals: {required: 0}\n"}}, fakegithub.Squash)
	res := w.check(t, "text")
	for _, want := range []string{"POLICY CHANGE: edits the repository's policy file", "policy_owner_approval:", "policy_below_floor: writes a .sockembot.yml looser than the policy floor: approvals.required is 0; the floor is 1", "policy: global"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if res.code != 1 {
		t.Errorf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = w.check(t, "json")
	if !strings.Contains(res.stdout, `"policy_change": true`) {
		t.Errorf("JSON lacks policy_change:\n%s", res.stdout)
	}
}

// withoutVar is env without the variable name.
func withoutVar(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

func TestRunRefusesToStartWithAClearMessage(t *testing.T) {
	w := newWorld(t, fakejira.Cloud)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("release_channel: C0RELEASE\nservices:\n  payments:\n    repo: acme/payments\n    environments: [production]\n"), 0o600)
	typo := filepath.Join(dir, "typo.yaml")
	os.WriteFile(typo, []byte("release_channel: C0RELEASE\nservices:\n  payments:\n    repo: acme/payments\n    environments: [production]\n    enviroments: [staging]\n"), 0o600)
	norepo := filepath.Join(dir, "norepo.yaml")
	os.WriteFile(norepo, []byte("release_channel: C0RELEASE\nservices:\n  payments:\n    environments: [production]\n"), 0o600)
	slackEnv := []string{"SLACK_APP_TOKEN=xapp-1-A0-1-secretapp", "SLACK_BOT_TOKEN=xoxb-secretbot", "GITHUB_WEBHOOK_SECRET=s3cret-hook"}
	cases := []struct {
		name string
		env  []string
		says []string
	}{
		{"no Slack tokens", w.env("SOCKEMBOT_CONFIG="+good, "GITHUB_WEBHOOK_SECRET=x"), []string{"SLACK_APP_TOKEN must be set", "SLACK_BOT_TOKEN must be set"}},
		{"no GitHub token", withoutVar(w.env(append([]string{"SOCKEMBOT_CONFIG=" + good}, slackEnv...)...), "GITHUB_TOKEN"), []string{"or GITHUB_TOKEN must be set"}},
		{"no webhook secret", w.env(append([]string{"SOCKEMBOT_CONFIG=" + good}, slackEnv[:2]...)...), []string{"GITHUB_WEBHOOK_SECRET must be set"}},
		{"unknown config key", w.env(append([]string{"SOCKEMBOT_CONFIG=" + typo}, slackEnv...)...), []string{"enviroments"}},
		{"service without a repo", w.env(append([]string{"SOCKEMBOT_CONFIG=" + norepo}, slackEnv...)...), []string{`service "payments" has no repo`}},
		{"no config file", w.env(append([]string{"SOCKEMBOT_CONFIG=" + filepath.Join(dir, "absent.yaml")}, slackEnv...)...), []string{"absent.yaml"}},
		{"no evidence key", withoutVar(w.env(append([]string{"SOCKEMBOT_CONFIG=" + good}, slackEnv...)...), "SOCKEMBOT_EVIDENCE_KEY"),
			[]string{"SOCKEMBOT_EVIDENCE_KEY is not set", "openssl rand -hex 32"}},
		{"a short evidence key", append(withoutVar(w.env(append([]string{"SOCKEMBOT_CONFIG=" + good}, slackEnv...)...), "SOCKEMBOT_EVIDENCE_KEY"), "SOCKEMBOT_EVIDENCE_KEY=5ec7e75ec7e7"),
			[]string{"SOCKEMBOT_EVIDENCE_KEY is 6 bytes long: at least 32"}},
		{"an evidence key neither hex nor base64", append(withoutVar(w.env(append([]string{"SOCKEMBOT_CONFIG=" + good}, slackEnv...)...), "SOCKEMBOT_EVIDENCE_KEY"), "SOCKEMBOT_EVIDENCE_KEY=my evidence password!"),
			[]string{"SOCKEMBOT_EVIDENCE_KEY is neither hex nor base64"}},
		{"METRICS_ADDR without a port", w.env(append([]string{"SOCKEMBOT_CONFIG=" + good, "METRICS_ADDR=9090"}, slackEnv...)...),
			[]string{`METRICS_ADDR must be HOST:PORT (e.g. 127.0.0.1:9090) or off (got "9090")`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := sockembot(t, c.env, dir, "run")
			if res.code != 2 || !strings.Contains(res.stderr, "refusing to start") {
				t.Fatalf("exit %d, stderr:\n%s", res.code, res.stderr)
			}
			for _, s := range c.says {
				if !strings.Contains(res.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, res.stderr)
				}
			}
			for _, secret := range []string{"secretapp", "secretbot", "s3cret-hook", "5ec7e75ec7e7", "evidence password"} {
				if strings.Contains(res.stderr+res.stdout, secret) {
					t.Errorf("a secret was printed")
				}
			}
		})
	}
}

// The real `run` as a process: socket mode against the fake Slack, the webhook endpoint on
// $PORT, SQLite evidence; a deploy requested, checked, confirmed and recorded; then SIGTERM.
func TestRunServesADeployEndToEnd(t *testing.T) {
	w := newWorld(t, fakejira.Cloud)
	w.compliantPR("PAY-1 Refunds endpoint")
	sl := fakeslack.New(fakeslack.Config{ChannelNames: map[string]string{"C0RELEASE": "releases"}})
	t.Cleanup(sl.Close)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sockembot.yaml")
	os.WriteFile(cfg, []byte("release_channel: C0RELEASE\nservices:\n  payments:\n    repo: acme/payments\n    environments: [production]\nschedules: {reconcile: \"\", daily_summary: \"\"}\n"), 0o600)
	port, metricsPort := freePort(t), freePort(t)
	db := filepath.Join(dir, "evidence.db")
	env := w.env("SLACK_APP_TOKEN="+sl.AppToken(), "SLACK_BOT_TOKEN="+sl.BotToken(), "SLACK_API_URL="+sl.APIURL(),
		"GITHUB_WEBHOOK_SECRET=hook-secret", "PORT="+port, "DATABASE_URL="+db, "SOCKEMBOT_CONFIG="+cfg,
		"METRICS_ADDR=127.0.0.1:"+metricsPort, "METRICS_TOKEN=metrics-s3cret")

	bot := startRun(t, env, dir, sl)
	until, stderr := bot.until, bot.stderr
	until("/healthz", func() bool {
		resp, err := http.Get("http://127.0.0.1:" + port + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	// /metrics is on METRICS_ADDR, behind METRICS_TOKEN, and not on the public port.
	scrape := func(url, token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		if resp.StatusCode == http.StatusOK && !strings.Contains(body.String(), "sockembot_webhook_response_seconds") {
			t.Errorf("GET %s: 200 without sockembot's metrics", url)
		}
		return resp.StatusCode
	}
	until("the metrics listener", func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+metricsPort)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	for _, c := range []struct {
		url, token string
		want       int
	}{
		{"http://127.0.0.1:" + port + "/metrics", "metrics-s3cret", http.StatusNotFound},
		{"http://127.0.0.1:" + metricsPort + "/metrics", "", http.StatusUnauthorized},
		{"http://127.0.0.1:" + metricsPort + "/metrics", "wrong", http.StatusUnauthorized},
		{"http://127.0.0.1:" + metricsPort + "/metrics", "metrics-s3cret", http.StatusOK},
	} {
		if got := scrape(c.url, c.token); got != c.want {
			t.Errorf("GET %s with token %q: %d, want %d", c.url, c.token, got, c.want)
		}
	}
	sl.SendSlashCommand(fakeslack.SlashCommand{UserID: "U0ALICE", ChannelID: "C0RELEASE", Command: "/deploy", Text: "payments to production from v1.0.0"})
	until("the digest", func() bool { return len(sl.Messages("C0RELEASE")) == 1 })
	digest := sl.Messages("C0RELEASE")[0]
	if !strings.Contains(digest.Text, "1 change") {
		t.Fatalf("digest: %s", sl.Render())
	}
	sl.SendBlockAction(fakeslack.BlockAction{ActionID: "deploy_confirm", UserID: "U0ALICE", ChannelID: "C0RELEASE", MessageTS: digest.TS})
	until("the GitHub deployment", func() bool { return len(w.repo.Deployments()) == 1 })
	if d := w.repo.Deployments()[0]; d.SHA != w.repo.Head() || d.Environment != "production" {
		t.Errorf("deployment %+v", d)
	}
	until("the confirmation in the thread", func() bool { return len(sl.Thread("C0RELEASE", digest.TS)) >= 2 })

	bot.stop()
	for _, secret := range []string{ghToken, jiraToken, sl.BotToken(), sl.AppToken(), "hook-secret", "metrics-s3cret"} {
		if strings.Contains(stderr.String(), secret) {
			t.Errorf("run logged a secret")
		}
	}
	verify := sockembot(t, env, dir, "audit", "verify")
	if verify.code != 0 {
		t.Fatalf("audit verify after run: %d\n%s", verify.code, verify.stdout)
	}
	export := sockembot(t, env, dir, "audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--format", "json")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(export.stdout), &rows); err != nil || len(rows) != 1 || rows[0]["deployer"] != "U0ALICE" || rows[0]["compliant"] != true {
		t.Fatalf("export after the deploy: %v\n%s", err, export.stdout)
	}
}

// runningBot is `sockembot run` as a process, connected to the fake Slack.
type runningBot struct {
	t      *testing.T
	sl     *fakeslack.Server
	stderr *bytes.Buffer // stdout and stderr: the logs
	exited chan error
	cmd    *exec.Cmd
}

// startRun starts `sockembot run` with env in dir and waits until it connects to sl.
func startRun(t *testing.T, env []string, dir string, sl *fakeslack.Server) *runningBot {
	t.Helper()
	b := &runningBot{t: t, sl: sl, stderr: &bytes.Buffer{}, exited: make(chan error, 1), cmd: exec.Command(binary, "run")}
	b.cmd.Env, b.cmd.Dir = env, dir
	b.cmd.Stdout, b.cmd.Stderr = b.stderr, b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.exited <- b.cmd.Wait() }()
	t.Cleanup(func() { b.cmd.Process.Kill() })
	if !sl.WaitConnections(1, 20*time.Second) {
		t.Fatalf("sockembot run never connected to Slack:\n%s", b.stderr.String())
	}
	return b
}

// until polls cond until it holds, failing with what the fake Slack saw and the logs after 20 s.
func (b *runningBot) until(what string, cond func() bool) {
	b.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out waiting for %s\n%s\n%s", what, b.sl.Render(), b.stderr.String())
		}
	}
}

// stop sends SIGTERM and fails unless run exits cleanly within 20 s.
func (b *runningBot) stop() {
	b.t.Helper()
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-b.exited:
		if err != nil {
			b.t.Fatalf("run exited with %v after SIGTERM:\n%s", err, b.stderr.String())
		}
	case <-time.After(20 * time.Second):
		b.t.Fatal("run did not stop on SIGTERM")
	}
}

// METRICS_ADDR: unset is this host only, "off" is nowhere; run warns when the metrics are
// served beyond this host without a token.
func TestMetricsAddress(t *testing.T) {
	for in, want := range map[string]string{"": "127.0.0.1:9090", "off": "", ":9100": ":9100", "[::1]:9090": "[::1]:9090"} {
		if got, err := metricsAddress(in); err != nil || got != want {
			t.Errorf("METRICS_ADDR=%q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"9090", "OFF", "localhost", "http://127.0.0.1:9090"} {
		if got, err := metricsAddress(bad); err == nil {
			t.Errorf("METRICS_ADDR=%q accepted as %q", bad, got)
		}
	}
	for _, c := range []struct {
		addr  string
		token bool
		warns bool
	}{
		{"127.0.0.1:9090", false, false}, {"[::1]:9090", false, false}, {"localhost:9090", false, false}, {"", false, false},
		{":9090", false, true}, {"0.0.0.0:9090", false, true}, {"10.0.0.5:9090", false, true}, {":9090", true, false},
	} {
		if got := metricsWarning(c.addr, c.token); (got != "") != c.warns {
			t.Errorf("metricsWarning(%q, token %v) = %q", c.addr, c.token, got)
		}
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// --- the command line: help, usage errors, version, failure wording, demo --keep, run's warning ---

// helpSection is the lines of a help text's section (after "Title:" up to the next blank line).
func helpSection(help, title string) []string {
	_, rest, ok := strings.Cut(help, "\n"+title+":\n")
	if !ok {
		return nil
	}
	section, _, _ := strings.Cut(rest, "\n\n")
	return strings.Split(strings.TrimRight(section, "\n"), "\n")
}

// Every command's help, however asked for, goes to stdout with exit 0 and names the usage, every
// flag with what it means and its default, exactly the environment the command reads (one line
// each, saying what it is) and the exit codes.
func TestHelpNamesFlagsEnvironmentAndExitCodes(t *testing.T) {
	type flagDoc struct{ name, means, def string }
	cases := []struct {
		cmd   []string
		flags []flagDoc
		env   []string
		exit  []string
	}{
		{[]string{"check"}, []flagDoc{{"repo", "OWNER/NAME", ""}, {"base", "deployed now", ""}, {"head", "to be deployed", ""},
			{"policy", "policy YAML", "built-in policy"}, {"format", "text or json", `(default "text")`}},
			[]string{"GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY_FILE", "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_INSTALLATION_ID", "GITHUB_API_URL", "JIRA_URL", "JIRA_USER", "JIRA_TOKEN", "DATABASE_URL", "SOCKEMBOT_EVIDENCE_KEY"},
			[]string{"0 compliant", "1 not compliant", "2 the check could not run"}},
		{[]string{"run"}, nil,
			[]string{"SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "SLACK_API_URL", "GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY_FILE", "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_INSTALLATION_ID", "GITHUB_API_URL", "GITHUB_WEBHOOK_SECRET",
				"JIRA_URL", "JIRA_USER", "JIRA_TOKEN", "DATABASE_URL", "SOCKEMBOT_EVIDENCE_KEY", "PORT", "METRICS_ADDR", "METRICS_TOKEN", "SOCKEMBOT_CONFIG"},
			[]string{"0 stopped cleanly", "2 could not start"}},
		{[]string{"demo"}, []flagDoc{{"keep", "SQLite evidence store", "temporary directory"}}, nil, []string{"0 ", "2 "}},
		{[]string{"audit"}, nil, []string{"DATABASE_URL", "SOCKEMBOT_EVIDENCE_KEY"}, []string{"0 ", "1 tampered", "2 "}},
		{[]string{"audit", "export"}, []flagDoc{{"from", "first day", ""}, {"to", "last day", ""}, {"repo", "only this repository", ""},
			{"kind", "deployments", `(default "deployments")`}, {"format", "csv or json", `(default "csv")`}},
			[]string{"DATABASE_URL"}, []string{"0 exported", "2 could not export"}},
		{[]string{"audit", "verify"}, []flagDoc{{"anchor", "deploy's Slack thread", ""}, {"allow-empty", "accept an empty store", ""}},
			[]string{"DATABASE_URL", "SOCKEMBOT_EVIDENCE_KEY"}, []string{"0 intact", "1 tampered", "or empty", "2 could not verify", "no key"}},
		{[]string{"version"}, nil, nil, []string{"0"}},
	}
	for _, c := range cases {
		name := strings.Join(c.cmd, " ")
		// --help, -h, -help (Go's flag package takes all three) and `sockembot help CMD` agree.
		var first string
		for _, args := range [][]string{append(slices.Clone(c.cmd), "--help"), append(slices.Clone(c.cmd), "-h"),
			append(slices.Clone(c.cmd), "-help"), append([]string{"help"}, c.cmd...)} {
			res := sockembot(t, nil, "", args...)
			if res.code != 0 || res.stderr != "" {
				t.Fatalf("%v: exit %d, stderr %q: want 0 and the help on stdout", args, res.code, res.stderr)
			}
			if first == "" {
				first = res.stdout
			} else if res.stdout != first {
				t.Errorf("%v prints another help than %s --help:\n%s", args, name, res.stdout)
			}
		}
		help := first
		if !strings.HasPrefix(help, "usage: sockembot "+name) {
			t.Errorf("%s --help does not start with its usage line:\n%s", name, help)
		}
		flags := strings.Join(helpSection(help, "Flags"), "\n")
		for _, f := range c.flags {
			_, doc, ok := strings.Cut(flags, "-"+f.name+" ")
			if !ok { // a boolean flag: its name alone on the line
				_, doc, ok = strings.Cut(flags, "-"+f.name+"\n")
			}
			doc, _, _ = strings.Cut(doc, "\n  -") // up to the next flag
			if !ok || !strings.Contains(doc, f.means) || !strings.Contains(doc, f.def) {
				t.Errorf("%s --help: flag --%s lacks %q or its default %q:\n%s", name, f.name, f.means, f.def, help)
			}
		}
		if c.flags == nil && strings.Contains(help, "\nFlags:") {
			t.Errorf("%s --help lists flags it does not have:\n%s", name, help)
		}
		var env []string
		for _, line := range helpSection(help, "Environment") {
			fields := strings.Fields(line)
			if len(fields) < 3 { // the name, then what it is
				t.Errorf("%s --help: environment line %q does not say what the variable is", name, line)
				continue
			}
			env = append(env, fields[0])
		}
		if !slices.Equal(env, c.env) {
			t.Errorf("%s --help: environment %v, want %v", name, env, c.env)
		}
		exit := strings.Join(helpSection(help, "Exit codes"), " ")
		if i := strings.Index(help, "\nExit codes: "); i >= 0 {
			exit = help[i:]
		}
		for _, w := range c.exit {
			if !strings.Contains(exit, w) {
				t.Errorf("%s --help: exit codes lack %q:\n%s", name, w, help)
			}
		}
	}

	// sockembot --help: every command, and the exit codes.
	for _, args := range [][]string{{"--help"}, {"-h"}, {"-help"}, {"help"}} {
		res := sockembot(t, nil, "", args...)
		if res.code != 0 || res.stderr != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, res.code, res.stderr)
		}
		for _, w := range []string{"sockembot check --repo", "sockembot run", "sockembot demo [--keep DIR]", "sockembot audit export --from",
			"sockembot audit verify", "sockembot version", "--help", "Exit codes: 0", "1 not compliant", "2 could not run"} {
			if !strings.Contains(res.stdout, w) {
				t.Errorf("%v lacks %q:\n%s", args, w, res.stdout)
			}
		}
	}
}

// A wrong argument is said in one line naming the flag and the form it wants, then one line
// pointing at the command's --help, on stderr with exit 2: never the whole usage.
func TestUsageErrorsAreOneLineAndAPointerToHelp(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	kept := filepath.Join(dir, "kept")
	if err := os.MkdirAll(kept, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(kept, "sockembot.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	hash := strings.Repeat("ab", 32)
	rng := []string{"--repo", "acme/payments", "--base", "v1", "--head", "v2"}
	cases := []struct {
		args []string
		cmd  string // whose --help the pointer names ("" for sockembot's own)
		want string
	}{
		{[]string{"chekc"}, "", `sockembot: unknown command "chekc" (the commands are check, run, demo, audit, version)`},
		{[]string{"help", "chekc"}, "", `unknown command "chekc"`},
		{[]string{"-x"}, "", "sockembot: flag provided but not defined: -x"},
		{[]string{"--verbose=true", "check"}, "", "flag provided but not defined: -verbose"},
		{[]string{"check"}, "check", "sockembot check: --repo is required (OWNER/NAME)"},
		{[]string{"check", "--repo", "acme", "--base", "v1", "--head", "v2"}, "check", `sockembot check: --repo must be OWNER/NAME (got "acme")`},
		{[]string{"check", "--repo", "acme/pay/ments", "--base", "v1", "--head", "v2"}, "check", `--repo must be OWNER/NAME (got "acme/pay/ments")`},
		{[]string{"check", "--repo", "acme/payments", "--head", "v2"}, "check", "sockembot check: --base is required (a branch, tag or commit SHA)"},
		{append(append([]string{"check"}, rng...), "--format", "xml"), "check", `sockembot check: --format must be text or json (got "xml")`},
		{append([]string{"check", "-x"}, rng...), "check", "sockembot check: flag provided but not defined: -x"},
		{append(append([]string{"check"}, rng...), "foo"), "check", `sockembot check: unexpected argument "foo"`},
		{[]string{"check", "--repo"}, "check", "flag needs an argument: -repo"},
		{[]string{"audit"}, "audit", "sockembot audit: say export, report or verify"},
		{[]string{"audit", "--repo", "acme/payments", "export"}, "audit", "sockembot audit: flag provided but not defined: -repo (flags go after export, report or verify)"},
		{[]string{"audit", "purge"}, "audit", `sockembot audit: unknown subcommand "purge"`},
		{[]string{"audit", "export"}, "audit export", "sockembot audit export: --from is required (YYYY-MM-DD or an RFC 3339 time)"},
		{[]string{"audit", "export", "--from", "2026-01-01"}, "audit export", "sockembot audit export: --to is required"},
		{[]string{"audit", "export", "--from", "yesterday", "--to", "2026-01-31"}, "audit export", `sockembot audit export: --from must be a date (YYYY-MM-DD) or an RFC 3339 time (got "yesterday")`},
		{[]string{"audit", "export", "--from", "2026-01-01", "--to", "2026-01-31", "--repo", "payments"}, "audit export", `sockembot audit export: --repo must be OWNER/NAME (got "payments")`},
		{[]string{"audit", "export", "--from", "2026-01-01", "--to", "2026-01-31", "--format", "xlsx"}, "audit export", `--format must be csv or json (got "xlsx")`},
		{[]string{"audit", "verify", "--anchor", "42"}, "audit verify", `sockembot audit verify: --anchor is SEQ:MAC`},
		{[]string{"audit", "verify", "--anchor", "4x:" + hash}, "audit verify", `--anchor is SEQ:MAC`},
		{[]string{"audit", "verify", "--anchor", "0:" + hash}, "audit verify", `--anchor is SEQ:MAC`},
		{[]string{"audit", "verify", "--anchor", "4:" + strings.Repeat("zz", 32)}, "audit verify", `--anchor is SEQ:MAC`},
		{[]string{"audit", "verify", "now"}, "audit verify", `unexpected argument "now"`},
		{[]string{"demo", "--keep", file}, "demo", "sockembot demo: --keep must be a directory"},
		{[]string{"demo", "--keep", kept}, "demo", "sockembot demo: --keep " + fmt.Sprintf("%q", kept) + " already holds a demo store"},
		{[]string{"run", "now"}, "run", `sockembot run: unexpected argument "now"`},
		{[]string{"version", "--short"}, "version", "sockembot version: flag provided but not defined: -short"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			res := sockembot(t, nil, dir, c.args...)
			pointer := "Run 'sockembot --help' for usage."
			if c.cmd != "" {
				pointer = "Run 'sockembot " + c.cmd + " --help' for usage."
			}
			lines := strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n")
			if res.code != 2 || res.stdout != "" || len(lines) != 2 || !strings.Contains(lines[0], c.want) || lines[1] != pointer {
				t.Fatalf("exit %d, stdout %q, stderr:\n%s\nwant exit 2, nothing on stdout, and on stderr one line with %q, then %q", res.code, res.stdout, res.stderr, c.want, pointer)
			}
		})
	}
	// No arguments at all: the overview, but as a usage error.
	if res := sockembot(t, nil, dir); res.code != 2 || !strings.Contains(res.stderr, "Usage:") {
		t.Errorf("no arguments: exit %d\n%s", res.code, res.stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("usage errors wrote files: %v", entries)
	}
}

// sockembot version says the module, its version, the commit it was built from (or plainly that
// it does not know), whether the tree was modified, and the Go version.
func TestVersionSaysWhatItWasBuiltFrom(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		res := sockembot(t, nil, "", args...)
		if res.code != 0 || res.stderr != "" || !strings.HasPrefix(res.stdout, "sockembot ") || !strings.Contains(res.stdout, "\ngo: go1.") {
			t.Fatalf("%v: exit %d\n%s%s", args, res.code, res.stdout, res.stderr)
		}
		// The test binary is built by go build: with VCS information from a checkout, without it
		// under -buildvcs=false. Either way the revision line says which.
		if !strings.Contains(res.stdout, "revision: unknown (built without VCS information") && !strings.Contains(res.stdout, "\ncommitted: ") {
			t.Errorf("%v: the revision line says neither the commit nor that it is unknown:\n%s", args, res.stdout)
		}
	}

	// A build that stamps VCS information names the commit, when it was made, and a modified tree.
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git: the VCS-stamped build cannot be tested")
	}
	stamped := filepath.Join(t.TempDir(), "sockembot")
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", stamped, ".").CombinedOutput(); err != nil {
		t.Skipf("not a buildable git checkout here (%v): %s", err, out)
	}
	out, err := exec.Command(stamped, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	var rev, committed string
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "revision: "); ok {
			rev = v
		}
		if v, ok := strings.CutPrefix(line, "committed: "); ok {
			committed = v
		}
	}
	if len(rev) != 40 || !strings.HasPrefix(text, "sockembot v") {
		t.Fatalf("a VCS-stamped build's version names no revision:\n%s", text)
	}
	if _, err := time.Parse(time.RFC3339, committed); err != nil {
		t.Errorf("committed %q: %v\n%s", committed, err, text)
	}
	if err := exec.Command(git, "cat-file", "-e", rev+"^{commit}").Run(); err != nil {
		t.Errorf("revision %s is not a commit of this repository: %v", rev, err)
	}
	// modified: yes appears exactly when the build info says the tree was modified.
	info, err := exec.Command("go", "version", "-m", stamped).Output()
	if err != nil {
		t.Fatal(err)
	}
	if modified := strings.Contains(string(info), "vcs.modified=true"); modified != strings.Contains(text, "modified: yes") {
		t.Errorf("vcs.modified=%v, but version says:\n%s", modified, text)
	}
}

// A failure report says what the failure means for the command that failed, not a check's words
// everywhere; a setting-up failure says what to set.
func TestFailureReportsSayWhatItMeansForTheCommand(t *testing.T) {
	checkWords := "The check did not complete, so nothing is treated as compliant."
	w := newWorld(t, fakejira.Cloud)
	w.compliantPR("PAY-1 Refunds endpoint")

	noJira := sockembot(t, withoutVar(w.env(), "JIRA_URL"), "", "check", "--repo", "acme/payments", "--base", w.base, "--head", "main")
	if noJira.code != 2 || !strings.Contains(noJira.stderr, "could not set up the check") || !strings.Contains(noJira.stderr, "JIRA_URL is not set: set it to the Jira site") ||
		!strings.Contains(noJira.stderr, "nothing is treated as compliant") || !strings.Contains(noJira.stderr, "sockembot check --help") {
		t.Errorf("check without JIRA_URL: exit %d\n%s", noJira.code, noJira.stderr)
	}
	noToken := sockembot(t, withoutVar(w.env(), "JIRA_TOKEN"), "", "check", "--repo", "acme/payments", "--base", w.base, "--head", "main")
	if noToken.code != 2 || !strings.Contains(noToken.stderr, "JIRA_TOKEN is not set: set it to a Jira Cloud API token") {
		t.Errorf("check without JIRA_TOKEN: exit %d\n%s", noToken.code, noToken.stderr)
	}

	w.gh.FailNext(1000, "/compare/", http.StatusInternalServerError)
	down := w.check(t, "text")
	if down.code != 2 || !strings.Contains(down.stderr, "could not check acme/payments") || !strings.Contains(down.stderr, checkWords) {
		t.Errorf("check with GitHub down keeps a check's words: exit %d\n%s", down.code, down.stderr)
	}

	absent := []string{"DATABASE_URL=sqlite://" + filepath.Join(t.TempDir(), "absent.db")}
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"audit", "verify"}, "The evidence chain was NOT verified: treat it as unverified, not as intact."},
		{[]string{"audit", "verify", "--anchor", "1:" + strings.Repeat("0", 64)}, "NOT verified"},
		{[]string{"audit", "export", "--from", "2026-01-01", "--to", "2026-01-31"}, "The export is missing or incomplete: do not use this output."},
		{[]string{"audit", "export", "--from", "2026-01-01", "--to", "2026-01-31", "--kind", "events", "--format", "json"}, "do not use this output"},
	} {
		res := sockembot(t, absent, "", c.args...)
		if res.code != 2 || !strings.Contains(res.stderr, "could not open the evidence store") || !strings.Contains(res.stderr, c.says) || strings.Contains(res.stderr, checkWords) {
			t.Errorf("%v on no store: exit %d\n%s", c.args, res.code, res.stderr)
		}
		if strings.Contains(res.stdout, "OK") || strings.Contains(res.stdout, "intact") {
			t.Errorf("%v on no store printed a verdict: %s", c.args, res.stdout)
		}
	}
	badScheme := sockembot(t, []string{"DATABASE_URL=mysql://db/evidence"}, "", "audit", "verify")
	if badScheme.code != 2 || !strings.Contains(badScheme.stderr, `unsupported database URL scheme "mysql"`) || !strings.Contains(badScheme.stderr, "NOT verified") {
		t.Errorf("audit verify with a mysql:// URL: exit %d\n%s", badScheme.code, badScheme.stderr)
	}

	// The demo cannot make its directory: the demo did not finish.
	file := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(file, nil, 0o600)
	demo := sockembot(t, nil, "", "demo", "--keep", filepath.Join(file, "store"))
	if demo.code != 2 || !strings.Contains(demo.stderr, "could not run the demo") || !strings.Contains(demo.stderr, "The demo did not finish") || strings.Contains(demo.stderr, checkWords) {
		t.Errorf("demo that cannot start: exit %d\n%s", demo.code, demo.stderr)
	}
}

// `demo --keep DIR` keeps the store and prints the commands that read it; pasted into a shell
// from another directory, they work. A directory that already holds a demo store is refused
// before anything runs (a second story on top of the first would not be the same story).
func TestDemoKeepPrintsCommandsThatWorkInAShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	cwd := t.TempDir()
	res := sockembot(t, []string{"PATH=" + os.Getenv("PATH")}, cwd, "demo", "--keep", "kept store") // relative, with a space
	if res.code != 0 || !strings.Contains(res.stdout, "━━ 9.") {
		t.Fatalf("demo --keep: exit %d\n%s", res.code, res.stderr)
	}
	db := filepath.Join(cwd, "kept store", "sockembot.db")
	if _, err := os.Stat(db); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.stderr, "The demo's evidence store is kept in "+db) {
		t.Errorf("demo --keep does not say where the store is:\n%s", res.stderr)
	}
	// The demo's random key is kept beside the store, readable only by its owner, and the
	// printed commands read it from there: it is never printed.
	keyFile := filepath.Join(cwd, "kept store", "evidence.key")
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the demo's evidence key file: %v, %v", fi, err)
	}
	key, _ := os.ReadFile(keyFile)
	if k := strings.TrimSpace(string(key)); len(k) != 64 || strings.Contains(res.stdout+res.stderr, k) {
		t.Errorf("the demo's key is %d characters, or was printed", len(k))
	}
	var commands []string
	for _, line := range strings.Split(res.stderr, "\n") {
		if strings.HasPrefix(line, "  DATABASE_URL=") {
			commands = append(commands, strings.TrimSpace(line))
		}
	}
	if len(commands) != 3 || !strings.HasSuffix(commands[0], " sockembot audit verify") || !strings.Contains(commands[1], " sockembot audit export --from ") ||
		!strings.Contains(commands[2], " sockembot audit report --from ") {
		t.Fatalf("want the audit verify, export and report commands, got %q in:\n%s", commands, res.stderr)
	}
	elsewhere := t.TempDir()
	path := "PATH=" + filepath.Dir(binary) + string(os.PathListSeparator) + os.Getenv("PATH")
	shell := func(command string) result {
		cmd := exec.Command(sh, "-c", command)
		cmd.Dir, cmd.Env = elsewhere, []string{path}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		r := result{stdout: out.String(), stderr: errb.String()}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			r.code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if v := shell(commands[0]); v.code != 0 || !strings.Contains(v.stdout, "evidence records, chain intact") {
		t.Errorf("%s: exit %d\n%s%s", commands[0], v.code, v.stdout, v.stderr)
	}
	if e := shell(commands[1]); e.code != 0 || !strings.HasPrefix(e.stdout, "deployed_at,") || !strings.Contains(e.stdout, "\n2024-03-") {
		t.Errorf("%s: exit %d, want the demo's deployments\n%s%s", commands[1], e.code, e.stdout, e.stderr)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("the printed commands wrote files where they ran: %v", entries)
	}
	// The report command writes the report it names, there, and nothing else.
	if r := shell(commands[2]); r.code != 0 || !strings.Contains(r.stdout, "Evidence chain: intact") || !strings.Contains(r.stdout, "report: report.html") {
		t.Errorf("%s: exit %d\n%s%s", commands[2], r.code, r.stdout, r.stderr)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 1 || entries[0].Name() != "report.html" {
		t.Errorf("the report command left %v where it ran, want report.html alone", entries)
	}

	again := sockembot(t, nil, cwd, "demo", "--keep", "kept store")
	if again.code != 2 || again.stdout != "" || !strings.Contains(again.stderr, "already holds a demo store") {
		t.Errorf("demo --keep on a kept store: exit %d\n%s%s", again.code, again.stdout, again.stderr)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"DATABASE_URL=sqlite:///tmp/demo-store/sockembot.db": "DATABASE_URL=sqlite:///tmp/demo-store/sockembot.db",
		"DATABASE_URL=sqlite:///tmp/my store/sockembot.db":   "DATABASE_URL='sqlite:///tmp/my store/sockembot.db'",
		"DATABASE_URL=sqlite:///tmp/it's/sockembot.db":       `DATABASE_URL='sqlite:///tmp/it'\''s/sockembot.db'`,
		"DATABASE_URL=sqlite:///tmp/$HOME/sockembot.db":      "DATABASE_URL='sqlite:///tmp/$HOME/sockembot.db'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

// envFunc is a getenv over the pairs given.
func envFunc(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// run warns when the evidence store is a local SQLite file on a platform whose filesystem does
// not outlive a restart: naming the variable that gave the platform away, and what to set.
func TestStoreWarningNamesThePlatformAndWhatToSet(t *testing.T) {
	platforms := []string{"DYNO", "RENDER", "FLY_APP_NAME", "K_SERVICE", "RAILWAY_ENVIRONMENT", "KUBERNETES_SERVICE_HOST"}
	for _, p := range platforms {
		for _, db := range []string{"", "sockembot.db", "/data/evidence.db", "sqlite:///data/evidence.db", "sqlite://evidence.db"} {
			w := storeWarning(envFunc(p, "x", "DATABASE_URL", db))
			for _, says := range []string{p, "the evidence chain will be lost on restart", "DATABASE_URL=postgres://"} {
				if !strings.Contains(w, says) {
					t.Errorf("%s with DATABASE_URL=%q: warning %q lacks %q", p, db, w, says)
				}
			}
		}
		for _, db := range []string{"postgres://db/evidence", "postgresql://u@db:5432/evidence?sslmode=require"} {
			if w := storeWarning(envFunc(p, "x", "DATABASE_URL", db)); w != "" {
				t.Errorf("%s with PostgreSQL: warning %q", p, w)
			}
		}
	}
	for _, db := range []string{"", "sqlite:///var/lib/sockembot/evidence.db"} {
		if w := storeWarning(envFunc("DATABASE_URL", db, "HOME", "/root")); w != "" {
			t.Errorf("no platform, DATABASE_URL=%q: warning %q", db, w)
		}
	}
	if w := storeWarning(envFunc("DYNO", "")); w != "" {
		t.Errorf("an empty DYNO is no platform: %q", w)
	}
}

// The warning reaches run's log as a warning, before the bot serves; and when the bot then stops
// on an error, the failure report says that nothing is gated.
func TestRunWarnsOfEphemeralStoreAndSaysItStopped(t *testing.T) {
	w := newWorld(t, fakejira.Cloud)
	sl := fakeslack.New(fakeslack.Config{ChannelNames: map[string]string{"C0RELEASE": "releases"}})
	t.Cleanup(sl.Close)
	// The port is taken: the HTTP server cannot listen, so the bot stops on an error at once.
	busy, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := fmt.Sprint(busy.Addr().(*net.TCPAddr).Port)
	for _, platform := range []string{"DYNO=web.1", ""} {
		t.Run(platform, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "sockembot.yaml")
			os.WriteFile(cfg, []byte("release_channel: C0RELEASE\nservices:\n  payments:\n    repo: acme/payments\n    environments: [production]\nschedules: {reconcile: \"\", daily_summary: \"\"}\n"), 0o600)
			env := w.env("SLACK_APP_TOKEN="+sl.AppToken(), "SLACK_BOT_TOKEN="+sl.BotToken(), "SLACK_API_URL="+sl.APIURL(),
				"GITHUB_WEBHOOK_SECRET=hook-secret", "PORT="+port, "SOCKEMBOT_CONFIG="+cfg, "METRICS_ADDR=off", platform) // no DATABASE_URL: ./sockembot.db
			res := sockembot(t, env, dir, "run")
			if res.code != 2 || !strings.Contains(res.stderr, "could not run the bot") ||
				!strings.Contains(res.stderr, "sockembot has stopped: nothing is gated") || strings.Contains(res.stderr, "The check did not complete") {
				t.Fatalf("run on a taken port: exit %d\n%s", res.code, res.stderr)
			}
			var warning string
			for _, line := range strings.Split(res.stderr, "\n") {
				var entry struct{ Level, Msg string }
				if json.Unmarshal([]byte(line), &entry) == nil && entry.Level == "warning" && strings.Contains(entry.Msg, "EVIDENCE AT RISK") {
					warning = entry.Msg
				}
			}
			if platform == "" {
				if warning != "" {
					t.Errorf("no platform, yet run warns: %s", warning)
				}
				return
			}
			for _, says := range []string{"DYNO", "local SQLite file", "the evidence chain will be lost on restart", "DATABASE_URL=postgres://"} {
				if !strings.Contains(warning, says) {
					t.Errorf("run's warning lacks %q: %q\n%s", says, warning, res.stderr)
				}
			}
			if strings.Contains(res.stderr, "hook-secret") || strings.Contains(res.stderr, sl.BotToken()) || strings.Contains(res.stderr, sl.AppToken()) {
				t.Error("run printed a secret")
			}
		})
	}
}

// --- the keyed evidence chain: anchors, the key, an empty store ---

// eachDatabase runs fn on a fresh SQLite file and, when SOCKEMBOT_TEST_POSTGRES_URL is set, on a
// fresh PostgreSQL schema; dbURL is what DATABASE_URL would say.
func eachDatabase(t *testing.T, fn func(t *testing.T, dbURL string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "sqlite://"+filepath.Join(t.TempDir(), "sockembot.db")) })
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv(storetest.PostgresEnv)
		if base == "" {
			t.Skip(storetest.PostgresEnv + " is not set")
		}
		fn(t, storetest.SchemaURL(t, base))
	})
}

// rawDB opens the store's database behind sockembot's back, as someone with write access to it
// could, without the append-only triggers.
func rawDB(t *testing.T, dbURL string) *sql.DB {
	t.Helper()
	driver, dsn, on := "sqlite", strings.TrimPrefix(dbURL, "sqlite://"), ""
	if strings.HasPrefix(dbURL, "postgres") {
		driver, dsn, on = "pgx", dbURL, " ON evidence"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, q := range []string{"DROP TRIGGER evidence_no_update" + on, "DROP TRIGGER evidence_no_delete" + on} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return db
}

// Cutting the chain's tail and moving its head back leaves a chain that is intact as far as it
// goes, which no MAC can catch. The head posted in a deploy's Slack thread is kept outside the
// database, and `audit verify --anchor` taken from it catches the cut.
func TestAnchorFromADeployThreadCatchesACutChain(t *testing.T) {
	eachDatabase(t, func(t *testing.T, dbURL string) {
		r := bottest.NewRig(t, func(o *demo.Options) { o.DatabaseURL = dbURL })
		ctx := context.Background()
		root, _ := r.ConfirmPayments()
		seq, mac := r.Anchor(root)
		confirmed, found, err := r.Store.LastRecord(ctx, compliance.EvidenceDeployConfirmed, "")
		if err != nil || !found || confirmed.Seq >= seq || confirmed.Seq < 2 {
			t.Fatalf("deploy_confirmed %d (%v), anchor %d", confirmed.Seq, err, seq)
		}
		env := []string{"PATH=" + os.Getenv("PATH"), "DATABASE_URL=" + dbURL, "SOCKEMBOT_EVIDENCE_KEY=" + hex.EncodeToString(r.Key)}
		anchor := fmt.Sprintf("%d:%s", seq, mac)
		if res := sockembot(t, env, "", "audit", "verify", "--anchor", anchor); res.code != 0 || !strings.Contains(res.stdout, "anchor: record "+fmt.Sprint(seq)+" still has MAC") {
			t.Fatalf("verify of the untouched chain with the thread's anchor: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}

		// The deploy going out is erased from the evidence: every record from its confirmation on.
		db := rawDB(t, dbURL)
		for _, q := range []string{"DELETE FROM evidence WHERE seq >= $1",
			"UPDATE chain_head SET seq = $1 - 1, hash = (SELECT hash FROM evidence WHERE seq = $1 - 1) WHERE id = 1"} {
			if _, err := db.Exec(q, confirmed.Seq); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		// What is left checks out, MACs and all: only the anchor can tell.
		if res := sockembot(t, env, "", "audit", "verify"); res.code != 0 {
			t.Fatalf("verify of the cut chain without an anchor: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		res := sockembot(t, env, "", "audit", "verify", "--anchor", anchor)
		if res.code != 1 || !strings.Contains(res.stdout, fmt.Sprintf("TAMPERED: evidence record %d, anchored outside the database, is gone: the chain now ends at record %d", seq, confirmed.Seq-1)) {
			t.Fatalf("verify of the cut chain with the thread's anchor: exit %d, want 1 naming the cut\n%s%s", res.code, res.stdout, res.stderr)
		}
	})
}

// plainHash is the chain's formula before it was keyed, which anyone can compute.
func plainHash(prev string, seq int64, at, kind, repo, subject, body string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\n%d\n%s\n%s\n%s\n%s\n%s", prev, seq, at, kind, repo, subject, body))
	return hex.EncodeToString(sum[:])
}

// audit verify checks the MACs only with the key, says so without it, refuses a malformed key
// without printing it, and does not call an empty store (or one with nothing keyed) intact.
func TestAuditVerifyKeyAndEmptyStore(t *testing.T) {
	eachDatabase(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		key := store.NewKey()
		st, err := store.Open(ctx, dbURL, store.WithKey(key)) // a store nothing was recorded in yet
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		base := []string{"PATH=" + os.Getenv("PATH"), "DATABASE_URL=" + dbURL}
		env := append(slices.Clone(base), "SOCKEMBOT_EVIDENCE_KEY="+hex.EncodeToString(key))
		if res := sockembot(t, env, "", "audit", "verify"); res.code != 1 || !strings.HasPrefix(res.stdout, "EMPTY: the evidence store holds no records") || !strings.Contains(res.stdout, "--allow-empty") {
			t.Errorf("verify of an empty store: exit %d, want 1\n%s%s", res.code, res.stdout, res.stderr)
		}
		if res := sockembot(t, env, "", "audit", "verify", "--allow-empty"); res.code != 0 || !strings.Contains(res.stdout, "OK: the evidence store is empty") {
			t.Errorf("verify --allow-empty of an empty store: exit %d, want 0\n%s%s", res.code, res.stdout, res.stderr)
		}

		st, err = store.Open(ctx, dbURL, store.WithKey(key))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if _, err := st.Append(ctx, compliance.Evidence{Kind: compliance.EvidenceCheckRun, Repo: "acme/payments", Subject: fmt.Sprintf("sha%d", i), Body: map[string]int{"n": i}}); err != nil {
				t.Fatal(err)
			}
		}
		st.Close()
		for _, args := range [][]string{{"audit", "verify"}, {"audit", "verify", "--allow-empty"}} {
			if res := sockembot(t, env, "", args...); res.code != 0 || !strings.Contains(res.stdout, "OK: 3 evidence records, chain intact\nkeyed: records 1-3, HMAC-SHA256, every MAC checked\nhead: record 3, MAC ") {
				t.Errorf("%v: exit %d\n%s%s", args, res.code, res.stdout, res.stderr)
			}
		}
		if res := sockembot(t, base, "", "audit", "verify"); res.code != 2 || !strings.Contains(res.stdout, "NOT VERIFIED: SOCKEMBOT_EVIDENCE_KEY is not set, so the MACs of the keyed part were not checked") ||
			!strings.Contains(res.stdout, "MACs NOT checked (no key)") || strings.Contains(res.stdout, "OK") {
			t.Errorf("verify without the key: exit %d, want 2\n%s%s", res.code, res.stdout, res.stderr)
		}
		wrong := append(slices.Clone(base), "SOCKEMBOT_EVIDENCE_KEY="+hex.EncodeToString(store.NewKey()))
		if res := sockembot(t, wrong, "", "audit", "verify"); res.code != 1 || !strings.Contains(res.stdout, "TAMPERED: evidence record 1") || !strings.Contains(res.stdout, "not the one the chain was written with") {
			t.Errorf("verify with another key: exit %d, want 1\n%s%s", res.code, res.stdout, res.stderr)
		}
		short := append(slices.Clone(base), "SOCKEMBOT_EVIDENCE_KEY=5ec7e75ec7e7")
		if res := sockembot(t, short, "", "audit", "verify"); res.code != 2 || !strings.Contains(res.stderr, "SOCKEMBOT_EVIDENCE_KEY is 6 bytes long") || strings.Contains(res.stdout+res.stderr, "5ec7e75ec7e7") {
			t.Errorf("verify with a short key: exit %d, want 2 naming the variable, not the value\n%s%s", res.code, res.stdout, res.stderr)
		}

		// Every record re-hashed the unkeyed way and the keyed part's start moved past the head:
		// the one rewrite no keyed record contradicts. It is not called intact.
		db := rawDB(t, dbURL)
		rows, err := db.Query("SELECT seq, at, kind, repo, subject, body FROM evidence ORDER BY seq")
		if err != nil {
			t.Fatal(err)
		}
		type row struct {
			seq                           int64
			at, kind, repo, subject, body string
		}
		var all []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.seq, &r.at, &r.kind, &r.repo, &r.subject, &r.body); err != nil {
				t.Fatal(err)
			}
			all = append(all, r)
		}
		rows.Close()
		prev := strings.Repeat("0", 64)
		for _, r := range all {
			h := plainHash(prev, r.seq, r.at, r.kind, r.repo, r.subject, r.body)
			if _, err := db.Exec("UPDATE evidence SET prev_hash = $1, hash = $2 WHERE seq = $3", prev, h, r.seq); err != nil {
				t.Fatal(err)
			}
			prev = h
		}
		if _, err := db.Exec("UPDATE chain_head SET hash = $1, keyed_from = 4 WHERE id = 1", prev); err != nil {
			t.Fatal(err)
		}
		if res := sockembot(t, env, "", "audit", "verify"); res.code != 2 || !strings.Contains(res.stdout, "NOT VERIFIED: none of the 3 records is keyed") || !strings.Contains(res.stdout, "unkeyed: records 1-3") {
			t.Errorf("verify of a chain passed off as unkeyed: exit %d, want 2\n%s%s", res.code, res.stdout, res.stderr)
		}
	})
}

// The done-when of issue 13: `sockembot check` run twice over one 200-PR release with one
// DATABASE_URL. The first run fetches each pull request and records its facts; the second asks
// GitHub at most 10 times (the refs, the compare pages, the policy file) whatever the number of
// pull requests, and comes to the same verdict. A facts record edited in the database is never
// believed: the check fails closed, naming it.
func TestCheckTwiceFromOneStoreAsksGitHubForTheRangeOnly(t *testing.T) {
	eachDatabase(t, func(t *testing.T, dbURL string) {
		w := newWorld(t, fakejira.Cloud)
		methods := []fakegithub.MergeMethod{fakegithub.MergeCommit, fakegithub.Squash, fakegithub.Rebase}
		var unapproved fakegithub.PRInfo
		for i := 1; i <= 200; i++ {
			key := fmt.Sprintf("PAY-%d", 100+i)
			w.jira.AddIssue(key, "In Progress")
			spec := fakegithub.PR{Title: key + " change", Author: "alice", Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}
			if i == 150 {
				spec.Reviews = nil
			}
			info := w.repo.MergePR(spec, methods[i%3])
			if i == 150 {
				unapproved = info
			}
		}
		env := w.env("DATABASE_URL=" + dbURL)
		args := []string{"check", "--repo", "acme/payments", "--base", w.base, "--head", "main", "--format", "json"}
		w.gh.ResetLog()
		cold := sockembot(t, env, "", args...)
		coldRequests := w.gh.Total()
		w.gh.ResetLog()
		w.jira.ResetRequests()
		warm := sockembot(t, env, "", args...)
		t.Logf("GitHub requests: cold %d, warm %d %v; Jira warm %d", coldRequests, w.gh.Total(), w.gh.Counts(), len(w.jira.Requests()))
		if warm.code != 1 || cold.code != 1 {
			t.Fatalf("exit codes cold %d, warm %d, want 1 (one pull request has no approval)\n%s", cold.code, warm.code, warm.stderr)
		}
		if n := w.gh.Total(); n > 10 {
			t.Errorf("the second check asked GitHub %d times, want at most 10: %v", n, w.gh.Counts())
		}
		if n := len(w.jira.Requests()); n > 4 {
			t.Errorf("the second check asked Jira %d times, want at most 4", n)
		}
		if withoutRecorded(warm.stdout) != withoutRecorded(cold.stdout) {
			t.Errorf("the warm report differs from the cold one")
		}
		rep := decodeReport(t, warm)
		if len(rep.Changes) != 200 {
			t.Fatalf("%d changes, want 200", len(rep.Changes))
		}
		for _, c := range rep.Changes {
			want := []string(nil)
			if c.Number == unapproved.Number {
				want = []string{"missing_approval"}
			}
			if !slices.Equal(codes(c), want) {
				t.Errorf("#%d: %v, want %v", c.Number, codes(c), want)
			}
		}
		if !strings.Contains(warm.stdout, `"recorded": {`) {
			t.Error("the warm report does not say its facts came from evidence")
		}
		text := sockembot(t, env, "", "check", "--repo", "acme/payments", "--base", w.base, "--head", "main")
		if !strings.Contains(text.stdout, "facts recorded: 200 of 200 pull requests from evidence records #") {
			t.Errorf("the text report does not say where the facts came from:\n%.600s", text.stdout)
		}

		// Someone with write access to the database gives the unapproved pull request an
		// approval in its recorded facts. The MAC no longer matches: the check fails closed.
		db := rawDB(t, dbURL)
		subject := "acme/payments@" + unapproved.MergeSHA
		res, err := db.Exec(`UPDATE evidence SET body = REPLACE(body, '"reviews":[]', '"reviews":[{"user":"mallory","state":"APPROVED","commit_id":"`+unapproved.HeadSHA+`","submitted_at":"2020-01-01T00:00:00Z"}]') WHERE kind = 'pull_request_facts' AND subject = $1`, subject)
		if n, _ := res.RowsAffected(); err != nil || n != 1 {
			t.Fatalf("tamper with %s: %v (%d rows)", subject, err, n)
		}
		forged := sockembot(t, env, "", args...)
		if forged.code != 2 || !strings.Contains(forged.stderr, "does not match its MAC") || strings.Contains(forged.stdout, `"compliant": true`) {
			t.Fatalf("check over a forged facts record: exit %d\n%s%s", forged.code, forged.stdout, forged.stderr)
		}
	})
}
