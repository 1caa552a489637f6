package jira_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sockembot/compliance"
	fakejira "sockembot/integrations/fake/jira"
	"sockembot/integrations/jira"
)

const (
	routeServerInfo = "GET /rest/api/2/serverInfo"
	routeJQLv3      = "POST /rest/api/3/search/jql"
	routeSearchGet  = "GET /rest/api/2/search"
)

// removedRoutes are Cloud's 410 endpoints; no request may reach them.
var removedRoutes = []string{"GET /rest/api/2/search", "POST /rest/api/2/search", "GET /rest/api/3/search", "POST /rest/api/3/search"}

func client(t testing.TB, s *fakejira.Server, o jira.Options) *jira.Client {
	t.Helper()
	o.BaseURL = s.URL()
	c, err := jira.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// seed adds PAY-1..PAY-n, alternating statuses, and returns their keys.
func seed(s *fakejira.Server, n int) []string {
	statuses := []string{"In Progress", "Done", "To Do", "In Review"}
	var keys []string
	for i := 1; i <= n; i++ {
		k := fmt.Sprintf("PAY-%d", i)
		s.AddIssue(k, statuses[i%len(statuses)])
		keys = append(keys, k)
	}
	return keys
}

func checkAllFound(t *testing.T, got map[string]compliance.Ticket, keys []string, base string) {
	t.Helper()
	for _, k := range keys {
		tk := got[k]
		if !tk.Found || tk.Key != k || tk.Status == "" || tk.StatusCategory == "" || tk.URL != base+"/browse/"+k || tk.Summary != "Summary of "+k {
			t.Errorf("%s: %+v", k, tk)
		}
	}
}

func TestTicketsCloud(t *testing.T) {
	for _, tc := range []struct {
		name      string
		batch     int
		pageLimit int
		wantPages int
		paged     bool
	}{
		{"250 keys in batches of 100", 0, 0, 3, false},
		{"one batch of 250 over three pages", 250, 0, 3, true},
		{"Cloud serving 40 per page", 0, 40, 8, true}, // batches of 100, 100, 50: 3+3+2 pages
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fakejira.New(fakejira.Options{PageLimit: tc.pageLimit})
			defer s.Close()
			keys := seed(s, 250)
			got, err := client(t, s, jira.Options{BatchSize: tc.batch}).Tickets(context.Background(), keys)
			if err != nil {
				t.Fatal(err)
			}
			checkAllFound(t, got, keys, s.URL())
			if len(got) != len(keys) {
				t.Errorf("%d tickets for %d keys", len(got), len(keys))
			}
			if n := s.Count(routeJQLv3); n != tc.wantPages {
				t.Errorf("%d enhanced-search requests, want %d (%v)", n, tc.wantPages, s.Counts())
			}
			for _, r := range removedRoutes {
				if s.Count(r) != 0 {
					t.Errorf("hit the removed %s", r)
				}
			}
			tokens := 0
			for _, r := range s.Requests() {
				if r.Route != routeJQLv3 {
					continue
				}
				var body struct {
					Fields        []string
					MaxResults    int
					NextPageToken string
				}
				_ = json.Unmarshal([]byte(r.Body), &body)
				if strings.Join(body.Fields, ",") != "summary,status" || body.MaxResults > 100 {
					t.Errorf("asked for %v, maxResults %d", body.Fields, body.MaxResults)
				}
				if body.NextPageToken != "" {
					tokens++
				}
			}
			if tc.paged != (tokens > 0) {
				t.Errorf("%d requests with a nextPageToken", tokens)
			}
		})
	}
}

func TestTicketsStatusAndCategory(t *testing.T) {
	s := fakejira.New(fakejira.Options{})
	defer s.Close()
	s.AddIssue("PAY-1", "In Progress")
	s.AddIssue("PAY-2", "Backlog")
	s.PutIssue(fakejira.Issue{Key: "PAY-3", Summary: "Rotate keys", Status: "Shipped", StatusCategory: "done"})
	got, err := client(t, s, jira.Options{}).Tickets(context.Background(), []string{"PAY-1", "PAY-2", "PAY-3"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{"PAY-1": {"In Progress", "indeterminate"}, "PAY-2": {"Backlog", compliance.StatusCategoryToDo}, "PAY-3": {"Shipped", "done"}}
	for k, w := range want {
		if got[k].Status != w[0] || got[k].StatusCategory != w[1] {
			t.Errorf("%s: %+v, want %v", k, got[k], w)
		}
	}
	if got["PAY-3"].Summary != "Rotate keys" {
		t.Errorf("summary %q", got["PAY-3"].Summary)
	}
}

func TestTicketsDataCenter(t *testing.T) {
	for _, deployment := range []string{"Server", "DataCenter"} {
		t.Run(deployment, func(t *testing.T) {
			s := fakejira.New(fakejira.Options{Mode: fakejira.DataCenter, DeploymentType: deployment, ContextPath: "/jira", PageLimit: 30})
			defer s.Close()
			keys := seed(s, 120)
			got, err := client(t, s, jira.Options{}).Tickets(context.Background(), keys)
			if err != nil {
				t.Fatal(err)
			}
			checkAllFound(t, got, keys, s.URL())
			// 100 keys = 4 pages of 30 (startAt 0..90), 20 keys = 1 page.
			if n := s.Count(routeSearchGet); n != 5 {
				t.Errorf("%d searches, want 5: %v", n, s.Counts())
			}
			if n := s.Count(""); n != 0 {
				t.Errorf("%d requests to routes DC does not have (/search/jql)", n)
			}
			starts := map[string]bool{}
			for _, r := range s.Requests() {
				if r.Route == routeSearchGet {
					starts[r.Query.Get("startAt")] = true
					if r.Query.Get("fields") != "summary,status" {
						t.Errorf("fields=%q", r.Query.Get("fields"))
					}
				}
			}
			if !starts["90"] {
				t.Errorf("startAt seen: %v", starts)
			}
		})
	}
}

func TestTicketsMissingKeys(t *testing.T) {
	for _, mode := range []fakejira.Mode{fakejira.Cloud, fakejira.DataCenter} {
		search := routeJQLv3
		if mode == fakejira.DataCenter {
			search = routeSearchGet
		}
		t.Run(mode.String()+"/one bad key among 50", func(t *testing.T) {
			s := fakejira.New(fakejira.Options{Mode: mode})
			defer s.Close()
			keys := seed(s, 49)
			keys = append(keys[:20], append([]string{"PAY-999"}, keys[20:]...)...)
			got, err := client(t, s, jira.Options{}).Tickets(context.Background(), keys)
			if err != nil {
				t.Fatal(err)
			}
			checkAllFound(t, got, without(keys, "PAY-999"), s.URL())
			if tk, ok := got["PAY-999"]; !ok || tk.Found || tk.URL != s.URL()+"/browse/PAY-999" {
				t.Errorf("PAY-999: %+v %v", tk, ok)
			}
			if n := s.Count(search); n != 2 {
				t.Errorf("%d searches, want 2 (rejected, then without PAY-999)", n)
			}
		})
		t.Run(mode.String()+"/key in a project Jira does not have", func(t *testing.T) {
			s := fakejira.New(fakejira.Options{Mode: mode})
			defer s.Close()
			keys := append(seed(s, 3), "XYZ-1", "PAY-77")
			got, err := client(t, s, jira.Options{}).Tickets(context.Background(), keys)
			if err != nil {
				t.Fatal(err)
			}
			checkAllFound(t, got, keys[:3], s.URL())
			if got["XYZ-1"].Found || got["PAY-77"].Found || len(got) != 5 {
				t.Errorf("%+v", got)
			}
		})
		t.Run(mode.String()+"/every key missing", func(t *testing.T) {
			s := fakejira.New(fakejira.Options{Mode: mode})
			defer s.Close()
			s.AddProject("PAY")
			got, err := client(t, s, jira.Options{}).Tickets(context.Background(), []string{"PAY-5", "PAY-6", "NOPE-1"})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 || got["PAY-5"].Found || got["PAY-6"].Found || got["NOPE-1"].Found {
				t.Errorf("%+v", got)
			}
		})
	}
}

func TestTicketsBisectsVagueRejections(t *testing.T) {
	s := fakejira.New(fakejira.Options{})
	defer s.Close()
	keys := seed(s, 15)
	keys = append(keys, "PAY-404")
	s.SetVagueErrors(true)
	c := client(t, s, jira.Options{})
	got, err := c.Tickets(context.Background(), keys)
	if err != nil {
		t.Fatal(err)
	}
	checkAllFound(t, got, keys[:15], s.URL())
	if got["PAY-404"].Found {
		t.Error("PAY-404 found")
	}
	// 16 → 8+8 → 4+4 → 2+2 → 1+1: one rejection per level, plus the accepted halves.
	if n := s.Count(routeJQLv3); n != 9 {
		t.Errorf("%d searches, want 9", n)
	}

	// Alone, a key Jira refuses without saying why cannot be told from a broken query.
	if _, err := c.Tickets(context.Background(), []string{"PAY-404"}); err == nil {
		t.Error("a lone unexplained 400 passed as not found")
	}
	// Nor can a batch in which Jira accepts no key at all.
	if _, err := c.Tickets(context.Background(), []string{"PAY-404", "PAY-405", "PAY-406"}); err == nil {
		t.Error("a batch rejected key by key passed as not found")
	}
}

// cloudSearchServer is a Jira Cloud whose enhanced search answers each JQL with reject (a 400
// with those messages) or, when reject returns nothing, with the issues of the keys asked for.
func cloudSearchServer(t *testing.T, reject func(jql string) []string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var searches atomic.Int64
	key := regexp.MustCompile(`[A-Z]+-[0-9]+`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		switch r.URL.Path {
		case "/rest/api/2/serverInfo":
			fmt.Fprint(w, `{"deploymentType":"Cloud"}`)
		case "/rest/api/3/search/jql":
			searches.Add(1)
			var body struct{ JQL string }
			_ = json.NewDecoder(r.Body).Decode(&body)
			if msgs := reject(body.JQL); len(msgs) > 0 {
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]any{"errorMessages": msgs, "errors": map[string]string{}})
				return
			}
			var issues []map[string]any
			for _, k := range key.FindAllString(body.JQL, -1) {
				issues = append(issues, map[string]any{"key": k, "fields": map[string]any{
					"summary": "Summary of " + k, "status": map[string]any{"name": "Done", "statusCategory": map[string]any{"key": "done"}}}})
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"issues": issues, "isLast": true})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &searches
}

// A 400 that quotes the whole JQL names every key in it, but says none of them is missing: it
// must not mark the batch not found.
func TestTicketsRejectionQuotingTheJQL(t *testing.T) {
	ctx := context.Background()
	echo := func(jql string) string {
		return fmt.Sprintf("Error in the JQL Query: Expecting ')' but got 'PAY-2'. The query was: %s (line 1, character 9)", jql)
	}
	tickets := func(t *testing.T, srv *httptest.Server, keys ...string) (map[string]compliance.Ticket, error) {
		c, err := jira.New(jira.Options{BaseURL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		return c.Tickets(ctx, keys)
	}
	t.Run("every query rejected", func(t *testing.T) {
		srv, _ := cloudSearchServer(t, func(jql string) []string { return []string{echo(jql)} })
		got, err := tickets(t, srv, "PAY-1", "PAY-2")
		if err == nil || !strings.Contains(err.Error(), "HTTP 400") {
			t.Fatalf("got %+v, err %v; want the 400 as an error", got, err)
		}
	})
	t.Run("batch rejected, keys accepted alone", func(t *testing.T) {
		srv, searches := cloudSearchServer(t, func(jql string) []string {
			if strings.Contains(jql, ",") {
				return []string{echo(jql)}
			}
			return nil
		})
		got, err := tickets(t, srv, "PAY-1", "PAY-2")
		if err != nil {
			t.Fatal(err)
		}
		if !got["PAY-1"].Found || !got["PAY-2"].Found {
			t.Errorf("%+v", got)
		}
		if n := searches.Load(); n != 3 {
			t.Errorf("%d searches, want 3 (the batch, then each key)", n)
		}
	})
	t.Run("one key said missing, the JQL quoted too", func(t *testing.T) {
		srv, searches := cloudSearchServer(t, func(jql string) []string {
			if strings.Contains(jql, "PAY-3") {
				return []string{"An issue with key 'PAY-3' does not exist for field 'key'.", echo(jql)}
			}
			return nil
		})
		got, err := tickets(t, srv, "PAY-1", "PAY-2", "PAY-3")
		if err != nil {
			t.Fatal(err)
		}
		if !got["PAY-1"].Found || !got["PAY-2"].Found || got["PAY-3"].Found {
			t.Errorf("%+v", got)
		}
		if n := searches.Load(); n != 2 {
			t.Errorf("%d searches, want 2 (rejected, then without PAY-3)", n)
		}
	})
}

func TestTicketsFailClosed(t *testing.T) {
	ctx := context.Background()
	t.Run("outage", func(t *testing.T) {
		s := fakejira.New(fakejira.Options{})
		defer s.Close()
		keys := seed(s, 5)
		s.SetOutage(true)
		if got, err := client(t, s, jira.Options{}).Tickets(ctx, keys); err == nil || got != nil {
			t.Fatalf("outage gave %v, %v", got, err)
		}
	})
	t.Run("5xx on one batch of three", func(t *testing.T) {
		s := fakejira.New(fakejira.Options{})
		defer s.Close()
		keys := seed(s, 250)
		c := client(t, s, jira.Options{})
		if _, err := c.Projects(ctx); err != nil { // not the serverInfo probe
			t.Fatal(err)
		}
		if _, err := c.Tickets(ctx, keys[:1]); err != nil { // detection done
			t.Fatal(err)
		}
		s.FailNext(1)
		got, err := c.Tickets(ctx, keys)
		if err == nil || got != nil || !strings.Contains(err.Error(), "HTTP 500") {
			t.Fatalf("got %d tickets, %v", len(got), err)
		}
	})
	t.Run("serverInfo failing", func(t *testing.T) {
		s := fakejira.New(fakejira.Options{})
		defer s.Close()
		keys := seed(s, 2)
		c := client(t, s, jira.Options{})
		s.FailNext(1)
		if _, err := c.Tickets(ctx, keys); err == nil || !strings.Contains(err.Error(), "server info") {
			t.Fatalf("%v", err)
		}
		// The failed probe is not remembered.
		if _, err := c.Tickets(ctx, keys); err != nil {
			t.Fatal(err)
		}
		if n := s.Count(routeServerInfo); n != 2 {
			t.Errorf("%d serverInfo requests", n)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		s := fakejira.New(fakejira.Options{User: "bot@example.com", Token: "right-token"})
		defer s.Close()
		keys := seed(s, 2)
		_, err := client(t, s, jira.Options{User: "bot@example.com", Token: "wrong-token"}).Tickets(ctx, keys)
		if err == nil || !strings.Contains(err.Error(), "HTTP 401") || strings.Contains(err.Error(), "wrong-token") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("network", func(t *testing.T) {
		s := fakejira.New(fakejira.Options{})
		c := client(t, s, jira.Options{})
		s.Close()
		if _, err := c.Tickets(ctx, []string{"PAY-1"}); err == nil {
			t.Fatal("no error from a closed server")
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		s := fakejira.New(fakejira.Options{})
		defer s.Close()
		keys := seed(s, 3)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := client(t, s, jira.Options{}).Tickets(cctx, keys); err == nil {
			t.Fatal("no error with a cancelled context")
		}
	})
}

func TestTicketsKeysAsGiven(t *testing.T) {
	s := fakejira.New(fakejira.Options{})
	defer s.Close()
	seed(s, 2)
	keys := []string{"PAY-1", "PAY-1", "pay-2", "NOT A KEY", ""}
	got, err := client(t, s, jira.Options{}).Tickets(context.Background(), keys)
	if err != nil {
		t.Fatal(err)
	}
	if !got["PAY-1"].Found || !got["pay-2"].Found || got["NOT A KEY"].Found || got[""].Found || len(got) != 4 {
		t.Errorf("%+v", got)
	}
	if n := s.Count(routeJQLv3); n != 1 {
		t.Errorf("%d searches for two distinct keys", n)
	}
	// No key, no request.
	s.ResetRequests()
	if got, err := client(t, s, jira.Options{}).Tickets(context.Background(), nil); err != nil || len(got) != 0 || len(s.Requests()) != 0 {
		t.Errorf("%v %v %d requests", got, err, len(s.Requests()))
	}
}

func TestDeploymentDetectedOnce(t *testing.T) {
	s := fakejira.New(fakejira.Options{})
	defer s.Close()
	keys := seed(s, 3)
	c := client(t, s, jira.Options{})
	for i := 0; i < 3; i++ {
		if _, err := c.Tickets(context.Background(), keys); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Count(routeServerInfo); n != 1 {
		t.Errorf("%d serverInfo requests", n)
	}
}

func TestConcurrencyIsBounded(t *testing.T) {
	s := fakejira.New(fakejira.Options{Latency: 5 * time.Millisecond})
	defer s.Close()
	keys := seed(s, 300)
	if _, err := client(t, s, jira.Options{BatchSize: 10, Concurrency: 3}).Tickets(context.Background(), keys); err != nil {
		t.Fatal(err)
	}
	if p := s.PeakInFlight(); p > 3 {
		t.Errorf("%d requests in flight at once, limit 3", p)
	}
	if n := s.Count(routeJQLv3); n != 30 {
		t.Errorf("%d searches, want 30", n)
	}
}

func TestAuthHeaders(t *testing.T) {
	t.Run("Cloud: e-mail and API token over Basic", func(t *testing.T) {
		s := fakejira.New(fakejira.Options{User: "bot@example.com", Token: "api-token"})
		defer s.Close()
		keys := seed(s, 2)
		if _, err := client(t, s, jira.Options{User: "bot@example.com", Token: "api-token"}).Tickets(context.Background(), keys); err != nil {
			t.Fatal(err)
		}
		for _, r := range s.Requests() {
			if r.AuthScheme != "Basic" || r.Status != 200 {
				t.Errorf("%s %s: %q %d", r.Method, r.Path, r.AuthScheme, r.Status)
			}
		}
	})
	t.Run("Data Center: personal access token as Bearer", func(t *testing.T) {
		s := fakejira.New(fakejira.Options{Mode: fakejira.DataCenter, Token: "pat-123"})
		defer s.Close()
		keys := seed(s, 2)
		if _, err := client(t, s, jira.Options{Token: "pat-123"}).Tickets(context.Background(), keys); err != nil {
			t.Fatal(err)
		}
		for _, r := range s.Requests() {
			if r.AuthScheme != "Bearer" || r.Status != 200 {
				t.Errorf("%s %s: %q %d", r.Method, r.Path, r.AuthScheme, r.Status)
			}
		}
	})
	t.Run("HTTPClient keeps its transport", func(t *testing.T) {
		s := fakejira.New(fakejira.Options{Mode: fakejira.DataCenter, Token: "pat-123"})
		defer s.Close()
		seen := 0
		hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			seen++
			return http.DefaultTransport.RoundTrip(r)
		})}
		if _, err := client(t, s, jira.Options{Token: "pat-123", HTTPClient: hc}).Projects(context.Background()); err != nil {
			t.Fatal(err)
		}
		if seen != 1 || s.Requests()[0].AuthScheme != "Bearer" {
			t.Errorf("transport used %d times, auth %q", seen, s.Requests()[0].AuthScheme)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A proxy that echoes the request's Authorization header in its error page must not put the
// credential into our error string.
func TestTokenNeverInErrors(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(w, "<html>bad gateway for %s, Authorization: %s</html>", r.URL, r.Header.Get("Authorization"))
	}))
	defer echo.Close()
	for _, o := range []jira.Options{
		{BaseURL: echo.URL, User: "bot@example.com", Token: "s3cret-api-token"},
		{BaseURL: echo.URL, Token: "s3cret-pat"},
	} {
		c, err := jira.New(o)
		if err != nil {
			t.Fatal(err)
		}
		basic := base64.StdEncoding.EncodeToString([]byte(o.User + ":" + o.Token))
		for name, call := range map[string]func() error{
			"tickets":    func() error { _, err := c.Tickets(context.Background(), []string{"PAY-1"}); return err },
			"projects":   func() error { _, err := c.Projects(context.Background()); return err },
			"comment":    func() error { return c.Comment(context.Background(), "PAY-1", "hi") },
			"transition": func() error { _, _, err := c.Transition(context.Background(), "PAY-1", "Done"); return err },
		} {
			err := call()
			if err == nil {
				t.Fatalf("%s: no error from a 502", name)
			}
			if msg := err.Error(); strings.Contains(msg, o.Token) || strings.Contains(msg, basic) || !strings.Contains(msg, "502") {
				t.Errorf("%s: %s", name, msg)
			}
		}
	}
}

// A long non-JSON error page is cut short in the error; the credential it echoes must be
// scrubbed before the cut, or a token straddling the cut would leave its start behind.
func TestTokenStraddlingTheCutIsRedacted(t *testing.T) {
	var pad atomic.Int64
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		// The token lands at a different place for each pad; some pads put it across the cut.
		fmt.Fprintf(w, "<html>%s Authorization: %s and more text after it</html>", strings.Repeat("x", int(pad.Load())), r.Header.Get("Authorization"))
	}))
	defer echo.Close()
	for _, o := range []jira.Options{
		{BaseURL: echo.URL, User: "bot@example.com", Token: "s3cretApiTokenValue0123456789abcdef"},
		{BaseURL: echo.URL, Token: "s3cretPersonalAccessToken0123456789abc"},
	} {
		c, err := jira.New(o)
		if err != nil {
			t.Fatal(err)
		}
		secrets := []string{o.Token}
		if o.User != "" {
			secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(o.User+":"+o.Token)))
		}
		for n := 200; n <= 320; n++ {
			pad.Store(int64(n))
			_, err := c.Projects(context.Background())
			if err == nil {
				t.Fatal("no error from a 502")
			}
			if !strings.Contains(err.Error(), "HTTP 502") {
				t.Fatalf("pad %d: %s", n, err)
			}
			// Every error in the chain: a failure report prints each wrapped cause.
			msg := ""
			for e := err; e != nil; e = errors.Unwrap(e) {
				msg += e.Error() + "\n"
			}
			for _, s := range secrets {
				for l := 8; l <= len(s); l++ {
					if strings.Contains(msg, s[:l]) {
						t.Fatalf("pad %d: %d characters of a credential in %q", n, l, msg)
					}
				}
			}
		}
	}
}

func TestProjects(t *testing.T) {
	s := fakejira.New(fakejira.Options{Mode: fakejira.DataCenter, ContextPath: "/jira"})
	defer s.Close()
	s.AddProject("PAY")
	s.AddProject("OPS", "Operations")
	got, err := client(t, s, jira.Options{}).Projects(context.Background())
	if err != nil || strings.Join(got, ",") != "OPS,PAY" {
		t.Fatalf("%v %v", got, err)
	}
	s.SetOutage(true)
	if _, err := client(t, s, jira.Options{}).Projects(context.Background()); err == nil || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("outage: %v", err)
	}
}

func TestCommentAndTransition(t *testing.T) {
	ctx := context.Background()
	s := fakejira.New(fakejira.Options{})
	defer s.Close()
	s.AddIssue("PAY-1", "In Review")
	s.SetTransitions("PAY-1", []fakejira.Transition{{ID: "41", Name: "Deployed to production", To: "Deployed"}, {ID: "31", Name: "Done", To: "Done"}})
	c := client(t, s, jira.Options{})

	if err := c.Comment(ctx, "PAY-1", "Deployed payments@v1.2.3 to production"); err != nil {
		t.Fatal(err)
	}
	if cs := s.Comments(); len(cs) != 1 || cs[0].Issue != "PAY-1" || cs[0].Body != "Deployed payments@v1.2.3 to production" {
		t.Errorf("comments %+v", cs)
	}
	if moved, from, err := c.Transition(ctx, "PAY-1", "deployed TO production"); err != nil || !moved || from != "In Review" {
		t.Fatalf("transition by name: moved %v from %q, %v", moved, from, err)
	}
	if is, _ := s.Issue("PAY-1"); is.Status != "Deployed" || is.StatusCategory != "done" {
		t.Errorf("after transition %+v", is)
	}
	if p := s.Performed(); len(p) != 1 || p[0].TransitionID != "41" || p[0].From != "In Review" {
		t.Errorf("performed %+v", p)
	}
	// A ticket already in the target status, or finished in another "Done" status, is left alone.
	if moved, _, err := c.Transition(ctx, "PAY-1", "Deployed"); err != nil || moved {
		t.Errorf("transition to the status the ticket is in: moved %v, %v", moved, err)
	}
	if moved, from, err := c.Transition(ctx, "PAY-1", "done"); err != nil || moved || from != "Deployed" {
		t.Errorf("transition of a finished ticket: moved %v from %q, %v", moved, from, err)
	}
	if len(s.Performed()) != 1 {
		t.Errorf("performed %+v, want none for tickets left alone", s.Performed())
	}

	s.AddIssue("PAY-2", "In Review")
	s.SetTransitions("PAY-2", []fakejira.Transition{{ID: "41", Name: "Deployed to production", To: "Deployed"}, {ID: "31", Name: "Done", To: "Done"}})
	_, _, err := c.Transition(ctx, "PAY-2", "Ship it")
	if err == nil || !strings.Contains(err.Error(), `"Ship it"`) || !strings.Contains(err.Error(), `"Deployed to production", "Done"`) {
		t.Errorf("absent transition: %v", err)
	}
	if len(s.Performed()) != 1 {
		t.Error("a transition was done for an absent name")
	}
	// By target status.
	if moved, _, err := c.Transition(ctx, "PAY-2", "done"); err != nil || !moved {
		t.Fatalf("transition by target status: moved %v, %v", moved, err)
	}
	if p := s.Performed(); len(p) != 2 || p[1].TransitionID != "31" {
		t.Errorf("performed %+v, want one more (PAY-2 to Done)", p)
	}
	if err := c.Comment(ctx, "PAY-404", "x"); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("comment on a missing issue: %v", err)
	}
	if _, _, err := c.Transition(ctx, "PAY-404", "Done"); err == nil {
		t.Error("transition on a missing issue")
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "jira.example.com", "ftp://jira.example.com", "://"} {
		if _, err := jira.New(jira.Options{BaseURL: u}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}

func without(keys []string, drop string) []string {
	var out []string
	for _, k := range keys {
		if k != drop {
			out = append(out, k)
		}
	}
	return out
}

// BenchmarkTickets600 looks up 600 keys on a Cloud fake answering in 20 ms, with the default
// batch size and concurrency.
func BenchmarkTickets600(b *testing.B) {
	s := fakejira.New(fakejira.Options{Latency: 20 * time.Millisecond})
	defer s.Close()
	keys := seed(s, 600)
	ctx := context.Background()
	requests := 0
	for b.Loop() {
		c := client(b, s, jira.Options{}) // a new client probes serverInfo each time, as a fresh process does
		s.ResetRequests()
		got, err := c.Tickets(ctx, keys)
		if err != nil || len(got) != 600 {
			b.Fatal(err)
		}
		requests += len(s.Requests())
	}
	b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
}
