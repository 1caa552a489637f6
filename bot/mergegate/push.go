package mergegate

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/sirupsen/logrus"

	"sockembot/bot/check"
	"sockembot/bot/render"
	"sockembot/compliance"
)

// pushLookups bounds the pull request lookups of one push: a rebase merge of a long PR lands many
// commits at once.
const pushLookups = 4

// OnPush alerts on commits that reached the default branch without a pull request. Every
// commit of the push is checked, not only the "distinct" ones: pushing an existing branch
// straight onto main brings commits GitHub already knows. Before anything else it tells
// PolicyPushed of a push that may have changed the repository's policy file.
func (g *Gate) OnPush(ctx context.Context, ev compliance.PushEvent) error {
	repo, branch := ev.Repo, ev.DefaultBranch
	// GitHub leaves the paths out of very large pushes: commits without paths may touch it.
	if g.PolicyPushed != nil && repo != "" && (slices.Contains(ev.Paths, check.RepoPolicyPath) || len(ev.Commits) > 0 && len(ev.Paths) == 0) {
		g.PolicyPushed(repo)
	}
	if ev.Deleted || branch == "" || ev.Ref != "refs/heads/"+branch {
		return nil
	}
	owned := make([]bool, len(ev.Commits))
	errs := make([]error, len(ev.Commits))
	sem := make(chan struct{}, pushLookups)
	var wg sync.WaitGroup
	for i, c := range ev.Commits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = check.Safely(func() error {
				prs, err := g.GitHub.PullsForCommit(ctx, repo, c.SHA, branch)
				owned[i] = len(prs) > 0
				return check.Trace(err)
			})
		}()
	}
	wg.Wait()
	var direct []DirectPushEvidence
	for i, c := range ev.Commits {
		if errs[i] != nil {
			// Fail closed: not knowing whether it came through a PR is not proof that it did.
			return check.Errorf("push to %s: pulls of %s: %w", repo, render.Short(c.SHA), errs[i])
		}
		if owned[i] {
			continue
		}
		direct = append(direct, DirectPushEvidence{
			Repo: repo, Ref: ev.Ref, SHA: c.SHA, Message: c.Message, Author: c.Author, Committer: c.Committer,
			Pusher: ev.Pusher, Compare: ev.Compare,
		})
	}
	if len(direct) == 0 {
		return nil
	}
	// Each commit is recorded once, whether the push comes again (a retried delivery, or the
	// same push through a repository and an organisation hook) or not.
	alert := make([]render.DirectPush, 0, len(direct))
	for _, d := range direct {
		rec, first, err := g.Store.AppendOnce(ctx, compliance.EvidenceDirectPush, repo+"@"+d.SHA,
			compliance.Evidence{At: g.now(), Kind: compliance.EvidenceDirectPush, Repo: repo, Subject: d.SHA, Body: d})
		if err == nil && !first {
			var found bool
			rec, found, err = g.Store.LastRecord(ctx, compliance.EvidenceDirectPush, d.SHA)
			if err == nil && !found {
				err = compliance.ErrNotFound
			}
		}
		if err != nil {
			return check.Errorf("push to %s: record direct push %s: %w", repo, render.Short(d.SHA), err)
		}
		alert = append(alert, render.DirectPush{SHA: d.SHA, Message: d.Message, Author: d.Author, Seq: rec.Seq})
	}
	g.log().WithFields(logrus.Fields{"repo": repo, "commits": len(direct)}).Warn("merge gate: direct push")
	if g.Config.ReleaseChannel == "" {
		return nil
	}
	key := fmt.Sprintf("direct_push:%s@%s..%s", repo, direct[0].SHA, direct[len(direct)-1].SHA)
	text := func() (string, error) { return render.DirectPushAlert(repo, branch, ev.Pusher, alert), nil }
	if err := g.Notices.PostOnce(ctx, key, g.Config.ReleaseChannel, "", text); err != nil {
		return check.Errorf("push to %s: alert: %w", repo, err)
	}
	return nil
}
