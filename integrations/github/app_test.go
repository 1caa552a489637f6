package github_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	fakegithub "sockembot/integrations/fake/github"
	"sockembot/integrations/github"
)

const routeRepoInstallation = "GET /repos/{owner}/{repo}/installation"

func appFake(t testing.TB) *fakegithub.Server {
	t.Helper()
	return newFake(t, fakegithub.Options{App: &fakegithub.AppOptions{ID: 4242, Slug: "sockembot", TokenTTL: time.Hour}})
}

func appAuth(s *fakegithub.Server) *github.AppAuth {
	return &github.AppAuth{ID: s.AppID(), PrivateKey: s.AppPrivateKeyPEM()}
}

// otherKeyPEM is a valid RSA key GitHub does not know for the App.
func otherKeyPEM(t testing.TB) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// checkAuth fails the test for a request to a repository's endpoint that did not carry an
// installation token (the App's own endpoints carry its JWT).
func checkAuth(t *testing.T, s *fakegithub.Server) {
	t.Helper()
	for _, r := range s.Requests() {
		want := "installation"
		if r.Route == routeRepoInstallation || strings.HasPrefix(r.Route, "GET /app") || strings.HasPrefix(r.Route, "POST /app") {
			want = "jwt"
		}
		if r.Auth != want {
			t.Errorf("%s %s (%s) sent with %q, want %q", r.Method, r.Path, r.Route, r.Auth, want)
		}
	}
}

func TestAppModeEndToEnd(t *testing.T) {
	s := appFake(t)
	r := s.AddRepo("acme/payments", "main")
	base := r.Commit("initial", "alice")
	pr := r.MergePR(fakegithub.PR{Title: "PAY-1 refunds", Author: "alice", Commits: 2,
		Reviews: []fakegithub.Review{{User: "bob", State: "APPROVED"}}}, fakegithub.MergeCommit)
	other := s.AddRepo("acme/ledger", "main")
	otherSHA := other.Commit("initial", "carol")

	c := newClient(t, s, github.Options{App: appAuth(s)})
	if !c.AppMode() {
		t.Fatal("AppMode() = false")
	}
	ctx := context.Background()
	// Gather resolves both ends at once: concurrent first calls share one discovery.
	rng, err := c.Gather(ctx, "acme/payments", base, "main")
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(rng.Changes); len(got) != 1 || got[0] != prWant(pr) {
		t.Fatalf("changes %v", got)
	}
	if err := c.SetStatus(ctx, "acme/payments", pr.MergeSHA, "success", "sockembot", "ok", ""); err != nil {
		t.Fatal(err)
	}
	// Repository names are case-insensitive: no second discovery for another spelling.
	if _, err := c.ResolveRef(ctx, "ACME/Payments", "main"); err != nil {
		t.Fatal(err)
	}
	if n := s.Count(routeRepoInstallation); n != 1 {
		t.Errorf("installation discovered %d times for one repository, want once", n)
	}
	if n := s.TokensIssued(); n != 1 {
		t.Errorf("%d tokens minted, want 1", n)
	}
	// Another repository of the same owner: its own discovery, the same installation's token.
	if err := c.SetStatus(ctx, "acme/ledger", otherSHA, "success", "sockembot", "ok", ""); err != nil {
		t.Fatal(err)
	}
	if n, m := s.Count(routeRepoInstallation), s.TokensIssued(); n != 2 || m != 1 {
		t.Errorf("after a second repository: %d discoveries (want 2), %d tokens (want 1)", n, m)
	}
	checkAuth(t, s)
	if st := r.Statuses(pr.MergeSHA); len(st) != 1 || st[0].Creator != "sockembot[bot]" {
		t.Errorf("status as written: %+v", st)
	}

	// GitHub drops the token before its hour is up: the next call gets a 401, a new token is
	// minted and the call goes through, once.
	s.ExpireTokens()
	s.ResetLog()
	if err := c.SetStatus(ctx, "acme/payments", pr.MergeSHA, "failure", "sockembot", "again", ""); err != nil {
		t.Fatalf("after the token expired: %v", err)
	}
	if n := s.TokensIssued(); n != 2 {
		t.Errorf("%d tokens minted after expiry, want 2", n)
	}
	var statuses []int
	for _, req := range s.Requests() {
		if req.Route == routeStatus {
			statuses = append(statuses, req.Status)
		}
	}
	if fmt.Sprint(statuses) != "[401 201]" {
		t.Errorf("status POSTs answered %v, want [401 201]", statuses)
	}
	if st := r.Statuses(pr.MergeSHA); len(st) != 2 || st[1].Description != "again" {
		t.Errorf("statuses: %+v", st)
	}
	// Concurrent calls after another expiry share one new token.
	s.ExpireTokens()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.ResolveRef(ctx, "acme/payments", "main"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := s.TokensIssued(); n != 3 {
		t.Errorf("%d tokens minted after a second expiry with 8 concurrent calls, want 3", n)
	}
}

// Minting refused on renewal: a clear error, nothing sent without a token, no token in it.
func TestAppModeRenewalFailsClosed(t *testing.T) {
	s := appFake(t)
	r := s.AddRepo("acme/payments", "main")
	sha := r.Commit("initial", "alice")
	c := newClient(t, s, github.Options{App: appAuth(s)})
	ctx := context.Background()
	if err := c.SetStatus(ctx, "acme/payments", sha, "pending", "sockembot", "checking", ""); err != nil {
		t.Fatal(err)
	}
	s.ExpireTokens()
	s.FailNext(1, "/access_tokens", http.StatusForbidden)
	s.ResetLog()
	err := c.SetStatus(ctx, "acme/payments", sha, "success", "sockembot", "ok", "")
	if err == nil || !strings.Contains(err.Error(), "could not mint a token for installation") || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("renewal refused: %v", err)
	}
	if strings.Contains(err.Error(), "ghs_") {
		t.Errorf("an installation token in the error: %v", err)
	}
	// The expired token was tried once; the refused mint is not retried; nothing else went out.
	if got := fmt.Sprint(s.Counts()); s.Count(routeStatus) != 1 || s.Total() != 2 {
		t.Errorf("requests after a refused mint: %s", got)
	}
	if st := r.Statuses(sha); len(st) != 1 {
		t.Errorf("statuses: %+v", st)
	}

	// A deployment is sent once at most; one that never left for want of a token is known not
	// to exist (not ErrOutcomeUnknown), whatever the mint's trouble.
	s.ResetLog()
	c = newClient(t, s, github.Options{App: &github.AppAuth{ID: s.AppID(), PrivateKey: s.AppPrivateKeyPEM(), InstallationID: s.InstallationID("acme")}})
	s.FailNext(4, "/access_tokens", http.StatusBadGateway)
	_, err = c.CreateDeployment(ctx, "acme/payments", sha, "production", nil, "deploy")
	if err == nil || errors.Is(err, github.ErrOutcomeUnknown) || !strings.Contains(err.Error(), "HTTP 502") {
		t.Errorf("deployment without a token: %v", err)
	}
	if n := len(r.Deployments()); n != 0 {
		t.Errorf("%d deployments", n)
	}
	if n, m := s.Count(routeDeployments), s.Count("POST /app/installations/{id}/access_tokens"); n != 0 || m != 4 {
		t.Errorf("POST /deployments sent %d times without a token; %d mints (want 1 + 3 retries)", n, m)
	}
}

// An App key GitHub does not know: the JWT is refused, and so is everything, with a clear
// error and nothing sent without a credential.
func TestAppModeWrongKey(t *testing.T) {
	s := appFake(t)
	r := s.AddRepo("acme/payments", "main")
	sha := r.Commit("initial", "alice")
	key := otherKeyPEM(t)
	ctx := context.Background()

	// Discovery.
	c := newClient(t, s, github.Options{App: &github.AppAuth{ID: s.AppID(), PrivateKey: key}})
	err := c.SetStatus(ctx, "acme/payments", sha, "success", "sockembot", "ok", "")
	if err == nil || !strings.Contains(err.Error(), "refused the App's JWT") || !strings.Contains(err.Error(), "GITHUB_APP_ID") {
		t.Fatalf("wrong key, discovery: %v", err)
	}
	if n := s.Count(routeStatus); n != 0 {
		t.Errorf("status sent %d times without a credential", n)
	}
	if n := s.Count(routeRepoInstallation); n != 1 {
		t.Errorf("refused discovery retried: %d", n)
	}

	// A fixed installation: minting.
	s.ResetLog()
	c = newClient(t, s, github.Options{App: &github.AppAuth{ID: s.AppID(), PrivateKey: key, InstallationID: s.InstallationID("acme")}})
	err = c.SetStatus(ctx, "acme/payments", sha, "success", "sockembot", "ok", "")
	if err == nil || !strings.Contains(err.Error(), "could not mint a token") || !strings.Contains(err.Error(), "HTTP 401") ||
		!strings.Contains(err.Error(), "A JSON web token could not be decoded") {
		t.Fatalf("wrong key, minting: %v", err)
	}
	if s.Total() != 1 || s.Count(routeStatus) != 0 {
		t.Errorf("requests: %v", s.Counts())
	}
	if len(r.Statuses(sha)) != 0 {
		t.Error("a status was written")
	}
}

// A server (a proxy, a WAF) that echoes the request into an error answer must not put an
// installation token or the App's JWT into an error.
func TestAppModeCredentialsNeverInErrors(t *testing.T) {
	s := appFake(t)
	r := s.AddRepo("acme/payments", "main")
	sha := r.Commit("initial", "alice")
	echo := &echoTransport{base: http.DefaultTransport}
	c := newClient(t, s, github.Options{App: appAuth(s), HTTPClient: &http.Client{Transport: echo}, Retries: -1})
	ctx := context.Background()

	echo.set("/statuses/", http.StatusUnauthorized)
	err := c.SetStatus(ctx, "acme/payments", sha, "success", "sockembot", "ok", "")
	if err == nil {
		t.Fatal("an echoed 401 accepted")
	}
	seen := echo.credentials()
	if len(seen) < 2 {
		t.Fatalf("echoed %d credentials", len(seen))
	}
	for _, cred := range seen {
		if strings.Contains(err.Error(), cred) {
			t.Errorf("error holds a credential: %v", err)
		}
	}
	if !strings.Contains(err.Error(), "[REDACTED]") {
		t.Errorf("error %v: the echo should be there, redacted", err)
	}

	// The mint's refusal, echoing the JWT.
	echo.set("/access_tokens", http.StatusUnauthorized)
	s.ExpireTokens()
	err = c.SetStatus(ctx, "acme/payments", sha, "success", "sockembot", "ok", "")
	if err == nil {
		t.Fatal("an echoed mint refusal accepted")
	}
	for _, cred := range echo.credentials() {
		if strings.Contains(err.Error(), cred) {
			t.Errorf("error holds a credential: %v", err)
		}
	}
	if !strings.Contains(err.Error(), "[REDACTED]") {
		t.Errorf("mint error %v: GitHub's message should be there, redacted", err)
	}
}

// echoTransport answers requests whose path contains path with status and a GitHub-style error
// body quoting their Authorization header.
type echoTransport struct {
	base   http.RoundTripper
	mu     sync.Mutex
	path   string
	status int
	seen   []string
}

func (e *echoTransport) set(path string, status int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.path, e.status = path, status
}

func (e *echoTransport) credentials() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.seen...)
}

func (e *echoTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	e.mu.Lock()
	path, status := e.path, e.status
	auth := req.Header.Get("Authorization")
	if _, cred, ok := strings.Cut(auth, " "); ok && cred != "" {
		e.seen = append(e.seen, cred)
	}
	e.mu.Unlock()
	if path == "" || !strings.Contains(req.URL.Path, path) {
		return e.base.RoundTrip(req)
	}
	if req.Body != nil {
		req.Body.Close()
	}
	body := fmt.Sprintf(`{"message":"Bad credentials: you sent %s"}`, auth)
	return &http.Response{
		StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader([]byte(body))),
		Request: req, ProtoMajor: 1, ProtoMinor: 1,
	}, nil
}

func TestAppModeOptions(t *testing.T) {
	s := appFake(t)
	key := s.AppPrivateKeyPEM()
	if _, err := github.New(github.Options{Token: "t0ken", App: &github.AppAuth{ID: 1, PrivateKey: key}}); err == nil ||
		!strings.Contains(err.Error(), "GITHUB_TOKEN") || !strings.Contains(err.Error(), "GITHUB_APP_ID") {
		t.Errorf("both a token and an App: %v", err)
	}
	for _, id := range []int64{0, -3} {
		if _, err := github.New(github.Options{App: &github.AppAuth{ID: id, PrivateKey: key}}); err == nil {
			t.Errorf("App ID %d accepted", id)
		}
	}
	if _, err := github.New(github.Options{App: &github.AppAuth{ID: 1, PrivateKey: key, InstallationID: -1}}); err == nil {
		t.Error("negative installation ID accepted")
	}
	const material = "c2VjcmV0LWtleS1tYXRlcmlhbC10aGF0LW11c3Qtbm90LWxlYWs"
	for name, bad := range map[string][]byte{
		"not PEM":        []byte("secret-key-material-that-must-not-leak " + material),
		"PEM of garbage": []byte("-----BEGIN RSA PRIVATE KEY-----\n" + material + "\n-----END RSA PRIVATE KEY-----\n"),
		"public key":     publicKeyPEM(t),
		"empty":          nil,
	} {
		_, err := github.New(github.Options{App: &github.AppAuth{ID: 1, PrivateKey: bad}})
		if err == nil {
			t.Errorf("%s: accepted as a private key", name)
			continue
		}
		if strings.Contains(err.Error(), material) || strings.Contains(err.Error(), "secret-key") || strings.Contains(err.Error(), "MII") {
			t.Errorf("%s: error quotes the key: %v", name, err)
		}
	}
	if c, err := github.New(github.Options{Token: "t0ken"}); err != nil || c.AppMode() {
		t.Errorf("token mode: AppMode %v, %v", c.AppMode(), err)
	}
}

func publicKeyPEM(t testing.TB) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// GitHub Enterprise Server: https://host/api/v3, with or without the trailing slash, or just
// the host (go-github adds /api/v3/). Token minting goes there too.
func TestAppModeEnterpriseBaseURL(t *testing.T) {
	s := appFake(t)
	r := s.AddRepo("acme/payments", "main")
	sha := r.Commit("initial", "alice")
	for _, base := range []string{strings.TrimSuffix(s.URL(), "/"), strings.TrimSuffix(s.URL(), "/api/v3/")} {
		c, err := github.New(github.Options{BaseURL: base, App: appAuth(s), Backoff: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.ResolveRef(context.Background(), "acme/payments", "main"); err != nil || got != sha {
			t.Errorf("base %s: %s, %v", base, got, err)
		}
	}
	for _, req := range s.Requests() {
		if !strings.HasPrefix(req.Path, fakegithub.APIPrefix+"/") {
			t.Errorf("%s %s outside the API base", req.Method, req.Path)
		}
	}
	if n := s.Count("POST /app/installations/{id}/access_tokens"); n != 2 {
		t.Errorf("%d tokens minted at the base, want 2 (one per client)", n)
	}
}

// As a GitHub App, sockembot's comments are exactly the App's bot's: another App's comment with
// the marker is not taken for its own.
func TestAppModeFindCommentIsTheAppsOwn(t *testing.T) {
	s := appFake(t)
	r := s.AddRepo("acme/payments", "main")
	r.Commit("initial", "alice")
	pr := r.OpenPR(fakegithub.PR{Title: "PAY-1", Author: "alice"})
	const marker = "<!-- sockembot -->"
	r.AddComment(pr.Number, "dependabot[bot]", marker+" quoted")
	r.AddComment(pr.Number, "mallory", marker+" forged")
	c := newClient(t, s, github.Options{App: appAuth(s)})
	ctx := context.Background()
	if _, _, found, err := c.FindComment(ctx, "acme/payments", pr.Number, marker); err != nil || found {
		t.Fatalf("another bot's comment taken for sockembot's: %v %v", found, err)
	}
	id, created, err := c.UpsertComment(ctx, "acme/payments", pr.Number, marker, "missing ticket")
	if err != nil || !created {
		t.Fatalf("upsert: %v %v", created, err)
	}
	if got, _, found, err := c.FindComment(ctx, "acme/payments", pr.Number, marker); err != nil || !found || got != id {
		t.Fatalf("own comment: %d %v %v", got, found, err)
	}
	if n := s.Count("GET /app"); n != 1 {
		t.Errorf("GET /app %d times, want once", n)
	}
	if n := s.Count("GET /user"); n != 0 {
		t.Errorf("GET /user %d times in App mode", n)
	}
	checkAuth(t, s)
}

// An installation GitHub no longer has (the App was reinstalled): the repository's
// installation is looked up again on the next call.
func TestAppModeInstallationGone(t *testing.T) {
	s := appFake(t)
	r := s.AddRepo("acme/payments", "main")
	r.Commit("initial", "alice")
	c := newClient(t, s, github.Options{App: appAuth(s)})
	ctx := context.Background()
	if _, err := c.ResolveRef(ctx, "acme/payments", "main"); err != nil {
		t.Fatal(err)
	}
	s.ExpireTokens()
	s.FailNext(1, "/access_tokens", http.StatusNotFound)
	if _, err := c.ResolveRef(ctx, "acme/payments", "main"); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("installation gone: %v", err)
	}
	if _, err := c.ResolveRef(ctx, "acme/payments", "main"); err != nil {
		t.Fatalf("after the installation came back: %v", err)
	}
	if n := s.Count(routeRepoInstallation); n != 2 {
		t.Errorf("%d discoveries, want 2 (the first, and once the installation was gone)", n)
	}
}
