// Package jira is the go-jira adapter: project keys, tickets by key (batched, Cloud or Data
// Center search), and comments and transitions to close the loop after a deploy.
package jira

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	gojira "github.com/andygrunwald/go-jira"

	"sockembot/integrations/internal/scrub"
)

// Options configure a Client.
type Options struct {
	// BaseURL is the Jira site, e.g. https://acme.atlassian.net or https://jira.acme.com/jira.
	BaseURL string
	// User and Token together are a Cloud account e-mail and API token (Basic auth). Token
	// alone is a Data Center personal access token (Bearer).
	User, Token string
	// HTTPClient supplies the transport and timeout; auth is layered on top of it.
	HTTPClient *http.Client
	// BatchSize is the number of keys per `key in (...)` query (default 100).
	BatchSize int
	// Concurrency bounds the batches in flight at once (default 4), to stay clear of Jira's
	// rate limits.
	Concurrency int
	// ProjectsTTL is how long Projects reuses the project list it last fetched (default 5
	// minutes; negative: fetch it every time). Concurrent callers share one fetch; a failed
	// fetch is never kept. A project created or deleted meanwhile is seen at the next fetch;
	// until then its tickets are not recognised as tickets (a check fails closed: no ticket),
	// or a deleted project's are looked up and not found.
	ProjectsTTL time.Duration
	// Now is the clock of that cache (default time.Now); tests set it.
	Now func() time.Time
}

// DefaultProjectsTTL is Options.ProjectsTTL's default.
const DefaultProjectsTTL = 5 * time.Minute

// Client talks to one Jira site.
type Client struct {
	api         *gojira.Client
	base        string // with a trailing slash
	batch       int
	concurrency int
	secrets     []string // never to appear in an error

	mu       sync.Mutex
	detected bool
	cloud    bool

	projectsTTL time.Duration
	now         func() time.Time
	pmu         sync.Mutex     // guards the fields below
	projects    []string       // the last list fetched, never handed out (callers get copies)
	projectsAt  time.Time      // when that fetch started
	hasProjects bool           // projects is set
	fetching    *projectsFetch // the fetch in flight, nil when none
}

// projectsFetch is one fetch of the project list, shared by every caller that asked while it
// was in flight. It runs on a context of its own, cancelled only when every caller waiting for
// it has given up, so one caller's cancelled context does not fail the others.
type projectsFetch struct {
	done      chan struct{} // closed when keys, err and panicked are set
	keys      []string
	err       error
	panicked  any // the fetch panicked with this value; each waiter panics again with it
	waiters   int
	cancel    context.CancelFunc
	forgotten bool // ForgetProjects was called meanwhile: its answer is not kept
}

// New builds a Client. It does not contact Jira.
func New(o Options) (*Client, error) {
	u, err := url.Parse(o.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("jira: base URL %q is not an http(s) URL", o.BaseURL)
	}
	base := strings.TrimRight(o.BaseURL, "/") + "/"

	hc := &http.Client{Timeout: 30 * time.Second}
	if o.HTTPClient != nil {
		c := *o.HTTPClient
		hc = &c
	}
	var secrets []string
	switch {
	case o.User != "" && o.Token != "":
		// Jira Cloud: account e-mail + API token over Basic auth.
		hc.Transport = &gojira.BasicAuthTransport{Username: o.User, Password: o.Token, Transport: hc.Transport}
		secrets = []string{o.Token, base64.StdEncoding.EncodeToString([]byte(o.User + ":" + o.Token))}
	case o.Token != "":
		// Jira Data Center personal access token: "Authorization: Bearer <PAT>".
		hc.Transport = &gojira.PATAuthTransport{Token: o.Token, Transport: hc.Transport}
		secrets = []string{o.Token}
	}
	// Outermost: error bodies are scrubbed before go-jira reads them into its errors.
	hc.Transport = &scrub.Transport{Base: hc.Transport, Secrets: secrets}
	api, err := gojira.NewClient(hc, base)
	if err != nil {
		return nil, fmt.Errorf("jira: client for %s: %w", base, err)
	}
	c := &Client{api: api, base: base, batch: o.BatchSize, concurrency: o.Concurrency, secrets: secrets,
		projectsTTL: o.ProjectsTTL, now: o.Now}
	if c.projectsTTL == 0 {
		c.projectsTTL = DefaultProjectsTTL
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.batch <= 0 {
		c.batch = 100
	}
	if c.concurrency <= 0 {
		c.concurrency = 4
	}
	return c, nil
}

// Projects returns the keys of the projects the account can see. The list is kept for
// Options.ProjectsTTL: a check asks for it every time, and it rarely changes. Callers asking
// while a fetch is in flight wait for that one; each caller gets its own copy.
func (c *Client) Projects(ctx context.Context) ([]string, error) {
	if c.projectsTTL < 0 {
		return c.fetchProjects(ctx)
	}
	c.pmu.Lock()
	if c.hasProjects && c.now().Sub(c.projectsAt) < c.projectsTTL {
		keys := slices.Clone(c.projects)
		c.pmu.Unlock()
		return keys, nil
	}
	f := c.fetching
	if f == nil {
		// Detached from this caller's cancellation (not from its values), so that callers who
		// join it are not failed by this one leaving; cancelled when the last waiter leaves.
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &projectsFetch{done: make(chan struct{}), cancel: cancel}
		c.fetching = f
		go c.runProjectsFetch(fctx, f)
	}
	f.waiters++
	c.pmu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		c.pmu.Lock()
		f.waiters--
		if f.waiters == 0 {
			f.cancel()
			if c.fetching == f {
				c.fetching = nil // the next caller starts afresh rather than join a cancelled fetch
			}
		}
		c.pmu.Unlock()
		return nil, fmt.Errorf("jira: projects: %w", context.Cause(ctx))
	}
	if f.panicked != nil {
		panic(f.panicked)
	}
	if f.err != nil {
		return nil, f.err
	}
	return slices.Clone(f.keys), nil
}

// ForgetProjects drops the kept project list: the next Projects fetches it. A fetch in flight
// is not kept either.
func (c *Client) ForgetProjects() {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	c.projects, c.hasProjects = nil, false
	if f := c.fetching; f != nil {
		f.forgotten = true
		c.fetching = nil
	}
}

// runProjectsFetch fetches the project list for f and keeps it if it succeeded.
func (c *Client) runProjectsFetch(ctx context.Context, f *projectsFetch) {
	start := c.now()
	var (
		keys     []string
		err      error
		panicked any
	)
	func() {
		defer func() {
			panicked = recover() // never nil after a panic (Go 1.21: panic(nil) is a *runtime.PanicNilError)
		}()
		keys, err = c.fetchProjects(ctx)
	}()
	c.pmu.Lock()
	f.keys, f.err, f.panicked = keys, err, panicked
	if c.fetching == f {
		c.fetching = nil
	}
	if err == nil && panicked == nil && !f.forgotten {
		c.projects, c.projectsAt, c.hasProjects = keys, start, true
	}
	c.pmu.Unlock()
	f.cancel()
	close(f.done)
}

// fetchProjects asks Jira for every project's key.
func (c *Client) fetchProjects(ctx context.Context) ([]string, error) {
	list, resp, err := c.api.Project.GetListWithContext(ctx)
	if err != nil {
		return nil, c.wrap("projects", resp, err)
	}
	keys := make([]string, 0, len(*list))
	for _, p := range *list {
		keys = append(keys, p.Key)
	}
	return keys, nil
}

// Comment adds a plain-text comment to an issue.
func (c *Client) Comment(ctx context.Context, key, body string) error {
	_, resp, err := c.api.Issue.AddCommentWithContext(ctx, key, &gojira.Comment{Body: body})
	if err != nil {
		return c.wrap("comment on "+key, resp, err)
	}
	return nil
}

// Transition moves an issue through the transition called name, or the one leading to a status
// called name (both case-insensitive). An issue already in that status, or in any status of the
// "Done" category (Closed, Won't Do, Released ...: someone finished it on purpose) is left
// alone: moved is false. status is the issue's status before.
func (c *Client) Transition(ctx context.Context, key, name string) (moved bool, status string, err error) {
	want := strings.TrimSpace(name)
	issue, resp, err := c.api.Issue.GetWithContext(ctx, key, &gojira.GetQueryOptions{Fields: "status"})
	if err != nil {
		return false, "", c.wrap("status of "+key, resp, err)
	}
	if issue.Fields != nil && issue.Fields.Status != nil {
		st := issue.Fields.Status
		status = st.Name
		if strings.EqualFold(st.Name, want) {
			return false, status, nil
		}
		if st.StatusCategory.Key == "done" {
			return false, status, nil
		}
	}
	ts, resp, err := c.api.Issue.GetTransitionsWithContext(ctx, key)
	if err != nil {
		return false, status, c.wrap("transitions of "+key, resp, err)
	}
	var names []string
	for _, t := range ts {
		if strings.EqualFold(strings.TrimSpace(t.Name), want) || strings.EqualFold(strings.TrimSpace(t.To.Name), want) {
			resp, err := c.api.Issue.DoTransitionWithContext(ctx, key, t.ID)
			if err != nil {
				return false, status, c.wrap(fmt.Sprintf("transition %s to %q", key, t.Name), resp, err)
			}
			resp.Body.Close()
			return true, status, nil
		}
		names = append(names, fmt.Sprintf("%q", t.Name))
	}
	return false, status, fmt.Errorf("jira: %s has no transition %q (available: %s)", key, name, strings.Join(names, ", "))
}

// isCloud asks serverInfo once which search API the site has; concurrent callers wait for
// that one probe. A failed probe is not remembered, so the next call tries again.
func (c *Client) isCloud(ctx context.Context) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.detected {
		return c.cloud, nil
	}
	req, err := c.api.NewRequestWithContext(ctx, http.MethodGet, "rest/api/2/serverInfo", nil)
	if err != nil {
		return false, c.wrap("server info", nil, err)
	}
	var info struct {
		DeploymentType string `json:"deploymentType"`
	}
	resp, err := c.do(req, &info)
	if err != nil {
		return false, c.wrap("server info", resp, err)
	}
	// Data Center says "Server" or "DataCenter" depending on its version; only Cloud has the
	// enhanced /search/jql (and no longer the old /search).
	c.cloud, c.detected = info.DeploymentType == "Cloud", true
	return c.cloud, nil
}

// apiError is a Jira answer other than 2xx. Its messages and text are already scrubbed of
// credentials (see wrap).
type apiError struct {
	status   int
	messages []string
	text     string // go-jira's error, when Jira sent no messages
	err      error
}

// maxErrorText is how much of a non-JSON answer an error quotes.
const maxErrorText = 300

func (e *apiError) Error() string {
	if len(e.messages) > 0 {
		return fmt.Sprintf("HTTP %d: %s", e.status, strings.Join(e.messages, "; "))
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, e.text)
}

func (e *apiError) Unwrap() error { return e.err }

// do sends a request built with go-jira for an endpoint it has no method for, decoding
// Jira's error collection the way its own methods do.
func (c *Client) do(req *http.Request, v any) (*gojira.Response, error) {
	resp, err := c.api.Do(req, v)
	if err != nil && resp != nil && resp.StatusCode >= 300 {
		err = gojira.NewJiraError(resp, err)
	}
	return resp, err
}

// wrap turns a go-jira failure into "jira: <what>: ...", with Jira's own messages when it sent
// some, and with any credential scrubbed out.
func (c *Client) wrap(what string, resp *gojira.Response, err error) error {
	if resp != nil && resp.StatusCode >= 300 {
		ae := &apiError{status: resp.StatusCode, err: err}
		var je *gojira.Error
		if errors.As(err, &je) {
			ae.messages = append(ae.messages, je.ErrorMessages...)
			for field, msg := range je.Errors {
				ae.messages = append(ae.messages, field+": "+msg)
			}
		}
		for i, m := range ae.messages {
			ae.messages[i] = c.redact(m)
		}
		if len(ae.messages) == 0 {
			// Without JSON, go-jira puts the whole body (often an HTML page) in the error.
			// Scrub first, then cut: a cut first could leave part of a token behind.
			ae.text = c.redact(err.Error())
			if len(ae.text) > maxErrorText {
				ae.text = ae.text[:maxErrorText] + "..."
			}
		}
		err = ae
	}
	msg := fmt.Sprintf("jira: %s: %v", what, err)
	if red := c.redact(msg); red != msg {
		return errors.New(red)
	}
	return fmt.Errorf("jira: %s: %w", what, err)
}

// redact replaces every credential in s. A proxy that echoes the Authorization header must not
// put the token in a log.
func (c *Client) redact(s string) string { return scrub.String(s, c.secrets) }
