package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	gh "github.com/google/go-github/v62/github"
	"github.com/sirupsen/logrus"

	"sockembot/compliance"
	"sockembot/integrations/store"
)

// StatusContext is the commit status branch protection requires. Renaming it silently unblocks
// every repository that requires the old name, so it is a constant, not configuration.
const StatusContext = "sockembot/compliance"

// commentMarker identifies sockembot's one comment on a pull request, so later checks edit it
// instead of adding another.
const commentMarker = "<!-- sockembot:compliance -->"

// Commit status states as the GitHub API spells them.
const (
	statusPending = "pending"
	statusSuccess = "success"
	statusFailure = "failure"
	statusError   = "error"
)

// mergeGitHub is what the merge gate asks of GitHub.
type mergeGitHub interface {
	PullRequest(ctx context.Context, repo string, number int) (compliance.Change, error)
	SetStatus(ctx context.Context, repo, sha, state, statusContext, description, targetURL string) error
	UpsertComment(ctx context.Context, repo string, number int, marker, body string) (id int64, created bool, err error)
	FindComment(ctx context.Context, repo string, number int, marker string) (id int64, body string, found bool, err error)
	MergedPullsSince(ctx context.Context, repo string, since time.Time) ([]compliance.PullRequest, error)
	PullsForCommit(ctx context.Context, repo, sha, base string) ([]int, error)
}

// PRCheck is the outcome of checking one pull request.
type PRCheck struct {
	Repo    string
	Number  int
	HeadSHA string
	Report  compliance.Report
	Facts   compliance.Facts
	Seq     int64 // evidence sequence number of the check_run record
}

// Change is the verdict on the pull request itself.
func (c PRCheck) Change() compliance.ChangeReport {
	if len(c.Report.Changes) == 0 {
		return compliance.ChangeReport{}
	}
	return c.Report.Changes[0]
}

// MergeVerdictEvidence is the body of a merge_verdict record: the verdict at the moment of the
// merge with every fact it rests on, so an auditor can re-derive it without asking GitHub again.
type MergeVerdictEvidence struct {
	Repo       string            `json:"repo"`
	Number     int               `json:"number"`
	Title      string            `json:"title"`
	URL        string            `json:"url"`
	HeadSHA    string            `json:"head_sha"`
	MergeSHA   string            `json:"merge_sha"`
	MergedBy   string            `json:"merged_by"`
	MergedAt   time.Time         `json:"merged_at"`
	Policy     compliance.Policy `json:"policy"`
	PolicyHash string            `json:"policy_hash"`
	// PolicySource is "global" or the repository's own policy file.
	PolicySource string            `json:"policy_source,omitempty"`
	Compliant    bool              `json:"compliant"`
	Facts        compliance.Facts  `json:"facts"`
	Report       compliance.Report `json:"report"`
	// Source says how sockembot learned of the merge: "webhook" or "reconcile".
	Source string `json:"source"`
}

// DirectPushEvidence is the body of a direct_push record: one commit that reached the default
// branch without a pull request.
type DirectPushEvidence struct {
	Repo      string `json:"repo"`
	Ref       string `json:"ref"`
	SHA       string `json:"sha"`
	Message   string `json:"message"`
	Author    string `json:"author"`
	Committer string `json:"committer"`
	Pusher    string `json:"pusher"`
	Compare   string `json:"compare"`
}

func (a *App) onPullRequest(ctx context.Context, ev *gh.PullRequestEvent) error {
	repo := ev.GetRepo().GetFullName()
	pr := ev.GetPullRequest()
	number := ev.GetNumber()
	if number == 0 {
		number = pr.GetNumber()
	}
	switch ev.GetAction() {
	case "closed":
		if !pr.GetMerged() {
			return nil
		}
		_, err := a.RecordMerge(ctx, repo, number, "webhook")
		return err
	case "opened", "reopened", "synchronize", "edited", "ready_for_review":
		if pr.GetState() == "closed" {
			return nil // edited after it was closed: nothing left to gate
		}
		_, err := a.CheckPullRequest(ctx, repo, number, pr.GetHead().GetSHA(), "pull_request."+ev.GetAction())
		return err
	}
	return nil
}

func (a *App) onPullRequestReview(ctx context.Context, ev *gh.PullRequestReviewEvent) error {
	pr := ev.GetPullRequest()
	// An approval after an emergency deploy is the retroactive review of that change; it
	// usually arrives once the pull request is merged and closed.
	if ev.GetAction() == "submitted" && strings.EqualFold(ev.GetReview().GetState(), compliance.StateApproved) {
		if err := a.onApprovingReview(ctx, ev.GetRepo().GetFullName(), pr.GetNumber(), ev.GetReview()); err != nil {
			return err
		}
	}
	// A review on a closed pull request changes nothing that can still be merged.
	if pr.GetState() == "closed" {
		return nil
	}
	switch ev.GetAction() {
	case "submitted", "dismissed":
		_, err := a.CheckPullRequest(ctx, ev.GetRepo().GetFullName(), pr.GetNumber(), pr.GetHead().GetSHA(), "pull_request_review."+ev.GetAction())
		return err
	}
	return nil
}

// CheckPullRequest checks one open pull request and publishes the verdict: the commit status
// on its head and, when it is not compliant, the comment. headSHA (from the webhook) gets the
// pending status at once; the verdict goes on the head the facts were read at.
func (a *App) CheckPullRequest(ctx context.Context, repo string, number int, headSHA, trigger string) (PRCheck, error) {
	log := a.log().WithFields(logrus.Fields{"repo": repo, "pr": number, "trigger": trigger})
	unlock, err := a.lockPR(ctx, mergeSubject(repo, number))
	if err != nil {
		return PRCheck{}, fmt.Errorf("check %s#%d: %w", repo, number, err)
	}
	defer unlock()
	if headSHA != "" {
		if err := a.GitHub.SetStatus(ctx, repo, headSHA, statusPending, StatusContext, "checking tickets and approvals…", ""); err != nil {
			// Not fatal: the verdict below is what counts, and it is set separately.
			log.WithError(err).Warn("merge gate: pending status")
		}
	}
	var chk PRCheck
	err = Safely(func() error {
		var err error
		chk, err = a.evaluatePR(ctx, repo, number, trigger)
		return err
	})
	if err != nil {
		// Fail closed: a check that could not run leaves the required status at error, which
		// branch protection treats as not passing.
		a.metrics.check(statusError)
		sha := headSHA
		if chk.HeadSHA != "" {
			sha = chk.HeadSHA
		}
		if sha != "" {
			desc := statusErrorDescription(err)
			if serr := a.GitHub.SetStatus(ctx, repo, sha, statusError, StatusContext, desc, ""); serr != nil {
				err = errors.Join(err, fmt.Errorf("set error status: %w", serr))
			}
		}
		return chk, fmt.Errorf("check %s#%d: %w", repo, number, err)
	}

	cr := chk.Change()
	state := statusFailure
	if cr.Compliant {
		state = statusSuccess
	}
	a.metrics.check(state)
	if err := a.GitHub.SetStatus(ctx, repo, chk.HeadSHA, state, StatusContext, StatusDescription(cr), ""); err != nil {
		return chk, fmt.Errorf("check %s#%d: set status: %w", repo, number, err)
	}
	if err := a.publishComment(ctx, chk); err != nil {
		return chk, fmt.Errorf("check %s#%d: %w", repo, number, err)
	}
	log.WithFields(logrus.Fields{"state": state, "head": short(chk.HeadSHA)}).Info("merge gate: checked")
	return chk, nil
}

// prCheckLease bounds how long a replica may hold a pull request's check; a replica that dies
// holding it delays the next check of that PR by at most this long.
const prCheckLease = 2 * time.Minute

// lockPR serialises the checks of one pull request, in this process and across replicas. Two
// checks running side by side can finish out of order and leave the older facts' verdict on
// the commit: an approval dismissed in between would still show green. Run one after the
// other, the last check to finish is the one that read the newest facts.
func (a *App) lockPR(ctx context.Context, key string) (unlock func(), err error) {
	a.gate.init()
	mine := make(chan struct{})
	for {
		a.gate.mu.Lock()
		busy, ok := a.gate.checking[key]
		if !ok {
			a.gate.checking[key] = mine
		}
		a.gate.mu.Unlock()
		if !ok {
			break
		}
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	local := func() {
		a.gate.mu.Lock()
		delete(a.gate.checking, key)
		a.gate.mu.Unlock()
		close(mine)
	}
	name := "check:" + key
	deadline := time.Now().Add(prCheckLease + 10*time.Second)
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		got, err := a.Store.AcquireLease(ctx, name, a.replica(), prCheckLease)
		if err != nil {
			local()
			return nil, fmt.Errorf("lock %s: %w", key, err)
		}
		if got {
			break
		}
		if time.Now().After(deadline) {
			local()
			return nil, fmt.Errorf("lock %s: another replica is still checking it", key)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			local()
			return nil, ctx.Err()
		}
	}
	// Renewed while held: a check slowed by GitHub's rate limits can outlast one lease term.
	stop := a.renewLease(context.WithoutCancel(ctx), name, prCheckLease, nil)
	return func() {
		stop()
		if err := a.Store.ReleaseLease(context.WithoutCancel(ctx), name, a.replica()); err != nil {
			a.log().WithError(err).WithField("pr", key).Warn("merge gate: release check lease")
		}
		local()
	}, nil
}

// renewLease keeps this replica's lease on name alive, renewing it every third of ttl, until
// the returned stop is called. If a renewal finds the lease taken (this replica stalled past
// it), lost is called, and renewing stops.
func (a *App) renewLease(ctx context.Context, name string, ttl time.Duration, lost func()) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			ok, err := a.Store.AcquireLease(ctx, name, a.replica(), ttl)
			if err != nil {
				a.log().WithError(err).WithField("lease", name).Warn("lease: renew")
				continue
			}
			if !ok {
				a.log().WithField("lease", name).Error("lease: lost to another replica")
				if lost != nil {
					lost()
				}
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// publishComment keeps the one sockembot comment on the pull request in step with the verdict.
func (a *App) publishComment(ctx context.Context, chk PRCheck) error {
	cr := chk.Change()
	if !cr.Compliant {
		if _, _, err := a.GitHub.UpsertComment(ctx, chk.Repo, chk.Number, commentMarker, violationComment(chk)); err != nil {
			return fmt.Errorf("comment: %w", err)
		}
		return nil
	}
	// A compliant PR that was never flagged gets no comment: noise teaches people to ignore it.
	_, body, found, err := a.GitHub.FindComment(ctx, chk.Repo, chk.Number, commentMarker)
	if err != nil {
		return fmt.Errorf("find comment: %w", err)
	}
	if !found || strings.Contains(body, fixedHeading) {
		return nil
	}
	if _, _, err := a.GitHub.UpsertComment(ctx, chk.Repo, chk.Number, commentMarker, fixedComment(chk)); err != nil {
		return fmt.Errorf("comment: %w", err)
	}
	return nil
}

// evaluatePR is gather, evaluate, record for one pull request, as it is now.
func (a *App) evaluatePR(ctx context.Context, repo string, number int, trigger string) (PRCheck, error) {
	p, source, err := a.Checker().PolicyFor(ctx, repo, a.Config.Policy)
	if err != nil {
		return PRCheck{}, err
	}
	if err := p.Validate(); err != nil {
		return PRCheck{}, fmt.Errorf("policy: %w", err)
	}
	facts, err := a.gatherPR(ctx, repo, number, p)
	if err != nil {
		return PRCheck{}, err
	}
	chk := PRCheck{Repo: repo, Number: number, HeadSHA: facts.Range.HeadSHA, Facts: facts}
	chk.Report = compliance.Evaluate(p, facts)
	rec, err := a.Store.Append(ctx, store.Evidence{
		At: a.now(), Kind: store.KindCheckRun, Repo: repo, Subject: chk.HeadSHA,
		Body: CheckRunEvidence{
			Repo: repo, Base: facts.Range.Base, Head: facts.Range.Head, HeadSHA: chk.HeadSHA,
			Policy: p, PolicyHash: compliance.PolicyHash(p), PolicySource: source, Compliant: chk.Report.Compliant,
			Facts: facts, Report: chk.Report, Trigger: trigger,
		},
	})
	if err != nil {
		// Unrecorded evidence is a failed check: the audit trail must not have holes.
		return chk, fmt.Errorf("record check run: %w", err)
	}
	chk.Seq = rec.Seq
	return chk, nil
}

// gatherPR fetches every fact about one pull request: the PR with its reviews and commits from
// GitHub, the Jira projects (at the same time) and then the tickets it references.
// The facts' range holds exactly one change, with its PR set.
func (a *App) gatherPR(ctx context.Context, repo string, number int, p compliance.Policy) (compliance.Facts, error) {
	type projects struct {
		keys []string
		err  error
	}
	pc := make(chan projects, 1)
	go func() {
		var pr projects
		pr.err = Safely(func() error {
			var err error
			pr.keys, err = a.Jira.Projects(ctx)
			return err
		})
		pc <- pr
	}()
	change, err := a.GitHub.PullRequest(ctx, repo, number)
	pr := <-pc
	if err != nil {
		return compliance.Facts{}, fmt.Errorf("pull request %s#%d: %w", repo, number, err)
	}
	if change.PR == nil {
		return compliance.Facts{}, fmt.Errorf("pull request %s#%d: GitHub returned no pull request facts", repo, number)
	}
	if pr.err != nil {
		return compliance.Facts{}, fmt.Errorf("jira projects: %w", pr.err)
	}
	rng := compliance.Range{
		Repo: repo, Head: fmt.Sprintf("#%d", number), HeadSHA: change.PR.HeadSHA,
		Changes: []compliance.Change{change},
	}
	facts := compliance.Facts{Range: rng, JiraProjects: pr.keys, Tickets: map[string]compliance.Ticket{}}
	if keys := compliance.LookupKeys(p, rng, pr.keys); len(keys) > 0 {
		facts.Tickets, err = a.Jira.Tickets(ctx, keys)
		if err != nil {
			return compliance.Facts{}, fmt.Errorf("jira tickets: %w", err)
		}
	}
	return facts, nil
}

// RecordMerge records the verdict on a merged pull request as frozen evidence and posts the
// merge note. Whether the webhook, a redelivery or the reconciliation job gets there first, on
// any replica, a merge is recorded once. It reports whether this call recorded it.
func (a *App) RecordMerge(ctx context.Context, repo string, number int, via string) (bool, error) {
	subject := mergeSubject(repo, number)
	// Under the PR's lock, "no verdict yet" cannot change before this call records one.
	unlock, err := a.lockPR(ctx, subject)
	if err != nil {
		return false, fmt.Errorf("merge %s: %w", subject, err)
	}
	defer unlock()
	if done, err := a.mergeRecorded(ctx, subject); err != nil {
		return false, err
	} else if done {
		// Recorded before; if its note did not reach Slack then (the delivery is being
		// retried for that), post it now.
		return false, a.postMergeNote(ctx, subject, nil, 0)
	}
	var facts compliance.Facts
	var p compliance.Policy
	var source string
	err = Safely(func() error {
		var err error
		if p, source, err = a.Checker().PolicyFor(ctx, repo, a.Config.Policy); err != nil {
			return err
		}
		if err := p.Validate(); err != nil {
			return fmt.Errorf("policy: %w", err)
		}
		facts, err = a.gatherPR(ctx, repo, number, p)
		return err
	})
	if err != nil {
		// Fail closed, loudly: the release channel hears that a merge could not be judged.
		a.postMergeFailure(ctx, repo, number, err)
		return false, fmt.Errorf("merge %s: %w", subject, err)
	}
	report := compliance.Evaluate(p, facts)
	pr := facts.Range.Changes[0].PR
	ev := MergeVerdictEvidence{
		Repo: repo, Number: number, Title: pr.Title, URL: pr.URL, HeadSHA: pr.HeadSHA,
		MergeSHA: pr.MergeSHA, MergedBy: pr.MergedBy, MergedAt: pr.MergedAt,
		Policy: p, PolicyHash: compliance.PolicyHash(p), PolicySource: source, Compliant: report.Compliant,
		Facts: facts, Report: report, Source: via,
	}
	rec, err := a.Store.Append(ctx, store.Evidence{At: a.now(), Kind: store.KindMergeVerdict, Repo: repo, Subject: subject, Body: ev})
	if err != nil {
		return false, fmt.Errorf("merge %s: record verdict: %w", subject, err)
	}
	a.log().WithFields(logrus.Fields{"repo": repo, "pr": number, "compliant": report.Compliant, "source": via, "seq": rec.Seq}).Info("merge gate: merge recorded")
	return true, a.postMergeNote(ctx, subject, &ev, rec.Seq)
}

// postMergeNote posts the merge note of subject to the release channel unless it was posted
// before. ev nil means: read the verdict back from the evidence.
func (a *App) postMergeNote(ctx context.Context, subject string, ev *MergeVerdictEvidence, seq int64) error {
	if a.Config.ReleaseChannel == "" {
		return nil
	}
	return a.postOnce(ctx, "merge_note:"+subject, func() (string, error) {
		if ev == nil {
			rec, found, err := a.Store.LastRecord(ctx, store.KindMergeVerdict, subject)
			if err == nil && !found {
				err = store.ErrNotFound
			}
			if err != nil {
				return "", fmt.Errorf("merge %s: read verdict: %w", subject, err)
			}
			ev, seq = new(MergeVerdictEvidence), rec.Seq
			if err := json.Unmarshal(rec.Body, ev); err != nil {
				return "", fmt.Errorf("merge %s: read verdict %d: %w", subject, rec.Seq, err)
			}
		}
		return mergeNote(*ev, seq), nil
	})
}

// postOnce posts a notice to the release channel unless one was posted under key before, and
// marks it posted only once Slack took it: a post that fails is made again when the work is
// retried, and one that succeeded is not repeated. (Two replicas racing may both post; a
// notice said twice beats one never said.)
func (a *App) postOnce(ctx context.Context, key string, text func() (string, error)) error {
	return a.postOnceTo(ctx, key, a.Config.ReleaseChannel, "", text)
}

// postOnceTo is postOnce to any channel, or to a thread when thread is a message ts.
func (a *App) postOnceTo(ctx context.Context, key, channel, thread string, text func() (string, error)) error {
	if _, posted, err := a.Store.GetState(ctx, "posted:"+key); err != nil || posted {
		return err
	}
	t, err := text()
	if err != nil {
		return err
	}
	if _, err := a.post(ctx, channel, thread, t); err != nil {
		return fmt.Errorf("post %s: %w", key, err)
	}
	return a.Store.SetState(ctx, "posted:"+key, a.now().Format(time.RFC3339))
}

func (a *App) postMergeFailure(ctx context.Context, repo string, number int, err error) {
	if a.Config.ReleaseChannel == "" {
		return
	}
	// Said once per merge, not on every retry of the delivery; retried until Slack takes it.
	perr := a.postOnce(ctx, "merge_failure_note:"+mergeSubject(repo, number), func() (string, error) {
		return fmt.Sprintf(":warning: %s was merged but sockembot could not judge it; it is not treated as compliant and will be retried.\n```%s```",
			mergeSubject(repo, number), esc(Failure{Doing: "check the merged pull request", Err: err}.Text())), nil
	})
	if perr != nil {
		a.log().WithError(perr).Warn("merge gate: post failure note")
	}
}

// mergeRecorded says whether a merge_verdict record exists for subject.
func (a *App) mergeRecorded(ctx context.Context, subject string) (bool, error) {
	errFound := errors.New("found")
	err := a.Store.Records(ctx, store.KindMergeVerdict, subject, func(store.Record) error { return errFound })
	if errors.Is(err, errFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("merge verdicts of %s: %w", subject, err)
	}
	return false, nil
}

func mergeSubject(repo string, number int) string { return fmt.Sprintf("%s#%d", repo, number) }

// onPush alerts on commits that reached the default branch without a pull request. Every
// commit of the push is checked, not only the "distinct" ones: pushing an existing branch
// straight onto main brings commits GitHub already knows.
func (a *App) onPush(ctx context.Context, ev *gh.PushEvent) error {
	repo := ev.GetRepo().GetFullName()
	branch := ev.GetRepo().GetDefaultBranch()
	if branch == "" {
		branch = ev.GetRepo().GetMasterBranch()
	}
	if ev.GetDeleted() || branch == "" || ev.GetRef() != "refs/heads/"+branch {
		return nil
	}
	// One lookup per commit, a few at a time: a rebase merge of a long PR lands many commits.
	owned := make([]bool, len(ev.Commits))
	errs := make([]error, len(ev.Commits))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, c := range ev.Commits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = Safely(func() error {
				prs, err := a.GitHub.PullsForCommit(ctx, repo, c.GetID(), branch)
				owned[i] = len(prs) > 0
				return err
			})
		}()
	}
	wg.Wait()
	var direct []DirectPushEvidence
	for i, c := range ev.Commits {
		if errs[i] != nil {
			// Fail closed: not knowing whether it came through a PR is not proof that it did.
			return fmt.Errorf("push to %s: pulls of %s: %w", repo, short(c.GetID()), errs[i])
		}
		if owned[i] {
			continue
		}
		direct = append(direct, DirectPushEvidence{
			Repo: repo, Ref: ev.GetRef(), SHA: c.GetID(), Message: c.GetMessage(),
			Author: authorLogin(c.GetAuthor()), Committer: authorLogin(c.GetCommitter()),
			Pusher: authorLogin(ev.GetPusher()), Compare: ev.GetCompare(),
		})
	}
	if len(direct) == 0 {
		return nil
	}
	// Each commit is recorded once, whether the push comes again (a retried delivery, or the
	// same push through a repository and an organisation hook) or not.
	var seqs []int64
	for _, d := range direct {
		rec, first, err := a.Store.AppendOnce(ctx, store.KindDirectPush, repo+"@"+d.SHA,
			store.Evidence{At: a.now(), Kind: store.KindDirectPush, Repo: repo, Subject: d.SHA, Body: d})
		if err == nil && !first {
			var found bool
			rec, found, err = a.Store.LastRecord(ctx, store.KindDirectPush, d.SHA)
			if err == nil && !found {
				err = store.ErrNotFound
			}
		}
		if err != nil {
			return fmt.Errorf("push to %s: record direct push %s: %w", repo, short(d.SHA), err)
		}
		seqs = append(seqs, rec.Seq)
	}
	a.log().WithFields(logrus.Fields{"repo": repo, "commits": len(direct)}).Warn("merge gate: direct push")
	if a.Config.ReleaseChannel == "" {
		return nil
	}
	key := fmt.Sprintf("direct_push:%s@%s..%s", repo, direct[0].SHA, direct[len(direct)-1].SHA)
	if err := a.postOnce(ctx, key, func() (string, error) { return directPushAlert(repo, branch, direct, seqs), nil }); err != nil {
		return fmt.Errorf("push to %s: alert: %w", repo, err)
	}
	return nil
}

func authorLogin(c *gh.CommitAuthor) string {
	if c == nil {
		return ""
	}
	if c.GetLogin() != "" {
		return c.GetLogin()
	}
	return c.GetName()
}

// maxStatusDescription is GitHub's limit on a commit status description.
const maxStatusDescription = 140

// StatusDescription is the one line beside the commit status: who approved and which tickets
// for a pass ("approved by bob · PAY-11 In Progress"), what is missing for a failure.
func StatusDescription(cr compliance.ChangeReport) string {
	var parts []string
	if cr.Compliant {
		if len(cr.Approvals) > 0 {
			parts = append(parts, "approved by "+ApprovalsText(cr.Approvals))
		}
		for _, t := range cr.Tickets {
			parts = append(parts, strings.TrimSpace(t.Key+" "+t.Status))
		}
		if len(parts) == 0 {
			return "compliant"
		}
		return truncateRunes(strings.Join(parts, " · "), maxStatusDescription)
	}
	seen := map[string]bool{}
	for _, v := range cr.Violations {
		s := violationPhrase(v, cr)
		if !seen[s] {
			seen[s] = true
			parts = append(parts, s)
		}
	}
	return truncateRunes(strings.Join(parts, " · "), maxStatusDescription)
}

// violationPhrase is a violation in the few words a commit status has room for.
func violationPhrase(v compliance.Violation, cr compliance.ChangeReport) string {
	switch v.Code {
	case compliance.MissingTicket:
		return "no Jira ticket"
	case compliance.TicketNotFound:
		key, _, _ := strings.Cut(v.Message, " ")
		return key + " not in Jira"
	case compliance.TicketStatus:
		key, _, _ := strings.Cut(v.Message, " ")
		for _, t := range cr.Tickets {
			if t.Key == key {
				return key + " " + orUnknown(t.Status)
			}
		}
		return key + " status not allowed"
	case compliance.MissingApproval:
		return "no independent approval"
	case compliance.StaleApproval:
		return "approval predates last push"
	case compliance.ChangesRequested:
		who, _, _ := strings.Cut(v.Message, " ")
		return "changes requested by " + who
	case compliance.DirectPush:
		return "direct push"
	}
	return string(v.Code)
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

const violationHeading = "### sockembot: this pull request does not meet the change policy yet"

const fixedHeading = "### sockembot: this pull request now meets the change policy"

// violationComment is the one comment on a non-compliant pull request.
func violationComment(chk PRCheck) string {
	cr := chk.Change()
	var b strings.Builder
	b.WriteString(commentMarker + "\n")
	b.WriteString(violationHeading + "\n\n")
	fmt.Fprintf(&b, "Checked at `%s`. The `%s` status stays red until each of these is fixed:\n\n", short(chk.HeadSHA), StatusContext)
	lines := []string{"breaks the change policy:"}
	for _, v := range cr.Violations {
		fmt.Fprintf(&b, "- **%s**: %s\n", v.Code, v.Message)
		lines = append(lines, "- "+violationPhrase(v, cr))
	}
	fmt.Fprintf(&b, "\nTickets: %s · Approvals: %s\n\n", TicketsText(cr.Tickets), ApprovalsText(cr.Approvals))
	b.WriteString("```\n" + Clippy(lines...) + "```\n")
	b.WriteString("\nsockembot checks again on every push, edit and review, and updates this comment.\n")
	return b.String()
}

// fixedComment replaces the violation comment once the pull request is compliant, so the thread
// does not keep telling people about problems that are gone.
func fixedComment(chk PRCheck) string {
	cr := chk.Change()
	return fmt.Sprintf("%s\n%s\n\nChecked at `%s`: %s. The violations reported here earlier are fixed.\n",
		commentMarker, fixedHeading, short(chk.HeadSHA), StatusDescription(cr))
}

// mergeNote is the short line in the release channel for each merge.
func mergeNote(ev MergeVerdictEvidence, seq int64) string {
	link := mergeSubject(ev.Repo, ev.Number)
	if ev.URL != "" {
		link = fmt.Sprintf("<%s|%s>", ev.URL, link)
	}
	var cr compliance.ChangeReport
	if len(ev.Report.Changes) > 0 {
		cr = ev.Report.Changes[0]
	}
	verdict := ":white_check_mark: compliant: " + StatusDescription(cr)
	if !ev.Compliant {
		verdict = ":x: NOT compliant: " + StatusDescription(cr)
	}
	note := fmt.Sprintf("Merged %s “%s” by %s — %s (evidence #%d", link, esc(ev.Title), esc(orUnknown(ev.MergedBy)), esc(verdict), seq)
	if ev.Source == "reconcile" {
		note += "; found by reconciliation, no webhook announced it"
	}
	return note + ")"
}

func directPushAlert(repo, branch string, ds []DirectPushEvidence, seqs []int64) string {
	var b strings.Builder
	what := fmt.Sprintf("%d commits", len(ds))
	if len(ds) == 1 {
		what = "1 commit"
	}
	fmt.Fprintf(&b, ":rotating_light: Direct push to %s `%s` by %s: %s without a pull request, so nobody reviewed the change.\n",
		repo, esc(branch), esc(orUnknown(ds[0].Pusher)), what)
	for i, d := range ds {
		title, _, _ := strings.Cut(d.Message, "\n")
		fmt.Fprintf(&b, "• `%s` %s (%s) — evidence #%d\n", short(d.SHA), esc(title), esc(orUnknown(d.Author)), seqs[i])
	}
	return strings.TrimRight(b.String(), "\n")
}
