package github_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	"sockembot/integrations/github"
)

const routeListCommits = "GET /repos/{owner}/{repo}/commits"

func depIDs(deps []github.Deployment) []int64 {
	out := []int64{}
	for _, d := range deps {
		out = append(out, d.ID)
	}
	return out
}

func commitSHAs(cs []compliance.Commit) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.SHA)
	}
	return out
}

// newestFirst reverses a list made oldest first.
func newestFirst[T any](s []T) []T {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// More than three pages of production deployments (and staging ones between them): the period
// keeps those created in [from, to), the one at from in and the one at to out, newest first;
// paging stops at the page that reaches past from.
func TestAuditDeploymentsPeriodPagesAndEnvironment(t *testing.T) {
	s, r, sha := oneCommitRepo(t, fakegithub.Options{})
	c := newClient(t, s, github.Options{})
	ctx := context.Background()
	var prod, staging []int64 // oldest first
	at := map[int64]time.Time{}
	for i := range 350 {
		d := fakegithub.Deployment{SHA: sha, Environment: "production", Description: fmt.Sprintf("release %d", i)}
		switch {
		case i%50 == 7:
			d.Creator, d.Task, d.Payload = "github-actions[bot]", "deploy:migrations", json.RawMessage(`{"run":7}`)
		case i == 200:
			d.Payload = json.RawMessage(`null`)
		case i == 201:
			d.Payload = json.RawMessage(`"migrate=true"`) // GitHub's schema allows a string
		}
		id := r.AddDeployment(d)
		prod, at[id] = append(prod, id), s.Now()
		if i%10 == 0 {
			id := r.AddDeployment(fakegithub.Deployment{SHA: sha, Environment: "staging"})
			staging, at[id] = append(staging, id), s.Now()
		}
	}
	// One made through sockembot itself, in the period.
	mine, err := c.CreateDeployment(ctx, "acme/payments", sha, "production", map[string]string{"deploy_id": "d-1"}, "by sockembot")
	if err != nil {
		t.Fatal(err)
	}
	prod, at[mine] = append(prod, mine), s.Now()
	for range 2 {
		prod = append(prod, r.AddDeployment(fakegithub.Deployment{SHA: sha}))
		at[prod[len(prod)-1]] = s.Now()
	}
	from, to := at[prod[120]], at[prod[351]] // sockembot's, prod[350], is in

	s.ResetLog()
	deps, err := c.Deployments(ctx, "acme/payments", "production", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := depIDs(deps), newestFirst(prod[120:351]); !slices.Equal(got, want) {
		t.Fatalf("production deployments: %d %v...\nwant %d %v...", len(got), got[:min(3, len(got))], len(want), want[:3])
	}
	// 353 listed newest first: the one at from is the 233rd, on page 3 of 4.
	if n := s.Count(routeListDeployments); n != 3 || s.Total() != 3 {
		t.Errorf("%d list requests (%v), want 3: paging stops at the page reaching past from", n, s.Counts())
	}
	for _, rq := range s.Requests() {
		if !strings.Contains(rq.Query, "environment=production") || !strings.Contains(rq.Query, "per_page=100") {
			t.Errorf("request %s?%s", rq.Path, rq.Query)
		}
	}

	// Every field, for one made by an App's workflow and for sockembot's own.
	byID := map[int64]github.Deployment{}
	for _, d := range deps {
		byID[d.ID] = d
	}
	bot := byID[prod[157]]
	wantBot := github.Deployment{
		ID: prod[157], SHA: sha, Ref: sha, Environment: "production", Task: "deploy:migrations",
		Creator: "github-actions[bot]", Description: "release 157", CreatedAt: at[prod[157]],
		Payload: json.RawMessage(`{"run":7}`), URL: fmt.Sprintf("%s/repos/acme/payments/deployments/%d", strings.TrimSuffix(s.URL(), "/"), prod[157]),
	}
	if !reflect.DeepEqual(bot, wantBot) {
		t.Errorf("deployment by a workflow:\n got %+v\nwant %+v", bot, wantBot)
	}
	if d := byID[mine]; d.Creator != "sockembot[bot]" || d.Task != "deploy" || d.Description != "by sockembot" ||
		string(d.Payload) != `{"deploy_id":"d-1"}` || d.Ref != sha {
		t.Errorf("sockembot's deployment: %+v", d)
	}

	if a, b := byID[prod[200]].Payload, byID[prod[201]].Payload; string(a) != `{}` || string(b) != `"migrate=true"` {
		t.Errorf("payloads null and a string: %s, %s", a, b)
	}

	// "" is every environment.
	all, err := c.Deployments(ctx, "acme/payments", "", from, to)
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for id, when := range at {
		if !when.Before(from) && when.Before(to) {
			want = append(want, id)
		}
	}
	slices.Sort(want)
	if got := depIDs(all); !slices.Equal(got, newestFirst(want)) || len(got) != 231+23 {
		t.Errorf("every environment: %d deployments, want %d (231 production, 23 staging)", len(got), len(want))
	}
	if none, err := c.Deployments(ctx, "acme/payments", "qa", from, to); err != nil || len(none) != 0 {
		t.Errorf("qa: %v, %v", none, err)
	}
}

// Commits reachable from the branch, committed in [from, to), over several pages, newest first;
// each person named by login, or by name when GitHub has no account for the e-mail.
func TestAuditBranchCommitsPeriodAndPages(t *testing.T) {
	s, r, _ := oneCommitRepo(t, fakegithub.Options{})
	var shas []string // oldest first
	at := map[string]time.Time{}
	commit := func(msg, author string) {
		sha := r.Commit(msg, author)
		shas, at[sha] = append(shas, sha), s.Now()
	}
	for i := range 120 {
		commit(fmt.Sprintf("change %d", i), "alice")
	}
	// Opened (authored) before the period, rebased onto main in it: committed in the period.
	old := r.OpenPR(fakegithub.PR{Title: "PAY-9 old work", Author: "bob"})
	oldAuthored := s.Now()
	for i := range 30 {
		commit(fmt.Sprintf("more %d", i), "alice")
	}
	from := at[shas[len(shas)-1]] // the 150th commit
	for i := range 160 {
		commit(fmt.Sprintf("period %d", i), "carol")
	}
	rebased := r.Merge(old.Number, fakegithub.Rebase)
	shas, at[rebased.MergeSHA] = append(shas, rebased.MergeSHA), rebased.MergedAt
	commit("no account", "")
	merged := r.MergePR(fakegithub.PR{Title: "PAY-10", Author: "dave", Commits: 2}, fakegithub.MergeCommit)
	for _, sha := range merged.Landed {
		shas = append(shas, sha)
	}
	at[merged.MergeSHA] = merged.MergedAt
	for i := range 100 {
		commit(fmt.Sprintf("late %d", i), "erin")
	}
	toIdx := len(shas) - 20
	to := at[shas[toIdx]]
	for range 5 {
		commit("after", "alice")
	}
	var inPeriod []string
	for _, sha := range shas {
		if when, ok := at[sha]; !ok || (!when.Before(from) && when.Before(to)) {
			inPeriod = append(inPeriod, sha) // the merged PR's own commits are dated in the period
		}
	}

	c := newClient(t, s, github.Options{})
	s.ResetLog()
	got, err := c.BranchCommits(context.Background(), "acme/payments", "main", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := commitSHAs(got), newestFirst(inPeriod); !slices.Equal(g, w) {
		t.Fatalf("commits: %d, want %d (first %v, want %v)", len(g), len(w), g[:min(2, len(g))], w[:2])
	}
	if got[len(got)-1].SHA != shas[149] || got[0].SHA != shas[toIdx-1] {
		t.Errorf("the commit at from is in, the one at to out: ends %s..%s", got[0].SHA[:7], got[len(got)-1].SHA[:7])
	}
	if n := s.Count(routeListCommits); n != 3 {
		t.Errorf("%d list requests, want 3 pages (%d commits)", n, len(got))
	}
	for _, rq := range s.Requests() {
		if !strings.Contains(rq.Query, "sha=main") || !strings.Contains(rq.Query, "since="+from.UTC().Format("2006-01-02T15")) ||
			!strings.Contains(rq.Query, "until=") {
			t.Errorf("request %s?%s does not ask for the period", rq.Path, rq.Query)
		}
	}
	byMsg := map[string]compliance.Commit{}
	for _, cm := range got {
		byMsg[cm.Message] = cm
	}
	if cm := byMsg["PAY-9 old work: part 1"]; cm.SHA != rebased.MergeSHA || cm.Author != "bob" || cm.Committer != fakegithub.WebFlow ||
		!cm.AuthoredAt.Equal(oldAuthored) || !cm.AuthoredAt.Before(from) {
		t.Errorf("rebased commit (authored before the period, committed in it): %+v", cm)
	}
	if cm := byMsg["no account"]; cm.Author != "Unknown Author" || cm.Committer != "Unknown Author" {
		t.Errorf("commit by an e-mail with no account: %+v", cm)
	}
	want := compliance.Commit{SHA: shas[149], Message: "more 29", Author: "alice", Committer: "alice", AuthoredAt: from,
		URL: strings.TrimSuffix(s.URL(), "/api/v3/") + "/acme/payments/commit/" + shas[149]}
	if cm := got[len(got)-1]; !reflect.DeepEqual(cm, want) {
		t.Errorf("commit:\n got %+v\nwant %+v", cm, want)
	}

	// Bounds between whole seconds: GitHub's since/until are seconds, the period is exact.
	half := 500 * time.Millisecond
	got, err = c.BranchCommits(context.Background(), "acme/payments", "main", from.Add(half), to.Add(half))
	if err != nil {
		t.Fatal(err)
	}
	if g := commitSHAs(got); g[0] != shas[toIdx] || g[len(g)-1] != shas[150] {
		t.Errorf("[from+½s, to+½s): from %s to %s", g[len(g)-1][:7], g[0][:7])
	}
}

// Without rel="last" (GitHub sends it, but a proxy may not pass Link whole) the pages are
// followed one by one, to the same answer.
func TestAuditBranchCommitsFollowsNext(t *testing.T) {
	s, r, first := oneCommitRepo(t, fakegithub.Options{})
	start := s.Now()
	for i := range 230 {
		r.Commit(fmt.Sprintf("c%d", i), "alice")
	}
	c := newClient(t, s, github.Options{HTTPClient: &http.Client{Transport: withoutLast}})
	got, err := c.BranchCommits(context.Background(), "acme/payments", "main", start, s.Now().Add(time.Second))
	if err != nil || len(got) != 231 || got[230].SHA != first || s.Count(routeListCommits) != 3 {
		t.Fatalf("%d commits, %d requests, %v", len(got), s.Count(routeListCommits), err)
	}
}

// Pushes and deployments while a listing is read move the older items to later pages: each is
// still listed, once.
func TestAuditListsMovedAlongWhileRead(t *testing.T) {
	s, r, sha := oneCommitRepo(t, fakegithub.Options{})
	from := s.Now().Add(time.Second)
	var shas []string
	var ids []int64
	for i := range 300 {
		shas = append(shas, r.Commit(fmt.Sprintf("c%d", i), "alice"))
		ids = append(ids, r.AddDeployment(fakegithub.Deployment{SHA: sha}))
	}
	to := s.Now().Add(24 * time.Hour) // the period is not over: new ones fall in it
	var (
		mu   sync.Mutex
		push func() // run once, after the first answer
	)
	pushAfterFirst := &http.Client{Transport: rewrite(func(*http.Response) {
		mu.Lock()
		defer mu.Unlock()
		if push != nil {
			push()
			push = nil
		}
	})}
	c := newClient(t, s, github.Options{HTTPClient: pushAfterFirst})
	mu.Lock()
	push = func() {
		for range 3 {
			r.Commit("pushed meanwhile", "mallory")
		}
	}
	mu.Unlock()
	cs, err := c.BranchCommits(context.Background(), "acme/payments", "main", from, to)
	if err != nil {
		t.Fatal(err)
	}
	// Three full pages were four by the time pages 2 and 3 were read.
	if got := commitSHAs(cs); !slices.Equal(got, newestFirst(shas)) || s.Count(routeListCommits) != 4 {
		t.Errorf("%d commits in %d requests, want the 300 there were when the listing began, in 4", len(got), s.Count(routeListCommits))
	}

	mu.Lock()
	push = func() {
		for range 3 {
			r.AddDeployment(fakegithub.Deployment{SHA: sha})
		}
	}
	mu.Unlock()
	deps, err := c.Deployments(context.Background(), "acme/payments", "production", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if got := depIDs(deps); !slices.Equal(got, newestFirst(ids)) || s.Count(routeListDeployments) != 4 {
		t.Errorf("deployments: %d in %d requests, want the 300 there were when the listing began, in 4", len(got), s.Count(routeListDeployments))
	}
}

// withoutLast drops rel="last" from GitHub's Link headers.
var withoutLast = rewrite(func(resp *http.Response) {
	links := strings.Split(resp.Header.Get("Link"), ", ")
	links = slices.DeleteFunc(links, func(l string) bool { return strings.HasSuffix(l, `rel="last"`) })
	resp.Header.Set("Link", strings.Join(links, ", "))
})

// A list of deployments that is not newest first cannot be cut short at from: an error.
func TestAuditDeploymentsNotNewestFirst(t *testing.T) {
	s, r, sha := oneCommitRepo(t, fakegithub.Options{})
	from := s.Now()
	for range 3 {
		r.AddDeployment(fakegithub.Deployment{SHA: sha})
	}
	oldestFirst := rewrite(func(resp *http.Response) {
		var list []json.RawMessage
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			t.Error(err)
		}
		resp.Body.Close()
		body, _ := json.Marshal(newestFirst(list))
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Del("Content-Length")
	})
	c := newClient(t, s, github.Options{HTTPClient: &http.Client{Transport: oldestFirst}})
	deps, err := c.Deployments(context.Background(), "acme/payments", "production", from, s.Now().Add(time.Minute))
	if err == nil || deps != nil || !strings.Contains(err.Error(), "not newest first") {
		t.Errorf("%v, %v", deps, err)
	}
}

// rewrite is a transport that lets fn change each answer.
type rewrite func(*http.Response)

func (fn rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		fn(resp)
	}
	return resp, err
}

func TestAuditUnknownRepositoryOrBranch(t *testing.T) {
	s, _, _ := oneCommitRepo(t, fakegithub.Options{})
	c := newClient(t, s, github.Options{})
	ctx := context.Background()
	from, to := s.Now().Add(-time.Hour), s.Now().Add(time.Hour)
	_, err := c.Deployments(ctx, "acme/ghost", "production", from, to)
	if !errors.Is(err, github.ErrNotFound) || !strings.Contains(err.Error(), "deployments of acme/ghost to production") {
		t.Errorf("deployments of an unknown repository: %v", err)
	}
	_, err = c.BranchCommits(ctx, "acme/ghost", "main", from, to)
	if !errors.Is(err, github.ErrNotFound) || !strings.Contains(err.Error(), "commits of acme/ghost@main") {
		t.Errorf("commits of an unknown repository: %v", err)
	}
	_, err = c.BranchCommits(ctx, "acme/payments", "nope", from, to)
	if !errors.Is(err, github.ErrNotFound) || !strings.Contains(err.Error(), "acme/payments@nope") {
		t.Errorf("commits of an unknown branch: %v", err)
	}
	// An empty period in a real repository is no error.
	if cs, err := c.BranchCommits(ctx, "acme/payments", "main", to, to.Add(time.Hour)); err != nil || len(cs) != 0 {
		t.Errorf("empty period: %v, %v", cs, err)
	}
}

// A listing that would pass AuditLimit fails with ErrAuditLimit instead of reading on. Commits:
// GitHub says how many pages there are, so one page is read. Deployments: the limit is reached
// reading newest first.
func TestAuditLimit(t *testing.T) {
	const limit = 300 // AuditLimit itself (20,000) is too many to build under -race
	s, r, sha := oneCommitRepo(t, fakegithub.Options{})
	from := s.Now().Add(time.Second) // after the initial commit
	for i := range limit {
		r.Commit(fmt.Sprintf("c%d", i), "alice")
		r.AddDeployment(fakegithub.Deployment{SHA: sha})
	}
	c := newClient(t, s, github.Options{})
	github.SetAuditLimit(c, limit)
	ctx := context.Background()
	to := s.Now().Add(time.Minute)

	// Exactly the limit is still listed.
	cs, err := c.BranchCommits(ctx, "acme/payments", "main", from, to)
	if err != nil || len(cs) != limit {
		t.Fatalf("%d commits, %v; want the limit, %d", len(cs), err, limit)
	}
	r.Commit("one more", "alice")
	r.AddDeployment(fakegithub.Deployment{SHA: sha})
	to = s.Now().Add(time.Minute)

	s.ResetLog()
	cs, err = c.BranchCommits(ctx, "acme/payments", "main", from, to)
	if !errors.Is(err, github.ErrAuditLimit) || cs != nil || !strings.Contains(err.Error(), fmt.Sprintf("more than %d commits", limit)) {
		t.Errorf("commits past the limit: %d, %v", len(cs), err)
	}
	if n := s.Total(); n != 1 {
		t.Errorf("%d requests; the first page says it is too many", n)
	}
	// Without rel="last", page after page until the limit.
	s.ResetLog()
	paged := newClient(t, s, github.Options{HTTPClient: &http.Client{Transport: withoutLast}})
	github.SetAuditLimit(paged, limit)
	cs, err = paged.BranchCommits(ctx, "acme/payments", "main", from, to)
	if !errors.Is(err, github.ErrAuditLimit) || cs != nil {
		t.Errorf("commits past the limit, page by page: %d, %v", len(cs), err)
	}
	if n := s.Total(); n != limit/100 {
		t.Errorf("%d requests, want %d", n, limit/100)
	}

	s.ResetLog()
	deps, err := c.Deployments(ctx, "acme/payments", "production", from, to)
	if !errors.Is(err, github.ErrAuditLimit) || deps != nil || !strings.Contains(err.Error(), fmt.Sprintf("more than %d deployments", limit)) {
		t.Errorf("deployments past the limit: %d, %v", len(deps), err)
	}
	if n := s.Count(routeListDeployments); n != limit/100 {
		t.Errorf("%d list requests, want %d", n, limit/100)
	}
	// Older than from, they do not count: the newest 100 end the listing at page 2.
	deps, err = c.Deployments(ctx, "acme/payments", "production", to.Add(-200*time.Minute), to) // one every 2 minutes
	if err != nil || len(deps) != 100 {
		t.Errorf("a short recent period: %d, %v", len(deps), err)
	}
}

// A repository that is not owner/name as GitHub spells one, a branch or environment no one
// could name so, or a period that is not one, is refused before any request.
func TestAuditRefusesHostileInput(t *testing.T) {
	s, _, _ := oneCommitRepo(t, fakegithub.Options{})
	c := newClient(t, s, github.Options{})
	ctx := context.Background()
	from, to := s.Now().Add(-time.Hour), s.Now().Add(time.Hour)
	s.ResetLog()
	for _, repo := range []string{
		"acme/..", "../payments", "acme/../payments", "acme/.", "./payments", "acme/pay ments", "acme /payments",
		" acme/payments", "acme/payments%2F..", "acme/pay\nments", "acme/pay\x00ments", "acme/payments?x=1",
		"acme/payments#x", "-acme/payments", "acme/", "/payments", "acme", "", "acme/payments/extra", "acme\\x/payments",
		"acme/" + strings.Repeat("p", 101), "acme/paymënts",
	} {
		if _, err := c.Deployments(ctx, repo, "production", from, to); err == nil || !strings.Contains(err.Error(), "github: repository") {
			t.Errorf("Deployments(%q): %v", repo, err)
		}
		if _, err := c.BranchCommits(ctx, repo, "main", from, to); err == nil || !strings.Contains(err.Error(), "github: repository") {
			t.Errorf("BranchCommits(%q): %v", repo, err)
		}
	}
	for _, branch := range []string{"", "main..evil", "-main", "ma in", "ma\x00in", "ma\nin", "main~1", "main^", "a:b", "/main", "main/", "main.lock", "x@{1}", "a//b", "*"} {
		if _, err := c.BranchCommits(ctx, "acme/payments", branch, from, to); err == nil || !strings.Contains(err.Error(), "is not a branch name") {
			t.Errorf("BranchCommits(branch %q): %v", branch, err)
		}
	}
	for _, env := range []string{"prod\nuction", "prod\x00", strings.Repeat("e", 256)} {
		if _, err := c.Deployments(ctx, "acme/payments", env, from, to); err == nil || !strings.Contains(err.Error(), "not an environment name") {
			t.Errorf("Deployments(env %q): %v", env, err)
		}
	}
	for _, p := range [][2]time.Time{
		{}, {from, time.Time{}}, {time.Time{}, to}, {to, from}, {from, from},
		{time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), to}, {from, time.Date(2100, 1, 2, 0, 0, 0, 0, time.UTC)},
	} {
		if _, err := c.Deployments(ctx, "acme/payments", "production", p[0], p[1]); err == nil || !strings.Contains(err.Error(), "period") {
			t.Errorf("Deployments(%v, %v): %v", p[0], p[1], err)
		}
		if _, err := c.BranchCommits(ctx, "acme/payments", "main", p[0], p[1]); err == nil || !strings.Contains(err.Error(), "period") {
			t.Errorf("BranchCommits(%v, %v): %v", p[0], p[1], err)
		}
	}
	if n := s.Total(); n != 0 {
		t.Errorf("%d requests reached GitHub: %v", n, s.Requests())
	}
	// Names GitHub does allow get through: a dot-repository, underscores, a branch with slashes.
	for _, repo := range []string{"acme/.github", "acme_corp/pay.ments-v2"} {
		if _, err := c.Deployments(ctx, repo, "", from, to); !errors.Is(err, github.ErrNotFound) {
			t.Errorf("Deployments(%q): %v, want GitHub's 404", repo, err)
		}
	}
	if _, err := c.BranchCommits(ctx, "acme/payments", "release/2024.03-hotfix_1", from, to); !errors.Is(err, github.ErrNotFound) {
		t.Errorf("branch with slashes: %v, want GitHub's 404", err)
	}
}

// A cancelled context ends a listing, before it starts or between pages.
func TestAuditContextCancelled(t *testing.T) {
	s, r, sha := oneCommitRepo(t, fakegithub.Options{})
	from := s.Now()
	for i := range 250 {
		r.Commit(fmt.Sprintf("c%d", i), "alice")
		r.AddDeployment(fakegithub.Deployment{SHA: sha})
	}
	to := s.Now().Add(time.Minute)
	done, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	c := newClient(t, s, github.Options{})
	if _, err := c.Deployments(done, "acme/payments", "production", from, to); !errors.Is(err, context.Canceled) {
		t.Errorf("Deployments, cancelled: %v", err)
	}
	if _, err := c.BranchCommits(done, "acme/payments", "main", from, to); !errors.Is(err, context.Canceled) {
		t.Errorf("BranchCommits, cancelled: %v", err)
	}

	// Cancelled once the first page is in.
	var (
		mu     sync.Mutex
		cancel func()
	)
	afterFirst := &http.Client{Transport: rewrite(func(resp *http.Response) {
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Error(err)
		}
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		mu.Lock()
		defer mu.Unlock()
		cancel()
	})}
	c = newClient(t, s, github.Options{HTTPClient: afterFirst})
	for name, list := range map[string]func(ctx context.Context) (int, error){
		"Deployments": func(ctx context.Context) (int, error) {
			d, err := c.Deployments(ctx, "acme/payments", "production", from, to)
			return len(d), err
		},
		"BranchCommits": func(ctx context.Context) (int, error) {
			cs, err := c.BranchCommits(ctx, "acme/payments", "main", from, to)
			return len(cs), err
		},
	} {
		ctx, stop := context.WithCancel(context.Background())
		mu.Lock()
		cancel = stop
		mu.Unlock()
		s.ResetLog()
		if n, err := list(ctx); !errors.Is(err, context.Canceled) || n != 0 {
			t.Errorf("%s, cancelled after the first page: %d, %v", name, n, err)
		}
		if n := s.Total(); n != 1 {
			t.Errorf("%s: %d requests reached GitHub, want the first page only", name, n)
		}
	}
}

// GitHub's real objects decode: a deployment as GitHub wrote it (octokit/webhooks' deployment
// delivery carries the same object the list returns), and ten commits of PyGithub's history as
// GitHub's compare returned them (each the same "commit" object the list of commits returns),
// served newest first as the list is.
func TestAuditDecodesGitHubsObjects(t *testing.T) {
	var delivery struct {
		Deployment json.RawMessage `json:"deployment"`
	}
	if err := json.Unmarshal(readFixture(t, "octokit+webhooks/payload-examples/api.github.com/deployment/payload.json"), &delivery); err != nil {
		t.Fatal(err)
	}
	var replay []struct {
		ResponseBody struct {
			Commits []json.RawMessage `json:"commits"`
		} `json:"response_body"`
	}
	if err := json.Unmarshal(readFixture(t, "_extracted/PyGithub+PyGithub/Repository.testCompareCommitPagination.json"), &replay); err != nil {
		t.Fatal(err)
	}
	commits := newestFirst(replay[1].ResponseBody.Commits) // compare lists oldest first
	if len(commits) != 10 {
		t.Fatalf("fixture has %d commits", len(commits))
	}
	var (
		mu      sync.Mutex
		queries []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		switch r.URL.Path {
		case "/api/v3/repos/Codertocat/Hello-World/deployments":
			fmt.Fprintf(w, "[%s]", delivery.Deployment)
		case "/api/v3/repos/PyGithub/PyGithub/commits":
			body, _ := json.Marshal(commits)
			w.Write(body)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c, err := github.New(github.Options{BaseURL: srv.URL + "/api/v3/", Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	created := time.Date(2019, 5, 15, 15, 20, 53, 0, time.UTC)
	deps, err := c.Deployments(ctx, "Codertocat/Hello-World", "production", created, created.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := []github.Deployment{{
		ID: 145988746, SHA: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", Ref: "master", Environment: "production",
		Task: "deploy", Creator: "Codertocat", Description: "", CreatedAt: created, Payload: json.RawMessage(`{}`),
		URL: "https://api.github.com/repos/Codertocat/Hello-World/deployments/145988746",
	}}
	if !reflect.DeepEqual(deps, want) {
		t.Errorf("deployment:\n got %+v\nwant %+v", deps, want)
	}
	if deps, err := c.Deployments(ctx, "Codertocat/Hello-World", "production", created.Add(time.Second), created.Add(time.Hour)); err != nil || len(deps) != 0 {
		t.Errorf("after it: %v, %v", deps, err)
	}

	// From the first commit's date (in) to the last one's (out).
	from, to := time.Date(2020, 11, 30, 7, 53, 59, 0, time.UTC), time.Date(2020, 12, 24, 4, 11, 1, 0, time.UTC)
	got, err := c.BranchCommits(ctx, "PyGithub/PyGithub", "main", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 9 || got[8].SHA != "fab682a5ccfc275c31ec37f1f541254c7bd780f3" || strings.HasPrefix(got[0].SHA, "34d097ce") {
		t.Fatalf("%d commits: %v", len(got), commitSHAs(got))
	}
	first := compliance.Commit{
		SHA: "fab682a5ccfc275c31ec37f1f541254c7bd780f3", Message: "Fix stubs file for Repository",
		Author: "pascal-hofmann", Committer: "pascal-hofmann", AuthoredAt: from,
		URL: "https://github.com/PyGithub/PyGithub/commit/fab682a5ccfc275c31ec37f1f541254c7bd780f3",
	}
	if !reflect.DeepEqual(got[8], first) {
		t.Errorf("commit:\n got %+v\nwant %+v", got[8], first)
	}
	// Two of them were written from e-mails GitHub maps to no account (author null): named.
	names := map[string]string{}
	for _, cm := range got {
		names[cm.SHA[:8]] = cm.Author
	}
	if names["82c349ce"] != "Paul Du Bois" || names["31a1c007"] != "Edouard Benauw" {
		t.Errorf("authors without an account: %v", names)
	}
	stamp := regexp.MustCompile(`since=2020-11-30T07%3A53%3A59Z&.*until=2020-12-24T04%3A11%3A01Z`)
	mu.Lock()
	defer mu.Unlock()
	if q := queries[len(queries)-1]; !stamp.MatchString(q) || !strings.Contains(q, "sha=main") {
		t.Errorf("query %s", q)
	}
}
