package github

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	jwt "github.com/golang-jwt/jwt/v4"
	gh "github.com/google/go-github/v62/github"

	"sockembot/integrations/internal/scrub"
)

// AppAuth makes a Client act as a GitHub App: its JWT (signed with PrivateKey) for the App's own
// endpoints, and short-lived installation tokens, minted and renewed as needed, for everything
// else. Needed for check runs and deployment protection rules, which a user's token cannot write.
type AppAuth struct {
	ID         int64  // the App's ID (GITHUB_APP_ID)
	PrivateKey []byte // the App's private key, PEM (PKCS#1 or PKCS#8 RSA); never logged or put in errors
	// InstallationID pins one installation for every request. 0: each repository's installation
	// is found with GET /repos/{owner}/{repo}/installation, once per repository.
	InstallationID int64
}

// AppMode says whether the Client acts as a GitHub App (Options.App) rather than with a token.
func (c *Client) AppMode() bool { return c.app != nil }

// credentialError means a request was never sent: no credential could be had for it (the
// installation token could not be minted, the App is not installed on the repository, the
// request is not for GitHub). permanent is a refusal retrying will not change.
type credentialError struct {
	msg       string
	permanent bool
	status    int // GitHub's answer to the mint or the lookup, 0 when there was none
}

func (e *credentialError) Error() string { return e.msg }

// appRouter sits between the retrying transport and ghinstallation's: it picks the credential
// for each request. The App's own endpoints (/app, /repos/{owner}/{repo}/installation) get the
// JWT; a repository's endpoints get a token of the installation on that repository (the fixed
// one, or the one GitHub names, asked once per repository); anything else gets the fixed
// installation's token, or is refused. A request never leaves without a credential, and never
// with one for a host other than the API base's.
//
// A 401 on a token GitHub expired or revoked before its stated expiry (ghinstallation renews a
// minute before it) drops that installation's transport, mints a fresh token and sends the
// request once more.
type appRouter struct {
	id      int64
	key     *rsa.PrivateKey
	fixed   int64
	timeout time.Duration     // bounds a discovery, which does not run on any one caller's context
	tr      http.RoundTripper // what ghinstallation's transports send over (credentialScrub → base)

	// Set by init, once the go-github client's base URL is final.
	base    *url.URL
	jwt     *ghinstallation.AppsTransport
	apps    *gh.Client // over jwt: discovery
	baseStr string     // base without its trailing slash, as ghinstallation wants it

	mu       sync.Mutex
	found    map[string]*discovery               // lower-case owner/name → installation
	installs map[int64]*ghinstallation.Transport // installation → its token
}

type discovery struct {
	done chan struct{}
	id   int64
	err  error
}

// newAppRouter checks the App's settings and parses its key. Errors never quote the key.
func newAppRouter(a *AppAuth, base http.RoundTripper, timeout time.Duration) (*appRouter, error) {
	if a.ID <= 0 {
		return nil, fmt.Errorf("github: GitHub App ID (GITHUB_APP_ID) must be a positive number, not %d", a.ID)
	}
	if a.InstallationID < 0 {
		return nil, fmt.Errorf("github: GitHub App installation ID must be positive (or 0 to find each repository's), not %d", a.InstallationID)
	}
	if block, _ := pem.Decode(a.PrivateKey); block == nil {
		return nil, errors.New("github: the GitHub App private key is not PEM-encoded (expected the .pem file GitHub generates)")
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM(a.PrivateKey)
	if err != nil {
		// The parser's message is not passed on: it need not quote the key, but nothing checks.
		return nil, errors.New("github: the GitHub App private key is not an RSA private key in PKCS#1 or PKCS#8 PEM form")
	}
	return &appRouter{
		id: a.ID, key: key, fixed: a.InstallationID, timeout: timeout,
		tr:       credentialScrub{base: base},
		found:    map[string]*discovery{},
		installs: map[int64]*ghinstallation.Transport{},
	}, nil
}

// init points the router at the API base URL (ending in "/"), where every request, token
// minting included, goes.
func (a *appRouter) init(base *url.URL) {
	u := *base
	a.base = &u
	a.baseStr = strings.TrimSuffix(u.String(), "/")
	a.jwt = ghinstallation.NewAppsTransportFromPrivateKey(a.tr, a.id, a.key)
	a.jwt.BaseURL = a.baseStr
	apps := gh.NewClient(&http.Client{Transport: a.jwt})
	apps.BaseURL = a.base
	a.apps = apps
}

func (a *appRouter) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.EqualFold(req.URL.Scheme, a.base.Scheme) || !strings.EqualFold(req.URL.Host, a.base.Host) {
		closeBody(req)
		return nil, &credentialError{msg: fmt.Sprintf("github: refusing to send GitHub App credentials to %s://%s: only to the API base %s",
			req.URL.Scheme, req.URL.Host, a.baseStr), permanent: true}
	}
	rel, ok := strings.CutPrefix(req.URL.Path, a.base.Path)
	if !ok {
		closeBody(req)
		return nil, &credentialError{msg: fmt.Sprintf("github: refusing to send GitHub App credentials to %s: not under the API base %s",
			req.URL.Path, a.baseStr), permanent: true}
	}
	segs := strings.Split(rel, "/")
	switch {
	case segs[0] == "app":
		return a.withJWT(req)
	case segs[0] == "repos" && len(segs) >= 3 && segs[1] != "" && segs[2] != "":
		if len(segs) == 4 && segs[3] == "installation" {
			return a.withJWT(req)
		}
		if a.fixed != 0 {
			return a.withInstallation(req, a.fixed)
		}
		id, err := a.installation(req.Context(), segs[1], segs[2])
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, err := a.withInstallation(req, id)
		var ce *credentialError
		if errors.As(err, &ce) && ce.status == http.StatusNotFound {
			// The installation is gone (the App was uninstalled, or reinstalled under a new id):
			// the next request finds the repository's installation again.
			a.forget(id)
		}
		return resp, err
	case a.fixed != 0:
		return a.withInstallation(req, a.fixed)
	default:
		closeBody(req)
		return nil, &credentialError{msg: fmt.Sprintf("github: %s %s is not a repository's endpoint, and without a fixed GitHub App installation ID there is no installation token for it",
			req.Method, "/"+rel), permanent: true}
	}
}

// withJWT sends req as the App itself.
func (a *appRouter) withJWT(req *http.Request) (*http.Response, error) {
	// AppsTransport sets its headers on the request it is given: give it a copy.
	return a.jwt.RoundTrip(req.Clone(req.Context()))
}

// withInstallation sends req with installation id's token, renewing the token once on a 401.
func (a *appRouter) withInstallation(req *http.Request, id int64) (*http.Response, error) {
	t := a.transport(id, nil)
	resp, err := a.send(t, req, id)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	// GitHub no longer takes the token (expired early, revoked, or the clocks disagree).
	retry := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return resp, nil // cannot be sent again
		}
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		retry.Body = body
	}
	discard(resp)
	return a.send(a.transport(id, t), retry, id)
}

// send makes sure t has a token (minting one if need be), then sends req with it.
func (a *appRouter) send(t *ghinstallation.Transport, req *http.Request, id int64) (*http.Response, error) {
	if _, err := t.Token(req.Context()); err != nil {
		closeBody(req)
		return nil, a.mintError(err, id)
	}
	resp, err := t.RoundTrip(req)
	var he *ghinstallation.HTTPError
	if err != nil && errors.As(err, &he) { // the token ran out in between, and renewing it failed
		return nil, a.mintError(err, id)
	}
	return resp, err
}

// transport is installation id's transport, shared by every request; stale (when not nil) is
// one that got a 401: it is replaced by a fresh one (which mints a new token on first use),
// unless another request has replaced it already.
func (a *appRouter) transport(id int64, stale *ghinstallation.Transport) *ghinstallation.Transport {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.installs[id]
	if t == nil || t == stale {
		// Each installation gets its own AppsTransport: ghinstallation writes to it when it mints.
		atr := ghinstallation.NewAppsTransportFromPrivateKey(a.tr, a.id, a.key)
		atr.BaseURL = a.baseStr
		t = ghinstallation.NewFromAppsTransport(atr, id)
		t.BaseURL = a.baseStr
		a.installs[id] = t
	}
	return t
}

// mintError turns ghinstallation's failure to mint a token into a credentialError that says what
// GitHub answered (its message, scrubbed of the JWT) and never holds a token, the JWT or the key.
func (a *appRouter) mintError(err error, id int64) error {
	var he *ghinstallation.HTTPError
	if !errors.As(err, &he) { // a token GitHub gave that does not decode
		return &credentialError{msg: fmt.Sprintf("github: GitHub App %d: could not mint a token for installation %d: unreadable answer from GitHub", a.id, id)}
	}
	if he.Response == nil {
		return &credentialError{msg: fmt.Sprintf("github: GitHub App %d: could not mint a token for installation %d: %v", a.id, id, he.RootCause)}
	}
	// ghinstallation leaves the body of a refusal open.
	status := he.Response.StatusCode
	msg := githubMessage(he.Response)
	ce := &credentialError{
		status: status,
		msg:    fmt.Sprintf("github: GitHub App %d: could not mint a token for installation %d: HTTP %d%s", a.id, id, status, msg),
		// A refusal of the App's JWT or of the installation will not change on retry.
		permanent: status >= 400 && status < 500 && status != http.StatusTooManyRequests,
	}
	if status == http.StatusUnauthorized {
		ce.msg += " (check GITHUB_APP_ID and the App's private key, and the host's clock)"
	}
	return ce
}

// githubMessage reads GitHub's "message" from an error answer, for an error text (" (…)"), and
// closes the body.
func githubMessage(resp *http.Response) string {
	defer resp.Body.Close()
	var e struct {
		Message string `json:"message"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if json.Unmarshal(b, &e) != nil || e.Message == "" {
		return ""
	}
	return fmt.Sprintf(" (%s)", truncate(e.Message, 200))
}

// installation finds the App's installation on owner/name: once per repository for the process,
// a lookup shared by concurrent callers. A failed lookup is not remembered, nor is an
// installation GitHub no longer has (forget).
func (a *appRouter) installation(ctx context.Context, owner, name string) (int64, error) {
	key := strings.ToLower(owner + "/" + name)
	a.mu.Lock()
	d := a.found[key]
	if d == nil {
		d = &discovery{done: make(chan struct{})}
		a.found[key] = d
		// Not on ctx: a caller that gives up must not fail the others waiting on the lookup.
		go func() {
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.timeout)
			defer cancel()
			d.id, d.err = a.discover(lctx, owner, name)
			if d.err != nil {
				a.mu.Lock()
				if a.found[key] == d {
					delete(a.found, key)
				}
				a.mu.Unlock()
			}
			close(d.done)
		}()
	}
	a.mu.Unlock()
	select {
	case <-d.done:
		return d.id, d.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// forget drops the repositories found to use installation id.
func (a *appRouter) forget(id int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for key, d := range a.found {
		select {
		case <-d.done:
			if d.err == nil && d.id == id {
				delete(a.found, key)
			}
		default:
		}
	}
}

func (a *appRouter) discover(ctx context.Context, owner, name string) (int64, error) {
	inst, resp, err := a.apps.Apps.FindRepositoryInstallation(ctx, owner, name)
	if err != nil {
		status := 0
		if resp != nil && resp.Response != nil {
			status = resp.StatusCode
		}
		switch status {
		case http.StatusNotFound:
			return 0, &credentialError{msg: fmt.Sprintf("github: GitHub App %d is not installed on %s/%s (or the installation cannot see it)", a.id, owner, name), permanent: true}
		case http.StatusUnauthorized, http.StatusForbidden:
			var rl *gh.RateLimitError
			if !errors.As(err, &rl) {
				return 0, &credentialError{msg: fmt.Sprintf("github: GitHub App %d: GitHub refused the App's JWT finding its installation on %s/%s: HTTP %d (check GITHUB_APP_ID and the App's private key, and the host's clock)", a.id, owner, name, status), permanent: true}
			}
		}
		return 0, &credentialError{msg: fmt.Sprintf("github: GitHub App %d: finding its installation on %s/%s: %v", a.id, owner, name, err)}
	}
	if inst.GetID() <= 0 {
		return 0, &credentialError{msg: fmt.Sprintf("github: GitHub App %d: GitHub named no installation for %s/%s", a.id, owner, name)}
	}
	return inst.GetID(), nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// credentialScrub removes the credential a request carried (an installation token, the App's
// JWT) from the body of an error answer, so that a server echoing the request cannot put it into
// an error. The tokens change every hour: a fixed list of secrets cannot name them.
type credentialScrub struct{ base http.RoundTripper }

func (t credentialScrub) RoundTrip(req *http.Request) (*http.Response, error) {
	auth := req.Header.Get("Authorization")
	_, cred, ok := strings.Cut(auth, " ")
	if !ok {
		cred = auth
	}
	secrets := []string{strings.TrimSpace(cred)}
	if len(secrets[0]) < 8 { // nothing that short is a credential; scrubbing it would mangle text
		secrets = nil
	}
	return (&scrub.Transport{Base: t.base, Secrets: secrets}).RoundTrip(req)
}
