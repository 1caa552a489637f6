package fakegithub_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
	gh "github.com/google/go-github/v62/github"

	fakegithub "sockembot/integrations/fake/github"
)

// signJWT signs claims with key, RS256, as an App's client does.
func signJWT(t *testing.T, key *rsa.PrivateKey, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func appKey(t *testing.T, s *fakegithub.Server) *rsa.PrivateKey {
	t.Helper()
	key, err := jwt.ParseRSAPrivateKeyFromPEM(s.AppPrivateKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// appJWT is a JWT like ghinstallation's: iss the App id as a string, iat 30 s ago, 2 minutes long.
func appJWT(t *testing.T, s *fakegithub.Server) string {
	t.Helper()
	iat := time.Now().Add(-30 * time.Second)
	return signJWT(t, appKey(t, s), jwt.MapClaims{"iss": strconv.FormatInt(s.AppID(), 10), "iat": iat.Unix(), "exp": iat.Add(2 * time.Minute).Unix()})
}

func newApp(t *testing.T, app fakegithub.AppOptions, opts fakegithub.Options) (*fakegithub.Server, *gh.Client) {
	t.Helper()
	opts.App = &app
	return newFake(t, opts)
}

// installationClient authenticates as the App's installation on owner's account.
func installationClient(t *testing.T, s *fakegithub.Server, c *gh.Client, owner string) (*gh.Client, string) {
	t.Helper()
	tok, _, err := c.WithAuthToken(appJWT(t, s)).Apps.CreateInstallationToken(context.Background(), s.InstallationID(owner), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.WithAuthToken(tok.GetToken()), tok.GetToken()
}

// call makes a request with an Authorization header ("" for none) and returns status and body.
func call(t *testing.T, s *fakegithub.Server, method, path, auth, body string) (int, []byte) {
	t.Helper()
	url := path
	if !strings.HasPrefix(path, "http") {
		url = s.URL() + strings.TrimPrefix(path, "/")
	}
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func message(t *testing.T, body []byte) string {
	t.Helper()
	var m struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("not a GitHub error: %v: %s", err, body)
	}
	return m.Message
}

func TestAppPrivateKeyIsAnRSAKeyAsGitHubIssuesIt(t *testing.T) {
	s, _ := newApp(t, fakegithub.AppOptions{}, fakegithub.Options{})
	block, rest := pem.Decode(s.AppPrivateKeyPEM())
	if block == nil || block.Type != "RSA PRIVATE KEY" || len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatalf("PEM block %v", block)
	}
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil || key.N.BitLen() != 2048 {
		t.Fatalf("PKCS#1 key: %v", err)
	}
	other, _ := newApp(t, fakegithub.AppOptions{ID: 7}, fakegithub.Options{})
	if string(other.AppPrivateKeyPEM()) != string(s.AppPrivateKeyPEM()) || s.AppID() != 4242 || other.AppID() != 7 {
		t.Errorf("one key per process; ids %d, %d", s.AppID(), other.AppID())
	}
}

// The whole flow a GitHub App client goes through, with the answers shaped on PyGithub's
// recordings of GitHub.
func TestAppJWTInstallationTokenThenRepository(t *testing.T) {
	s, c := newApp(t, fakegithub.AppOptions{}, fakegithub.Options{})
	s.AddRepo("acme/payments", "main").Commit("initial", "alice")
	s.AddRepo("globex/web", "main")
	ctx := context.Background()
	app := c.WithAuthToken(appJWT(t, s))

	a, _, err := app.Apps.Get(ctx, "")
	if err != nil || a.GetID() != 4242 || a.GetSlug() != "sockembot" || a.GetPermissions().GetChecks() != "write" {
		t.Fatalf("GET /app: %+v, %v", a, err)
	}
	inst, _, err := app.Apps.FindRepositoryInstallation(ctx, "acme", "payments")
	if err != nil || inst.GetID() != 7000001 || inst.GetID() != s.InstallationID("acme") || inst.GetAccount().GetLogin() != "acme" || inst.GetAppID() != 4242 {
		t.Fatalf("repository installation: %+v, %v", inst, err)
	}
	if s.InstallationID("globex") != 7000002 || s.InstallationID("initech") != 7000003 || s.InstallationID("ACME") != 7000001 {
		t.Errorf("installation ids are not stable in order of first use")
	}
	if got, _, err := app.Apps.GetInstallation(ctx, 7000002); err != nil || got.GetAccount().GetLogin() != "globex" {
		t.Errorf("GET /app/installations/7000002: %+v, %v", got, err)
	}
	if _, resp, err := app.Apps.GetInstallation(ctx, 9); err == nil || resp.StatusCode != 404 {
		t.Errorf("unknown installation: %v", err)
	}
	if _, resp, err := app.Apps.FindRepositoryInstallation(ctx, "acme", "nope"); err == nil || resp.StatusCode != 404 {
		t.Errorf("installation of an unknown repository: %v", err)
	}
	if _, resp, err := app.Apps.CreateInstallationToken(ctx, 9, nil); err == nil || resp.StatusCode != 404 {
		t.Errorf("token of an unknown installation: %v", err)
	}

	before := time.Now()
	tok, resp, err := app.Apps.CreateInstallationToken(ctx, inst.GetID(), nil)
	if err != nil || resp.StatusCode != 201 || !regexp.MustCompile(`^ghs_[A-Za-z0-9]{36}$`).MatchString(tok.GetToken()) ||
		tok.GetPermissions().GetChecks() != "write" {
		t.Fatalf("installation token: %+v, %v", tok, err)
	}
	if exp := tok.GetExpiresAt().Time; exp.Before(before.Add(time.Hour-2*time.Second)) || exp.After(time.Now().Add(time.Hour)) {
		t.Errorf("expires_at %v is not an hour from now", exp)
	}
	if s.TokensIssued() != 1 {
		t.Errorf("TokensIssued %d", s.TokensIssued())
	}
	repo, _, err := c.WithAuthToken(tok.GetToken()).Repositories.Get(ctx, "acme", "payments")
	if err != nil || repo.GetFullName() != "acme/payments" {
		t.Fatalf("repository with the installation token: %v", err)
	}
	// "token ghs_…" works as well as "Bearer ghs_…".
	if status, _ := call(t, s, "GET", "repos/acme/payments/commits/main", "token "+tok.GetToken(), ""); status != 200 {
		t.Errorf("token scheme: %d", status)
	}

	auths := map[string]string{}
	for _, r := range s.Requests() {
		if r.Status < 300 {
			auths[r.Route] = r.Auth
		}
		if strings.Contains(r.Path, "/repos/") && !strings.HasSuffix(r.Path, "/installation") && r.Status == 200 && r.Auth != "installation" {
			t.Errorf("%s %s answered 200 with auth %q", r.Method, r.Path, r.Auth)
		}
	}
	if auths["GET /app"] != "jwt" || auths["POST /app/installations/{id}/access_tokens"] != "jwt" || auths["GET /repos/{owner}/{repo}"] != "installation" {
		t.Errorf("request log auth: %v", auths)
	}

	t.Run("shapes", func(t *testing.T) {
		jwtAuth := "Bearer " + appJWT(t, s)
		_, fake := call(t, s, "GET", "app", jwtAuth, "")
		rec := recorded(t, "_extracted/PyGithub+PyGithub/GithubIntegration.testGetApp.json", 0)
		assertCovers(t, "app", rec, fake, "owner")
		decodeBoth[gh.App](t, "app", rec, fake)

		_, fake = call(t, s, "GET", "app/installations/7000001", jwtAuth, "")
		rec = recorded(t, "_extracted/PyGithub+PyGithub/GithubIntegration.testGetAppInstallation.json", 0)
		assertCovers(t, "installation", rec, fake, "account")
		_, got := decodeBoth[gh.Installation](t, "installation", rec, fake)
		if got.GetTargetType() != "Organization" || got.GetAppSlug() != "sockembot" || got.GetRepositorySelection() != "all" {
			t.Errorf("installation decodes to %+v", got)
		}
		_, fake = call(t, s, "GET", "repos/acme/payments/installation", jwtAuth, "")
		rec = recorded(t, "_extracted/PyGithub+PyGithub/GithubIntegration.testGetRepoInstallation.json", 0)
		assertCovers(t, "repository installation", rec, fake, "account")

		// PyGithub's GithubIntegration.testGetAccessToken records {token, expires_at,
		// permissions, repository_selection}; the recording is not copied (it holds tokens).
		_, fake = call(t, s, "POST", "app/installations/7000001/access_tokens", jwtAuth, `{"permissions":{"checks":"write"}}`)
		if k := keys(t, fake); len(k) != 4 || k["token"] == nil || k["expires_at"] == nil || string(k["permissions"]) != `{"checks":"write"}` || string(k["repository_selection"]) != `"all"` {
			t.Errorf("access token: %s", fake)
		}
	})
}

func TestAppJWTIsVerifiedLikeGitHub(t *testing.T) {
	s, _ := newApp(t, fakegithub.AppOptions{ID: 99}, fakegithub.Options{})
	s.AddRepo("acme/payments", "main")
	key := appKey(t, s)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := func(iss any, iat, exp time.Duration) jwt.MapClaims {
		return jwt.MapClaims{"iss": iss, "iat": now.Add(iat).Unix(), "exp": now.Add(exp).Unix()}
	}
	for _, tc := range []struct {
		name, token string
		want        string // "" for accepted
	}{
		{"ghinstallation style", signJWT(t, key, claims("99", -30*time.Second, 90*time.Second)), ""},
		{"numeric iss, iat a minute back, exp ten minutes on", signJWT(t, key, claims(99, -time.Minute, 10*time.Minute)), ""},
		{"expired", signJWT(t, key, claims("99", -11*time.Minute, -time.Minute)), "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"},
		{"no exp", signJWT(t, key, jwt.MapClaims{"iss": "99", "iat": now.Unix()}), "'Expiration time' claim ('exp') must be a numeric value"},
		{"exp too far", signJWT(t, key, claims("99", 0, 20*time.Minute)), "'Expiration time' claim ('exp') is too far in the future"},
		{"exp too long after iat", signJWT(t, key, claims("99", -5*time.Minute, 9*time.Minute)), "is too far in the future"},
		{"iat in the future", signJWT(t, key, claims("99", 5*time.Minute, 8*time.Minute)), "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"},
		{"iat not an integer", signJWT(t, key, jwt.MapClaims{"iss": "99", "iat": 1.5, "exp": now.Add(time.Minute).Unix()}), "'Issued at' claim ('iat')"},
		{"wrong iss", signJWT(t, key, claims("98", -30*time.Second, time.Minute)), "Integration not found"},
		{"no iss", signJWT(t, key, jwt.MapClaims{"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}), "'Issuer' claim ('iss')"},
		{"signed with another key", signJWT(t, other, claims("99", -30*time.Second, time.Minute)), "A JSON web token could not be decoded"},
		{"HS256", func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims("99", 0, time.Minute)).SignedString([]byte("secret"))
			return s
		}(), "A JSON web token could not be decoded"},
		{"garbage", "not-a-jwt", "A JSON web token could not be decoded"},
		{"none", "", "A JSON web token could not be decoded"},
	} {
		auth := ""
		if tc.token != "" {
			auth = "Bearer " + tc.token
		}
		for _, path := range []string{"app", "repos/acme/payments/installation"} {
			status, body := call(t, s, "GET", path, auth, "")
			if tc.want == "" {
				if status != 200 {
					t.Errorf("%s: GET /%s %d %s", tc.name, path, status, body)
				}
				continue
			}
			if status != 401 || !strings.Contains(message(t, body), tc.want) {
				t.Errorf("%s: GET /%s %d %s; want 401 %q", tc.name, path, status, body, tc.want)
			}
		}
	}
	rec := recorded(t, "_extracted/PyGithub+PyGithub/GithubIntegration.testGetAccessTokenWithExpiredJWT.json", 0)
	_, fake := call(t, s, "POST", "app/installations/7000001/access_tokens", "Bearer "+signJWT(t, key, claims("99", -11*time.Minute, -time.Minute)), "")
	assertCovers(t, "expired JWT", rec, fake)
	if string(field(t, rec, "message")) != string(field(t, fake, "message")) {
		t.Errorf("expired JWT: %s, GitHub says %s", fake, rec)
	}
	if s.TokensIssued() != 0 {
		t.Errorf("a token was issued on a bad JWT")
	}
}

func TestInstallationTokenIsRequiredAndScoped(t *testing.T) {
	s, c := newApp(t, fakegithub.AppOptions{}, fakegithub.Options{})
	s.AddRepo("acme/payments", "main").Commit("initial", "alice")
	s.AddRepo("globex/web", "main").Commit("initial", "bob")
	ctx := context.Background()
	acme, token := installationClient(t, s, c, "acme")

	for name, auth := range map[string]string{"no token": "", "JWT": "Bearer " + appJWT(t, s), "unknown token": "token ghs_" + strings.Repeat("x", 36), "PAT": "token ghp_abc"} {
		status, body := call(t, s, "GET", "repos/acme/payments", auth, "")
		if status != 401 || message(t, body) != "Bad credentials" {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	if _, _, err := acme.Repositories.Get(ctx, "acme", "payments"); err != nil {
		t.Fatal(err)
	}
	// Another owner's repositories are not the installation's: GitHub answers 404.
	for _, path := range []string{"repos/globex/web", "repos/globex/web/pulls", "repos/globex/web/no-such-route"} {
		if status, _ := call(t, s, "GET", path, "Bearer "+token, ""); status != 404 {
			t.Errorf("acme's token on %s: %d", path, status)
		}
	}
	globex, _ := installationClient(t, s, c, "globex")
	if _, _, err := globex.Repositories.Get(ctx, "globex", "web"); err != nil {
		t.Errorf("globex's token: %v", err)
	}
	// An installation token has no user.
	_, resp, err := acme.Users.Get(ctx, "")
	if err == nil || resp.StatusCode != 403 || !strings.Contains(err.Error(), "Resource not accessible by integration") {
		t.Errorf("GET /user: %v", err)
	}
	// Nor does it open the App endpoints.
	if status, body := call(t, s, "GET", "app", "Bearer "+token, ""); status != 401 || message(t, body) != "A JSON web token could not be decoded" {
		t.Errorf("installation token on GET /app: %d %s", status, body)
	}

	s.ExpireTokens()
	if _, resp, err := acme.Repositories.Get(ctx, "acme", "payments"); err == nil || resp.StatusCode != 401 {
		t.Errorf("expired token: %v", err)
	}
	fresh, _ := installationClient(t, s, c, "acme")
	if _, _, err := fresh.Repositories.Get(ctx, "acme", "payments"); err != nil || s.TokensIssued() != 3 {
		t.Errorf("a token issued after ExpireTokens: %v (%d issued)", err, s.TokensIssued())
	}
	last := s.Requests()[len(s.Requests())-1]
	if last.Auth != "installation" {
		t.Errorf("request log: %+v", last)
	}
	for _, r := range s.Requests() {
		if r.Status == 401 && r.Auth != "none" {
			t.Errorf("refused request logged with auth %q: %+v", r.Auth, r)
		}
	}
}

func TestInstallationTokenLastsTokenTTL(t *testing.T) {
	s, c := newApp(t, fakegithub.AppOptions{TokenTTL: 300 * time.Millisecond}, fakegithub.Options{})
	s.AddRepo("acme/payments", "main")
	acme, _ := installationClient(t, s, c, "acme")
	ctx := context.Background()
	if _, _, err := acme.Repositories.Get(ctx, "acme", "payments"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if _, resp, err := acme.Repositories.Get(ctx, "acme", "payments"); err == nil || resp.StatusCode != 401 {
		t.Errorf("token past its TTL: %v", err)
	}
}

func TestTokenModeRefusesAppOnlyWrites(t *testing.T) {
	s, c := newFake(t, fakegithub.Options{Token: "t0ken"})
	r := s.AddRepo("acme/payments", "main")
	sha := r.Commit("initial", "alice")
	run := r.WaitingRun("production", sha, "main", "alice")
	c = c.WithAuthToken("t0ken")
	ctx := context.Background()
	_, resp, err := c.Checks.CreateCheckRun(ctx, "acme", "payments", gh.CreateCheckRunOptions{Name: "sockembot", HeadSHA: sha})
	if err == nil || resp.StatusCode != 403 || !strings.Contains(err.Error(), "You must authenticate via a GitHub App.") {
		t.Errorf("check run in token mode: %v", err)
	}
	id := r.AddCheckRun(fakegithub.CheckRun{Name: "ci", HeadSHA: sha, Conclusion: "success"})
	if _, resp, err := c.Checks.UpdateCheckRun(ctx, "acme", "payments", id, gh.UpdateCheckRunOptions{Name: "x"}); err == nil || resp.StatusCode != 403 {
		t.Errorf("check run update in token mode: %v", err)
	}
	// Reading check runs needs no App.
	if list, _, err := c.Checks.ListCheckRunsForRef(ctx, "acme", "payments", sha, nil); err != nil || list.GetTotal() != 1 || list.CheckRuns[0].GetApp().GetSlug() != "github-actions" {
		t.Errorf("list check runs in token mode: %+v, %v", list, err)
	}
	status, body := call(t, s, "POST", run.CallbackURL, "token t0ken", `{"environment_name":"production","state":"approved"}`)
	if status != 403 || message(t, body) != "You must authenticate via a GitHub App." || len(s.ProtectionReviews()) != 0 {
		t.Errorf("protection review in token mode: %d %s", status, body)
	}
	if status, _ := call(t, s, "GET", "app", "token t0ken", ""); status != 401 {
		t.Errorf("GET /app in token mode: %d", status)
	}
	for _, r := range s.Requests() {
		if r.Status != 401 && r.Auth != "token" {
			t.Errorf("token mode request logged as %q", r.Auth)
		}
	}
	if s.AppID() != 0 {
		t.Errorf("AppID in token mode: %d", s.AppID())
	}
}

func TestAppWritesAreByItsBot(t *testing.T) {
	s, c := newApp(t, fakegithub.AppOptions{}, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	r.Commit("initial", "alice")
	pr := r.OpenPR(fakegithub.PR{Title: "PAY-1", Author: "alice"})
	r.AddComment(pr.Number, "bob", "lgtm")
	_, token := installationClient(t, s, c, "acme")
	auth := "Bearer " + token

	status, body := call(t, s, "POST", "repos/acme/payments/issues/1/comments", auth, `{"body":"evidence"}`)
	if status != 201 {
		t.Fatalf("comment: %d %s", status, body)
	}
	rec := field(t, readFixture(t, "octokit+webhooks/payload-examples/api.github.com/issue_comment/created.payload.json"), "comment")
	assertCovers(t, "comment", rec, body, "user")
	var comment struct {
		User struct{ Login, Type string }
		Via  *struct {
			ID   int64  `json:"id"`
			Slug string `json:"slug"`
			Name string `json:"name"`
		} `json:"performed_via_github_app"`
	}
	if err := json.Unmarshal(body, &comment); err != nil || comment.User.Login != "sockembot[bot]" || comment.User.Type != "Bot" ||
		comment.Via == nil || comment.Via.ID != 4242 || comment.Via.Slug != "sockembot" {
		t.Errorf("comment by %+v via %+v (%v)", comment.User, comment.Via, err)
	}
	_, list := call(t, s, "GET", "repos/acme/payments/issues/1/comments", auth, "")
	if string(field(t, list, "0", "performed_via_github_app")) != "null" {
		t.Errorf("bob's comment performed via an App: %s", field(t, list, "0", "performed_via_github_app"))
	}
	// The App's JSON in performed_via_github_app is GET /app's.
	assertCovers(t, "performed_via_github_app", recorded(t, "_extracted/PyGithub+PyGithub/GithubIntegration.testGetApp.json", 0),
		field(t, body, "performed_via_github_app"), "owner")

	_, body = call(t, s, "POST", "repos/acme/payments/statuses/"+pr.HeadSHA, auth, `{"state":"success","context":"sockembot"}`)
	if string(field(t, body, "creator", "login")) != `"sockembot[bot]"` || string(field(t, body, "creator", "type")) != `"Bot"` {
		t.Errorf("status creator %s", field(t, body, "creator"))
	}
	_, body = call(t, s, "POST", "repos/acme/payments/deployments", auth, `{"ref":"main","environment":"production"}`)
	if string(field(t, body, "creator", "login")) != `"sockembot[bot]"` || string(field(t, body, "performed_via_github_app", "id")) != "4242" {
		t.Errorf("deployment by %s via %s", field(t, body, "creator", "login"), field(t, body, "performed_via_github_app"))
	}
	_, body = call(t, s, "POST", "repos/acme/payments/deployments/"+string(field(t, body, "id"))+"/statuses", auth, `{"state":"success"}`)
	if string(field(t, body, "creator", "type")) != `"Bot"` || string(field(t, body, "performed_via_github_app", "slug")) != `"sockembot"` {
		t.Errorf("deployment status: %s", body)
	}
}

func TestCheckRuns(t *testing.T) {
	s, c := newApp(t, fakegithub.AppOptions{}, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	r.Commit("initial", "alice")
	pr := r.OpenPR(fakegithub.PR{Title: "PAY-1", Author: "alice"})
	ci := r.AddCheckRun(fakegithub.CheckRun{Name: "test", HeadSHA: pr.HeadSHA, Conclusion: "success"})
	acme, _ := installationClient(t, s, c, "acme")
	ctx := context.Background()

	created, resp, err := acme.Checks.CreateCheckRun(ctx, "acme", "payments", gh.CreateCheckRunOptions{
		Name: "sockembot/merge", HeadSHA: pr.HeadSHA, Status: gh.String("in_progress"), ExternalID: gh.String("PAY-1"),
		Output: &gh.CheckRunOutput{Title: gh.String("Checking"), Summary: gh.String("")},
	})
	if err != nil || resp.StatusCode != 201 || created.GetStatus() != "in_progress" || created.Conclusion != nil || created.CompletedAt != nil ||
		created.GetApp().GetID() != 4242 || created.GetOutput().GetSummary() != "" || created.GetOutput().Text != nil {
		t.Fatalf("create: %+v, %v", created, err)
	}
	if len(created.PullRequests) != 1 || created.PullRequests[0].GetNumber() != 1 || created.PullRequests[0].GetHead().GetSHA() != pr.HeadSHA {
		t.Errorf("pull_requests: %+v", created.PullRequests)
	}
	updated, _, err := acme.Checks.UpdateCheckRun(ctx, "acme", "payments", created.GetID(), gh.UpdateCheckRunOptions{
		Name: "sockembot/merge", Conclusion: gh.String("failure"),
		Output:  &gh.CheckRunOutput{Title: gh.String("No ticket"), Summary: gh.String("PAY-1 is not approved"), Text: gh.String("details")},
		Actions: []*gh.CheckRunAction{{Label: "Re-check", Description: "Check the ticket again", Identifier: "recheck"}},
	})
	if err != nil || updated.GetStatus() != "completed" || updated.GetConclusion() != "failure" || updated.CompletedAt == nil ||
		updated.GetOutput().GetText() != "details" || updated.GetExternalID() != "PAY-1" || updated.GetCheckSuite().GetID() != created.GetCheckSuite().GetID() {
		t.Fatalf("update: %+v, %v", updated, err)
	}
	// The CI's run belongs to GitHub Actions: the App may not touch it.
	if _, resp, err := acme.Checks.UpdateCheckRun(ctx, "acme", "payments", ci, gh.UpdateCheckRunOptions{Name: "test"}); err == nil || resp.StatusCode != 403 {
		t.Errorf("update of another App's run: %v", err)
	}
	if _, resp, err := acme.Checks.GetCheckRun(ctx, "acme", "payments", 1); err == nil || resp.StatusCode != 404 {
		t.Errorf("unknown check run: %v", err)
	}
	again, _, err := acme.Checks.CreateCheckRun(ctx, "acme", "payments", gh.CreateCheckRunOptions{Name: "sockembot/merge", HeadSHA: pr.HeadSHA, Conclusion: gh.String("success")})
	if err != nil || again.GetStatus() != "completed" {
		t.Fatalf("conclusion implies completed: %+v, %v", again, err)
	}

	list, _, err := acme.Checks.ListCheckRunsForRef(ctx, "acme", "payments", pr.HeadRef, nil)
	if err != nil || list.GetTotal() != 2 || list.CheckRuns[0].GetID() != again.GetID() || list.CheckRuns[1].GetID() != ci {
		t.Fatalf("latest runs for the branch, newest first: %+v, %v", list, err)
	}
	all, _, err := acme.Checks.ListCheckRunsForRef(ctx, "acme", "payments", pr.HeadSHA, &gh.ListCheckRunsOptions{Filter: gh.String("all"), CheckName: gh.String("sockembot/merge")})
	if err != nil || all.GetTotal() != 2 || all.CheckRuns[1].GetID() != created.GetID() {
		t.Fatalf("all runs named sockembot/merge: %+v, %v", all, err)
	}
	got := r.CheckRuns(pr.HeadSHA)
	want := fakegithub.CheckRun{ID: created.GetID(), Name: "sockembot/merge", HeadSHA: pr.HeadSHA, Status: "completed", Conclusion: "failure",
		Title: "No ticket", Summary: "PAY-1 is not approved", Text: "details", ExternalID: "PAY-1", AppID: 4242,
		Actions: []fakegithub.CheckRunAction{{Label: "Re-check", Description: "Check the ticket again", Identifier: "recheck"}}}
	if len(got) != 3 || got[0].ID != ci || got[0].AppID != fakegithub.GitHubActionsAppID || fmt.Sprint(got[1]) != fmt.Sprint(want) {
		t.Errorf("CheckRuns: %+v\nwant [1] %+v", got, want)
	}

	t.Run("shapes", func(t *testing.T) {
		_, fake := call(t, s, "GET", fmt.Sprintf("repos/acme/payments/check-runs/%d", created.GetID()), "Bearer "+acmeToken(t, s, c), "")
		for _, rec := range [][]byte{
			recorded(t, "_extracted/PyGithub+PyGithub/CheckRun.testCreateCheckRunCompleted.json", 0),
			recorded(t, "_extracted/PyGithub+PyGithub/CheckRun.testUpdateCheckRunSuccess.json", 1),
		} {
			assertCovers(t, "check run", rec, fake, "output", "check_suite", "app")
			assertCovers(t, "check run app.owner", field(t, rec, "app", "owner"), field(t, fake, "app", "owner"))
			decodeBoth[gh.CheckRun](t, "check run", rec, fake)
		}
		hook := field(t, readFixture(t, "octokit+webhooks/payload-examples/api.github.com/check_run/created.payload.json"), "check_run")
		assertCovers(t, "check run pull_requests[0]", field(t, hook, "pull_requests", "0"), field(t, fake, "pull_requests", "0"), "head", "base")
		assertCovers(t, "check run pull_requests[0].head.repo", field(t, hook, "pull_requests", "0", "head", "repo"), field(t, fake, "pull_requests", "0", "head", "repo"))

		_, fakeList := call(t, s, "GET", "repos/acme/payments/commits/"+pr.HeadSHA+"/check-runs?check_name=test", "Bearer "+acmeToken(t, s, c), "")
		rec := recorded(t, "_extracted/PyGithub+PyGithub/CheckRun.testGetCheckRunsForRefFilterByCheckName.json", 1)
		assertCovers(t, "check runs", rec, fakeList)
		assertCovers(t, "check runs[0]", field(t, rec, "check_runs", "0"), field(t, fakeList, "check_runs", "0"), "output", "app")
		_, l := decodeBoth[gh.ListCheckRunsResults](t, "check runs", rec, fakeList)
		if l.GetTotal() != 1 || l.CheckRuns[0].GetApp().GetSlug() != "github-actions" || l.CheckRuns[0].GetConclusion() != "success" {
			t.Errorf("check_name=test: %+v", l)
		}
	})
}

func acmeToken(t *testing.T, s *fakegithub.Server, c *gh.Client) string {
	t.Helper()
	_, tok := installationClient(t, s, c, "acme")
	return tok
}

func TestCheckRunValidation(t *testing.T) {
	s, c := newApp(t, fakegithub.AppOptions{}, fakegithub.Options{})
	r := s.AddRepo("acme/payments", "main")
	sha := r.Commit("initial", "alice")
	auth := "Bearer " + acmeToken(t, s, c)
	body := func(extra string) string {
		return fmt.Sprintf(`{"name":"sockembot","head_sha":%q%s}`, sha, extra)
	}
	long := func(n int) string { return strings.Repeat("é", n) } // 2 bytes, 1 character
	output := func(summary, text string) string {
		return fmt.Sprintf(`,"output":{"title":"t","summary":%q,"text":%q}`, summary, text)
	}
	action := func(label, desc, id string) string {
		return fmt.Sprintf(`{"label":%q,"description":%q,"identifier":%q}`, label, desc, id)
	}
	okAction := action("Re-check", "Check again", "recheck")
	for _, tc := range []struct {
		name, body, field string // field: what the 422 message names ("" when accepted)
	}{
		{"minimal", body(""), ""},
		{"no name", fmt.Sprintf(`{"head_sha":%q}`, sha), "name"},
		{"no head_sha", `{"name":"x"}`, "head_sha"},
		{"unknown head_sha", `{"name":"x","head_sha":"0123456789012345678901234567890123456789"}`, "SHA"},
		{"bad status", body(`,"status":"done"`), "status"},
		{"completed without conclusion", body(`,"status":"completed"`), "conclusion"},
		{"bad conclusion", body(`,"conclusion":"passed"`), "conclusion"},
		{"every conclusion", body(`,"conclusion":"action_required"`), ""},
		{"output without title", body(`,"output":{"summary":"s"}`), "title"},
		{"output without summary", body(`,"output":{"title":"t"}`), "summary"},
		{"summary of 65535 characters", body(output(long(65535), "")), ""},
		{"summary too long", body(output(long(65536), "")), "summary"},
		{"text too long", body(output("s", long(65536))), "text"},
		{"three actions", body(`,"actions":[` + strings.Join([]string{okAction, okAction, okAction}, ",") + `]`), ""},
		{"four actions", body(`,"actions":[` + strings.Join([]string{okAction, okAction, okAction, okAction}, ",") + `]`), "actions"},
		{"label too long", body(`,"actions":[` + action(strings.Repeat("l", 21), "d", "i") + `]`), "label"},
		{"label of 20", body(`,"actions":[` + action(strings.Repeat("l", 20), strings.Repeat("d", 40), strings.Repeat("i", 20)) + `]`), ""},
		{"description too long", body(`,"actions":[` + action("l", strings.Repeat("d", 41), "i") + `]`), "description"},
		{"identifier too long", body(`,"actions":[` + action("l", "d", strings.Repeat("i", 21)) + `]`), "identifier"},
		{"action without identifier", body(`,"actions":[{"label":"l","description":"d"}]`), "identifier"},
	} {
		status, resp := call(t, s, "POST", "repos/acme/payments/check-runs", auth, tc.body)
		switch {
		case tc.field == "" && status != 201:
			t.Errorf("%s: %d %s", tc.name, status, resp)
		case tc.field != "" && (status != 422 || !strings.Contains(message(t, resp), tc.field)):
			t.Errorf("%s: %d %s; want 422 naming %s", tc.name, status, resp, tc.field)
		}
	}
	before := r.CheckRuns(sha)
	id := before[0].ID
	for name, patch := range map[string]string{
		"bad conclusion": `{"conclusion":"passed"}`, "empty name": `{"name":""}`,
		"completed without conclusion": `{"status":"completed"}`, "output without summary": `{"output":{"title":"t"}}`,
	} {
		if status, resp := call(t, s, "PATCH", fmt.Sprintf("repos/acme/payments/check-runs/%d", id), auth, patch); status != 422 {
			t.Errorf("PATCH %s: %d %s", name, status, resp)
		}
	}
	if after := r.CheckRuns(sha); fmt.Sprint(after[0]) != fmt.Sprint(before[0]) {
		t.Errorf("a refused PATCH changed the run: %+v", after[0])
	}
}

func TestMergeQueue(t *testing.T) {
	for _, method := range []fakegithub.MergeMethod{fakegithub.MergeCommit, fakegithub.Squash} {
		t.Run(string(method), func(t *testing.T) {
			s, c := newFake(t, fakegithub.Options{})
			ctx := context.Background()
			r := s.AddRepo("acme/payments", "main")
			base := r.Commit("initial", "alice")
			one := r.OpenPR(fakegithub.PR{Title: "PAY-1 refunds", Author: "alice", Commits: 2, Files: map[string]string{"refunds.go": "package refunds\n"}})
			two := r.OpenPR(fakegithub.PR{Title: "PAY-2 fees", Author: "bob", Branch: "fees"})

			g := r.QueuePRs(method, one.Number, two.Number)
			branch := "gh-readonly-queue/main/pr-2-" + base
			if g.BaseSHA != base || g.BaseRef != "refs/heads/main" || g.HeadRef != "refs/heads/"+branch || r.Head() != base {
				t.Fatalf("group %+v; main at %s", g, r.Head())
			}
			// The same shape as a real merge_group event's head_ref.
			hook := field(t, readFixture(t, "octokit+webhooks/payload-examples/api.github.com/merge_group/checks_requested.payload.json"), "merge_group")
			shape := regexp.MustCompile(`^refs/heads/gh-readonly-queue/main/pr-\d+-[0-9a-f]{40}$`)
			var recRef string
			_ = json.Unmarshal(field(t, hook, "head_ref"), &recRef)
			if !shape.MatchString(recRef) || !shape.MatchString(g.HeadRef) {
				t.Errorf("head_ref %q, GitHub's %q", g.HeadRef, recRef)
			}
			for _, ref := range []string{branch, g.HeadRef, g.HeadSHA} {
				if sha, _, err := c.Repositories.GetCommitSHA1(ctx, "acme", "payments", ref, ""); err != nil || sha != g.HeadSHA {
					t.Errorf("%s resolves to %q, %v", ref, sha, err)
				}
			}
			cmp, _, err := c.Repositories.CompareCommits(ctx, "acme", "payments", g.BaseSHA, g.HeadSHA, nil)
			if err != nil || cmp.GetStatus() != "ahead" {
				t.Fatal(err)
			}
			var listed []string
			for _, cm := range cmp.Commits {
				listed = append(listed, cm.GetSHA())
			}
			head, _, err := c.Repositories.GetCommit(ctx, "acme", "payments", g.HeadSHA, nil)
			if err != nil {
				t.Fatal(err)
			}
			queueCommits := listed
			if method == fakegithub.MergeCommit {
				if len(listed) != 5 || !slices.Contains(listed, one.Commits[0]) || !slices.Contains(listed, one.Commits[1]) || !slices.Contains(listed, two.HeadSHA) {
					t.Fatalf("compare lists %v; want both PRs' commits and two merge commits", listed)
				}
				queueCommits = listed[3:]
				if m := head.GetCommit(); m.GetMessage() != "Merge pull request #2 from acme/fees\n\nPAY-2 fees" || len(head.Parents) != 2 ||
					head.Parents[0].GetSHA() != queueCommits[0] || head.Parents[1].GetSHA() != two.HeadSHA ||
					m.GetCommitter().GetName() != "GitHub" || m.GetCommitter().GetEmail() != "noreply@github.com" || head.GetCommitter().GetLogin() != fakegithub.WebFlow {
					t.Errorf("queue merge commit: %+v parents %v", m, head.Parents)
				}
			} else {
				if len(listed) != 2 || len(head.Parents) != 1 || head.Parents[0].GetSHA() != listed[0] ||
					!strings.HasPrefix(head.GetCommit().GetMessage(), "PAY-2 fees (#2)") || head.GetCommitter().GetLogin() != fakegithub.WebFlow {
					t.Fatalf("squash queue: %v, head %+v", listed, head.GetCommit())
				}
			}
			f, _, _, err := c.Repositories.GetContents(ctx, "acme", "payments", "refunds.go", &gh.RepositoryContentGetOptions{Ref: g.HeadSHA})
			if err != nil || f.GetName() != "refunds.go" {
				t.Errorf("the queue carries PR #1's file: %v", err)
			}
			// Still open; the queue's own commits belong to no pull request, the PRs' commits to theirs.
			for _, n := range []int{1, 2} {
				if p, _, err := c.PullRequests.Get(ctx, "acme", "payments", n); err != nil || p.GetMerged() || p.GetState() != "open" {
					t.Errorf("#%d after queueing: %v %v", n, p.GetState(), err)
				}
			}
			for _, sha := range queueCommits {
				if pulls, _, err := c.PullRequests.ListPullRequestsWithCommit(ctx, "acme", "payments", sha, nil); err != nil || len(pulls) != 0 {
					t.Errorf("pulls of queue commit %s: %d, %v", sha[:7], len(pulls), err)
				}
			}
			if pulls, _, err := c.PullRequests.ListPullRequestsWithCommit(ctx, "acme", "payments", one.Commits[0], nil); err != nil || len(pulls) != 1 || pulls[0].GetNumber() != 1 {
				t.Errorf("pulls of PR #1's commit: %d, %v", len(pulls), err)
			}

			r.MergeQueued(g)
			if r.Head() != g.HeadSHA {
				t.Errorf("main at %s, want the group's head", r.Head())
			}
			for i, n := range []int{1, 2} {
				p, _, err := c.PullRequests.Get(ctx, "acme", "payments", n)
				if err != nil || !p.GetMerged() || p.GetMergeCommitSHA() != queueCommits[i] || p.GetMergedBy().GetLogin() != fakegithub.MergeQueueBot {
					t.Errorf("#%d after landing: merged %v sha %s by %s", n, p.GetMerged(), p.GetMergeCommitSHA(), p.GetMergedBy().GetLogin())
				}
				if pulls, _, err := c.PullRequests.ListPullRequestsWithCommit(ctx, "acme", "payments", queueCommits[i], nil); err != nil || len(pulls) != 1 || pulls[0].GetNumber() != n {
					t.Errorf("pulls of landed %s: %d, %v", queueCommits[i][:7], len(pulls), err)
				}
			}
			if _, resp, err := c.Repositories.GetCommitSHA1(ctx, "acme", "payments", branch, ""); err == nil || resp.StatusCode != 422 {
				t.Errorf("the queue branch outlived the merge: %v", err)
			}
		})
	}
}

func TestDeploymentProtectionRuleReview(t *testing.T) {
	s, c := newApp(t, fakegithub.AppOptions{}, fakegithub.Options{PublicURL: "http://github.example"})
	r := s.AddRepo("acme/payments", "main")
	sha := r.Commit("initial", "alice")
	run := r.WaitingRun("production", sha, "main", "alice")
	if run.CallbackURL != fmt.Sprintf("http://github.example/api/v3/repos/acme/payments/actions/runs/%d/deployment_protection_rule", run.RunID) ||
		run.RunURL != fmt.Sprintf("http://github.example/acme/payments/actions/runs/%d", run.RunID) {
		t.Errorf("run %+v", run)
	}
	var rec struct {
		URL string `json:"deployment_callback_url"`
	}
	_ = json.Unmarshal(readFixture(t, "open-security-tools+ost-environment-gate/testdata/deployment-protection-requested.json"), &rec)
	shape := regexp.MustCompile(`/repos/[^/]+/[^/]+/actions/runs/\d+/deployment_protection_rule$`)
	if !shape.MatchString(rec.URL) || !shape.MatchString(run.CallbackURL) {
		t.Errorf("callback %q, GitHub's %q", run.CallbackURL, rec.URL)
	}
	deps := r.Deployments()
	if len(deps) != 1 || deps[0].ID != run.DeploymentID || deps[0].Creator != "alice" || deps[0].SHA != sha || deps[0].Environment != "production" ||
		len(deps[0].Statuses) != 1 || deps[0].Statuses[0].State != "waiting" {
		t.Fatalf("deployments %+v", deps)
	}
	// The fake listens on its own address; the callback names the public one.
	path := strings.TrimPrefix(run.CallbackURL, "http://github.example/api/v3/")
	auth := "Bearer " + acmeToken(t, s, c)
	for _, tc := range []struct{ name, body string }{
		{"no environment", `{"state":"approved"}`},
		{"another environment", `{"environment_name":"staging","state":"approved"}`},
		{"bad state", `{"environment_name":"production","state":"ok"}`},
		{"no state", `{"environment_name":"production"}`},
	} {
		if status, body := call(t, s, "POST", path, auth, tc.body); status != 422 {
			t.Errorf("%s: %d %s", tc.name, status, body)
		}
	}
	if status, _ := call(t, s, "POST", "repos/acme/payments/actions/runs/1/deployment_protection_rule", auth, `{"environment_name":"production","state":"approved"}`); status != 404 {
		t.Errorf("unknown run: %d", status)
	}
	if status, _ := call(t, s, "POST", path, "", `{"environment_name":"production","state":"approved"}`); status != 401 {
		t.Errorf("without a token: %d", status)
	}
	status, body := call(t, s, "POST", path, auth, `{"environment_name":"production","state":"approved","comment":"PAY-1 approved by bob"}`)
	if status != 204 || len(body) != 0 {
		t.Fatalf("review: %d %s", status, body)
	}
	want := []fakegithub.ProtectionReview{{Repo: "acme/payments", RunID: run.RunID, Environment: "production", State: "approved", Comment: "PAY-1 approved by bob", AppID: 4242}}
	if got := s.ProtectionReviews(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("reviews %+v", got)
	}
	if status, body := call(t, s, "POST", path, auth, `{"environment_name":"production","state":"rejected"}`); status != 422 || len(s.ProtectionReviews()) != 1 {
		t.Errorf("second review: %d %s", status, body)
	}
	for _, st := range r.Deployments()[0].Statuses {
		if st.State == "success" {
			t.Errorf("an approval is not a successful deployment: %+v", r.Deployments()[0].Statuses)
		}
	}
}
