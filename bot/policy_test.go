package bot

import (
	"net/http"
	"strings"
	"testing"

	fakegithub "sockembot/integrations/fake/github"
	"sockembot/integrations/store"
)

// A repository's own .sockembot.yml replaces the global policy for that repository, at both
// gates, and a broken one fails closed naming the file.

func TestRepoPolicyTightensTheMergeGate(t *testing.T) {
	e := newGateEnv(t)
	e.jira.AddIssue("PAY-7", "In Review")
	r := e.gh.AddRepo("Codertocat/Hello-World", "master")
	r.Commit("Initial commit", "Codertocat")
	r.SetFile(RepoPolicyPath, "approvals:\n  required: 2\n")
	info := prAt(t, r, 2, fakegithub.PR{
		Title: "PAY-7 Update the README with new information.", Author: "Codertocat", Branch: "changes",
		Reviews: []fakegithub.Review{{User: "hubot", State: "APPROVED"}},
	}, "")
	e.deliver("pull_request", retarget(fixture(t, octokit+"pull_request/opened.payload.json"), octokitHead, info.HeadSHA))
	e.drain()
	got := statuses(r, info.HeadSHA)
	if len(got) != 2 || !strings.HasPrefix(got[1], "failure: ") {
		t.Fatalf("one approval under a repository policy that asks for two: statuses %q", got)
	}
	recs := e.records(store.KindCheckRun, info.HeadSHA)
	if len(recs) != 1 {
		t.Fatalf("%d check runs", len(recs))
	}
	ev := decodeBody[CheckRunEvidence](t, recs[0])
	if ev.PolicySource != "Codertocat/Hello-World/.sockembot.yml" || ev.Policy.Approvals.Required != 2 {
		t.Errorf("evidence policy source %q, required %d", ev.PolicySource, ev.Policy.Approvals.Required)
	}
}

func TestRepoPolicyLoosensTheMergeGate(t *testing.T) {
	e := newGateEnv(t)
	r := e.gh.AddRepo("Codertocat/Hello-World", "master")
	r.Commit("Initial commit", "Codertocat")
	// A docs repository that needs neither tickets nor reviews: the global policy would fail it.
	r.SetFile(RepoPolicyPath, "tickets: {required: false}\napprovals: {required: 0}\n")
	info := prAt(t, r, 2, fakegithub.PR{Title: "Fix a typo", Author: "Codertocat", Branch: "changes"}, "")
	e.deliver("pull_request", retarget(fixture(t, octokit+"pull_request/opened.payload.json"), octokitHead, info.HeadSHA))
	e.drain()
	if got := statuses(r, info.HeadSHA); len(got) != 2 || !strings.HasPrefix(got[1], "success") {
		t.Fatalf("statuses %q", got)
	}
}

func TestInvalidRepoPolicyFailsTheMergeGateClosed(t *testing.T) {
	for name, content := range map[string]string{
		"unknown key": "approvals:\n  requried: 2\n",
		"bad value":   "approvals:\n  required: -1\n",
		"not YAML":    "approvals: [\n",
	} {
		t.Run(name, func(t *testing.T) {
			e := newGateEnv(t)
			e.jira.AddIssue("PAY-7", "In Review")
			r := e.gh.AddRepo("Codertocat/Hello-World", "master")
			r.Commit("Initial commit", "Codertocat")
			r.SetFile(RepoPolicyPath, content)
			info := prAt(t, r, 2, fakegithub.PR{
				Title: "PAY-7 Update the README", Author: "Codertocat", Branch: "changes",
				Reviews: []fakegithub.Review{{User: "hubot", State: "APPROVED"}},
			}, "")
			e.deliver("pull_request", retarget(fixture(t, octokit+"pull_request/opened.payload.json"), octokitHead, info.HeadSHA))
			e.drain()
			got := statuses(r, info.HeadSHA)
			if len(got) != 2 || !strings.HasPrefix(got[1], "error: .sockembot.yml in Codertocat/Hello-World is invalid") {
				t.Fatalf("statuses %q", got)
			}
			if n := len([]rune(strings.TrimPrefix(got[1], "error: "))); n > maxStatusDescription {
				t.Errorf("description is %d characters, GitHub takes %d", n, maxStatusDescription)
			}
		})
	}
}

func TestRepoPolicyUnreadableFailsClosed(t *testing.T) {
	e := newGateEnv(t)
	e.jira.AddIssue("PAY-7", "In Review")
	r := e.gh.AddRepo("Codertocat/Hello-World", "master")
	r.Commit("Initial commit", "Codertocat")
	info := prAt(t, r, 2, fakegithub.PR{Title: "PAY-7 Update", Author: "Codertocat", Branch: "changes",
		Reviews: []fakegithub.Review{{User: "hubot", State: "APPROVED"}}}, "")
	e.gh.FailNext(1, "/contents/", http.StatusBadGateway)
	e.deliver("pull_request", retarget(fixture(t, octokit+"pull_request/opened.payload.json"), octokitHead, info.HeadSHA))
	e.drain()
	got := statuses(r, info.HeadSHA)
	if len(got) < 2 || !strings.HasPrefix(got[1], "error: .sockembot.yml in Codertocat/Hello-World could not be read") {
		t.Fatalf("statuses %q", got)
	}
}

func TestRepoPolicyAtTheDeployGate(t *testing.T) {
	t.Run("stricter policy refuses", func(t *testing.T) {
		r := newSlackRig(t)
		r.GitHub.Repo("acme/payments").SetFile(RepoPolicyPath, "approvals:\n  required: 2\n")
		r.command(demoAlice, demoRelease, "payments to production")
		root := r.digest(1)
		if hasAction(root, actionDeploy) || !strings.Contains(text(root), "Deploy refused") {
			t.Fatalf("want a refusal under the repository policy:\n%s", r.Slack.Render())
		}
	})
	t.Run("invalid policy is a failure report", func(t *testing.T) {
		r := newSlackRig(t)
		r.GitHub.Repo("acme/payments").SetFile(RepoPolicyPath, "approvals:\n  requried: 2\n")
		r.command(demoAlice, demoRelease, "payments to production")
		root := r.digest(1)
		body := text(root)
		for _, want := range []string{"sockembot failed", "the deploy is refused", ".sockembot.yml in acme/payments is invalid", "requried"} {
			if !strings.Contains(body, want) {
				t.Errorf("failure report lacks %q:\n%s", want, r.Slack.Render())
			}
		}
		if hasAction(root, actionDeploy) {
			t.Fatal("failure report offers Deploy")
		}
	})
}
