package fakegithub_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	gh "github.com/google/go-github/v62/github"

	fakegithub "sockembot/integrations/fake/github"
)

// fixtures is the repository's testdata/ (this package is three levels deep).
const fixtures = "../../../testdata/"

func readFixture(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixtures + path)
	if err != nil {
		t.Fatalf("fixture %s: %v", path, err)
	}
	return b
}

// recorded returns the response body of interaction i of an _extracted replay file.
func recorded(t *testing.T, path string, i int) []byte {
	t.Helper()
	var list []struct {
		ResponseBody json.RawMessage `json:"response_body"`
	}
	if err := json.Unmarshal(readFixture(t, path), &list); err != nil {
		t.Fatalf("fixture %s: %v", path, err)
	}
	return list[i].ResponseBody
}

// field extracts a JSON member (or array element "0") by path.
func field(t *testing.T, raw []byte, path ...string) []byte {
	t.Helper()
	for _, p := range path {
		if p == "0" {
			var arr []json.RawMessage
			if err := json.Unmarshal(raw, &arr); err != nil || len(arr) == 0 {
				t.Fatalf("element 0: %v (len %d)", err, len(arr))
			}
			raw = arr[0]
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("member %s: %v", p, err)
		}
		raw = m[p]
	}
	return raw
}

func keys(t *testing.T, raw []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not an object: %v: %.200s", err, raw)
	}
	return m
}

// assertCovers checks that the fake's object has every member the recorded GitHub object has,
// and the same for the nested objects named.
func assertCovers(t *testing.T, name string, recorded, fake []byte, nested ...string) {
	t.Helper()
	rk, fk := keys(t, recorded), keys(t, fake)
	var missing []string
	for k := range rk {
		if _, ok := fk[k]; !ok {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%s: fake lacks members GitHub sends: %v", name, missing)
	}
	for _, n := range nested {
		if string(rk[n]) == "null" || string(fk[n]) == "null" {
			continue
		}
		assertCovers(t, name+"."+n, rk[n], fk[n])
	}
}

func newFake(t *testing.T, opts fakegithub.Options) (*fakegithub.Server, *gh.Client) {
	t.Helper()
	s := fakegithub.New(opts)
	t.Cleanup(s.Close)
	c, err := gh.NewClient(nil).WithEnterpriseURLs(s.URL(), s.URL())
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func get(t *testing.T, s *fakegithub.Server, path, accept string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", s.URL()+strings.TrimPrefix(path, "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func post(t *testing.T, s *fakegithub.Server, path, body string) []byte {
	t.Helper()
	resp, err := http.Post(s.URL()+strings.TrimPrefix(path, "/"), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

// decodeBoth decodes the recorded GitHub body and the fake's body into the same go-github type.
func decodeBoth[T any](t *testing.T, name string, recorded, fake []byte) (rec, fk T) {
	t.Helper()
	if err := json.Unmarshal(recorded, &rec); err != nil {
		t.Fatalf("%s: recorded body does not decode into %T: %v", name, rec, err)
	}
	if err := json.Unmarshal(fake, &fk); err != nil {
		t.Fatalf("%s: fake body does not decode into %T: %v", name, fk, err)
	}
	return rec, fk
}

func TestResponsesHaveGitHubsShape(t *testing.T) {
	s, _ := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	base := r.Commit("initial", "alice")
	pr := r.MergePR(fakegithub.PR{Title: "PAY-1 add refunds", Author: "alice", Commits: 2,
		Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.MergeCommit)

	t.Run("pull request", func(t *testing.T) {
		rec := readFixture(t, "google+github-owners-bot/test/fixtures/pulls/pull_request.35.json")
		_, _, fake := get(t, s, "repos/acme/payments/pulls/1", "")
		assertCovers(t, "pull", rec, fake, "user", "head", "base", "_links")
		assertCovers(t, "pull.head.repo", field(t, rec, "head", "repo"), field(t, fake, "head", "repo"), "owner")
		want, got := decodeBoth[gh.PullRequest](t, "pull", rec, fake)
		if want.GetNumber() != 35 || got.GetNumber() != 1 || got.GetHead().GetSHA() != pr.HeadSHA ||
			got.GetMergeCommitSHA() != pr.MergeSHA || !got.GetMerged() || got.GetMergedBy().GetLogin() != "alice" ||
			got.GetCommits() != 2 || got.GetBase().GetRef() != "main" {
			t.Errorf("fake pull decodes to %+v", got)
		}
	})
	t.Run("merged pull request (webhook object)", func(t *testing.T) {
		rec := field(t, readFixture(t, "atmos+hubot-deploy/test/fixtures/pull_requests/pull_request_merged.json"), "pull_request")
		_, _, fake := get(t, s, "repos/acme/payments/pulls/1", "")
		want, got := decodeBoth[gh.PullRequest](t, "merged pull", rec, fake)
		if want.GetMergedBy().GetLogin() == "" || got.GetMergedBy().GetLogin() == "" || got.MergedAt == nil {
			t.Errorf("merged_by: recorded %q, fake %q", want.GetMergedBy().GetLogin(), got.GetMergedBy().GetLogin())
		}
	})
	t.Run("reviews", func(t *testing.T) {
		rec := readFixture(t, "google+github-owners-bot/test/fixtures/reviews/reviews.35.approved.json")
		_, _, fake := get(t, s, "repos/acme/payments/pulls/1/reviews", "")
		assertCovers(t, "review", field(t, rec, "0"), field(t, fake, "0"), "user", "_links")
		want, got := decodeBoth[[]*gh.PullRequestReview](t, "reviews", rec, fake)
		if want[0].GetState() != "APPROVED" || got[0].GetState() != "APPROVED" || got[0].GetCommitID() != pr.HeadSHA ||
			got[0].GetUser().GetLogin() != "bob" || got[0].SubmittedAt == nil {
			t.Errorf("fake review decodes to %+v", got[0])
		}
		// PyGithub's recording of a real API list.
		rec2 := recorded(t, "_extracted/PyGithub+PyGithub/PullRequestReview.testAttributes.json", 0)
		decodeBoth[[]*gh.PullRequestReview](t, "reviews (PyGithub)", rec2, fake)
	})
	t.Run("compare", func(t *testing.T) {
		rec := recorded(t, "_extracted/PyGithub+PyGithub/Repository.testCompareCommitPagination.json", 1)
		_, _, fake := get(t, s, "repos/acme/payments/compare/"+base+"...main", "")
		assertCovers(t, "compare", rec, fake, "base_commit", "merge_base_commit")
		assertCovers(t, "compare.commits[0]", field(t, rec, "commits", "0"), field(t, fake, "commits", "0"), "commit", "author", "committer")
		assertCovers(t, "compare.commits[0].commit", field(t, rec, "commits", "0", "commit"), field(t, fake, "commits", "0", "commit"), "author", "committer", "tree", "verification")
		want, got := decodeBoth[gh.CommitsComparison](t, "compare", rec, fake)
		if want.GetTotalCommits() == 0 || got.GetTotalCommits() != 3 || got.GetStatus() != "ahead" ||
			got.GetBaseCommit().GetSHA() != base || len(got.Commits) != 3 {
			t.Errorf("fake compare decodes to total %d status %q", got.GetTotalCommits(), got.GetStatus())
		}
		octo := recorded(t, "_extracted/octokit+octokit.rb/Commits__returns_a_comparison.json", 0)
		decodeBoth[gh.CommitsComparison](t, "compare (octokit)", octo, fake)
	})
	t.Run("pulls of a commit", func(t *testing.T) {
		rec := recorded(t, "_extracted/PyGithub+PyGithub/Commit.testGetPulls.json", 3)
		_, _, fake := get(t, s, "repos/acme/payments/commits/"+pr.MergeSHA+"/pulls", "")
		assertCovers(t, "commit pulls", field(t, rec, "0"), field(t, fake, "0"), "user", "head", "base", "_links")
		want, got := decodeBoth[[]*gh.PullRequest](t, "commit pulls", rec, fake)
		if want[0].GetMergeCommitSHA() == "" || len(got) != 1 || got[0].GetNumber() != 1 || got[0].GetMergeCommitSHA() != pr.MergeSHA {
			t.Errorf("fake commit pulls decode to %d items", len(got))
		}
	})
	t.Run("commit status", func(t *testing.T) {
		var rec []struct {
			Response json.RawMessage `json:"response"`
		}
		if err := json.Unmarshal(readFixture(t, "octokit+fixtures/scenarios/api.github.com/create-status/normalized-fixture.json"), &rec); err != nil {
			t.Fatal(err)
		}
		fake := post(t, s, "repos/acme/payments/statuses/"+pr.MergeSHA, `{"state":"failure","description":"no ticket","context":"sockembot/merge","target_url":"https://example.com"}`)
		assertCovers(t, "status", rec[0].Response, fake, "creator")
		want, got := decodeBoth[gh.RepoStatus](t, "status", rec[0].Response, fake)
		if want.GetContext() != "example/1" || got.GetContext() != "sockembot/merge" || got.GetState() != "failure" {
			t.Errorf("fake status decodes to %+v", got)
		}
		pyg := recorded(t, "_extracted/PyGithub+PyGithub/Commit.testCreateStatusWithAllParameters.json", 0)
		decodeBoth[gh.RepoStatus](t, "status (PyGithub)", pyg, fake)
	})
	t.Run("issue comment", func(t *testing.T) {
		rec := field(t, readFixture(t, "octokit+webhooks/payload-examples/api.github.com/issue_comment/created.payload.json"), "comment")
		fake := post(t, s, "repos/acme/payments/issues/1/comments", `{"body":"hello"}`)
		assertCovers(t, "comment", rec, fake, "user")
		_, got := decodeBoth[gh.IssueComment](t, "comment", rec, fake)
		if got.GetBody() != "hello" || got.GetUser().GetLogin() != "sockembot[bot]" {
			t.Errorf("fake comment decodes to %+v", got)
		}
	})
	t.Run("deployment and status", func(t *testing.T) {
		rec := field(t, readFixture(t, "octokit+webhooks/payload-examples/api.github.com/deployment/payload.json"), "deployment")
		fake := post(t, s, "repos/acme/payments/deployments", `{"ref":"main","environment":"production","auto_merge":false,"required_contexts":[],"payload":{"by":"alice"}}`)
		assertCovers(t, "deployment", rec, fake, "creator")
		_, d := decodeBoth[gh.Deployment](t, "deployment", rec, fake)
		if d.GetSHA() != pr.MergeSHA || d.GetEnvironment() != "production" || string(d.Payload) != `{"by":"alice"}` {
			t.Errorf("fake deployment decodes to %+v", d)
		}
		recSt := field(t, readFixture(t, "octokit+webhooks/payload-examples/api.github.com/deployment_status/payload.json"), "deployment_status")
		fakeSt := post(t, s, "repos/acme/payments/deployments/"+jsonNumber(t, fake, "id")+"/statuses", `{"state":"success","log_url":"https://ci/1"}`)
		assertCovers(t, "deployment status", recSt, fakeSt, "creator")
		_, st := decodeBoth[gh.DeploymentStatus](t, "deployment status", recSt, fakeSt)
		if st.GetState() != "success" || st.GetLogURL() != "https://ci/1" {
			t.Errorf("fake deployment status decodes to %+v", st)
		}
	})
	t.Run("repository", func(t *testing.T) {
		rec := recorded(t, "_extracted/PyGithub+PyGithub/Repository.testCompareCommitPagination.json", 0)
		_, _, fake := get(t, s, "repos/acme/payments", "")
		want, got := decodeBoth[gh.Repository](t, "repository", rec, fake)
		if want.GetDefaultBranch() == "" || got.GetDefaultBranch() != "main" || got.GetFullName() != "acme/payments" {
			t.Errorf("fake repository decodes to %+v", got)
		}
	})
}

func jsonNumber(t *testing.T, raw []byte, name string) string {
	t.Helper()
	return string(field(t, raw, name))
}

func TestMergeMethodsWriteHistoryLikeGitHub(t *testing.T) {
	s, c := newFake(t, fakegithub.Options{})
	ctx := context.Background()
	r := s.AddRepo("acme/payments", "main")
	base := r.Commit("initial", "alice")
	merged := r.MergePR(fakegithub.PR{Title: "PAY-1 merge", Author: "alice", Commits: 2}, fakegithub.MergeCommit)
	squashed := r.MergePR(fakegithub.PR{Title: "PAY-2 squash", Author: "bob", Commits: 3}, fakegithub.Squash)
	rebased := r.MergePR(fakegithub.PR{Title: "PAY-3 rebase", Author: "carol", Commits: 2}, fakegithub.Rebase)
	direct := r.Commit("hotfix", "dave")

	cmp, _, err := c.Repositories.CompareCommits(ctx, "acme", "payments", base, "main", &gh.ListOptions{PerPage: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, cm := range cmp.Commits {
		got = append(got, cm.GetSHA())
	}
	want := append(append(append(append([]string{}, merged.Landed...), squashed.Landed...), rebased.Landed...), direct)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("compare lists %v, want %v", got, want)
	}
	byS := map[string]*gh.RepositoryCommit{}
	for _, cm := range cmp.Commits {
		byS[cm.GetSHA()] = cm
	}

	m := byS[merged.MergeSHA]
	if len(m.Parents) != 2 || m.Parents[1].GetSHA() != merged.HeadSHA || !strings.HasPrefix(m.GetCommit().GetMessage(), "Merge pull request #1 from acme/alice/pr-1") ||
		m.GetCommitter().GetLogin() != fakegithub.WebFlow || !reflect.DeepEqual(merged.Landed[:2], merged.Commits) {
		t.Errorf("merge commit: %+v", m)
	}
	sq := byS[squashed.MergeSHA]
	if len(squashed.Landed) != 1 || len(sq.Parents) != 1 || !strings.HasPrefix(sq.GetCommit().GetMessage(), "PAY-2 squash (#2)\n") ||
		sq.GetAuthor().GetLogin() != "bob" {
		t.Errorf("squash commit: %q", sq.GetCommit().GetMessage())
	}
	prCommits, _, err := c.PullRequests.ListCommits(ctx, "acme", "payments", 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, sha := range rebased.Landed {
		cp, orig := byS[sha], prCommits[i]
		if sha == orig.GetSHA() || cp.GetCommit().GetMessage() != orig.GetCommit().GetMessage() ||
			!cp.GetCommit().GetAuthor().GetDate().Time.Equal(orig.GetCommit().GetAuthor().GetDate().Time) ||
			cp.GetCommitter().GetLogin() != fakegithub.WebFlow {
			t.Errorf("rebased copy %d: %+v of %+v", i, cp.GetCommit(), orig.GetCommit())
		}
	}
	if rebased.MergeSHA != rebased.Landed[1] {
		t.Errorf("rebase merge_commit_sha %s, want last copy %s", rebased.MergeSHA, rebased.Landed[1])
	}

	// Every landed commit is associated with its pull request; the direct push with none.
	for n, info := range map[int]fakegithub.PRInfo{1: merged, 2: squashed, 3: rebased} {
		for _, sha := range info.Landed {
			pulls, _, err := c.PullRequests.ListPullRequestsWithCommit(ctx, "acme", "payments", sha, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(pulls) != 1 || pulls[0].GetNumber() != n {
				t.Errorf("pulls of %s: %d items, want #%d", sha[:7], len(pulls), n)
			}
		}
	}
	pulls, _, err := c.PullRequests.ListPullRequestsWithCommit(ctx, "acme", "payments", direct, nil)
	if err != nil || len(pulls) != 0 {
		t.Errorf("pulls of the direct push: %d, %v", len(pulls), err)
	}
}

func TestRefsResolveByBranchTagOrSHA(t *testing.T) {
	s, c := newFake(t, fakegithub.Options{})
	ctx := context.Background()
	r := s.AddRepo("acme/payments", "main")
	first := r.Commit("initial", "alice")
	r.Tag("v1.0.0")
	head := r.Commit("second", "alice")
	for ref, want := range map[string]string{"main": head, "v1.0.0": first, "refs/tags/v1.0.0": first, first: first, first[:10]: first, "heads/main": head} {
		got, _, err := c.Repositories.GetCommitSHA1(ctx, "acme", "payments", ref, "")
		if err != nil || got != want {
			t.Errorf("GetCommitSHA1(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
	_, resp, err := c.Repositories.GetCommitSHA1(ctx, "acme", "payments", "no-such-branch", "")
	if err == nil || resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("unknown ref: %v, want 422 like GitHub", err)
	}
}

func TestListsPaginateWithLinkHeaders(t *testing.T) {
	s, c := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	r.Commit("initial", "alice")
	reviews := make([]fakegithub.Review, 130)
	for i := range reviews {
		reviews[i] = fakegithub.Review{User: "bob", State: "COMMENTED"}
	}
	r.MergePR(fakegithub.PR{Title: "big", Author: "alice", Reviews: reviews}, fakegithub.MergeCommit)

	ctx := context.Background()
	page1, resp, err := c.PullRequests.ListReviews(ctx, "acme", "payments", 1, &gh.ListOptions{PerPage: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page1) != 100 || resp.NextPage != 2 || resp.LastPage != 2 {
		t.Fatalf("page 1: %d items, next %d, last %d", len(page1), resp.NextPage, resp.LastPage)
	}
	page2, resp, err := c.PullRequests.ListReviews(ctx, "acme", "payments", 1, &gh.ListOptions{PerPage: 100, Page: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(page2) != 30 || resp.NextPage != 0 || resp.PrevPage != 1 || resp.FirstPage != 1 {
		t.Fatalf("page 2: %d items, next %d, prev %d", len(page2), resp.NextPage, resp.PrevPage)
	}
	// Default page size is 30, and per_page is capped at 100.
	def, resp, _ := c.PullRequests.ListReviews(ctx, "acme", "payments", 1, nil)
	big, _, _ := c.PullRequests.ListReviews(ctx, "acme", "payments", 1, &gh.ListOptions{PerPage: 500})
	if len(def) != 30 || resp.LastPage != 5 || len(big) != 100 {
		t.Errorf("default page %d (last %d), per_page=500 gives %d", len(def), resp.LastPage, len(big))
	}
	if _, hdr, _ := get(t, s, "repos/acme/payments/pulls/1/reviews?per_page=100", ""); !strings.Contains(hdr.Get("Link"), `page=2&per_page=100>; rel="next"`) ||
		!strings.HasPrefix(hdr.Get("Link"), "<"+strings.TrimSuffix(s.URL(), "/")) {
		t.Errorf("Link header %q", hdr.Get("Link"))
	}
}

func TestUnknownRouteIsJSON404(t *testing.T) {
	s, _ := newFake(t, fakegithub.Options{})
	s.AddRepo("acme/payments", "main")
	for _, p := range []string{"repos/acme/payments/branches", "repos/acme/other", "repos/acme/payments/pulls/9"} {
		status, _, body := get(t, s, p, "")
		if status != 404 || string(field(t, body, "message")) != `"Not Found"` {
			t.Errorf("GET %s: %d %s", p, status, body)
		}
	}
	// Outside the /api/v3/ mount nothing answers: absolute-URL bugs in a client show up.
	resp, err := http.Get(strings.TrimSuffix(s.URL(), "api/v3/") + "repos/acme/payments")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("outside /api/v3/: %d", resp.StatusCode)
	}
	if s.Count("unknown") != 2 || s.Count("GET /repos/{owner}/{repo}/pulls/{number}") != 1 || s.Total() != 4 {
		t.Errorf("request log counts: %v", s.Counts())
	}
}

func TestTokenIsRequiredOnlyWhenSet(t *testing.T) {
	s, c := newFake(t, fakegithub.Options{Token: "t0ken"})
	s.AddRepo("acme/payments", "main")
	ctx := context.Background()
	if _, resp, err := c.Repositories.Get(ctx, "acme", "payments"); err == nil || resp.StatusCode != 401 {
		t.Errorf("without token: %v", err)
	}
	if _, _, err := c.WithAuthToken("t0ken").Repositories.Get(ctx, "acme", "payments"); err != nil {
		t.Errorf("with token: %v", err)
	}
}

func TestFaultsAndRateLimitHeaders(t *testing.T) {
	s, c := newFake(t, fakegithub.Options{})
	s.AddRepo("acme/payments", "main")
	ctx := context.Background()

	_, resp, err := c.Repositories.Get(ctx, "acme", "payments")
	if err != nil || resp.Rate.Limit != 5000 || resp.Rate.Remaining != 4999 || resp.Rate.Reset.IsZero() {
		t.Fatalf("rate headers: %+v, %v", resp.Rate, err)
	}

	s.FailNext(2, "/repos/acme/payments", 502)
	for i := 0; i < 2; i++ {
		if _, resp, _ := c.Repositories.Get(ctx, "acme", "payments"); resp.StatusCode != 502 || resp.Header.Get("X-RateLimit-Limit") == "" {
			t.Errorf("FailNext %d: %d", i, resp.StatusCode)
		}
	}

	s.SecondaryRateLimit(1, http.StatusForbidden)
	_, resp, err = c.Repositories.Get(ctx, "acme", "payments")
	var abuse *gh.AbuseRateLimitError
	if !errorsAs(err, &abuse) || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("secondary 403: %T %v", err, err)
	}
	time.Sleep(1100 * time.Millisecond) // go-github itself refuses calls until Retry-After passes

	s.SecondaryRateLimit(1, http.StatusTooManyRequests)
	if _, resp, _ := c.Repositories.Get(ctx, "acme", "payments"); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("secondary 429: %d", resp.StatusCode)
	}

	// Two left: the second answers 200 with Remaining 0, then 403 until the reset.
	s.SetRateLimit(2, time.Minute)
	raw := func() (int, http.Header) {
		status, hdr, _ := get(t, s, "repos/acme/payments", "")
		return status, hdr
	}
	if st, h := raw(); st != 200 || h.Get("X-RateLimit-Remaining") != "1" {
		t.Errorf("first: %d remaining %s", st, h.Get("X-RateLimit-Remaining"))
	}
	if st, h := raw(); st != 200 || h.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("second: %d remaining %s", st, h.Get("X-RateLimit-Remaining"))
	}
	st, h := raw()
	if st != 403 || h.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("third: %d remaining %s", st, h.Get("X-RateLimit-Remaining"))
	}
	if reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err != nil || !time.Unix(reset, 0).After(time.Now().Add(50*time.Second)) {
		t.Errorf("reset %q should be about a minute ahead", h.Get("X-RateLimit-Reset"))
	}
	s.SetRateLimit(0, time.Second)
	_, h = raw()
	reset, _ := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	time.Sleep(time.Until(time.Unix(reset, 0)) + 50*time.Millisecond)
	if st, h := raw(); st != 200 || h.Get("X-RateLimit-Remaining") != "4999" {
		t.Errorf("after the reset: %d, remaining %s", st, h.Get("X-RateLimit-Remaining"))
	}
}

func errorsAs[T error](err error, target *T) bool {
	e, ok := err.(T)
	if ok {
		*target = e
	}
	return ok
}

func TestShaMediaTypeAnswersBareSHA(t *testing.T) {
	s, _ := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	sha := r.Commit("initial", "alice")
	status, _, body := get(t, s, "repos/acme/payments/commits/main", "application/vnd.github.sha")
	if status != 200 || string(body) != sha {
		t.Errorf("sha media type: %d %q", status, body)
	}
}

func TestDeploymentsFilterAndSupersede(t *testing.T) {
	s, c := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	a := r.Commit("a", "alice")
	b := r.Commit("b", "alice")
	first := r.Deploy(a, "production", "success")
	r.Deploy(a, "staging", "success")
	second := r.Deploy(b, "production", "success")
	ctx := context.Background()

	deps, _, err := c.Repositories.ListDeployments(ctx, "acme", "payments", &gh.DeploymentsListOptions{Environment: "production"})
	if err != nil || len(deps) != 2 || deps[0].GetID() != second || deps[1].GetID() != first {
		t.Fatalf("production deployments newest first: %d, %v", len(deps), err)
	}
	sts, _, err := c.Repositories.ListDeploymentStatuses(ctx, "acme", "payments", first, nil)
	if err != nil || len(sts) != 2 || sts[0].GetState() != "inactive" || sts[1].GetState() != "success" {
		t.Errorf("first production deployment was not superseded: %d statuses, %v", len(sts), err)
	}
	if got := r.Deployments(); len(got) != 3 || got[1].Statuses[len(got[1].Statuses)-1].State != "success" {
		t.Errorf("staging deployment touched by a production success: %+v", got[1].Statuses)
	}
}

func TestContents(t *testing.T) {
	s, c := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	r.Commit("initial", "alice")
	r.SetFile(".sockembot.yml", "approvals:\n  required: 2\n")
	ctx := context.Background()
	f, _, _, err := c.Repositories.GetContents(ctx, "acme", "payments", ".sockembot.yml", &gh.RepositoryContentGetOptions{Ref: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if text, err := f.GetContent(); err != nil || text != "approvals:\n  required: 2\n" {
		t.Errorf("content %q, %v", text, err)
	}
	if _, _, resp, err := c.Repositories.GetContents(ctx, "acme", "payments", "missing.yml", nil); err == nil || resp.StatusCode != 404 {
		t.Errorf("missing file: %v", err)
	}
}

// Files are versioned: a pull request's file is served at its head and, once merged, on the
// default branch, not before; GET /commits?path= lists the commits that wrote it as git log
// does, and GET /git/trees lists what a commit holds.
func TestFilesHistoryCommitsByPathAndTrees(t *testing.T) {
	s, c := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	base := r.Commit("initial", "alice")
	r.SetFile("README.md", "hello\n")
	info := r.MergePR(fakegithub.PR{Title: "relax", Author: "mallory", Commits: 2,
		Files: map[string]string{".sockembot.yml": "approvals: {required: 0}\n", "docs/policy.md": "x"}}, fakegithub.MergeCommit)
	removed := r.CommitFiles("drop the policy", "alice", map[string]string{".sockembot.yml": fakegithub.Deleted})
	ctx := context.Background()
	read := func(ref string) (string, int) {
		f, _, resp, err := c.Repositories.GetContents(ctx, "acme", "payments", ".sockembot.yml", &gh.RepositoryContentGetOptions{Ref: ref})
		if err != nil {
			return "", resp.StatusCode
		}
		text, _ := f.GetContent()
		return text, resp.StatusCode
	}
	for ref, want := range map[string]int{base: 404, info.HeadSHA: 200, info.MergeSHA: 200, removed: 404} {
		if _, code := read(ref); code != want {
			t.Errorf("contents at %s: %d, want %d", ref[:7], code, want)
		}
	}
	if text, _ := read(info.MergeSHA); text != "approvals: {required: 0}\n" {
		t.Errorf("content %q", text)
	}
	commits, _, err := c.Repositories.ListCommits(ctx, "acme", "payments", &gh.CommitsListOptions{SHA: removed, Path: ".sockembot.yml"})
	if err != nil || len(commits) != 2 || commits[0].GetSHA() != removed || commits[1].GetSHA() != info.HeadSHA {
		t.Fatalf("commits touching the policy: %d, %v; want the removal and the PR's last commit (the merge commit is TREESAME to it)", len(commits), err)
	}
	all, _, err := c.Repositories.ListCommits(ctx, "acme", "payments", nil)
	if err != nil || len(all) != 5 {
		t.Fatalf("every commit on main: %d, %v", len(all), err)
	}
	tree, _, err := c.Git.GetTree(ctx, "acme", "payments", info.MergeSHA, false)
	if err != nil || tree.GetTruncated() {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range tree.Entries {
		paths = append(paths, e.GetType()+" "+e.GetPath())
	}
	if strings.Join(paths, ",") != "blob .sockembot.yml,blob README.md,tree docs" {
		t.Errorf("tree at the merge: %v", paths)
	}
	tree, _, err = c.Git.GetTree(ctx, "acme", "payments", removed, true)
	if err != nil || len(tree.Entries) != 2 || tree.Entries[0].GetPath() != "README.md" || tree.Entries[1].GetPath() != "docs/policy.md" {
		t.Errorf("recursive tree after the removal: %+v, %v", tree.Entries, err)
	}
	if _, resp, err := c.Git.GetTree(ctx, "acme", "payments", "0000000000000000000000000000000000000000", false); err == nil || resp.StatusCode != 404 {
		t.Errorf("unknown tree: %v", err)
	}
}

// since and until select by committer date, both ends included, as git log does; a value that
// is no timestamp gets GitHub's 400.
func TestCommitsSinceUntil(t *testing.T) {
	s, c := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	var shas []string
	var at []time.Time
	var pr fakegithub.PRInfo
	for _, m := range []string{"a", "b", "c", "d"} {
		shas = append(shas, r.Commit(m, "alice"))
		at = append(at, s.Now())
		if m == "a" {
			pr = r.OpenPR(fakegithub.PR{Title: "old work", Author: "bob"}) // authored between a and b
		}
	}
	// Rebased: committed (by web-flow) after d.
	landed := r.Merge(pr.Number, fakegithub.Rebase).Landed[0]
	mergedAt := s.Now()
	ctx := context.Background()
	list := func(o *gh.CommitsListOptions) []string {
		t.Helper()
		cs, _, err := c.Repositories.ListCommits(ctx, "acme", "payments", o)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			out = append(out, c.GetSHA())
		}
		return out
	}
	if got, want := list(&gh.CommitsListOptions{Since: at[1], Until: at[2]}), []string{shas[2], shas[1]}; !reflect.DeepEqual(got, want) {
		t.Errorf("[b, c]: %v, want %v", got, want)
	}
	if got, want := list(&gh.CommitsListOptions{Since: at[0].Add(time.Second), Until: at[1]}), []string{shas[1]}; !reflect.DeepEqual(got, want) {
		t.Errorf("(a, b]: %v, want b alone: the rebased commit was authored then but committed later", got)
	}
	if got, want := list(&gh.CommitsListOptions{Since: at[3]}), []string{landed, shas[3]}; !reflect.DeepEqual(got, want) {
		t.Errorf("since d: %v, want the rebased commit (committed %v) and d", got, mergedAt)
	}
	if got, want := list(&gh.CommitsListOptions{Until: at[0]}), []string{shas[0]}; !reflect.DeepEqual(got, want) {
		t.Errorf("until a: %v, want %v", got, want)
	}
	// An offset and a bare date are ISO 8601 too.
	q := "repos/acme/payments/commits?since=" + strings.ReplaceAll(at[1].In(time.FixedZone("", 2*3600)).Format(time.RFC3339), "+", "%2B")
	code, _, body := get(t, s, q, "")
	var listed []gh.RepositoryCommit
	if err := json.Unmarshal(body, &listed); code != 200 || err != nil || len(listed) != 4 || listed[3].GetSHA() != shas[1] {
		t.Errorf("since b with an offset: %d, %d commits, %v", code, len(listed), err)
	}
	if code, _, body := get(t, s, "repos/acme/payments/commits?until="+at[0].Format(time.DateOnly), ""); code != 200 || string(body) != "[]" {
		t.Errorf("until the day before (midnight): %d %.200s", code, body)
	}
	for _, bad := range []string{"since=yesterday", "until=2024-13-01T00:00:00Z", "since=1709283600"} {
		code, _, body := get(t, s, "repos/acme/payments/commits?"+bad, "")
		param, _, _ := strings.Cut(bad, "=")
		if code != http.StatusBadRequest || !strings.Contains(string(body), "The "+param+" parameter needs to be in ISO 8601 format") ||
			!strings.Contains(string(body), "documentation_url") {
			t.Errorf("%s: %d %s", bad, code, body)
		}
	}
}

// A deployment made outside sockembot is listed like the others, newest first, by its creator.
func TestAddDeployment(t *testing.T) {
	s, c := newFake(t, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	sha := r.Commit("a", "alice")
	mine := r.Deploy(sha, "production", "success")
	theirs := r.AddDeployment(fakegithub.Deployment{Ref: "main", Environment: "production", Task: "deploy:migrations",
		Creator: "github-actions[bot]", Description: "hotfix", Payload: json.RawMessage(`{"by":"hand"}`)})
	deps, _, err := c.Repositories.ListDeployments(context.Background(), "acme", "payments", &gh.DeploymentsListOptions{Environment: "production"})
	if err != nil || len(deps) != 2 || deps[0].GetID() != theirs || deps[1].GetID() != mine {
		t.Fatalf("deployments: %d, %v", len(deps), err)
	}
	d := deps[0]
	if d.GetSHA() != sha || d.GetRef() != "main" || d.GetTask() != "deploy:migrations" || d.GetCreator().GetLogin() != "github-actions[bot]" ||
		d.GetCreator().GetType() != "Bot" || d.GetDescription() != "hotfix" || string(d.Payload) != `{"by":"hand"}` || !d.GetCreatedAt().Time.Equal(s.Now()) {
		t.Errorf("deployment: %+v", d)
	}
}

// A pull request opened, then reviewed and merged later, reads through go-github as GitHub's
// would: the review on the head commit, the merge landing on the default branch. With a public
// URL, the links name it instead of the listener.
func TestOpenPRReviewedThenMerged(t *testing.T) {
	s, c := newFake(t, fakegithub.Options{PublicURL: "http://github.example"})
	r := s.AddRepo("acme/payments", "main")
	r.Commit("initial", "alice")
	info := r.OpenPR(fakegithub.PR{Title: "PAY-3 refunds", Author: "carol", MergedBy: "dave"})
	r.AddReview(info.Number, fakegithub.Review{User: "dave", State: "APPROVED"})
	ctx := context.Background()
	rvs, _, err := c.PullRequests.ListReviews(ctx, "acme", "payments", info.Number, nil)
	if err != nil || len(rvs) != 1 || rvs[0].GetState() != "APPROVED" || rvs[0].GetCommitID() != info.HeadSHA {
		t.Fatalf("reviews %+v, %v", rvs, err)
	}
	merged := r.Merge(info.Number, fakegithub.Squash)
	pr, _, err := c.PullRequests.Get(ctx, "acme", "payments", info.Number)
	if err != nil || !pr.GetMerged() || pr.GetMergedBy().GetLogin() != "dave" || pr.GetMergeCommitSHA() != merged.MergeSHA || r.Head() != merged.MergeSHA {
		t.Fatalf("merged pull request %+v, %v", pr, err)
	}
	if !strings.HasPrefix(pr.GetHTMLURL(), "http://github.example/acme/payments/pull/") {
		t.Errorf("html_url %q does not use the public URL", pr.GetHTMLURL())
	}
}
