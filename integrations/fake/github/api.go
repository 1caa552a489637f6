package fakegithub

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

type obj = map[string]any

// The JSON below follows the field names and nesting of recorded GitHub responses: pull
// requests as in google/github-owners-bot's pull_request.35.json, reviews as reviews.35.*.json,
// compare as PyGithub's Repository.testCompare*, statuses as PyGithub's Commit.testCreateStatus*,
// deployments and comments as the octokit/webhooks payload objects.

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

// nodeID imitates GitHub's legacy global node IDs: base64("<len>:<Type><id>").
func nodeID(typ string, id any) string {
	s := fmt.Sprintf("%s%v", typ, id)
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%02d:%s", len(typ), s))
}

func userID(login string) int64 {
	if login == WebFlow {
		return 19864447 // web-flow's real account ID
	}
	h := fnv.New32a()
	h.Write([]byte(login))
	return int64(h.Sum32()%90000000) + 1000000
}

func (s *Server) user(login string) any {
	if login == "" {
		return nil // GitHub sends null when a commit e-mail maps to no account
	}
	api := s.apiBase() + "/users/" + login
	typ := "User"
	if strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	id := userID(login)
	return obj{
		"login": login, "id": id, "node_id": nodeID("User", id),
		"avatar_url":  fmt.Sprintf("%s/avatars/u/%d?v=4", s.htmlBase(), id),
		"gravatar_id": "", "url": api, "html_url": s.htmlBase() + "/" + login,
		"followers_url": api + "/followers", "following_url": api + "/following{/other_user}",
		"gists_url": api + "/gists{/gist_id}", "starred_url": api + "/starred{/owner}{/repo}",
		"subscriptions_url": api + "/subscriptions", "organizations_url": api + "/orgs",
		"repos_url": api + "/repos", "events_url": api + "/events{/privacy}",
		"received_events_url": api + "/received_events", "type": typ, "user_view_type": "public",
		"site_admin": false,
	}
}

func gitIdentity(login string, at time.Time) obj {
	name, email := login, login+"@users.noreply.github.com"
	switch login {
	case "":
		name, email = "Unknown Author", "unknown@example.invalid"
	case WebFlow:
		name, email = "GitHub", "noreply@github.com"
	}
	return obj{"name": name, "email": email, "date": ts(at)}
}

func (r *Repo) apiURL() string  { return r.s.apiBase() + "/repos/" + r.FullName() }
func (r *Repo) htmlURL() string { return r.s.htmlBase() + "/" + r.FullName() }

func (r *Repo) json() obj {
	owner := r.s.user(r.owner).(obj)
	owner["type"] = "Organization"
	api, html := r.apiURL(), r.htmlURL()
	host := strings.TrimPrefix(r.s.htmlBase(), "http://")
	open := 0
	for _, p := range r.pulls {
		if !p.merged {
			open++
		}
	}
	o := obj{
		"id": r.id, "node_id": nodeID("Repository", r.id), "name": r.name, "full_name": r.FullName(),
		"private": true, "owner": owner, "html_url": html, "description": nil, "fork": false, "url": api,
		"created_at": ts(r.s.opts.Start), "updated_at": ts(r.s.clock), "pushed_at": ts(r.s.clock),
		"git_url": "git://" + host + "/" + r.FullName() + ".git", "ssh_url": "git@" + host + ":" + r.FullName() + ".git",
		"clone_url": html + ".git", "svn_url": html, "homepage": nil, "size": len(r.commits),
		"stargazers_count": 0, "watchers_count": 0, "language": "Go", "has_issues": true,
		"has_projects": false, "has_downloads": true, "has_wiki": false, "has_pages": false,
		"forks_count": 0, "mirror_url": nil, "archived": false, "disabled": false,
		"open_issues_count": open, "license": nil, "forks": 0, "open_issues": open, "watchers": 0,
		"default_branch": r.defaultBranch, "visibility": "private",
	}
	// The hypermedia templates every repository object carries.
	for k, v := range map[string]string{
		"forks_url": "/forks", "keys_url": "/keys{/key_id}", "collaborators_url": "/collaborators{/collaborator}",
		"teams_url": "/teams", "hooks_url": "/hooks", "issue_events_url": "/issues/events{/number}",
		"events_url": "/events", "assignees_url": "/assignees{/user}", "branches_url": "/branches{/branch}",
		"tags_url": "/tags", "blobs_url": "/git/blobs{/sha}", "git_tags_url": "/git/tags{/sha}",
		"git_refs_url": "/git/refs{/sha}", "trees_url": "/git/trees{/sha}", "statuses_url": "/statuses/{sha}",
		"languages_url": "/languages", "stargazers_url": "/stargazers", "contributors_url": "/contributors",
		"subscribers_url": "/subscribers", "subscription_url": "/subscription", "commits_url": "/commits{/sha}",
		"git_commits_url": "/git/commits{/sha}", "comments_url": "/comments{/number}",
		"issue_comment_url": "/issues/comments{/number}", "contents_url": "/contents/{+path}",
		"compare_url": "/compare/{base}...{head}", "merges_url": "/merges", "archive_url": "/{archive_format}{/ref}",
		"downloads_url": "/downloads", "issues_url": "/issues{/number}", "pulls_url": "/pulls{/number}",
		"milestones_url": "/milestones{/number}", "notifications_url": "/notifications{?since,all,participating}",
		"labels_url": "/labels{/name}", "releases_url": "/releases{/id}", "deployments_url": "/deployments",
	} {
		o[k] = api + v
	}
	return o
}

func treeSHA(sha string) string {
	sum := sha1.Sum([]byte("tree\x00" + sha))
	return hex.EncodeToString(sum[:])
}

func (r *Repo) commitJSON(c *commit, detailed bool) obj {
	api := r.apiURL()
	parents := []any{}
	for _, p := range c.parents {
		parents = append(parents, obj{"sha": p, "url": api + "/commits/" + p, "html_url": r.htmlURL() + "/commit/" + p})
	}
	tree := treeSHA(c.sha)
	o := obj{
		"sha": c.sha, "node_id": nodeID("Commit", fmt.Sprintf("%d:%s", r.id, c.sha)),
		"commit": obj{
			"author": gitIdentity(c.author, c.authoredAt), "committer": gitIdentity(c.committer, c.committedAt),
			"message": c.message, "tree": obj{"sha": tree, "url": api + "/git/trees/" + tree},
			"url": api + "/git/commits/" + c.sha, "comment_count": 0,
			"verification": obj{"verified": false, "reason": "unsigned", "signature": nil, "payload": nil, "verified_at": nil},
		},
		"url": api + "/commits/" + c.sha, "html_url": r.htmlURL() + "/commit/" + c.sha,
		"comments_url": api + "/commits/" + c.sha + "/comments",
		"author":       r.s.user(c.author), "committer": r.s.user(c.committer), "parents": parents,
	}
	if detailed {
		o["stats"] = obj{"total": 0, "additions": 0, "deletions": 0}
		o["files"] = []any{}
	}
	return o
}

func (r *Repo) pullJSON(p *pull, full bool) obj {
	api, html := r.apiURL(), r.htmlURL()
	self := fmt.Sprintf("%s/pulls/%d", api, p.number)
	issue := fmt.Sprintf("%s/issues/%d", api, p.number)
	state := "open"
	var closed, mergeSHA any
	if p.merged {
		state, closed, mergeSHA = "closed", ts(p.mergedAt), p.mergeSHA
	}
	side := func(ref, sha string) obj {
		return obj{"label": r.owner + ":" + ref, "ref": ref, "sha": sha, "user": r.s.user(r.owner), "repo": r.json()}
	}
	o := obj{
		"url": self, "id": p.id, "node_id": nodeID("PullRequest", p.id),
		"html_url": fmt.Sprintf("%s/pull/%d", html, p.number), "diff_url": fmt.Sprintf("%s/pull/%d.diff", html, p.number),
		"patch_url": fmt.Sprintf("%s/pull/%d.patch", html, p.number), "issue_url": issue,
		"number": p.number, "state": state, "locked": false, "title": p.title, "user": r.s.user(p.author),
		"body": p.body, "created_at": ts(p.createdAt), "updated_at": ts(p.updatedAt), "closed_at": closed,
		"merged_at": ts(p.mergedAt), "merge_commit_sha": mergeSHA, "assignee": nil, "assignees": []any{},
		"requested_reviewers": []any{}, "requested_teams": []any{}, "labels": []any{}, "milestone": nil,
		"draft": false, "commits_url": self + "/commits", "review_comments_url": self + "/comments",
		"review_comment_url": api + "/pulls/comments{/number}", "comments_url": issue + "/comments",
		"statuses_url": api + "/statuses/" + p.headSHA,
		"head":         side(p.headRef, p.headSHA), "base": side(p.baseRef, p.baseSHA),
		"_links": obj{
			"self": obj{"href": self}, "html": obj{"href": fmt.Sprintf("%s/pull/%d", html, p.number)},
			"issue": obj{"href": issue}, "comments": obj{"href": issue + "/comments"},
			"review_comments": obj{"href": self + "/comments"}, "review_comment": obj{"href": api + "/pulls/comments{/number}"},
			"commits": obj{"href": self + "/commits"}, "statuses": obj{"href": api + "/statuses/" + p.headSHA},
		},
		"author_association": "MEMBER", "auto_merge": nil, "active_lock_reason": nil,
	}
	if full {
		var mergedBy any
		if p.merged {
			mergedBy = r.s.user(p.mergedBy)
		}
		comments := 0
		for _, c := range r.comments {
			if c.Issue == p.number {
				comments++
			}
		}
		o["merged"] = p.merged
		o["mergeable"] = nil
		o["rebaseable"] = nil
		o["mergeable_state"] = "unknown"
		o["merged_by"] = mergedBy
		o["comments"] = comments
		o["review_comments"] = 0
		o["maintainer_can_modify"] = false
		o["commits"] = len(p.commits)
		o["additions"] = 0
		o["deletions"] = 0
		o["changed_files"] = 0
	}
	return o
}

func (r *Repo) reviewJSON(p *pull, rv *review) obj {
	html := fmt.Sprintf("%s/pull/%d#pullrequestreview-%d", r.htmlURL(), p.number, rv.id)
	pr := fmt.Sprintf("%s/pulls/%d", r.apiURL(), p.number)
	association := rv.association
	if association == "" {
		association = "MEMBER"
	}
	return obj{
		"id": rv.id, "node_id": nodeID("PullRequestReview", rv.id), "user": r.s.user(rv.user),
		"body": rv.body, "state": rv.state, "html_url": html, "pull_request_url": pr,
		"author_association": association,
		"_links":             obj{"html": obj{"href": html}, "pull_request": obj{"href": pr}},
		"submitted_at":       ts(rv.submittedAt), "commit_id": rv.commitID,
	}
}

func (r *Repo) statusJSON(st *Status) obj {
	var target any
	if st.TargetURL != "" {
		target = st.TargetURL
	}
	return obj{
		"url": r.apiURL() + "/statuses/" + st.SHA, "avatar_url": fmt.Sprintf("%s/avatars/u/%d?v=4", r.s.htmlBase(), userID(st.Creator)), "id": st.ID,
		"node_id": nodeID("StatusContext", st.ID), "state": st.State, "description": st.Description,
		"target_url": target, "context": st.Context, "created_at": ts(st.CreatedAt),
		"updated_at": ts(st.CreatedAt), "creator": r.s.user(st.Creator),
	}
}

func (r *Repo) commentJSON(c *Comment) obj {
	return obj{
		"url":       fmt.Sprintf("%s/issues/comments/%d", r.apiURL(), c.ID),
		"html_url":  fmt.Sprintf("%s/pull/%d#issuecomment-%d", r.htmlURL(), c.Issue, c.ID),
		"issue_url": fmt.Sprintf("%s/issues/%d", r.apiURL(), c.Issue), "id": c.ID,
		"node_id": nodeID("IssueComment", c.ID), "user": r.s.user(c.User),
		"created_at": ts(c.CreatedAt), "updated_at": ts(c.UpdatedAt), "author_association": "MEMBER",
		"body": c.Body, "performed_via_github_app": r.s.viaApp(c.User),
		"reactions": obj{
			"url":         fmt.Sprintf("%s/issues/comments/%d/reactions", r.apiURL(), c.ID),
			"total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0, "confused": 0, "heart": 0, "rocket": 0, "eyes": 0,
		},
	}
}

func (r *Repo) deploymentJSON(d *Deployment) obj {
	url := fmt.Sprintf("%s/deployments/%d", r.apiURL(), d.ID)
	var desc any
	if d.Description != "" {
		desc = d.Description
	}
	return obj{
		"url": url, "id": d.ID, "node_id": nodeID("Deployment", d.ID), "sha": d.SHA, "ref": d.Ref,
		"task": d.Task, "payload": d.Payload, "original_environment": d.Environment,
		"environment": d.Environment, "description": desc, "creator": r.s.user(d.Creator),
		"created_at": ts(d.CreatedAt), "updated_at": ts(d.CreatedAt), "statuses_url": url + "/statuses",
		"repository_url": r.apiURL(), "transient_environment": false,
		"production_environment": d.Environment == "production", "performed_via_github_app": r.s.viaApp(d.Creator),
	}
}

func (r *Repo) deploymentStatusJSON(d *Deployment, st *DeploymentStatus) obj {
	url := fmt.Sprintf("%s/deployments/%d", r.apiURL(), d.ID)
	return obj{
		"url": fmt.Sprintf("%s/statuses/%d", url, st.ID), "id": st.ID,
		"node_id": nodeID("DeploymentStatus", st.ID), "state": st.State, "creator": r.s.user(st.Creator),
		"description": st.Description, "environment": st.Environment, "target_url": st.LogURL,
		"log_url": st.LogURL, "environment_url": "", "created_at": ts(st.CreatedAt),
		"updated_at": ts(st.CreatedAt), "deployment_url": url, "repository_url": r.apiURL(),
		"performed_via_github_app": r.s.viaApp(st.Creator),
	}
}

// viaApp is performed_via_github_app of something login wrote: the App, when login is the
// App's bot in App mode; else null.
func (s *Server) viaApp(login string) any {
	if s.app == nil || login != s.opts.BotLogin {
		return nil
	}
	return s.appJSON(s.app.ID)
}

// --- handlers; called with s.mu held ---

func (s *Server) repoOf(p map[string]string) *Repo {
	return s.repos[strings.ToLower(p["owner"]+"/"+p["repo"])]
}

func decode(r *http.Request, v any) *reply {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		rep := jsonReply(http.StatusBadRequest, obj{"message": "Problems parsing JSON"})
		return &rep
	}
	return nil
}

// getUser is GET /user: the token's own account. A GitHub App (App mode, or BotLogin ending
// in [bot]) acts with an installation token, which has no user: GitHub answers 403.
func (s *Server) getUser(_ *http.Request, _ map[string]string) reply {
	if s.app != nil || strings.HasSuffix(s.opts.BotLogin, "[bot]") {
		return jsonReply(http.StatusForbidden, obj{"message": "Resource not accessible by integration",
			"documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user", "status": "403"})
	}
	return jsonReply(http.StatusOK, s.user(s.opts.BotLogin))
}

func (s *Server) getRepo(_ *http.Request, p map[string]string) reply {
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	return jsonReply(http.StatusOK, r.json())
}

func (s *Server) getCommit(req *http.Request, p map[string]string) reply {
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	c := r.resolve(p["ref"])
	if c == nil {
		return unprocessable("No commit found for SHA: " + p["ref"])
	}
	if strings.Contains(req.Header.Get("Accept"), ".sha") {
		// GetCommitSHA1: the application/vnd.github.sha media type answers with the bare SHA.
		return reply{status: http.StatusOK, text: c.sha, header: http.Header{"Content-Type": {"application/vnd.github.sha; charset=utf-8"}}}
	}
	return jsonReply(http.StatusOK, r.commitJSON(c, true))
}

func (s *Server) compare(req *http.Request, p map[string]string) reply {
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	baseRef, headRef, ok := strings.Cut(p["basehead"], "...")
	if !ok {
		return notFound()
	}
	base, head := r.resolve(baseRef), r.resolve(headRef)
	if base == nil || head == nil {
		return notFound()
	}
	baseAnc, headAnc := r.ancestors(base.sha), r.ancestors(head.sha)
	var ahead, behind []string
	var mergeBase *commit
	for sha := range headAnc {
		if !baseAnc[sha] {
			ahead = append(ahead, sha)
		} else if c := r.commits[sha]; mergeBase == nil || c.seq > mergeBase.seq {
			mergeBase = c
		}
	}
	if mergeBase == nil {
		return notFound() // unrelated histories
	}
	for sha := range baseAnc {
		if !headAnc[sha] {
			behind = append(behind, sha)
		}
	}
	status := "diverged"
	switch {
	case base.sha == head.sha:
		status = "identical"
	case len(behind) == 0:
		status = "ahead"
	case len(ahead) == 0:
		status = "behind"
	}
	commits := r.bySeq(ahead)
	rep := reply{status: http.StatusOK}
	lo, hi := paginate(req, len(commits), &rep)
	page := []any{}
	for _, c := range commits[lo:hi] {
		page = append(page, r.commitJSON(c, false))
	}
	html := r.htmlURL() + "/compare/" + p["basehead"]
	rep.body = obj{
		"url": r.apiURL() + "/compare/" + p["basehead"], "html_url": html,
		"permalink_url": fmt.Sprintf("%s/compare/%s:%s...%s:%s", r.htmlURL(), r.owner, base.sha[:7], r.owner, head.sha[:7]),
		"diff_url":      html + ".diff", "patch_url": html + ".patch",
		"base_commit": r.commitJSON(base, false), "merge_base_commit": r.commitJSON(mergeBase, false),
		"status": status, "ahead_by": len(ahead), "behind_by": len(behind), "total_commits": len(ahead),
		"commits": page, "files": []any{},
	}
	return rep
}

func (s *Server) commitPulls(req *http.Request, p map[string]string) reply {
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	c := r.resolve(p["sha"])
	if c == nil {
		return unprocessable("No commit found for SHA: " + p["sha"])
	}
	// GitHub: for a commit on the default branch, the merged pull request that introduced it;
	// otherwise the open (and other) pull requests that contain it.
	onDefault := r.ancestors(r.branches[r.defaultBranch])[c.sha]
	var found []*pull
	for _, pl := range r.pulls {
		if onDefault && !pl.merged {
			continue
		}
		if contains(pl.commits, c.sha) || contains(pl.landed, c.sha) {
			found = append(found, pl)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].number < found[j].number })
	return page(req, found, func(pl *pull) any { return r.pullJSON(pl, false) })
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (s *Server) pullOf(p map[string]string) (*Repo, *pull) {
	r := s.repoOf(p)
	if r == nil {
		return nil, nil
	}
	n, err := strconv.Atoi(p["number"])
	if err != nil {
		return r, nil
	}
	return r, r.pulls[n]
}

func (s *Server) listPulls(req *http.Request, p map[string]string) reply {
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	q := req.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	var list []*pull
	for _, pl := range r.pulls {
		open := !pl.merged
		if (state == "open" && !open) || (state == "closed" && open) {
			continue
		}
		if b := q.Get("base"); b != "" && pl.baseRef != b {
			continue
		}
		if h := q.Get("head"); h != "" && h != r.owner+":"+pl.headRef {
			continue
		}
		list = append(list, pl)
	}
	key := func(pl *pull) time.Time { return pl.createdAt }
	if q.Get("sort") == "updated" {
		key = func(pl *pull) time.Time { return pl.updatedAt }
	}
	// GitHub's default direction is desc for sort=created (the default), asc otherwise.
	desc := q.Get("direction") == "desc" || (q.Get("direction") == "" && (q.Get("sort") == "" || q.Get("sort") == "created"))
	sort.SliceStable(list, func(i, j int) bool {
		a, b := key(list[i]), key(list[j])
		if a.Equal(b) {
			return (list[i].number < list[j].number) != desc
		}
		return a.Before(b) != desc
	})
	return page(req, list, func(pl *pull) any { return r.pullJSON(pl, false) })
}

func (s *Server) getPull(_ *http.Request, p map[string]string) reply {
	r, pl := s.pullOf(p)
	if pl == nil {
		return notFound()
	}
	return jsonReply(http.StatusOK, r.pullJSON(pl, true))
}

func (s *Server) listReviews(req *http.Request, p map[string]string) reply {
	r, pl := s.pullOf(p)
	if pl == nil {
		return notFound()
	}
	return page(req, pl.reviews, func(rv *review) any { return r.reviewJSON(pl, rv) })
}

// maxPullCommits is GitHub's cap on GET /pulls/{n}/commits.
const maxPullCommits = 250

func (s *Server) listPullCommits(req *http.Request, p map[string]string) reply {
	r, pl := s.pullOf(p)
	if pl == nil {
		return notFound()
	}
	shas := pl.commits[:min(len(pl.commits), maxPullCommits)]
	return page(req, shas, func(sha string) any { return r.commitJSON(r.commits[sha], false) })
}

func (s *Server) createStatus(req *http.Request, p map[string]string) reply {
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	var in struct {
		State       string `json:"state"`
		TargetURL   string `json:"target_url"`
		Description string `json:"description"`
		Context     string `json:"context"`
	}
	if bad := decode(req, &in); bad != nil {
		return *bad
	}
	c := r.commits[p["sha"]]
	if c == nil {
		return unprocessable("No commit found for SHA: " + p["sha"])
	}
	switch in.State {
	case "error", "failure", "pending", "success":
	default:
		return unprocessable("Validation Failed: state is not included in the list")
	}
	if utf8.RuneCountInString(in.Description) > 140 {
		return unprocessable("Validation Failed: description is too long (maximum is 140 characters)")
	}
	if in.Context == "" {
		in.Context = "default"
	}
	st := &Status{
		ID: s.newID(), SHA: c.sha, State: in.State, Context: in.Context, Description: in.Description,
		TargetURL: in.TargetURL, Creator: s.opts.BotLogin, CreatedAt: s.tick(),
	}
	r.statuses = append(r.statuses, st)
	return jsonReply(http.StatusCreated, r.statusJSON(st))
}

func (s *Server) listStatuses(req *http.Request, p map[string]string) reply {
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	c := r.resolve(p["ref"])
	if c == nil {
		return unprocessable("No commit found for SHA: " + p["ref"])
	}
	var list []*Status
	for i := len(r.statuses) - 1; i >= 0; i-- { // newest first
		if r.statuses[i].SHA == c.sha {
			list = append(list, r.statuses[i])
		}
	}
	return page(req, list, func(st *Status) any { return r.statusJSON(st) })
}

func (s *Server) listComments(req *http.Request, p map[string]string) reply {
	r, pl := s.pullOf(p)
	if pl == nil {
		return notFound()
	}
	var list []*Comment
	for _, c := range r.comments {
		if c.Issue == pl.number {
			list = append(list, c)
		}
	}
	return page(req, list, func(c *Comment) any { return r.commentJSON(c) })
}

func (s *Server) createComment(req *http.Request, p map[string]string) reply {
	r, pl := s.pullOf(p)
	if pl == nil {
		return notFound()
	}
	var in struct {
		Body string `json:"body"`
	}
	if bad := decode(req, &in); bad != nil {
		return *bad
	}
	if in.Body == "" {
		return unprocessable("Validation Failed: body cannot be blank")
	}
	return jsonReply(http.StatusCreated, r.commentJSON(r.addComment(pl.number, s.opts.BotLogin, in.Body)))
}

func (s *Server) editComment(req *http.Request, p map[string]string) reply {
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	id, _ := strconv.ParseInt(p["id"], 10, 64)
	var in struct {
		Body string `json:"body"`
	}
	if bad := decode(req, &in); bad != nil {
		return *bad
	}
	for _, c := range r.comments {
		if c.ID == id {
			c.Body, c.UpdatedAt = in.Body, s.tick()
			return jsonReply(http.StatusOK, r.commentJSON(c))
		}
	}
	return notFound()
}

func (s *Server) listDeployments(req *http.Request, p map[string]string) reply {
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	q := req.URL.Query()
	var list []*Deployment
	for i := len(r.deployments) - 1; i >= 0; i-- { // newest first
		d := r.deployments[i]
		if (q.Get("sha") != "" && d.SHA != q.Get("sha")) || (q.Get("ref") != "" && d.Ref != q.Get("ref")) ||
			(q.Get("task") != "" && d.Task != q.Get("task")) ||
			(q.Get("environment") != "" && d.Environment != q.Get("environment")) {
			continue
		}
		list = append(list, d)
	}
	return page(req, list, func(d *Deployment) any { return r.deploymentJSON(d) })
}

func (s *Server) createDeployment(req *http.Request, p map[string]string) reply {
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	var in struct {
		Ref              string          `json:"ref"`
		Task             string          `json:"task"`
		AutoMerge        *bool           `json:"auto_merge"`
		RequiredContexts *[]string       `json:"required_contexts"`
		Payload          json.RawMessage `json:"payload"`
		Environment      string          `json:"environment"`
		Description      string          `json:"description"`
	}
	if bad := decode(req, &in); bad != nil {
		return *bad
	}
	c := r.resolve(in.Ref)
	if c == nil {
		return unprocessable("No ref found for: " + in.Ref)
	}
	if in.Task == "" {
		in.Task = "deploy"
	}
	if in.Environment == "" {
		in.Environment = "production"
	}
	if len(in.Payload) == 0 || string(in.Payload) == "null" {
		in.Payload = json.RawMessage(`{}`)
	}
	d := r.addDeployment(c.sha, in.Ref, in.Task, in.Environment, in.Description, in.Payload, s.opts.BotLogin)
	d.AutoMerge = in.AutoMerge
	if in.RequiredContexts != nil {
		d.RequiredContexts = append([]string{}, *in.RequiredContexts...)
	}
	return jsonReply(http.StatusCreated, r.deploymentJSON(d))
}

func (r *Repo) deployment(idText string) *Deployment {
	id, _ := strconv.ParseInt(idText, 10, 64)
	for _, d := range r.deployments {
		if d.ID == id {
			return d
		}
	}
	return nil
}

func (s *Server) listDeploymentStatuses(req *http.Request, p map[string]string) reply {
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	d := r.deployment(p["id"])
	if d == nil {
		return notFound()
	}
	rep := reply{status: http.StatusOK}
	lo, hi := paginate(req, len(d.Statuses), &rep)
	out := []any{}
	for i := len(d.Statuses) - 1 - lo; i >= len(d.Statuses)-hi; i-- { // newest first
		out = append(out, r.deploymentStatusJSON(d, &d.Statuses[i]))
	}
	rep.body = out
	return rep
}

func (s *Server) createDeploymentStatus(req *http.Request, p map[string]string) reply {
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	d := r.deployment(p["id"])
	if d == nil {
		return notFound()
	}
	var in struct {
		State       string `json:"state"`
		LogURL      string `json:"log_url"`
		TargetURL   string `json:"target_url"`
		Description string `json:"description"`
	}
	if bad := decode(req, &in); bad != nil {
		return *bad
	}
	switch in.State {
	case "error", "failure", "inactive", "in_progress", "queued", "pending", "success":
	default:
		return unprocessable("Validation Failed: state is not included in the list")
	}
	if in.LogURL == "" {
		in.LogURL = in.TargetURL
	}
	st := r.addDeploymentStatus(d, in.State, in.Description, in.LogURL, s.opts.BotLogin)
	return jsonReply(http.StatusCreated, r.deploymentStatusJSON(d, &st))
}

func (s *Server) getContents(req *http.Request, p map[string]string) reply {
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	ref := req.URL.Query().Get("ref")
	if ref == "" {
		ref = r.defaultBranch
	}
	c := r.resolve(ref)
	if c == nil {
		return jsonReply(http.StatusNotFound, obj{"message": "No commit found for the ref " + ref, "documentation_url": "https://docs.github.com/rest/repos/contents#get-repository-content"})
	}
	path := p["path"]
	content, ok := r.file(c, path)
	if !ok {
		return notFound()
	}
	blob := sha1.Sum(fmt.Appendf(nil, "blob %d\x00%s", len(content), content))
	sha := hex.EncodeToString(blob[:])
	// GitHub wraps the base64 content at 60 characters per line.
	enc := base64.StdEncoding.EncodeToString([]byte(content))
	var b strings.Builder
	for len(enc) > 60 {
		b.WriteString(enc[:60] + "\n")
		enc = enc[60:]
	}
	b.WriteString(enc + "\n")
	self := r.apiURL() + "/contents/" + path + "?ref=" + ref
	html := r.htmlURL() + "/blob/" + ref + "/" + path
	gitURL := r.apiURL() + "/git/blobs/" + sha
	name := path[strings.LastIndex(path, "/")+1:]
	return jsonReply(http.StatusOK, obj{
		"type": "file", "encoding": "base64", "size": len(content), "name": name, "path": path,
		"content": b.String(), "sha": sha, "url": self, "git_url": gitURL, "html_url": html,
		"download_url": r.htmlURL() + "/raw/" + ref + "/" + path,
		"_links":       obj{"self": self, "git": gitURL, "html": html},
	})
}

// listCommits answers GET /repos/{owner}/{repo}/commits: the commits reachable from sha
// (default: the default branch), newest first, only those that touched path when it is set, as
// `git log [-- PATH]` lists them (a merge commit is TREESAME to the side that made the change).
//
// since and until keep the commits whose committer date lies in [since, until], both ends
// included, as `git log --since --until` does: git compares the committer date (not the author
// date) and drops only a commit older than since or newer than until. GitHub's docs say "Only
// show results that were last updated after the given time" and "Only commits before this date
// will be returned", in ISO 8601 (YYYY-MM-DDTHH:MM:SSZ). The fake takes RFC 3339 (offsets and
// fractions too) or a bare date (midnight UTC). One difference: git stops walking history at
// commits older than since (with a little slop), so on GitHub a commit of the period behind an
// older-dated one can be missed; the fake filters every reachable commit.
func (s *Server) listCommits(req *http.Request, p map[string]string) reply {
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	q := req.URL.Query()
	var bounds [2]time.Time
	for i, name := range []string{"since", "until"} {
		if v := q.Get(name); v != "" {
			t, ok := parseISO8601(v)
			if !ok {
				return badTimestamp(name)
			}
			bounds[i] = t
		}
	}
	since, until := bounds[0], bounds[1]
	ref := q.Get("sha")
	if ref == "" {
		ref = r.defaultBranch
	}
	tip := r.resolve(ref)
	if tip == nil {
		return jsonReply(http.StatusNotFound, obj{"message": "No commit found for SHA: " + ref, "documentation_url": "https://docs.github.com/rest/commits/commits#list-commits"})
	}
	path := strings.TrimPrefix(q.Get("path"), "/")
	var list []*commit
	for sha := range r.ancestors(tip.sha) {
		c := r.commits[sha]
		if path != "" && !slices.Contains(c.touches, path) {
			continue
		}
		if (!since.IsZero() && c.committedAt.Before(since)) || (!until.IsZero() && c.committedAt.After(until)) {
			continue
		}
		list = append(list, c)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].seq > list[j].seq })
	return page(req, list, func(c *commit) any { return r.commitJSON(c, false) })
}

// parseISO8601 reads a since/until timestamp: RFC 3339, or a bare date (midnight UTC).
func parseISO8601(v string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// badTimestamp is the answer to a since/until that is not a timestamp. GitHub's OpenAPI
// description gives "List commits" a 400 (basic-error: message, documentation_url) and no 422;
// the message is GitHub's own for the same fault on the issue-comments list. Neither was
// recorded from this endpoint.
func badTimestamp(param string) reply {
	return jsonReply(http.StatusBadRequest, obj{
		"message":           "The " + param + " parameter needs to be in ISO 8601 format: YYYY-MM-DDTHH:MM:SSZ",
		"documentation_url": "https://docs.github.com/rest/commits/commits#list-commits",
		"status":            "400",
	})
}

// getTree answers GET /repos/{owner}/{repo}/git/trees/{sha}, for a commit SHA, a commit's tree
// SHA or a ref: the top-level entries, or every blob with ?recursive=1. Shaped on GitHub's
// "Get a tree" response.
func (s *Server) getTree(req *http.Request, p map[string]string) reply {
	r := s.repoOf(p)
	if r == nil {
		return notFound()
	}
	c := r.resolve(p["sha"])
	if c == nil {
		for _, cand := range r.commits {
			if treeSHA(cand.sha) == p["sha"] {
				c = cand
				break
			}
		}
	}
	if c == nil {
		return notFound()
	}
	recursive := req.URL.Query().Get("recursive") != ""
	files := r.filesAt(c)
	entries := map[string]obj{}
	api := r.apiURL()
	for path, content := range files {
		blob := sha1.Sum(fmt.Appendf(nil, "blob %d\x00%s", len(content), content))
		sha := hex.EncodeToString(blob[:])
		if dir, _, nested := strings.Cut(path, "/"); nested && !recursive {
			t := treeSHA(c.sha + "/" + dir)
			entries[dir] = obj{"path": dir, "mode": "040000", "type": "tree", "sha": t, "url": api + "/git/trees/" + t}
			continue
		}
		entries[path] = obj{"path": path, "mode": "100644", "type": "blob", "sha": sha, "size": len(content), "url": api + "/git/blobs/" + sha}
	}
	tree := []any{}
	for _, path := range slices.Sorted(maps.Keys(entries)) {
		tree = append(tree, entries[path])
	}
	t := treeSHA(c.sha)
	return jsonReply(http.StatusOK, obj{"sha": t, "url": api + "/git/trees/" + t, "tree": tree, "truncated": false})
}

// page answers a list request with the page the query asks for, rendering each item, with
// GitHub's Link header.
func page[T any](req *http.Request, list []T, render func(T) any) reply {
	rep := reply{status: http.StatusOK}
	lo, hi := paginate(req, len(list), &rep)
	out := []any{}
	for _, x := range list[lo:hi] {
		out = append(out, render(x))
	}
	rep.body = out
	return rep
}
