package fakejira

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// removedSearch is Cloud's answer on /rest/api/{2,3}/search since Atlassian removed it
// (CHANGE-2046), quoted from real responses.
const removedSearch = "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"

const issueNotFound = "Issue does not exist or you do not have permission to see it."

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /rest/api/2/serverInfo", s.serverInfo)
	m.HandleFunc("GET /rest/api/2/project", s.projectList)
	m.HandleFunc("GET /rest/api/2/issue/{key}", s.getIssue)
	m.HandleFunc("POST /rest/api/2/issue/{key}/comment", s.addComment)
	m.HandleFunc("GET /rest/api/2/issue/{key}/transitions", s.getTransitions)
	m.HandleFunc("POST /rest/api/2/issue/{key}/transitions", s.doTransition)
	if s.opts.Mode == Cloud {
		for _, v := range []string{"2", "3"} {
			m.HandleFunc("GET /rest/api/"+v+"/search", gone)
			m.HandleFunc("POST /rest/api/"+v+"/search", gone)
			m.HandleFunc("GET /rest/api/"+v+"/search/jql", s.searchJQL)
			m.HandleFunc("POST /rest/api/"+v+"/search/jql", s.searchJQL)
		}
	} else {
		// Data Center has no /search/jql: those paths fall through to 404.
		m.HandleFunc("GET /rest/api/2/search", s.searchDC)
		m.HandleFunc("POST /rest/api/2/search", s.searchDC)
	}
	s.mux = m
}

func gone(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusGone, removedSearch)
}

func (s *Server) serverInfo(w http.ResponseWriter, _ *http.Request) {
	version, deployment, build := s.opts.Version, "Cloud", 100282
	if s.opts.Mode == Cloud {
		if version == "" {
			version = "1001.0.0-SNAPSHOT"
		}
	} else {
		deployment, build = s.opts.DeploymentType, 9120002
		if deployment == "" {
			deployment = "Server"
		}
		if version == "" {
			version = "9.12.2"
		}
	}
	var nums []int
	for _, p := range strings.Split(strings.SplitN(version, "-", 2)[0], ".") {
		n, _ := strconv.Atoi(p)
		nums = append(nums, n)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"baseUrl":        s.URL(),
		"version":        version,
		"versionNumbers": nums,
		"deploymentType": deployment,
		"buildNumber":    build,
		"buildDate":      "2024-01-01T00:00:00.000+0000",
		"serverTime":     time.Now().UTC().Format("2006-01-02T15:04:05.000-0700"),
		"scmInfo":        "0000000000000000000000000000000000000000",
		"serverTitle":    "Jira",
	})
}

type wireProject struct {
	Expand         string            `json:"expand"`
	Self           string            `json:"self"`
	ID             string            `json:"id"`
	Key            string            `json:"key"`
	Name           string            `json:"name"`
	AvatarUrls     map[string]string `json:"avatarUrls"`
	ProjectTypeKey string            `json:"projectTypeKey"`
}

func (s *Server) projectList(w http.ResponseWriter, _ *http.Request) {
	keys := s.Projects()
	s.mu.Lock()
	out := make([]wireProject, 0, len(keys))
	for i, k := range keys {
		id := strconv.Itoa(10000 + i)
		out = append(out, wireProject{
			Expand: "description,lead,issueTypes,url,projectKeys,permissions,insight",
			Self:   s.URL() + "/rest/api/2/project/" + id, ID: id, Key: k, Name: s.projects[k],
			AvatarUrls:     map[string]string{"48x48": s.URL() + "/secure/projectavatar?avatarId=10324"},
			ProjectTypeKey: "software",
		})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// Wire shapes of an issue, as in the JRJC and go-jira samples (plus the statusCategory every
// current Jira puts in a status).
type wireIssue struct {
	Expand string         `json:"expand,omitempty"`
	ID     string         `json:"id"`
	Self   string         `json:"self,omitempty"`
	Key    string         `json:"key,omitempty"`
	Fields map[string]any `json:"fields,omitempty"`
}

type wireStatus struct {
	Self           string       `json:"self"`
	Description    string       `json:"description"`
	IconURL        string       `json:"iconUrl"`
	Name           string       `json:"name"`
	ID             string       `json:"id"`
	StatusCategory wireCategory `json:"statusCategory"`
}

type wireCategory struct {
	Self      string `json:"self"`
	ID        int    `json:"id"`
	Key       string `json:"key"`
	ColorName string `json:"colorName"`
	Name      string `json:"name"`
}

// fieldSet is the "fields" parameter: nil means every field.
type fieldSet map[string]bool

func parseFields(list []string) fieldSet {
	fs := fieldSet{}
	for _, item := range list {
		for _, f := range strings.Split(item, ",") {
			f = strings.TrimSpace(f)
			if f == "*all" || f == "*navigable" {
				return nil
			}
			if f != "" {
				fs[f] = true
			}
		}
	}
	return fs
}

func (fs fieldSet) has(f string) bool { return fs == nil || fs[f] }

// issueJSONLocked renders an issue with the fields asked for. Cloud's /search/jql returns only
// the id when no field is asked for.
func (s *Server) issueJSONLocked(is *Issue, fs fieldSet, idOnly bool) wireIssue {
	if idOnly {
		return wireIssue{ID: is.ID}
	}
	base := s.URL() + "/rest/api/2/"
	fields := map[string]any{}
	if fs.has("summary") {
		fields["summary"] = is.Summary
	}
	if fs.has("status") {
		fields["status"] = s.statusJSONLocked(is.Status)
	}
	if fs.has("project") {
		fields["project"] = map[string]any{"self": base + "project/" + projectOf(is.Key), "key": projectOf(is.Key), "name": s.projects[projectOf(is.Key)]}
	}
	if fs.has("issuetype") {
		fields["issuetype"] = map[string]any{"self": base + "issuetype/3", "id": "3", "description": "A task that needs to be done.", "name": "Task", "subtask": false}
	}
	return wireIssue{
		Expand: "operations,versionedRepresentations,editmeta,changelog,renderedFields",
		ID:     is.ID, Self: base + "issue/" + is.ID, Key: is.Key, Fields: fields,
	}
}

func (s *Server) statusJSONLocked(name string) wireStatus {
	st := s.statuses[strings.ToLower(name)]
	c := categories[st.category]
	base := s.URL() + "/rest/api/2/"
	return wireStatus{
		Self: base + "status/" + st.id, Name: st.name, ID: st.id,
		IconURL: s.URL() + "/images/icons/statuses/generic.png",
		StatusCategory: wireCategory{
			Self: base + "statuscategory/" + strconv.Itoa(c.ID), ID: c.ID, Key: c.Key, ColorName: c.ColorName, Name: c.Name,
		},
	}
}

// issueLocked finds an issue by key or id.
func (s *Server) issueLocked(keyOrID string) *Issue {
	if is, ok := s.issues[strings.ToUpper(keyOrID)]; ok {
		return is
	}
	for _, is := range s.issues {
		if is.ID == keyOrID {
			return is
		}
	}
	return nil
}

func (s *Server) getIssue(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.issueLocked(r.PathValue("key"))
	if is == nil {
		writeError(w, http.StatusNotFound, issueNotFound)
		return
	}
	var fs fieldSet
	if f := r.URL.Query()["fields"]; len(f) > 0 {
		fs = parseFields(f)
	}
	writeJSON(w, http.StatusOK, s.issueJSONLocked(is, fs, false))
}

func (s *Server) addComment(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Body string `json:"body"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || strings.TrimSpace(in.Body) == "" {
		writeFieldError(w, "comment", "Comment body can not be empty!")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.issueLocked(r.PathValue("key"))
	if is == nil {
		writeError(w, http.StatusNotFound, issueNotFound)
		return
	}
	id := strconv.Itoa(10000 + len(s.comments))
	s.comments = append(s.comments, Comment{ID: id, Issue: is.Key, Body: in.Body})
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000-0700")
	writeJSON(w, http.StatusCreated, map[string]any{
		"self": s.URL() + "/rest/api/2/issue/" + is.ID + "/comment/" + id,
		"id":   id, "body": in.Body, "created": now, "updated": now,
		"author": map[string]any{"name": "sockembot", "displayName": "sockembot", "active": true},
	})
}

func (s *Server) transitionsLocked(is *Issue) []Transition {
	if is.Transitions != nil {
		return is.Transitions
	}
	return DefaultTransitions
}

func (s *Server) getTransitions(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.issueLocked(r.PathValue("key"))
	if is == nil {
		writeError(w, http.StatusNotFound, issueNotFound)
		return
	}
	out := []map[string]any{}
	for _, t := range s.transitionsLocked(is) {
		s.statusLocked(t.To, "")
		out = append(out, map[string]any{
			"id": t.ID, "name": t.Name, "to": s.statusJSONLocked(t.To),
			"hasScreen": false, "isGlobal": true, "isInitial": false, "isAvailable": true, "isConditional": false,
			"fields": map[string]any{},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"expand": "transitions", "transitions": out})
}

func (s *Server) doTransition(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Transition struct {
			ID string `json:"id"`
		} `json:"transition"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Transition.ID == "" {
		writeError(w, http.StatusBadRequest, "Missing 'transition' identifier")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.issueLocked(r.PathValue("key"))
	if is == nil {
		writeError(w, http.StatusNotFound, issueNotFound)
		return
	}
	for _, t := range s.transitionsLocked(is) {
		if t.ID == in.Transition.ID {
			st := s.statusLocked(t.To, "")
			s.performed = append(s.performed, PerformedTransition{Issue: is.Key, TransitionID: t.ID, Name: t.Name, From: is.Status, To: st.name})
			is.Status, is.StatusCategory = st.name, st.category
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	writeError(w, http.StatusBadRequest, fmt.Sprintf("Transition id '%s' is not valid for this issue.", in.Transition.ID))
}

// searchParams are the search inputs, from the query string (GET) or the JSON body (POST).
type searchParams struct {
	JQL           string   `json:"jql"`
	Fields        []string `json:"fields"`
	MaxResults    *int     `json:"maxResults"`
	StartAt       int      `json:"startAt"`
	NextPageToken string   `json:"nextPageToken"`
	fieldsGiven   bool
}

func readSearch(r *http.Request) (searchParams, string) {
	var p searchParams
	if r.Method == http.MethodPost {
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			return p, "Invalid request payload. Refer to the REST API documentation and try again."
		}
		p.fieldsGiven = p.Fields != nil
		return p, ""
	}
	q := r.URL.Query()
	p.JQL = q.Get("jql")
	p.NextPageToken = q.Get("nextPageToken")
	if f, ok := q["fields"]; ok {
		p.Fields, p.fieldsGiven = f, true
	}
	for _, name := range []string{"startAt", "maxResults"} {
		v := q.Get(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, fmt.Sprintf("The value '%s' is invalid for the parameter '%s'.", v, name)
		}
		if name == "startAt" {
			p.StartAt = n
		} else {
			p.MaxResults = &n
		}
	}
	return p, ""
}

// pageSize applies the default and the cap of the deployment.
func (s *Server) pageSize(asked *int, def, max int) int {
	if s.opts.PageLimit > 0 && s.opts.PageLimit < max {
		max = s.opts.PageLimit
	}
	n := def
	if asked != nil && *asked > 0 {
		n = *asked
	}
	return min(n, max)
}

// searchJQL is Cloud's enhanced search: token pages, no total.
func (s *Server) searchJQL(w http.ResponseWriter, r *http.Request) {
	p, bad := readSearch(r)
	if bad != "" {
		writeError(w, http.StatusBadRequest, bad)
		return
	}
	start := 0
	if p.NextPageToken != "" {
		var err error
		if start, err = decodeToken(p.NextPageToken); err != nil {
			writeError(w, http.StatusBadRequest, "The provided next page token is invalid or expired.")
			return
		}
	}
	size := s.pageSize(p.MaxResults, 50, 100)
	s.mu.Lock()
	defer s.mu.Unlock()
	hits, msgs := s.runJQLLocked(p.JQL)
	if msgs != nil {
		writeError(w, http.StatusBadRequest, msgs...)
		return
	}
	fs := parseFields(p.Fields)
	idOnly := !p.fieldsGiven || (len(fs) == 1 && fs["id"])
	end := min(start+size, len(hits))
	start = min(start, end)
	out := struct {
		Issues        []wireIssue `json:"issues"`
		NextPageToken string      `json:"nextPageToken,omitempty"`
		IsLast        bool        `json:"isLast"`
	}{Issues: []wireIssue{}, IsLast: end >= len(hits)}
	for _, is := range hits[start:end] {
		out.Issues = append(out.Issues, s.issueJSONLocked(is, fs, idOnly))
	}
	if !out.IsLast {
		out.NextPageToken = encodeToken(end)
	}
	writeJSON(w, http.StatusOK, out)
}

// searchDC is Data Center's /rest/api/2/search: offset pages with a total.
func (s *Server) searchDC(w http.ResponseWriter, r *http.Request) {
	p, bad := readSearch(r)
	if bad != "" {
		writeError(w, http.StatusBadRequest, bad)
		return
	}
	size := s.pageSize(p.MaxResults, 50, 1000)
	s.mu.Lock()
	defer s.mu.Unlock()
	hits, msgs := s.runJQLLocked(p.JQL)
	if msgs != nil {
		writeError(w, http.StatusBadRequest, msgs...)
		return
	}
	var fs fieldSet
	if p.fieldsGiven {
		fs = parseFields(p.Fields)
	}
	start := min(max(p.StartAt, 0), len(hits))
	end := min(start+size, len(hits))
	out := struct {
		Expand     string      `json:"expand"`
		StartAt    int         `json:"startAt"`
		MaxResults int         `json:"maxResults"`
		Total      int         `json:"total"`
		Issues     []wireIssue `json:"issues"`
	}{Expand: "schema,names", StartAt: start, MaxResults: size, Total: len(hits), Issues: []wireIssue{}}
	for _, is := range hits[start:end] {
		out.Issues = append(out.Issues, s.issueJSONLocked(is, fs, false))
	}
	writeJSON(w, http.StatusOK, out)
}

func encodeToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(offset)))
}

func decodeToken(tok string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, err
	}
	n, ok := strings.CutPrefix(string(b), "offset:")
	if !ok {
		return 0, fmt.Errorf("bad token")
	}
	return strconv.Atoi(n)
}

var (
	jqlOrderBy = regexp.MustCompile(`(?is)\s*\border\s+by\b.*$`)
	jqlKeyIn   = regexp.MustCompile(`(?is)^\s*(?:key|issuekey)\s+in\s*\((.*)\)\s*$`)
	jqlKeyEq   = regexp.MustCompile(`(?is)^\s*(?:key|issuekey)\s*=\s*(\S+)\s*$`)
	issueKey   = regexp.MustCompile(`^[A-Z][A-Z0-9_]*-[0-9]+$`)
)

// runJQLLocked understands `key = X` and `key in (X, Y)`. Like Jira, one key that does not
// exist fails the whole query with 400 and a message per bad key.
func (s *Server) runJQLLocked(jql string) ([]*Issue, []string) {
	q := jqlOrderBy.ReplaceAllString(jql, "")
	var list []string
	if m := jqlKeyIn.FindStringSubmatch(q); m != nil {
		list = strings.Split(m[1], ",")
	} else if m := jqlKeyEq.FindStringSubmatch(q); m != nil {
		list = []string{m[1]}
	} else {
		return nil, []string{fmt.Sprintf("Error in the JQL Query: this fake Jira understands only 'key = X' and 'key in (...)', not %q.", jql)}
	}
	var hits []*Issue
	var msgs []string
	seen := map[string]bool{}
	for _, raw := range list {
		k := strings.Trim(strings.TrimSpace(raw), `"'`)
		if k == "" {
			return nil, []string{"Error in the JQL Query: Expecting either a value, list or function but got ')'."}
		}
		up := strings.ToUpper(k)
		if seen[up] {
			continue
		}
		seen[up] = true
		_, projectExists := s.projects[projectOf(up)]
		is, ok := s.issues[up]
		switch {
		case !issueKey.MatchString(up) || !projectExists:
			msgs = append(msgs, fmt.Sprintf("The issue key '%s' for field 'key' is invalid.", k))
		case !ok:
			msgs = append(msgs, fmt.Sprintf("An issue with key '%s' does not exist for field 'key'.", k))
		default:
			hits = append(hits, is)
		}
	}
	if msgs != nil && s.vague {
		return nil, []string{"Error in the JQL Query: the query could not be run."}
	}
	if msgs != nil {
		return nil, msgs
	}
	return hits, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes Jira's error collection.
func writeError(w http.ResponseWriter, code int, msgs ...string) {
	writeJSON(w, code, map[string]any{"errorMessages": msgs, "errors": map[string]string{}})
}

func writeFieldError(w http.ResponseWriter, field, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{}, "errors": map[string]string{field: msg}})
}
