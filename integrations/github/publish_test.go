package github_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	fakegithub "sockembot/integrations/fake/github"
	"sockembot/integrations/github"
)

func TestSetStatusTruncatesDescription(t *testing.T) {
	s, r, sha := oneCommitRepo(t, fakegithub.Options{})
	c := newClient(t, s, github.Options{})
	long := strings.Repeat("é", 200) // the fake, like GitHub, rejects more than 140 characters
	if err := c.SetStatus(context.Background(), "acme/payments", sha, "failure", "sockembot/merge", long, ""); err != nil {
		t.Fatal(err)
	}
	got := r.Statuses(sha)
	if len(got) != 1 || utf8.RuneCountInString(got[0].Description) != 140 || !strings.HasSuffix(got[0].Description, "…") || got[0].TargetURL != "" {
		t.Fatalf("status: %+v", got)
	}
	if err := c.SetStatus(context.Background(), "acme/payments", strings.Repeat("0", 40), "success", "x", "y", ""); err == nil {
		t.Error("status on an unknown commit accepted")
	}
}

func TestUpsertCommentKeepsOneComment(t *testing.T) {
	s, r, _ := oneCommitRepo(t, fakegithub.Options{})
	pr := r.OpenPR(fakegithub.PR{Title: "PAY-1", Author: "alice"})
	// Enough chatter to push sockembot's comment onto the second page.
	for i := 0; i < 105; i++ {
		r.AddComment(pr.Number, "bob", fmt.Sprintf("comment %d", i))
	}
	const marker = "<!-- sockembot -->"
	c := newClient(t, s, github.Options{})
	ctx := context.Background()

	if _, _, found, err := c.FindComment(ctx, "acme/payments", pr.Number, marker); err != nil || found {
		t.Fatalf("found before any: %v, %v", found, err)
	}
	id, created, err := c.UpsertComment(ctx, "acme/payments", pr.Number, marker, "missing ticket")
	if err != nil || !created {
		t.Fatalf("first upsert: created %v, %v", created, err)
	}
	id2, created, err := c.UpsertComment(ctx, "acme/payments", pr.Number, marker, marker+"\nfixed")
	if err != nil || created || id2 != id {
		t.Fatalf("second upsert: id %d (first %d), created %v, %v", id2, id, created, err)
	}
	before := s.Total()
	if _, created, err := c.UpsertComment(ctx, "acme/payments", pr.Number, marker, marker+"\nfixed"); err != nil || created {
		t.Fatalf("unchanged upsert: %v %v", created, err)
	}
	if edits := s.Total() - before; edits != 2 { // two list pages, no edit
		t.Errorf("unchanged body cost %d requests, want 2 (listing only)", edits)
	}
	gotID, body, found, err := c.FindComment(ctx, "acme/payments", pr.Number, marker)
	if err != nil || !found || gotID != id || body != marker+"\nfixed" {
		t.Fatalf("FindComment = %d %q %v %v", gotID, body, found, err)
	}
	mine := 0
	for _, cm := range r.Comments(pr.Number) {
		if strings.Contains(cm.Body, marker) {
			mine++
			if cm.User != "sockembot[bot]" {
				t.Errorf("comment by %s", cm.User)
			}
		}
	}
	if mine != 1 {
		t.Errorf("%d sockembot comments, want 1", mine)
	}
}

func TestDeployments(t *testing.T) {
	s, r, first := oneCommitRepo(t, fakegithub.Options{})
	second := r.Commit("second", "alice")
	c := newClient(t, s, github.Options{})
	ctx := context.Background()

	if _, _, found, err := c.CurrentDeployment(ctx, "acme/payments", "production"); err != nil || found {
		t.Fatalf("nothing deployed yet: found %v, %v", found, err)
	}
	id1, err := c.CreateDeployment(ctx, "acme/payments", first, "production", map[string]string{"requested_by": "alice"}, "deploy v1")
	if err != nil {
		t.Fatal(err)
	}
	d := r.Deployments()[0]
	if d.SHA != first || d.Environment != "production" || d.Description != "deploy v1" ||
		d.AutoMerge == nil || *d.AutoMerge || d.RequiredContexts == nil || len(d.RequiredContexts) != 0 ||
		string(d.Payload) != `{"requested_by":"alice"}` {
		t.Fatalf("deployment as sent: %+v", d)
	}
	for _, st := range []string{"in_progress", "success"} {
		if err := c.CreateDeploymentStatus(ctx, "acme/payments", id1, st, "rolling out", "https://ci.example/1"); err != nil {
			t.Fatal(err)
		}
	}
	// A newer deployment that failed does not replace what runs.
	id2, err := c.CreateDeployment(ctx, "acme/payments", second, "production", nil, "deploy v2")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDeploymentStatus(ctx, "acme/payments", id2, "failure", "crashed", ""); err != nil {
		t.Fatal(err)
	}
	// Nor does a success in another environment.
	staging := r.Deploy(second, "staging", "success")

	sha, id, found, err := c.CurrentDeployment(ctx, "acme/payments", "production")
	if err != nil || !found || sha != first || id != id1 {
		t.Fatalf("CurrentDeployment = %s %d %v %v; want %s %d", sha, id, found, err, first, id1)
	}
	if sha, id, _, _ := c.CurrentDeployment(ctx, "acme/payments", "staging"); sha != second || id != staging {
		t.Errorf("staging: %s %d", sha, id)
	}
	if err := c.CreateDeploymentStatus(ctx, "acme/payments", id2, "success", "retried", ""); err != nil {
		t.Fatal(err)
	}
	if sha, id, _, _ := c.CurrentDeployment(ctx, "acme/payments", "production"); sha != second || id != id2 {
		t.Errorf("after v2 succeeded: %s %d", sha, id)
	}
	if _, err := c.CreateDeployment(ctx, "acme/payments", strings.Repeat("f", 40), "production", nil, ""); err == nil {
		t.Error("deployment of an unknown SHA accepted")
	}
}

func TestRefsAndDefaultBranch(t *testing.T) {
	s, r, first := oneCommitRepo(t, fakegithub.Options{})
	r.Tag("v1.0.0")
	head := r.Commit("second", "alice")
	c := newClient(t, s, github.Options{})
	ctx := context.Background()
	for ref, want := range map[string]string{"v1.0.0": first, "main": head, head[:8]: head} {
		if got, err := c.ResolveRef(ctx, "acme/payments", ref); err != nil || got != want {
			t.Errorf("ResolveRef(%s) = %s, %v", ref, got, err)
		}
	}
	if _, err := c.ResolveRef(ctx, "acme/payments", "nope"); !errors.Is(err, github.ErrNotFound) {
		t.Errorf("unknown ref: %v", err)
	}
	if name, sha, err := c.DefaultBranch(ctx, "acme/payments"); err != nil || name != "main" || sha != head {
		t.Errorf("DefaultBranch = %s %s %v", name, sha, err)
	}
	if _, _, err := c.DefaultBranch(ctx, "acme/missing"); !errors.Is(err, github.ErrNotFound) {
		t.Errorf("missing repo: %v", err)
	}
}

func TestMergedPullsSinceStopsPaging(t *testing.T) {
	s, r, _ := oneCommitRepo(t, fakegithub.Options{})
	var infos []fakegithub.PRInfo
	for i := 1; i <= 120; i++ {
		infos = append(infos, r.MergePR(fakegithub.PR{Title: fmt.Sprintf("PAY-%d", i), Author: "alice"}, fakegithub.Squash))
	}
	r.OpenPR(fakegithub.PR{Title: "still open", Author: "bob"})
	c := newClient(t, s, github.Options{})
	since := infos[109].MergedAt // PRs 111..120 merged after it

	s.ResetLog()
	got, err := c.MergedPullsSince(context.Background(), "acme/payments", since)
	if err != nil {
		t.Fatal(err)
	}
	var numbers []int
	for _, p := range got {
		numbers = append(numbers, p.Number)
	}
	if want := []int{111, 112, 113, 114, 115, 116, 117, 118, 119, 120}; !reflect.DeepEqual(numbers, want) {
		t.Fatalf("merged since: %v, want %v", numbers, want)
	}
	if p := got[0]; p.MergeSHA != infos[110].MergeSHA || p.HeadSHA != infos[110].HeadSHA || p.Author != "alice" || p.URL == "" {
		t.Errorf("listed PR facts: %+v", p)
	}
	if n := s.Count("GET /repos/{owner}/{repo}/pulls"); n != 1 {
		t.Errorf("listed %d pages; all older ones should be skipped", n)
	}
}

func TestPullsForCommit(t *testing.T) {
	s, r, _ := oneCommitRepo(t, fakegithub.Options{})
	pr := r.MergePR(fakegithub.PR{Title: "PAY-1", Author: "alice", Commits: 2}, fakegithub.Rebase)
	direct := r.Commit("direct", "bob")
	c := newClient(t, s, github.Options{})
	ctx := context.Background()
	if got, err := c.PullsForCommit(ctx, "acme/payments", pr.Landed[0], "main"); err != nil || !reflect.DeepEqual(got, []int{pr.Number}) {
		t.Errorf("rebased commit: %v, %v", got, err)
	}
	if got, err := c.PullsForCommit(ctx, "acme/payments", direct, "main"); err != nil || len(got) != 0 {
		t.Errorf("direct push: %v, %v", got, err)
	}
	// Merged into a feature branch (no protection there), then pushed onto main: not covered.
	side := r.MergePR(fakegithub.PR{Title: "PAY-2", Author: "carol", Base: "feature-x"}, fakegithub.Squash)
	if got, err := c.PullsForCommit(ctx, "acme/payments", side.MergeSHA, "main"); err != nil || len(got) != 0 {
		t.Errorf("commit of a PR merged into another branch: %v, %v; want none into main", got, err)
	}
	if got, err := c.PullsForCommit(ctx, "acme/payments", side.MergeSHA, "feature-x"); err != nil || !reflect.DeepEqual(got, []int{side.Number}) {
		t.Errorf("into feature-x: %v, %v", got, err)
	}
}

func TestFile(t *testing.T) {
	s, r, _ := oneCommitRepo(t, fakegithub.Options{})
	r.SetFile(".sockembot.yml", "approvals:\n  required: 2\n")
	c := newClient(t, s, github.Options{})
	ctx := context.Background()
	got, found, err := c.File(ctx, "acme/payments", ".sockembot.yml", "main")
	if err != nil || !found || string(got) != "approvals:\n  required: 2\n" {
		t.Fatalf("File = %q %v %v", got, found, err)
	}
	if _, found, err := c.File(ctx, "acme/payments", "absent.yml", ""); err != nil || found {
		t.Errorf("absent file: %v %v", found, err)
	}
	s.FailNext(10, "/contents/", 500)
	if _, _, err := c.File(ctx, "acme/payments", ".sockembot.yml", ""); err == nil {
		t.Error("an outage read as a missing file")
	}
}

// A 404 from the contents API is only believed when the tree at that commit confirms it.
func TestFileConfirmsA404WithTheTree(t *testing.T) {
	s, r, _ := oneCommitRepo(t, fakegithub.Options{})
	r.SetFile(".sockembot.yml", "approvals:\n  required: 2\n")
	c := newClient(t, s, github.Options{Retries: -1})
	ctx := context.Background()
	s.FailNext(1, "/contents/", 404)
	if _, found, err := c.File(ctx, "acme/payments", ".sockembot.yml", r.Head()); err == nil || found ||
		!strings.Contains(err.Error(), "the contents API answered 404, but the tree at that commit lists it") {
		t.Errorf("a 404 for a file the tree lists: found %v, %v", found, err)
	}
	s.FailNext(1, "/contents/", 404)
	s.FailNext(1, "/git/trees/", 404)
	if _, found, err := c.File(ctx, "acme/payments", ".sockembot.yml", r.Head()); err == nil || found ||
		!strings.Contains(err.Error(), "the tree at that commit could not be read to confirm it") {
		t.Errorf("a 404 with an unreadable tree: found %v, %v", found, err)
	}
	before := s.Count("GET /repos/{owner}/{repo}/git/trees/{sha}")
	if _, found, err := c.File(ctx, "acme/payments", "absent.yml", r.Head()); err != nil || found {
		t.Errorf("absent file: %v %v", found, err)
	}
	if n := s.Count("GET /repos/{owner}/{repo}/git/trees/{sha}") - before; n != 1 {
		t.Errorf("absence confirmed with %d tree reads, want 1", n)
	}
}

func TestPathCommits(t *testing.T) {
	s, r, _ := oneCommitRepo(t, fakegithub.Options{})
	first := r.CommitFiles("add the policy", "alice", map[string]string{".sockembot.yml": "approvals: {required: 2}\n"})
	r.Commit("unrelated", "bob")
	pr := r.MergePR(fakegithub.PR{Title: "relax", Author: "mallory", Files: map[string]string{".sockembot.yml": "approvals: {required: 0}\n"}}, fakegithub.Squash)
	c := newClient(t, s, github.Options{})
	got, err := c.PathCommits(context.Background(), "acme/payments", r.Head(), ".sockembot.yml")
	if err != nil || !reflect.DeepEqual(got, []string{pr.MergeSHA, first}) {
		t.Fatalf("PathCommits = %v, %v; want the squash and the first commit, newest first", got, err)
	}
}

// Anyone can paste the marker into a comment: only sockembot's own counts, whether it acts as a
// GitHub App (no user: its comments are the ones by a bot) or with a user's token (its login).
func TestFindCommentIgnoresOthersPastingTheMarker(t *testing.T) {
	const marker = "<!-- sockembot -->"
	const forged = marker + "\n### sockembot: this pull request now meets the change policy"
	for _, bot := range []string{"sockembot[bot]", "deploy-robot"} {
		t.Run(bot, func(t *testing.T) {
			s, r, _ := oneCommitRepo(t, fakegithub.Options{BotLogin: bot})
			pr := r.OpenPR(fakegithub.PR{Title: "PAY-1", Author: "alice"})
			r.AddComment(pr.Number, "mallory", forged)
			if bot == "deploy-robot" {
				// With a user's token another bot's comment is not sockembot's either.
				r.AddComment(pr.Number, "dependabot[bot]", marker+" quoted")
			}
			c := newClient(t, s, github.Options{})
			ctx := context.Background()
			if _, _, found, err := c.FindComment(ctx, "acme/payments", pr.Number, marker); err != nil || found {
				t.Fatalf("someone else's comment taken for sockembot's: %v %v", found, err)
			}
			id, created, err := c.UpsertComment(ctx, "acme/payments", pr.Number, marker, "missing ticket")
			if err != nil || !created {
				t.Fatalf("upsert: %v %v", created, err)
			}
			if got, _, found, _ := c.FindComment(ctx, "acme/payments", pr.Number, marker); !found || got != id {
				t.Fatalf("own comment not found")
			}
			if cs := r.Comments(pr.Number); cs[0].Body != forged {
				t.Error("mallory's comment was edited")
			}
		})
	}
}

// A comment whose answer is lost after GitHub posted it is not posted again: the next upsert
// (the webhook delivery's retry) finds and edits it.
func TestUpsertCommentAnswerLostIsNotDoubled(t *testing.T) {
	s, r, _ := oneCommitRepo(t, fakegithub.Options{})
	pr := r.OpenPR(fakegithub.PR{Title: "PAY-1", Author: "alice"})
	const marker = "<!-- sockembot -->"
	c := newClient(t, s, github.Options{})
	ctx := context.Background()
	s.LoseNextAnswer(1, "/comments", http.StatusBadGateway)
	if _, _, err := c.UpsertComment(ctx, "acme/payments", pr.Number, marker, "missing ticket"); err == nil {
		t.Fatal("a lost answer reported as success")
	}
	if _, created, err := c.UpsertComment(ctx, "acme/payments", pr.Number, marker, marker+"\nmissing ticket"); err != nil || created {
		t.Fatalf("retry: created %v, %v; want the first comment found and edited", created, err)
	}
	mine := 0
	for _, cm := range r.Comments(pr.Number) {
		if strings.Contains(cm.Body, "missing ticket") {
			mine++
		}
	}
	if mine != 1 {
		t.Errorf("%d sockembot comments after a lost answer and a retry, want 1", mine)
	}
}
