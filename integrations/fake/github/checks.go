package fakegithub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Check runs are shaped on PyGithub's recordings (testdata/_extracted/PyGithub+PyGithub/
// CheckRun.*) and their pull_requests on octokit/webhooks' check_run payloads.

// CheckRun is a check run on a commit, as written through the API or AddCheckRun.
type CheckRun struct {
	ID         int64
	Name       string
	HeadSHA    string
	Status     string // queued, in_progress, completed
	Conclusion string // set when completed
	Title      string // output.title
	Summary    string // output.summary
	Text       string // output.text
	ExternalID string
	DetailsURL string // as sent ("" when not)
	Actions    []CheckRunAction
	AppID      int64 // the App that wrote it
}

// CheckRunAction is a button a check run offers (its requested_action event).
type CheckRunAction struct {
	Label       string
	Description string
	Identifier  string
}

type checkRun struct {
	CheckRun
	startedAt, completedAt time.Time
	suite                  int64
	annotations            int
	hasOutput, hasText     bool
}

func (c *checkRun) snapshot() CheckRun {
	cp := c.CheckRun
	cp.Actions = append([]CheckRunAction(nil), c.Actions...)
	return cp
}

// CheckRuns returns the check runs on sha ("" for all), oldest first.
func (r *Repo) CheckRuns(sha string) []CheckRun {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	var out []CheckRun
	for _, c := range r.checkRuns {
		if sha == "" || c.HeadSHA == sha {
			out = append(out, c.snapshot())
		}
	}
	return out
}

// AddCheckRun records a check run another App wrote (run.AppID, default GitHub Actions), e.g.
// CI's. Status defaults to "completed" when Conclusion is set, else "queued". It returns the
// check run's id. The fake's own App cannot update it.
func (r *Repo) AddCheckRun(run CheckRun) int64 {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if run.AppID == 0 {
		run.AppID = GitHubActionsAppID
	}
	if run.Status == "" {
		run.Status = "queued"
		if run.Conclusion != "" {
			run.Status = "completed"
		}
	}
	run.ID = r.s.newID()
	run.Actions = append([]CheckRunAction(nil), run.Actions...)
	c := &checkRun{CheckRun: run, startedAt: r.s.tick(), hasOutput: run.Title != "" || run.Summary != "", hasText: run.Text != ""}
	if run.Status == "completed" {
		c.completedAt = r.s.tick()
	}
	c.suite = r.suite(run.AppID, run.HeadSHA)
	r.checkRuns = append(r.checkRuns, c)
	return run.ID
}

// suite is the check suite of app's runs on sha; callers hold r.s.mu.
func (r *Repo) suite(app int64, sha string) int64 {
	key := fmt.Sprintf("%d/%s", app, sha)
	if id, ok := r.suites[key]; ok {
		return id
	}
	id := r.s.newID()
	r.suites[key] = id
	return id
}

func (r *Repo) checkRunJSON(c *checkRun) obj {
	url := fmt.Sprintf("%s/check-runs/%d", r.apiURL(), c.ID)
	app := r.s.appJSON(c.AppID)
	details := any(c.DetailsURL)
	if c.DetailsURL == "" {
		details = app["external_url"] // GitHub's default: the App's homepage
	}
	var title, summary, text any
	if c.hasOutput {
		title, summary = c.Title, c.Summary
	}
	if c.hasText {
		text = c.Text
	}
	var conclusion any
	if c.Conclusion != "" {
		conclusion = c.Conclusion
	}
	prs := []any{}
	var open []*pull
	for _, p := range r.pulls {
		if !p.merged && p.headSHA == c.HeadSHA {
			open = append(open, p)
		}
	}
	sort.Slice(open, func(i, j int) bool { return open[i].number < open[j].number })
	repo := obj{"id": r.id, "url": r.apiURL(), "name": r.name}
	for _, p := range open {
		prs = append(prs, obj{
			"url": fmt.Sprintf("%s/pulls/%d", r.apiURL(), p.number), "id": p.id, "number": p.number,
			"head": obj{"ref": p.headRef, "sha": p.headSHA, "repo": repo},
			"base": obj{"ref": p.baseRef, "sha": p.baseSHA, "repo": repo},
		})
	}
	return obj{
		"id": c.ID, "node_id": nodeID("CheckRun", c.ID), "head_sha": c.HeadSHA, "external_id": c.ExternalID,
		"url": url, "html_url": fmt.Sprintf("%s/runs/%d", r.htmlURL(), c.ID), "details_url": details,
		"status": c.Status, "conclusion": conclusion, "started_at": ts(c.startedAt), "completed_at": ts(c.completedAt),
		"output": obj{
			"title": title, "summary": summary, "text": text, "annotations_count": c.annotations,
			"annotations_url": url + "/annotations",
		},
		"name": c.Name, "check_suite": obj{"id": c.suite}, "app": app, "pull_requests": prs,
	}
}

// checkRunInput is the body of POST and PATCH /check-runs; nil members were not sent.
type checkRunInput struct {
	Name        *string `json:"name"`
	HeadSHA     *string `json:"head_sha"`
	DetailsURL  *string `json:"details_url"`
	ExternalID  *string `json:"external_id"`
	Status      *string `json:"status"`
	Conclusion  *string `json:"conclusion"`
	StartedAt   *string `json:"started_at"`
	CompletedAt *string `json:"completed_at"`
	Output      *struct {
		Title       *string           `json:"title"`
		Summary     *string           `json:"summary"`
		Text        *string           `json:"text"`
		Annotations []json.RawMessage `json:"annotations"`
	} `json:"output"`
	Actions *[]struct {
		Label       string `json:"label"`
		Description string `json:"description"`
		Identifier  string `json:"identifier"`
	} `json:"actions"`
}

// GitHub's limits on a check run.
const (
	maxCheckRunText     = 65535 // output.summary and output.text, in characters
	maxCheckRunActions  = 3
	maxActionLabel      = 20
	maxActionDesc       = 40
	maxActionIdentifier = 20
	maxAnnotations      = 50 // per request
)

var (
	checkRunStatuses    = []string{"queued", "in_progress", "completed"}
	checkRunConclusions = []string{"action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"}
)

func invalid(format string, args ...any) *reply {
	rep := unprocessable("Invalid request.\n\n" + fmt.Sprintf(format, args...))
	return &rep
}

func oneOf(field, value string, allowed []string) *reply {
	for _, a := range allowed {
		if a == value {
			return nil
		}
	}
	return invalid("For 'properties/%s', %q is not one of [\"%s\"].", field, value, strings.Join(allowed, `", "`))
}

// applyCheckRun validates in against GitHub's rules and, when it passes, writes it to c (a new
// run when creating). Nothing is written when it fails. Callers hold s.mu.
func (r *Repo) applyCheckRun(c *checkRun, in *checkRunInput, creating bool) *reply {
	if creating {
		if in.Name == nil || *in.Name == "" {
			return invalid(`"name" wasn't supplied.`)
		}
		if in.HeadSHA == nil || *in.HeadSHA == "" {
			return invalid(`"head_sha" wasn't supplied.`)
		}
		if r.commits[*in.HeadSHA] == nil {
			rep := unprocessable("No commit found for SHA: " + *in.HeadSHA)
			return &rep
		}
	} else if in.Name != nil && *in.Name == "" {
		return invalid(`For 'properties/name', "" is too short (minimum is 1 character).`)
	}
	status, conclusion := c.Status, c.Conclusion
	if creating {
		status = "queued"
	}
	if in.Status != nil {
		if bad := oneOf("status", *in.Status, checkRunStatuses); bad != nil {
			return bad
		}
		status = *in.Status
		if status != "completed" {
			conclusion = ""
		}
	}
	if in.Conclusion != nil && *in.Conclusion != "" {
		if bad := oneOf("conclusion", *in.Conclusion, checkRunConclusions); bad != nil {
			return bad
		}
		// GitHub: providing conclusion automatically sets status to completed.
		status, conclusion = "completed", *in.Conclusion
	}
	if status == "completed" && conclusion == "" {
		return invalid(`"conclusion" wasn't supplied: it is required when status is "completed".`)
	}
	var startedAt, completedAt time.Time
	for _, t := range []struct {
		field string
		in    *string
		out   *time.Time
	}{{"started_at", in.StartedAt, &startedAt}, {"completed_at", in.CompletedAt, &completedAt}} {
		if t.in == nil || *t.in == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, *t.in)
		if err != nil {
			return invalid("For 'properties/%s', %q is not a date-time.", t.field, *t.in)
		}
		*t.out = v
	}
	if o := in.Output; o != nil {
		if o.Title == nil {
			return invalid(`"title" wasn't supplied (output.title).`)
		}
		if o.Summary == nil {
			return invalid(`"summary" wasn't supplied (output.summary).`)
		}
		for _, f := range []struct {
			name string
			v    *string
		}{{"summary", o.Summary}, {"text", o.Text}} {
			if f.v != nil && utf8.RuneCountInString(*f.v) > maxCheckRunText {
				return invalid("output.%s: only %d characters are allowed; %d were supplied.", f.name, maxCheckRunText, utf8.RuneCountInString(*f.v))
			}
		}
		if len(o.Annotations) > maxAnnotations {
			return invalid("output.annotations: at most %d annotations are allowed per request; %d were supplied.", maxAnnotations, len(o.Annotations))
		}
	}
	if in.Actions != nil {
		acts := *in.Actions
		if len(acts) > maxCheckRunActions {
			return invalid("For 'properties/actions', %d items were supplied; the maximum is %d.", len(acts), maxCheckRunActions)
		}
		for _, a := range acts {
			for _, f := range []struct {
				name, value string
				max         int
			}{{"label", a.Label, maxActionLabel}, {"description", a.Description, maxActionDesc}, {"identifier", a.Identifier, maxActionIdentifier}} {
				if f.value == "" {
					return invalid(`"%s" wasn't supplied (actions[].%s).`, f.name, f.name)
				}
				if n := utf8.RuneCountInString(f.value); n > f.max {
					return invalid("For 'properties/%s', %q is too long (%d characters; the maximum is %d).", f.name, f.value, n, f.max)
				}
			}
		}
	}

	// Valid: write it.
	if creating {
		c.ID, c.Name, c.HeadSHA, c.AppID = r.s.newID(), *in.Name, *in.HeadSHA, r.s.app.ID
		c.suite = r.suite(c.AppID, c.HeadSHA)
		c.startedAt = r.s.tick()
	} else if in.Name != nil {
		c.Name = *in.Name
	}
	if !startedAt.IsZero() {
		c.startedAt = startedAt
	}
	if in.DetailsURL != nil {
		c.DetailsURL = *in.DetailsURL
	}
	if in.ExternalID != nil {
		c.ExternalID = *in.ExternalID
	}
	c.Status, c.Conclusion = status, conclusion
	switch {
	case status != "completed":
		c.completedAt = time.Time{}
	case !completedAt.IsZero():
		c.completedAt = completedAt
	case c.completedAt.IsZero():
		c.completedAt = r.s.tick()
	}
	if o := in.Output; o != nil {
		c.hasOutput, c.Title, c.Summary = true, *o.Title, *o.Summary
		if o.Text != nil {
			c.hasText, c.Text = true, *o.Text
		}
		c.annotations += len(o.Annotations) // GitHub appends annotations on each update
	}
	if in.Actions != nil {
		c.Actions = nil
		for _, a := range *in.Actions {
			c.Actions = append(c.Actions, CheckRunAction{Label: a.Label, Description: a.Description, Identifier: a.Identifier})
		}
	}
	return nil
}

// createCheckRun answers POST /repos/{owner}/{repo}/check-runs (GitHub Apps only).
func (s *Server) createCheckRun(req *http.Request, p map[string]string) reply {
	if refused := s.appOnly(); refused != nil {
		return *refused
	}
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	var in checkRunInput
	if bad := decode(req, &in); bad != nil {
		return *bad
	}
	c := &checkRun{}
	if bad := r.applyCheckRun(c, &in, true); bad != nil {
		return *bad
	}
	r.checkRuns = append(r.checkRuns, c)
	return jsonReply(http.StatusCreated, r.checkRunJSON(c))
}

func (r *Repo) checkRun(idText string) *checkRun {
	id, _ := strconv.ParseInt(idText, 10, 64)
	for _, c := range r.checkRuns {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// updateCheckRun answers PATCH /repos/{owner}/{repo}/check-runs/{id}: only the App that
// created the run may change it.
func (s *Server) updateCheckRun(req *http.Request, p map[string]string) reply {
	if refused := s.appOnly(); refused != nil {
		return *refused
	}
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	c := r.checkRun(p["id"])
	if c == nil {
		return notFound()
	}
	if c.AppID != s.app.ID {
		return jsonReply(http.StatusForbidden, obj{
			"message":           fmt.Sprintf("Invalid app_id `%d` - check run can only be modified by the GitHub App that created it.", s.app.ID),
			"documentation_url": "https://docs.github.com/rest/checks/runs#update-a-check-run",
		})
	}
	var in checkRunInput
	if bad := decode(req, &in); bad != nil {
		return *bad
	}
	in.HeadSHA = nil // not updatable
	if bad := r.applyCheckRun(c, &in, false); bad != nil {
		return *bad
	}
	return jsonReply(http.StatusOK, r.checkRunJSON(c))
}

func (s *Server) getCheckRun(_ *http.Request, p map[string]string) reply {
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	c := r.checkRun(p["id"])
	if c == nil {
		return notFound()
	}
	return jsonReply(http.StatusOK, r.checkRunJSON(c))
}

// listCheckRuns answers GET /repos/{owner}/{repo}/commits/{ref}/check-runs, newest first.
// Like GitHub it keeps, by default (filter=latest), only the newest run of each name per App;
// check_name, status and app_id filter further.
func (s *Server) listCheckRuns(req *http.Request, p map[string]string) reply {
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	c := r.resolve(p["ref"])
	if c == nil {
		return unprocessable("No commit found for SHA: " + p["ref"])
	}
	q := req.URL.Query()
	latest := q.Get("filter") != "all"
	seen := map[string]bool{}
	var list []*checkRun
	for i := len(r.checkRuns) - 1; i >= 0; i-- {
		run := r.checkRuns[i]
		if run.HeadSHA != c.sha {
			continue
		}
		key := fmt.Sprintf("%d/%s", run.AppID, run.Name)
		if latest && seen[key] {
			continue
		}
		seen[key] = true
		if (q.Get("check_name") != "" && run.Name != q.Get("check_name")) ||
			(q.Get("status") != "" && run.Status != q.Get("status")) ||
			(q.Get("app_id") != "" && strconv.FormatInt(run.AppID, 10) != q.Get("app_id")) {
			continue
		}
		list = append(list, run)
	}
	rep := reply{status: http.StatusOK}
	lo, hi := paginate(req, len(list), &rep)
	runs := []any{}
	for _, run := range list[lo:hi] {
		runs = append(runs, r.checkRunJSON(run))
	}
	rep.body = obj{"total_count": len(list), "check_runs": runs}
	return rep
}
