package fakejira_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	gojira "github.com/andygrunwald/go-jira"

	fakejira "sockembot/integrations/fake/jira"
)

// fixtures is the repository's testdata/ seen from this package (three levels down).
const fixtures = "../../../testdata"

func readFixture(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, rel))
	if err != nil {
		t.Fatalf("fixture %s (testdata/ at the repository root): %v", rel, err)
	}
	return b
}

func newClient(t *testing.T, s *fakejira.Server) *gojira.Client {
	t.Helper()
	c, err := gojira.NewClient(nil, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// get fetches a path raw and decodes its JSON body into v.
func get(t *testing.T, s *fakejira.Server, method, path, body string, v any) int {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// subset fails unless every key of have is among the keys of want.
func subset(t *testing.T, what string, have, want map[string]any, extra ...string) {
	t.Helper()
	allowed := map[string]bool{}
	for _, k := range extra {
		allowed[k] = true
	}
	for k := range want {
		allowed[k] = true
	}
	for k := range have {
		if !allowed[k] {
			t.Errorf("%s: the fake sends %q, which the fixture does not have (fixture keys %v)", what, k, keysOf(want))
		}
	}
}

func TestStatusCategoriesAreJiras(t *testing.T) {
	var want []map[string]any
	if err := json.Unmarshal(readFixture(t, "andygrunwald+go-jira/mocks/all_statuscategories.json"), &want); err != nil {
		t.Fatal(err)
	}
	s := fakejira.New(fakejira.Options{})
	defer s.Close()
	s.AddIssue("CAT-1", "Some status nobody configured")
	s.AddIssue("CAT-2", "To Do")
	s.AddIssue("CAT-3", "In Progress")
	s.AddIssue("CAT-4", "Done")
	for i, w := range want {
		key := "CAT-" + string(rune('1'+i))
		var is map[string]any
		if code := get(t, s, "GET", "/rest/api/2/issue/"+key, "", &is); code != 200 {
			t.Fatalf("GET %s: %d", key, code)
		}
		got := is["fields"].(map[string]any)["status"].(map[string]any)["statusCategory"].(map[string]any)
		for _, f := range []string{"id", "key", "colorName", "name"} {
			if got[f] != w[f] {
				t.Errorf("%s statusCategory.%s = %v, all_statuscategories.json says %v", key, f, got[f], w[f])
			}
		}
	}
}

func TestStatusCategoryMapping(t *testing.T) {
	s := fakejira.New(fakejira.Options{})
	defer s.Close()
	for status, cat := range map[string]string{
		"To Do": "new", "Open": "new", "Backlog": "new",
		"In Progress": "indeterminate", "In Review": "indeterminate", "Code Review": "indeterminate",
		"Done": "done", "Closed": "done", "Resolved": "done", "Deployed": "done",
		"QA": "undefined",
	} {
		s.AddIssue("MAP-1", status)
		if is, _ := s.Issue("MAP-1"); is.StatusCategory != cat {
			t.Errorf("%q is in %q, want %q", status, is.StatusCategory, cat)
		}
	}
	s.AddIssue("MAP-1", "QA")
	s.SetStatusCategory("QA", "indeterminate")
	if is, _ := s.Issue("MAP-1"); is.StatusCategory != "indeterminate" {
		t.Errorf("after SetStatusCategory, QA is in %q", is.StatusCategory)
	}
	s.PutIssue(fakejira.Issue{Key: "MAP-2", Status: "Ready to ship", StatusCategory: "done"})
	if is, _ := s.Issue("MAP-2"); is.StatusCategory != "done" || is.Summary != "" {
		t.Errorf("explicit category: %+v", is)
	}
}

// Each JRJC and go-jira sample issue, rebuilt in the fake, decodes through go-jira to the same
// key, summary and status; and the fake sends no field the samples don't have.
func TestIssueShapeFollowsFixtures(t *testing.T) {
	files := []string{
		"schrepfler+jira-rest-java-client/test/src/test/resources/json/issue/valid-all-expanded.json",
		"schrepfler+jira-rest-java-client/test/src/test/resources/json/issue/valid-all-expanded-with-resolution.json",
		"schrepfler+jira-rest-java-client/test/src/test/resources/json/issue/valid-unassigned-no-time-tracking.json",
		"schrepfler+jira-rest-java-client/test/src/test/resources/json/issue/subtasks-5.json",
		"schrepfler+jira-rest-java-client/test/src/test/resources/json/issue/valid-5.0-with-changelog.json",
	}
	s := fakejira.New(fakejira.Options{Mode: fakejira.DataCenter})
	defer s.Close()
	c := newClient(t, s)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw := readFixture(t, f)
			var want gojira.Issue
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatalf("go-jira cannot decode the fixture: %v", err)
			}
			s.PutIssue(fakejira.Issue{Key: want.Key, Summary: want.Fields.Summary, Status: want.Fields.Status.Name})

			got, _, err := c.Issue.Get(want.Key, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.Key != want.Key || got.Fields.Summary != want.Fields.Summary || got.Fields.Status.Name != want.Fields.Status.Name {
				t.Errorf("fake %s %q %q, fixture %s %q %q", got.Key, got.Fields.Summary, got.Fields.Status.Name,
					want.Key, want.Fields.Summary, want.Fields.Status.Name)
			}
			if got.ID == "" || !strings.HasSuffix(got.Self, "/rest/api/2/issue/"+got.ID) {
				t.Errorf("id %q self %q", got.ID, got.Self)
			}

			var fixture, fake map[string]any
			_ = json.Unmarshal(raw, &fixture)
			get(t, s, "GET", "/rest/api/2/issue/"+want.Key, "", &fake)
			subset(t, "issue", fake, fixture)
			ff, xf := fake["fields"].(map[string]any), fixture["fields"].(map[string]any)
			subset(t, "fields", ff, xf)
			// statusCategory is in every status of current Jira (see all_statuses.json).
			subset(t, "status", ff["status"].(map[string]any), xf["status"].(map[string]any), "statusCategory")
		})
	}
}

func TestSearchShapesFollowFixtures(t *testing.T) {
	var goJira, jrjc map[string]any
	_ = json.Unmarshal(readFixture(t, "_extracted/andygrunwald+go-jira/rest_api_2_search_response.json"), &goJira)
	_ = json.Unmarshal(readFixture(t, "schrepfler+jira-rest-java-client/test/src/test/resources/json/search/issues1.json"), &jrjc)
	if goJira == nil || jrjc == nil {
		t.Fatal("search fixtures did not decode")
	}

	dc := fakejira.New(fakejira.Options{Mode: fakejira.DataCenter})
	defer dc.Close()
	dc.AddIssue("TST-7", "Open")
	var got map[string]any
	if code := get(t, dc, "GET", "/rest/api/2/search?jql=key%3DTST-7", "", &got); code != 200 {
		t.Fatalf("DC search: %d", code)
	}
	if g, w := strings.Join(keysOf(got), ","), strings.Join(keysOf(goJira), ","); g != w {
		t.Errorf("DC search keys %s, go-jira's sample %s", g, w)
	}
	// JRJC asked for expand=names,schema and got those two besides.
	subset(t, "search", got, jrjc)
	issue := got["issues"].([]any)[0].(map[string]any)
	subset(t, "search issue", issue, jrjc["issues"].([]any)[0].(map[string]any))

	cloud := fakejira.New(fakejira.Options{})
	defer cloud.Close()
	cloud.AddIssue("TST-7", "Open")
	got = nil
	if code := get(t, cloud, "GET", "/rest/api/3/search/jql?jql=key%3DTST-7&fields=summary,status", "", &got); code != 200 {
		t.Fatalf("Cloud search: %d", code)
	}
	if g := strings.Join(keysOf(got), ","); g != "isLast,issues" {
		t.Errorf("Cloud last page keys %s, want isLast,issues (no total, no token)", g)
	}
	// Without fields, the enhanced search returns ids only.
	got = nil
	get(t, cloud, "GET", "/rest/api/3/search/jql?jql=key%3DTST-7", "", &got)
	if g := strings.Join(keysOf(got["issues"].([]any)[0].(map[string]any)), ","); g != "id" {
		t.Errorf("Cloud issue without fields has %s, want id", g)
	}
}

func TestTransitionsFollowFixture(t *testing.T) {
	var want struct {
		Transitions []map[string]any `json:"transitions"`
	}
	_ = json.Unmarshal(readFixture(t, "andygrunwald+go-jira/mocks/transitions.json"), &want)
	s := fakejira.New(fakejira.Options{})
	defer s.Close()
	s.AddIssue("PAY-1", "In Progress")
	var got struct {
		Transitions []map[string]any `json:"transitions"`
	}
	get(t, s, "GET", "/rest/api/2/issue/PAY-1/transitions", "", &got)
	if len(got.Transitions) != 3 {
		t.Fatalf("transitions %v", got.Transitions)
	}
	for _, k := range keysOf(want.Transitions[0]) {
		if _, ok := got.Transitions[0][k]; !ok {
			t.Errorf("transition lacks %q", k)
		}
	}

	c := newClient(t, s)
	ts, _, err := c.Issue.GetTransitions("PAY-1")
	if err != nil || ts[2].Name != "Done" || ts[2].To.StatusCategory.Key != "done" {
		t.Fatalf("go-jira transitions %+v, %v", ts, err)
	}
	if _, err := c.Issue.DoTransition("PAY-1", ts[2].ID); err != nil {
		t.Fatal(err)
	}
	if is, _ := s.Issue("PAY-1"); is.Status != "Done" || is.StatusCategory != "done" {
		t.Errorf("after transition %+v", is)
	}
	if p := s.Performed(); len(p) != 1 || p[0] != (fakejira.PerformedTransition{Issue: "PAY-1", TransitionID: "31", Name: "Done", From: "In Progress", To: "Done"}) {
		t.Errorf("performed %+v", p)
	}
	if _, err := c.Issue.DoTransition("PAY-1", "999"); err == nil {
		t.Error("unknown transition id accepted")
	}
}

func TestProjectsAndComments(t *testing.T) {
	var fixture map[string]any
	_ = json.Unmarshal(readFixture(t, "andygrunwald+go-jira/mocks/project.json"), &fixture)
	s := fakejira.New(fakejira.Options{})
	defer s.Close()
	s.AddProject("PAY", "Payments")
	s.AddIssue("OPS-3", "To Do")
	c := newClient(t, s)
	list, _, err := c.Project.GetList()
	if err != nil || len(*list) != 2 || (*list)[0].Key != "OPS" || (*list)[1].Name != "Payments" {
		t.Fatalf("projects %+v %v", list, err)
	}
	var raw []map[string]any
	get(t, s, "GET", "/rest/api/2/project", "", &raw)
	subset(t, "project", raw[0], fixture, "projectTypeKey")

	if _, _, err := c.Issue.AddComment("OPS-3", &gojira.Comment{Body: "Deployed in deploy #12"}); err != nil {
		t.Fatal(err)
	}
	if cs := s.Comments(); len(cs) != 1 || cs[0].Issue != "OPS-3" || cs[0].Body != "Deployed in deploy #12" {
		t.Errorf("comments %+v", cs)
	}
	if _, _, err := c.Issue.AddComment("OPS-404", &gojira.Comment{Body: "x"}); err == nil {
		t.Error("comment on a missing issue accepted")
	}
}

func TestCloudRemovedSearch(t *testing.T) {
	const msg = "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
	s := fakejira.New(fakejira.Options{})
	defer s.Close()
	s.AddIssue("PAY-1", "Done")
	for _, path := range []string{"/rest/api/2/search", "/rest/api/3/search"} {
		for _, method := range []string{"GET", "POST"} {
			var e struct{ ErrorMessages []string }
			if code := get(t, s, method, path+"?jql=key%3DPAY-1", `{"jql":"key = PAY-1"}`, &e); code != http.StatusGone || len(e.ErrorMessages) != 1 || e.ErrorMessages[0] != msg {
				t.Errorf("%s %s: %d %v", method, path, code, e.ErrorMessages)
			}
		}
	}
	// go-jira v1.16.0's own Search is the removed endpoint.
	if _, _, err := newClient(t, s).Issue.Search("key = PAY-1", nil); err == nil || !strings.Contains(err.Error(), "CHANGE-2046") {
		t.Errorf("go-jira Search on Cloud: %v", err)
	}
}

func TestDataCenterHasNoEnhancedSearch(t *testing.T) {
	s := fakejira.New(fakejira.Options{Mode: fakejira.DataCenter})
	defer s.Close()
	s.AddIssue("PAY-1", "Done")
	for _, p := range []string{"/rest/api/3/search/jql", "/rest/api/2/search/jql"} {
		if code := get(t, s, "GET", p+"?jql=key%3DPAY-1", "", nil); code != http.StatusNotFound {
			t.Errorf("GET %s: %d", p, code)
		}
	}
	issues, resp, err := newClient(t, s).Issue.Search("key = PAY-1", nil)
	if err != nil || len(issues) != 1 || resp.Total != 1 {
		t.Fatalf("go-jira Search on DC: %v %v", issues, err)
	}
}

func TestJQL(t *testing.T) {
	for _, mode := range []fakejira.Mode{fakejira.Cloud, fakejira.DataCenter} {
		t.Run(mode.String(), func(t *testing.T) {
			s := fakejira.New(fakejira.Options{Mode: mode})
			defer s.Close()
			s.AddIssue("PAY-1", "Done")
			s.AddIssue("PAY-2", "To Do")
			path := "/rest/api/3/search/jql"
			if mode == fakejira.DataCenter {
				path = "/rest/api/2/search"
			}
			search := func(jql string) (int, []string, []string) {
				var out struct {
					Issues        []struct{ Key string }
					ErrorMessages []string
				}
				code := get(t, s, "GET", path+"?fields=summary&jql="+url.QueryEscape(jql), "", &out)
				var keys []string
				for _, is := range out.Issues {
					keys = append(keys, is.Key)
				}
				return code, keys, out.ErrorMessages
			}
			for jql, want := range map[string]string{
				`key in (PAY-1, PAY-2)`:                  "PAY-1,PAY-2",
				`KEY IN ("pay-2",'PAY-1') ORDER BY key`:  "PAY-2,PAY-1",
				`key = PAY-2`:                            "PAY-2",
				`issuekey="PAY-1" order by created DESC`: "PAY-1",
			} {
				if code, keys, msgs := search(jql); code != 200 || strings.Join(keys, ",") != want {
					t.Errorf("%s: %d %v %v, want %s", jql, code, keys, msgs, want)
				}
			}
			code, keys, msgs := search(`key in (PAY-1, PAY-999, XYZ-1)`)
			wantMsgs := []string{
				"An issue with key 'PAY-999' does not exist for field 'key'.",
				"The issue key 'XYZ-1' for field 'key' is invalid.",
			}
			if code != 400 || keys != nil || strings.Join(msgs, "|") != strings.Join(wantMsgs, "|") {
				t.Errorf("bad keys: %d %v %q", code, keys, msgs)
			}
			if code, _, _ := search(`project = PAY`); code != 400 {
				t.Errorf("unsupported JQL: %d", code)
			}
			s.SetVagueErrors(true)
			if code, _, msgs := search(`key in (PAY-1, PAY-999)`); code != 400 || strings.Contains(strings.Join(msgs, ""), "PAY-999") {
				t.Errorf("vague errors: %d %q", code, msgs)
			}
		})
	}
}

func TestPaging(t *testing.T) {
	keys := func(n int) string {
		var ks []string
		for i := 1; i <= n; i++ {
			ks = append(ks, "BIG-"+itoa(i))
		}
		return "key in (" + strings.Join(ks, ",") + ")"
	}
	t.Run("Cloud clamps maxResults to 100 and chains tokens", func(t *testing.T) {
		s := fakejira.New(fakejira.Options{})
		defer s.Close()
		for i := 1; i <= 150; i++ {
			s.AddIssue("BIG-"+itoa(i), "Done")
		}
		body := map[string]any{"jql": keys(150), "fields": []string{"status"}, "maxResults": 500}
		var seen []string
		for page := 0; page < 3; page++ {
			b, _ := json.Marshal(body)
			var out struct {
				Issues        []struct{ Key string }
				NextPageToken string
				IsLast        bool
				Total         *int
			}
			if code := get(t, s, "POST", "/rest/api/3/search/jql", string(b), &out); code != 200 {
				t.Fatalf("page %d: %d", page, code)
			}
			if out.Total != nil {
				t.Error("enhanced search sent a total")
			}
			for _, is := range out.Issues {
				seen = append(seen, is.Key)
			}
			if out.IsLast {
				if out.NextPageToken != "" {
					t.Error("last page carries a token")
				}
				break
			}
			if len(out.Issues) != 100 {
				t.Errorf("first page %d issues, want the cap of 100", len(out.Issues))
			}
			body["nextPageToken"] = out.NextPageToken
		}
		if len(seen) != 150 || seen[149] != "BIG-150" {
			t.Errorf("saw %d issues", len(seen))
		}
	})
	t.Run("Data Center pages by startAt with a total", func(t *testing.T) {
		s := fakejira.New(fakejira.Options{Mode: fakejira.DataCenter})
		defer s.Close()
		for i := 1; i <= 60; i++ {
			s.AddIssue("BIG-"+itoa(i), "Done")
		}
		var out struct {
			StartAt, MaxResults, Total int
			Issues                     []struct{ Key string }
		}
		get(t, s, "GET", "/rest/api/2/search?jql="+url.QueryEscape(keys(60)), "", &out)
		if out.Total != 60 || out.MaxResults != 50 || len(out.Issues) != 50 {
			t.Errorf("default page: total %d max %d got %d", out.Total, out.MaxResults, len(out.Issues))
		}
		get(t, s, "GET", "/rest/api/2/search?startAt=50&maxResults=5000&jql="+url.QueryEscape(keys(60)), "", &out)
		if out.StartAt != 50 || out.MaxResults != 1000 || len(out.Issues) != 10 || out.Issues[0].Key != "BIG-51" {
			t.Errorf("second page: %+v", out)
		}
	})
}

func TestFaultsAndAuth(t *testing.T) {
	s := fakejira.New(fakejira.Options{User: "bot@example.com", Token: "cloud-token"})
	defer s.Close()
	s.AddIssue("PAY-1", "Done")
	anon := newClient(t, s)
	if _, _, err := anon.Issue.Get("PAY-1", nil); err == nil {
		t.Fatal("anonymous request accepted")
	}
	tr := gojira.BasicAuthTransport{Username: "bot@example.com", Password: "cloud-token"}
	c, _ := gojira.NewClient(tr.Client(), s.URL())
	if _, _, err := c.Issue.Get("PAY-1", nil); err != nil {
		t.Fatal(err)
	}
	s.FailNext(2)
	for i := 0; i < 2; i++ {
		if _, resp, err := c.Issue.Get("PAY-1", nil); err == nil || resp.StatusCode != 500 {
			t.Errorf("FailNext request %d: %v", i, err)
		}
	}
	if _, _, err := c.Issue.Get("PAY-1", nil); err != nil {
		t.Errorf("after FailNext: %v", err)
	}
	s.SetOutage(true)
	if _, resp, err := c.Issue.Get("PAY-1", nil); err == nil || resp.StatusCode != 503 {
		t.Errorf("outage: %v", err)
	}
	s.SetOutage(false)

	counts := s.Counts()
	if counts["GET /rest/api/2/issue/{key}"] != 6 {
		t.Errorf("counts %v", counts)
	}
	reqs := s.Requests()
	if reqs[0].AuthScheme != "" || reqs[1].AuthScheme != "Basic" || reqs[0].Status != 401 {
		t.Errorf("log %+v", reqs[:2])
	}

	dc := fakejira.New(fakejira.Options{Mode: fakejira.DataCenter, Token: "pat", ContextPath: "/jira"})
	defer dc.Close()
	dc.AddIssue("PAY-1", "Done")
	pat := gojira.PATAuthTransport{Token: "pat"}
	c, _ = gojira.NewClient(pat.Client(), dc.URL())
	if _, _, err := c.Issue.Get("PAY-1", nil); err != nil {
		t.Fatal(err)
	}
	if r := dc.Requests()[0]; r.AuthScheme != "Bearer" || r.Path != "/jira/rest/api/2/issue/PAY-1" || r.Route != "GET /rest/api/2/issue/{key}" {
		t.Errorf("DC request %+v", r)
	}
	// A client that drops the context path gets 404, as from a real install under /jira.
	req, _ := http.NewRequest("GET", strings.TrimSuffix(dc.URL(), "/jira")+"/rest/api/2/serverInfo", nil)
	req.Header.Set("Authorization", "Bearer pat")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("outside the context path: %d", resp.StatusCode)
	}
}

func TestServerInfo(t *testing.T) {
	for _, tc := range []struct {
		opts fakejira.Options
		want string
	}{
		{fakejira.Options{}, "Cloud"},
		{fakejira.Options{Mode: fakejira.DataCenter}, "Server"},
		{fakejira.Options{Mode: fakejira.DataCenter, DeploymentType: "DataCenter", Version: "10.3.1"}, "DataCenter"},
	} {
		s := fakejira.New(tc.opts)
		var info struct {
			DeploymentType string
			Version        string
			VersionNumbers []int
		}
		get(t, s, "GET", "/rest/api/2/serverInfo", "", &info)
		s.Close()
		if info.DeploymentType != tc.want || info.Version == "" || len(info.VersionNumbers) != 3 {
			t.Errorf("%+v: %+v", tc.opts, info)
		}
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
