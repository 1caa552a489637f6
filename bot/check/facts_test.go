package check_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"sockembot/bot/check"
	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	fakejira "sockembot/integrations/fake/jira"
	"sockembot/integrations/store/storetest"
)

// A range checked a second time from the same store reuses every merged pull request's recorded
// facts, whatever the merge method, and asks GitHub only for the range itself and for what no
// record explains. Verdicts are the same as from GitHub; tickets are read live; the policy in
// force now decides.
func TestSecondCheckReusesRecordedPullRequestFacts(t *testing.T) {
	g := fakegithub.New(fakegithub.Options{})
	t.Cleanup(g.Close)
	j := fakejira.New(fakejira.Options{Mode: fakejira.Cloud})
	t.Cleanup(j.Close)
	r := g.AddRepo("acme/payments", "main")
	r.Commit("initial", "alice")
	base := r.Tag("v1")
	approved := []fakegithub.Review{{User: "bob", State: "APPROVED"}}
	var numbers []int
	for i, m := range []fakegithub.MergeMethod{fakegithub.MergeCommit, fakegithub.Squash, fakegithub.Rebase, fakegithub.MergeCommit} {
		key := fmt.Sprintf("PAY-%d", i+1)
		j.AddIssue(key, "In Progress")
		reviews := approved
		if i == 3 {
			reviews = nil // merged without an approval: not compliant, from GitHub or from the store
		}
		info := r.MergePR(fakegithub.PR{Title: key + " change", Author: "alice", Commits: 2, Reviews: reviews}, m)
		numbers = append(numbers, info.Number)
	}
	r.Commit("hotfix straight to main", "mallory") // a direct push: no record can explain it
	// An approval after the merge approved nothing that was merged: never counted, cold or warm.
	r.AddReview(numbers[3], fakegithub.Review{User: "carol", State: "APPROVED"})

	gc, jc := clients(t, g, j)
	st := storetest.SQLite(t)
	c := &check.Checker{GitHub: gc, Jira: jc, Evidence: st, Facts: st, Files: gc}
	req := check.Request{Repo: "acme/payments", Base: base, Head: "main", Policy: compliance.DefaultPolicy(), Trigger: "test"}
	ctx := context.Background()

	cold, err := c.Check(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var recorded []check.PullFactsEvidence
	if err := st.Records(ctx, compliance.EvidencePullFacts, "", func(rec compliance.Record) error {
		var ev check.PullFactsEvidence
		if err := json.Unmarshal(rec.Body, &ev); err != nil {
			return err
		}
		recorded = append(recorded, ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(recorded) != 4 {
		t.Fatalf("%d pull_request_facts records after the first check, want one per merged pull request (4)", len(recorded))
	}
	for _, ev := range recorded {
		if ev.PR.MergeSHA == "" || ev.MergeSHA != ev.PR.MergeSHA || len(ev.PR.Commits) != 2 || ev.Trigger != "test" {
			t.Errorf("recorded facts of #%d: %+v", ev.Number, ev)
		}
		for _, rv := range ev.PR.Reviews {
			if rv.SubmittedAt.After(ev.PR.MergedAt) {
				t.Errorf("#%d: a review submitted after the merge was recorded: %+v", ev.Number, rv)
			}
		}
	}

	// Tickets are read live: a ticket moved back to To Do fails the second check.
	j.AddIssue("PAY-2", "To Do")
	g.ResetLog()
	j.ResetRequests()
	warm, err := c.Check(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for route, n := range g.Counts() {
		if strings.Contains(route, "/pulls/") {
			t.Errorf("second check: %d × %s; the recorded facts should have answered", n, route)
		}
	}
	// The direct push is the one commit no record explains: looked up as before.
	if n := g.Counts()["GET /repos/{owner}/{repo}/commits/{sha}/pulls"]; n != 1 {
		t.Errorf("second check looked up %d commits' pull requests, want 1 (the direct push): %v", n, g.Counts())
	}
	if len(j.Requests()) == 0 {
		t.Error("second check read no ticket from Jira")
	}

	if len(warm.Report.Changes) != len(cold.Report.Changes) || len(warm.Report.Changes) != 5 {
		t.Fatalf("changes: cold %d, warm %d, want 5", len(cold.Report.Changes), len(warm.Report.Changes))
	}
	for i, w := range warm.Report.Changes {
		c := cold.Report.Changes[i]
		if w.Number != c.Number || !slices.Equal(w.Commits, c.Commits) || !slices.Equal(codes(w), codes(c)) && w.Number != numbers[1] {
			t.Errorf("change %d: warm %+v\ncold %+v", i, w, c)
		}
		if c.Recorded != nil {
			t.Errorf("cold change #%d says its facts came from record %d", c.Number, c.Recorded.Seq)
		}
		switch {
		case w.Kind == compliance.KindDirectPush:
			if w.Recorded != nil || !slices.Contains(codes(w), "direct_push") {
				t.Errorf("direct push from the store: %+v", w)
			}
		case w.Recorded == nil || w.Recorded.Seq == 0 || w.Recorded.At.IsZero():
			t.Errorf("warm change #%d does not name the record its facts came from: %+v", w.Number, w.Recorded)
		}
		switch w.Number {
		case numbers[1]:
			if !slices.Equal(codes(w), []string{"ticket_status"}) {
				t.Errorf("#%d with its ticket back in To Do: %v", w.Number, codes(w))
			}
		case numbers[3]:
			if !slices.Equal(codes(w), []string{"missing_approval"}) || !slices.Equal(codes(c), []string{"missing_approval"}) {
				t.Errorf("#%d approved only after the merge: warm %v, cold %v", w.Number, codes(w), codes(c))
			}
		}
	}
	// The evidence of the second check says where each change's facts came from.
	rec, found, err := st.LastRecord(ctx, compliance.EvidenceCheckRun, "")
	if err != nil || !found || rec.Seq != warm.Seq || !strings.Contains(string(rec.Body), `"recorded":{"seq":`) {
		t.Fatalf("check_run record %d (found %v, %v) does not name the recorded facts", rec.Seq, found, err)
	}

	// A policy in force now decides: two approvals fail what one approval passed.
	strict := compliance.DefaultPolicy()
	strict.Approvals.Required = 2
	req.Policy = strict
	run, err := c.Check(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if n := run.Report.Changes[0]; n.Recorded == nil || !slices.Contains(codes(n), "missing_approval") {
		t.Errorf("under a stricter policy, #%d from the store: %v", n.Number, codes(n))
	}
}

func codes(c compliance.ChangeReport) []string {
	var out []string
	for _, v := range c.Violations {
		out = append(out, string(v.Code))
	}
	return out
}
