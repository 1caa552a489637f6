package fakegithub

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// AppOptions make the fake a GitHub App's host (Options.App).
type AppOptions struct {
	ID       int64         // the App's id; default 4242
	Slug     string        // default "sockembot"; its bot user is Slug+"[bot]"
	TokenTTL time.Duration // lifetime of an installation token; default 1h
}

// The JSON below follows PyGithub's recordings of real GitHub answers (testdata/_extracted/
// PyGithub+PyGithub/GithubIntegration.*): GET /app, an installation, an installation access
// token, and the 401 a bad JWT gets.

// installToken is an installation access token the fake issued.
type installToken struct {
	install int64
	owner   string // lower-case
	expires time.Time
	revoked bool // ExpireTokens
}

// The App's key pair: one per process, because a 2048-bit RSA key takes a while to generate.
var appKey struct {
	once sync.Once
	key  *rsa.PrivateKey
	pem  []byte
}

func appPrivateKey() *rsa.PrivateKey {
	appKey.once.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic("fakegithub: generate the App key: " + err.Error())
		}
		appKey.key = k
		appKey.pem = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	})
	return appKey.key
}

// AppPrivateKeyPEM is the App's private key as GitHub issues it: PEM "RSA PRIVATE KEY"
// (PKCS#1), 2048 bits. Every Server in the process shares it.
func (s *Server) AppPrivateKeyPEM() []byte {
	appPrivateKey()
	return append([]byte(nil), appKey.pem...)
}

// AppID is the App's id (the JWT's iss); 0 when the fake is not in App mode.
func (s *Server) AppID() int64 {
	if s.app == nil {
		return 0
	}
	return s.app.ID
}

// InstallationID is the id of the App's installation on owner's account, which covers all of
// owner's repositories. Ids are stable per server: 7000001, 7000002 … in the order owners were
// first seen (AddRepo or this call).
func (s *Server) InstallationID(owner string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.installFor(owner)
}

// ExpireTokens makes every installation token issued so far count as expired: the fake answers
// 401 "Bad credentials" to it, as GitHub does once a token's hour is up or it was revoked.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.revoked = true
	}
}

// TokensIssued is how many installation tokens POST /app/installations/{id}/access_tokens has
// issued.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokensIssued
}

// installFor returns owner's installation, creating it on first use; callers hold s.mu.
func (s *Server) installFor(owner string) int64 {
	key := strings.ToLower(owner)
	if id, ok := s.installs[key]; ok {
		return id
	}
	id := int64(7000001 + len(s.installs))
	s.installs[key] = id
	s.installOwner[id] = owner
	return id
}

// jwtRoutes are the endpoints that take the App's JWT rather than an installation token.
var jwtRoutes = map[string]bool{
	"GET /app":                                   true,
	"GET /app/installations":                     true,
	"GET /app/installations/{id}":                true,
	"POST /app/installations/{id}/access_tokens": true,
	"GET /repos/{owner}/{repo}/installation":     true,
}

// GitHub's answers to a JWT it refuses.
const (
	jwtUndecodable = "A JSON web token could not be decoded"
	jwtIssuedAt    = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
	jwtExpired     = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
	jwtTooFar      = "'Expiration time' claim ('exp') is too far in the future"
	jwtIssuer      = "'Issuer' claim ('iss') must be an Integer"
	jwtNoApp       = "Integration not found"
)

// appAuth checks a request's credential in App mode. It returns what the request carried
// (Request.Auth) and, when the request must not go on, the answer. Called with s.mu held.
func (s *Server) appAuth(r *http.Request, rt *route, params map[string]string) (string, *reply) {
	cred := credential(r.Header.Get("Authorization"))
	if rt != nil && jwtRoutes[rt.name()] {
		if msg := s.verifyJWT(cred); msg != "" {
			rep := jsonReply(http.StatusUnauthorized, obj{"message": msg, "documentation_url": "https://docs.github.com/rest"})
			return "none", &rep
		}
		return "jwt", nil
	}
	t := s.tokens[cred]
	if t == nil || t.revoked || !time.Now().Before(t.expires) {
		rep := badCredentials()
		return "none", &rep
	}
	owner, ok := params["owner"]
	if rt == nil { // unknown routes are still owner-scoped
		rest, _ := strings.CutPrefix(r.URL.Path, APIPrefix+"/repos/")
		owner, _, ok = strings.Cut(rest, "/")
	}
	if ok && strings.ToLower(owner) != t.owner {
		rep := notFound() // GitHub hides repositories the installation does not cover
		return "installation", &rep
	}
	return "installation", nil
}

// credential is the secret of an Authorization header ("Bearer x" or "token x").
func credential(h string) string {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || (!strings.EqualFold(scheme, "bearer") && !strings.EqualFold(scheme, "token")) {
		return ""
	}
	return strings.TrimSpace(cred)
}

// verifyJWT checks an App JWT as GitHub does. It returns "" when the JWT is good, else GitHub's
// message.
func (s *Server) verifyJWT(raw string) string {
	claims := jwt.MapClaims{}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithJSONNumber(), jwt.WithoutClaimsValidation())
	if _, err := parser.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) {
		return &appPrivateKey().PublicKey, nil
	}); err != nil {
		return jwtUndecodable
	}
	const skew, maxLife = 60, 600
	now := time.Now().Unix()
	n, _ := claims["iat"].(json.Number)
	iat, err := n.Int64()
	if err != nil || iat > now+skew {
		return jwtIssuedAt
	}
	n, _ = claims["exp"].(json.Number)
	expF, err := n.Float64()
	if err != nil || int64(expF) <= now {
		return jwtExpired
	}
	if exp := int64(expF); exp > iat+maxLife+skew || exp > now+maxLife+skew {
		return jwtTooFar
	}
	var iss string
	switch v := claims["iss"].(type) {
	case json.Number:
		iss = v.String()
	case string:
		iss = v
	default:
		return jwtIssuer
	}
	if id, err := strconv.ParseInt(iss, 10, 64); err != nil || id != s.app.ID {
		return jwtNoApp
	}
	return ""
}

// appPermissions are what the App asked for when it was registered.
func appPermissions() obj {
	return obj{
		"actions": "read", "checks": "write", "contents": "read", "deployments": "write",
		"issues": "write", "metadata": "read", "pull_requests": "write", "statuses": "write",
	}
}

func appEvents() []any {
	return []any{"check_run", "check_suite", "deployment_protection_rule", "issue_comment",
		"merge_group", "pull_request", "pull_request_review", "push"}
}

// GitHubActionsAppID is the id of the GitHub Actions App, the default author of check runs
// added with Repo.AddCheckRun.
const GitHubActionsAppID = 15368

// appJSON renders the App with id: the fake's own App, GitHub Actions, or another App.
func (s *Server) appJSON(id int64) obj {
	slug, name, ownerLogin := fmt.Sprintf("app-%d", id), fmt.Sprintf("App %d", id), "github"
	desc, external := "", s.htmlBase()
	perms, events := obj{"checks": "write", "metadata": "read"}, []any{"check_run", "check_suite"}
	switch {
	case s.app != nil && id == s.app.ID:
		slug, name, ownerLogin = s.app.Slug, s.app.Slug, s.app.Slug
		desc, external = "SOC 2 change management", s.htmlBase()+"/apps/"+s.app.Slug
		perms, events = appPermissions(), appEvents()
	case id == GitHubActionsAppID:
		slug, name = "github-actions", "GitHub Actions"
		desc, external = "Automate your workflow from idea to production", "https://help.github.com/en/actions"
		perms = obj{"actions": "write", "checks": "write", "contents": "write", "deployments": "write",
			"metadata": "read", "pull_requests": "write", "statuses": "write"}
		events = []any{"check_run", "check_suite", "deployment", "deployment_status", "pull_request", "push", "workflow_run"}
	}
	owner := s.user(ownerLogin).(obj)
	owner["type"] = "Organization"
	o := obj{
		"id": id, "slug": slug, "node_id": nodeID("App", id), "owner": owner, "name": name,
		"description": desc, "external_url": external, "html_url": s.htmlBase() + "/apps/" + slug,
		"created_at": ts(s.opts.Start), "updated_at": ts(s.opts.Start), "permissions": perms, "events": events,
	}
	if s.app != nil && id == s.app.ID {
		o["installations_count"] = len(s.installs)
	}
	return o
}

func (s *Server) installationJSON(id int64) obj {
	owner := s.installOwner[id]
	account := s.user(owner).(obj)
	account["type"] = "Organization"
	api := s.apiBase()
	return obj{
		"id": id, "account": account, "repository_selection": "all",
		"access_tokens_url": fmt.Sprintf("%s/app/installations/%d/access_tokens", api, id),
		"repositories_url":  api + "/installation/repositories",
		"html_url":          fmt.Sprintf("%s/organizations/%s/settings/installations/%d", s.htmlBase(), owner, id),
		"app_id":            s.app.ID, "app_slug": s.app.Slug, "target_id": userID(owner), "target_type": "Organization",
		"permissions": appPermissions(), "events": appEvents(),
		"created_at": ts(s.opts.Start), "updated_at": ts(s.opts.Start),
		"single_file_name": nil, "has_multiple_single_files": false, "single_file_paths": []any{},
		"suspended_by": nil, "suspended_at": nil,
	}
}

// notAnApp answers an App endpoint in token mode: there is no App, so no JWT can be good.
func notAnApp() reply {
	return jsonReply(http.StatusUnauthorized, obj{"message": jwtUndecodable, "documentation_url": "https://docs.github.com/rest"})
}

func (s *Server) getApp(_ *http.Request, _ map[string]string) reply {
	if s.app == nil {
		return notAnApp()
	}
	return jsonReply(http.StatusOK, s.appJSON(s.app.ID))
}

func (s *Server) listInstallations(req *http.Request, _ map[string]string) reply {
	if s.app == nil {
		return notAnApp()
	}
	ids := make([]int64, 0, len(s.installOwner))
	for id := int64(7000001); id < 7000001+int64(len(s.installOwner)); id++ {
		ids = append(ids, id)
	}
	return page(req, ids, func(id int64) any { return s.installationJSON(id) })
}

func (s *Server) installationOf(p map[string]string) (int64, bool) {
	id, err := strconv.ParseInt(p["id"], 10, 64)
	if err != nil {
		return 0, false
	}
	_, ok := s.installOwner[id]
	return id, ok
}

func (s *Server) getInstallation(_ *http.Request, p map[string]string) reply {
	if s.app == nil {
		return notAnApp()
	}
	id, ok := s.installationOf(p)
	if !ok {
		return notFound()
	}
	return jsonReply(http.StatusOK, s.installationJSON(id))
}

func (s *Server) getRepoInstallation(_ *http.Request, p map[string]string) reply {
	if s.app == nil {
		return notAnApp()
	}
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	return jsonReply(http.StatusOK, s.installationJSON(s.installFor(r.owner)))
}

// tokenAlphabet is what follows "ghs_" in an installation token.
const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func newInstallationToken() string {
	b := []byte("ghs_")
	for range 36 {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(tokenAlphabet))))
		if err != nil {
			panic("fakegithub: token: " + err.Error())
		}
		b = append(b, tokenAlphabet[n.Int64()])
	}
	return string(b)
}

// createInstallationToken answers POST /app/installations/{id}/access_tokens: a token for
// all the installation's repositories that lasts TokenTTL of real time. Requested permissions
// narrow the token's.
func (s *Server) createInstallationToken(req *http.Request, p map[string]string) reply {
	if s.app == nil {
		return notAnApp()
	}
	id, ok := s.installationOf(p)
	if !ok {
		return notFound()
	}
	var in struct {
		Permissions map[string]string `json:"permissions"`
	}
	if req.ContentLength != 0 {
		if err := json.NewDecoder(req.Body).Decode(&in); err != nil && !errors.Is(err, io.EOF) {
			return jsonReply(http.StatusBadRequest, obj{"message": "Problems parsing JSON",
				"documentation_url": "https://docs.github.com/rest/reference/apps#create-an-installation-access-token-for-an-app"})
		}
	}
	perms := appPermissions()
	if len(in.Permissions) > 0 {
		perms = obj{}
		for k, v := range in.Permissions {
			if _, granted := appPermissions()[k]; !granted {
				return unprocessable("The permissions requested are not granted to this installation.")
			}
			perms[k] = v
		}
	}
	token := newInstallationToken()
	expires := time.Now().Add(s.app.TokenTTL)
	s.tokens[token] = &installToken{install: id, owner: strings.ToLower(s.installOwner[id]), expires: expires}
	s.tokensIssued++
	return jsonReply(http.StatusCreated, obj{
		"token": token, "expires_at": expires.UTC().Format(time.RFC3339), "permissions": perms,
		"repository_selection": "all",
	})
}

// appOnly refuses an App-only write (check runs, protection rule reviews) outside App mode.
// In App mode every such request already carries an installation token (appAuth).
func (s *Server) appOnly() *reply {
	if s.app != nil {
		return nil
	}
	rep := jsonReply(http.StatusForbidden, obj{
		"message":           "You must authenticate via a GitHub App.",
		"documentation_url": "https://docs.github.com/rest",
	})
	return &rep
}
