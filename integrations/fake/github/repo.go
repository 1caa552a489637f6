package fakegithub

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// MergeMethod is how a pull request lands on the default branch.
type MergeMethod string

const (
	// MergeCommit adds the PR's commits plus a merge commit "Merge pull request #N from ...",
	// authored by the merger and committed by web-flow (GitHub's web committer).
	MergeCommit MergeMethod = "merge"
	// Squash adds one commit "Title (#N)" authored by the PR author, committed by web-flow.
	Squash MergeMethod = "squash"
	// Rebase adds copies of the PR's commits (same message, author and author date; new SHAs),
	// committed by web-flow at the merge time. merge_commit_sha is the last copy.
	Rebase MergeMethod = "rebase"
)

// WebFlow is the login GitHub uses as committer for merges made on github.com.
const WebFlow = "web-flow"

// PR describes a pull request for the builder.
type PR struct {
	Title  string
	Body   string
	Author string
	// Branch is the head ref; default "<author>/pr-<number>".
	Branch string
	// Commits is how many commits the PR has (default 1); Messages, when set, gives their
	// messages (and their number). Default messages are "<Title>: part i".
	Commits  int
	Messages []string
	// MergedBy defaults to Author.
	MergedBy string
	Reviews  []Review
	// Base is the branch the PR targets as GitHub reports it (base.ref); default the default
	// branch. The fake still lands its commits on the default branch's history: a PR into
	// another branch whose commits later reach the default branch another way.
	Base string
	// Files are what the PR's last commit writes: path → content, or Deleted to remove the
	// file. They are served by GET /contents at the PR's head and, once merged, on the default
	// branch, and listed by GET /commits?path= for the commit that wrote them.
	Files map[string]string
}

// Deleted, as a file's content in PR.Files or CommitFiles, removes the file.
const Deleted = "\x00deleted"

// Review is one submitted review. It is on the PR's final head commit unless CommitID or
// OnCommit (1-based index into the PR's commits) says otherwise.
type Review struct {
	User     string
	State    string // APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED
	Body     string
	CommitID string
	OnCommit int
	// Association is the reviewer's author_association with the repository; default MEMBER.
	// A login ending in "[bot]" is answered as a Bot account.
	Association string
}

// PRInfo is a snapshot of a pull request in the fake.
type PRInfo struct {
	Number   int
	Title    string
	HeadRef  string
	HeadSHA  string
	Commits  []string // the PR's own commits (GET /pulls/{n}/commits)
	Merged   bool
	MergeSHA string   // merge_commit_sha
	Landed   []string // commits the merge added to the default branch, oldest first
	MergedAt time.Time
}

// Status is a commit status written through the API.
type Status struct {
	ID          int64
	SHA         string
	State       string
	Context     string
	Description string
	TargetURL   string
	Creator     string
	CreatedAt   time.Time
}

// Comment is an issue (pull request conversation) comment.
type Comment struct {
	ID        int64
	Issue     int
	User      string
	Body      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Deployment is a deployment created through the API (or the builder), with its statuses
// oldest first.
type Deployment struct {
	ID          int64
	SHA         string
	Ref         string
	Task        string
	Environment string
	Description string
	Payload     json.RawMessage
	// AutoMerge and RequiredContexts are as the client sent them (nil when absent), so tests
	// can check that sockembot disables GitHub's own checks it has already done.
	AutoMerge        *bool
	RequiredContexts []string
	Creator          string
	CreatedAt        time.Time
	Statuses         []DeploymentStatus
}

// DeploymentStatus is one status of a deployment.
type DeploymentStatus struct {
	ID          int64
	State       string
	Description string
	LogURL      string
	Environment string
	Creator     string
	CreatedAt   time.Time
}

// Repo is a repository in the fake. Its methods are safe for concurrent use with the server.
type Repo struct {
	s             *Server
	id            int64
	owner, name   string
	defaultBranch string

	commits     map[string]*commit
	seq         int
	branches    map[string]string
	tags        map[string]string
	pulls       map[int]*pull
	lastNumber  int
	statuses    []*Status
	comments    []*Comment
	deployments []*Deployment
	files       map[string]string
	checkRuns   []*checkRun
	suites      map[string]int64      // "<app id>/<head sha>" → check suite id
	queues      map[string]*queue     // merge queue head SHA → the group
	runs        map[int64]*actionsRun // Actions runs waiting on a protection rule
}

type commit struct {
	sha         string
	parents     []string
	message     string
	author      string // login; "" when GitHub could not map the e-mail to an account
	committer   string
	authoredAt  time.Time
	committedAt time.Time
	seq         int
	// tree is every file this commit's history wrote (nil: deleted), over the repository's
	// baseline files (SetFile). touches are the paths the commit itself changed as git log
	// -- PATH sees it: a merge commit touches nothing (it is TREESAME to the PR's side).
	tree    map[string]*string
	touches []string
}

type pull struct {
	id                   int64
	number               int
	title, body          string
	author, mergedBy     string
	headRef, headSHA     string
	baseRef, baseSHA     string
	commits, landed      []string
	merged               bool
	mergeSHA             string
	createdAt, updatedAt time.Time
	mergedAt             time.Time
	reviews              []*review
}

type review struct {
	id          int64
	user, state string
	body        string
	commitID    string
	submittedAt time.Time
	association string
}

// AddRepo creates an empty repository "owner/name" whose default branch is defaultBranch.
func (s *Server) AddRepo(fullName, defaultBranch string) *Repo {
	owner, name, ok := strings.Cut(fullName, "/")
	if !ok {
		panic("fakegithub: repository name must be owner/name: " + fullName)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &Repo{
		s: s, id: s.newID(), owner: owner, name: name, defaultBranch: defaultBranch,
		commits: map[string]*commit{}, branches: map[string]string{}, tags: map[string]string{},
		pulls: map[int]*pull{}, files: map[string]string{}, suites: map[string]int64{},
		queues: map[string]*queue{}, runs: map[int64]*actionsRun{},
	}
	s.repos[strings.ToLower(fullName)] = r
	s.installFor(owner)
	return r
}

// Repo returns a repository added earlier, or nil.
func (s *Server) Repo(fullName string) *Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repos[strings.ToLower(fullName)]
}

// FullName is "owner/name".
func (r *Repo) FullName() string { return r.owner + "/" + r.name }

// Head is the SHA at the tip of the default branch ("" when empty).
func (r *Repo) Head() string {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.branches[r.defaultBranch]
}

// Commit pushes a commit straight to the default branch, authored and committed by author
// ("" for an e-mail GitHub cannot map to an account). It returns the SHA.
func (r *Repo) Commit(message, author string) string {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	at := r.s.tick()
	c := r.newCommit(message, author, author, at, at, r.tipParents())
	r.branches[r.defaultBranch] = c.sha
	return c.sha
}

// Tag points a lightweight tag at the tip of the default branch and returns the SHA.
func (r *Repo) Tag(name string) string {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	sha := r.branches[r.defaultBranch]
	r.tags[name] = sha
	return sha
}

// CommitFiles pushes a commit that writes files (path → content, or Deleted) straight to the
// default branch, authored and committed by author. It returns the SHA.
func (r *Repo) CommitFiles(message, author string, files map[string]string) string {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	at := r.s.tick()
	c := r.newCommit(message, author, author, at, at, r.tipParents())
	r.write(c, files)
	r.branches[r.defaultBranch] = c.sha
	return c.sha
}

// SetFile sets a file's baseline content, served by GET /contents/{path} at any ref that
// resolves unless a commit in that ref's history wrote the file (CommitFiles, PR.Files).
func (r *Repo) SetFile(path, content string) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.files[strings.TrimPrefix(path, "/")] = content
}

// OpenPR opens a pull request against the default branch without merging it.
func (r *Repo) OpenPR(spec PR) PRInfo {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.openPR(spec).info()
}

// MergePR opens a pull request from the tip of the default branch and merges it with method,
// the way GitHub does.
func (r *Repo) MergePR(spec PR, method MergeMethod) PRInfo {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	p := r.openPR(spec)
	r.merge(p, method)
	return p.info()
}

// Merge merges open pull request number with method, as its MergedBy (default its author).
func (r *Repo) Merge(number int, method MergeMethod) PRInfo {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	p, ok := r.pulls[number]
	if !ok || p.merged {
		panic(fmt.Sprintf("fakegithub: no open pull request %s#%d to merge", r.FullName(), number))
	}
	r.merge(p, method)
	return p.info()
}

// AddReview submits a review on open pull request number (on its head commit unless rv says
// otherwise), as the review webhook would announce it.
func (r *Repo) AddReview(number int, rv Review) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	p, ok := r.pulls[number]
	if !ok {
		panic(fmt.Sprintf("fakegithub: no pull request %s#%d to review", r.FullName(), number))
	}
	r.addReview(p, rv)
	p.updatedAt = r.s.clock
}

func (r *Repo) merge(p *pull, method MergeMethod) {
	mergedAt := r.s.tick()
	p.landed = r.land(p, method, r.branches[r.defaultBranch], mergedAt)
	p.merged = true
	p.mergeSHA = p.landed[len(p.landed)-1]
	p.mergedAt, p.updatedAt = mergedAt, mergedAt
	r.branches[r.defaultBranch] = p.mergeSHA
}

// land writes the commits that merging p with method on top of base adds, the way GitHub
// writes them (committed by web-flow at), and returns what lands: every commit the merge
// brings onto base's history, oldest first, the last being merge_commit_sha. It moves no
// branch and does not mark p merged.
func (r *Repo) land(p *pull, method MergeMethod, base string, at time.Time) []string {
	head := r.commits[p.headSHA]
	mergedAt := at
	var parents, landed []string
	if base != "" {
		parents = []string{base}
	}
	switch method {
	case MergeCommit:
		msg := fmt.Sprintf("Merge pull request #%d from %s/%s\n\n%s", p.number, r.owner, p.headRef, p.title)
		m := r.newCommit(msg, p.mergedBy, WebFlow, mergedAt, mergedAt, append(parents, head.sha))
		m.tree = overlay(m.tree, r.prWrites(p))
		landed = append(append([]string(nil), p.commits...), m.sha)
	case Squash:
		var b strings.Builder
		fmt.Fprintf(&b, "%s (#%d)\n", p.title, p.number)
		for _, sha := range p.commits {
			fmt.Fprintf(&b, "\n* %s\n", r.commits[sha].message)
		}
		sq := r.newCommit(b.String(), p.author, WebFlow, mergedAt, mergedAt, parents)
		writes := r.prWrites(p)
		sq.tree = overlay(sq.tree, writes)
		sq.touches = slices.Sorted(maps.Keys(writes))
		landed = []string{sq.sha}
	case Rebase:
		for _, sha := range p.commits {
			orig := r.commits[sha]
			cp := r.newCommit(orig.message, orig.author, WebFlow, orig.authoredAt, mergedAt, parents)
			writes := map[string]*string{}
			for _, path := range orig.touches {
				writes[path] = orig.tree[path]
			}
			cp.tree, cp.touches = overlay(cp.tree, writes), orig.touches
			landed = append(landed, cp.sha)
			parents = []string{cp.sha}
		}
	default:
		panic("fakegithub: unknown merge method " + string(method))
	}
	return landed
}

// PR returns a snapshot of pull request number.
func (r *Repo) PR(number int) (PRInfo, bool) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	p, ok := r.pulls[number]
	if !ok {
		return PRInfo{}, false
	}
	return p.info(), true
}

// AddComment adds an issue comment as user (for example a comment someone else wrote).
func (r *Repo) AddComment(number int, user, body string) int64 {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.addComment(number, user, body).ID
}

// Statuses returns the commit statuses written for sha, oldest first ("" for all).
func (r *Repo) Statuses(sha string) []Status {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	var out []Status
	for _, st := range r.statuses {
		if sha == "" || st.SHA == sha {
			out = append(out, *st)
		}
	}
	return out
}

// Comments returns the comments on issue or pull request number, oldest first.
func (r *Repo) Comments(number int) []Comment {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	var out []Comment
	for _, c := range r.comments {
		if c.Issue == number {
			out = append(out, *c)
		}
	}
	return out
}

// Deployments returns all deployments, oldest first.
func (r *Repo) Deployments() []Deployment {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	out := make([]Deployment, 0, len(r.deployments))
	for _, d := range r.deployments {
		cp := *d
		cp.Statuses = append([]DeploymentStatus(nil), d.Statuses...)
		out = append(out, cp)
	}
	return out
}

// Deploy records a deployment of sha to env with one status (e.g. "success"), as if an earlier
// deploy had happened. It returns the deployment ID.
func (r *Repo) Deploy(sha, env, state string) int64 {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	d := r.addDeployment(sha, sha, "deploy", env, "", json.RawMessage(`{}`), "deployer")
	r.addDeploymentStatus(d, state, "", "", "deployer")
	return d.ID
}

// AddDeployment records a deployment made outside sockembot (by a person, another tool, an
// Actions workflow), as GitHub would list it, and returns its ID. Of d it takes SHA (or else
// Ref, resolved like any ref), Ref (default the SHA), Task (default "deploy"), Environment
// (default "production"), Description, Payload (default {}) and Creator (default "deployer";
// a login ending in "[bot]" is a Bot account). ID and CreatedAt come from the fake, at the next
// tick of its clock, so deployments stay listed newest first; Statuses are not recorded.
func (r *Repo) AddDeployment(d Deployment) int64 {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	sha := d.SHA
	if sha == "" {
		c := r.resolve(d.Ref)
		if c == nil {
			panic(fmt.Sprintf("fakegithub: no commit for deployment ref %q in %s", d.Ref, r.FullName()))
		}
		sha = c.sha
	}
	if d.Ref == "" {
		d.Ref = sha
	}
	if d.Task == "" {
		d.Task = "deploy"
	}
	if d.Environment == "" {
		d.Environment = "production"
	}
	if len(d.Payload) == 0 {
		d.Payload = json.RawMessage(`{}`)
	}
	if d.Creator == "" {
		d.Creator = "deployer"
	}
	dep := r.addDeployment(sha, d.Ref, d.Task, d.Environment, d.Description, d.Payload, d.Creator)
	dep.AutoMerge, dep.RequiredContexts = d.AutoMerge, d.RequiredContexts
	return dep.ID
}

// --- internals; callers hold r.s.mu ---

func (r *Repo) tipParents() []string {
	if tip := r.branches[r.defaultBranch]; tip != "" {
		return []string{tip}
	}
	return nil
}

func (r *Repo) newCommit(msg, author, committer string, authoredAt, committedAt time.Time, parents []string) *commit {
	r.seq++
	sum := sha1.Sum(fmt.Appendf(nil, "%s\x00%d\x00%s\x00%v", r.FullName(), r.seq, msg, parents))
	c := &commit{
		sha: hex.EncodeToString(sum[:]), parents: append([]string(nil), parents...), message: msg,
		author: author, committer: committer, authoredAt: authoredAt, committedAt: committedAt, seq: r.seq,
	}
	if len(parents) > 0 && r.commits[parents[0]] != nil {
		c.tree = r.commits[parents[0]].tree // shared: trees are never changed in place
	}
	r.commits[c.sha] = c
	return c
}

// write makes c write files (Deleted removes one).
func (r *Repo) write(c *commit, files map[string]string) {
	writes := map[string]*string{}
	for path, content := range files {
		path = strings.TrimPrefix(path, "/")
		if content == Deleted {
			writes[path] = nil
		} else {
			writes[path] = &content
		}
	}
	c.tree = overlay(c.tree, writes)
	c.touches = slices.Sorted(maps.Keys(writes))
}

// prWrites is what p's commits wrote, as its head's tree has it.
func (r *Repo) prWrites(p *pull) map[string]*string {
	head := r.commits[p.headSHA]
	writes := map[string]*string{}
	for _, sha := range p.commits {
		for _, path := range r.commits[sha].touches {
			writes[path] = head.tree[path]
		}
	}
	return writes
}

// file is path's content at commit c: what its history wrote, else the baseline.
func (r *Repo) file(c *commit, path string) (string, bool) {
	if content, ok := c.tree[path]; ok {
		if content == nil {
			return "", false
		}
		return *content, true
	}
	content, ok := r.files[path]
	return content, ok
}

// filesAt is every file at commit c, by path.
func (r *Repo) filesAt(c *commit) map[string]string {
	out := map[string]string{}
	for path, content := range r.files {
		out[path] = content
	}
	for path, content := range c.tree {
		if content == nil {
			delete(out, path)
		} else {
			out[path] = *content
		}
	}
	return out
}

func overlay(tree, writes map[string]*string) map[string]*string {
	if len(writes) == 0 {
		return tree
	}
	out := make(map[string]*string, len(tree)+len(writes))
	for k, v := range tree {
		out[k] = v
	}
	for k, v := range writes {
		out[k] = v
	}
	return out
}

func (r *Repo) addReview(p *pull, rv Review) {
	commitID := rv.CommitID
	if commitID == "" && rv.OnCommit > 0 && rv.OnCommit <= len(p.commits) {
		commitID = p.commits[rv.OnCommit-1]
	}
	if commitID == "" {
		commitID = p.headSHA
	}
	p.reviews = append(p.reviews, &review{
		id: r.s.newID(), user: rv.User, state: rv.State, body: rv.Body,
		commitID: commitID, submittedAt: r.s.tick(), association: rv.Association,
	})
}

func (r *Repo) openPR(spec PR) *pull {
	r.lastNumber++
	n := r.lastNumber
	p := &pull{
		id: r.s.newID(), number: n, title: spec.Title, body: spec.Body, author: spec.Author,
		mergedBy: spec.MergedBy, headRef: spec.Branch, baseRef: r.defaultBranch,
		baseSHA: r.branches[r.defaultBranch],
	}
	if p.mergedBy == "" {
		p.mergedBy = spec.Author
	}
	if spec.Base != "" {
		p.baseRef = spec.Base
	}
	if p.headRef == "" {
		p.headRef = fmt.Sprintf("%s/pr-%d", spec.Author, n)
	}
	msgs := spec.Messages
	if len(msgs) == 0 {
		for i := 1; i <= max(spec.Commits, 1); i++ {
			msgs = append(msgs, fmt.Sprintf("%s: part %d", spec.Title, i))
		}
	}
	p.createdAt = r.s.tick()
	parents := r.tipParents()
	for i, m := range msgs {
		at := r.s.tick()
		c := r.newCommit(m, spec.Author, spec.Author, at, at, parents)
		if i == len(msgs)-1 {
			r.write(c, spec.Files)
		}
		p.commits = append(p.commits, c.sha)
		parents = []string{c.sha}
	}
	p.headSHA = p.commits[len(p.commits)-1]
	r.branches[p.headRef] = p.headSHA
	for _, rv := range spec.Reviews {
		r.addReview(p, rv)
	}
	p.updatedAt = r.s.clock
	r.pulls[n] = p
	return p
}

func (p *pull) info() PRInfo {
	return PRInfo{
		Number: p.number, Title: p.title, HeadRef: p.headRef, HeadSHA: p.headSHA,
		Commits: append([]string(nil), p.commits...), Merged: p.merged, MergeSHA: p.mergeSHA,
		Landed: append([]string(nil), p.landed...), MergedAt: p.mergedAt,
	}
}

func (r *Repo) addComment(number int, user, body string) *Comment {
	at := r.s.tick()
	c := &Comment{ID: r.s.newID(), Issue: number, User: user, Body: body, CreatedAt: at, UpdatedAt: at}
	r.comments = append(r.comments, c)
	return c
}

func (r *Repo) addDeployment(sha, ref, task, env, desc string, payload json.RawMessage, creator string) *Deployment {
	d := &Deployment{
		ID: r.s.newID(), SHA: sha, Ref: ref, Task: task, Environment: env, Description: desc,
		Payload: payload, Creator: creator, CreatedAt: r.s.tick(),
	}
	r.deployments = append(r.deployments, d)
	return d
}

func (r *Repo) addDeploymentStatus(d *Deployment, state, desc, logURL, creator string) DeploymentStatus {
	st := DeploymentStatus{
		ID: r.s.newID(), State: state, Description: desc, LogURL: logURL,
		Environment: d.Environment, Creator: creator, CreatedAt: r.s.tick(),
	}
	d.Statuses = append(d.Statuses, st)
	// GitHub's auto_inactive (default true): a successful deployment marks the earlier ones
	// in the same environment inactive.
	if state == "success" {
		for _, other := range r.deployments {
			if other != d && other.Environment == d.Environment && len(other.Statuses) > 0 &&
				other.Statuses[len(other.Statuses)-1].State == "success" {
				other.Statuses = append(other.Statuses, DeploymentStatus{
					ID: r.s.newID(), State: "inactive", Environment: other.Environment,
					Creator: creator, CreatedAt: st.CreatedAt,
				})
			}
		}
	}
	return st
}

// resolve finds the commit a ref names: a SHA (full, or an unambiguous prefix of 7+), a
// branch, or a tag, optionally spelled refs/heads/..., heads/..., refs/tags/..., tags/....
func (r *Repo) resolve(ref string) *commit {
	if c, ok := r.commits[ref]; ok {
		return c
	}
	if ref == "HEAD" {
		ref = r.defaultBranch
	}
	for _, name := range []string{ref, strings.TrimPrefix(strings.TrimPrefix(ref, "refs/"), "heads/")} {
		if sha, ok := r.branches[name]; ok {
			return r.commits[sha]
		}
	}
	for _, name := range []string{ref, strings.TrimPrefix(strings.TrimPrefix(ref, "refs/"), "tags/")} {
		if sha, ok := r.tags[name]; ok {
			return r.commits[sha]
		}
	}
	if len(ref) >= 7 {
		var found *commit
		for sha, c := range r.commits {
			if strings.HasPrefix(sha, ref) {
				if found != nil {
					return nil
				}
				found = c
			}
		}
		return found
	}
	return nil
}

// ancestors is the set of commits reachable from sha, itself included.
func (r *Repo) ancestors(sha string) map[string]bool {
	seen := map[string]bool{}
	stack := []string{sha}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		if c := r.commits[s]; c != nil {
			stack = append(stack, c.parents...)
		}
	}
	return seen
}

// bySeq sorts SHAs in creation order, which is a topological order (oldest first).
func (r *Repo) bySeq(shas []string) []*commit {
	out := make([]*commit, 0, len(shas))
	for _, s := range shas {
		out = append(out, r.commits[s])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}
