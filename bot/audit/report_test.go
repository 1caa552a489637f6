package audit

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"sockembot/bot/check"
	"sockembot/bot/deploygate"
	"sockembot/bot/emergency"
	"sockembot/bot/mergegate"
	"sockembot/compliance"
	"sockembot/integrations/store"
	"sockembot/integrations/store/storetest"
)

// A period's story, recorded as the gates record it, and what its report must say.

var reportMonday = time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC) // a Monday

// hostileTitle is a pull request title anyone who can open a pull request could write.
const hostileTitle = `</td></svg><script>alert(1)</script><img src="https://evil.example/x.png"> & "quotes"`

func sha(s string) string { return fmt.Sprintf("%040x", []byte(s)) }

// reportStory writes the story into s.
func reportStory(t testing.TB, s *store.Store) {
	t.Helper()
	ctx := context.Background()
	at := reportMonday.Add(9 * time.Hour)
	add := func(kind, repo, subject string, body any) compliance.Record {
		t.Helper()
		at = at.Add(3 * time.Hour)
		rec, err := s.Append(ctx, compliance.Evidence{At: at, Kind: kind, Repo: repo, Subject: subject, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	const repo = "acme/pay"
	ticket := compliance.Ticket{Key: "PAY-1", Found: true, Status: "In Progress", StatusCategory: "indeterminate", URL: "https://acme.atlassian.net/browse/PAY-1"}
	approvedAt := time.Date(2024, 3, 3, 12, 0, 0, 0, time.UTC)
	deploy := func(id int64, env, base, head string, ghID int64, checkSeq int64, changes ...compliance.ChangeReport) deploygate.DeploymentEvidence {
		d := deployment(int(id), repo, changes...)
		d.Environment, d.BaseSHA, d.SHA, d.GitHubDeploymentID, d.CheckSeq = env, base, head, ghID, checkSeq
		d.PolicyHash, d.PolicySource = "sha256:p1", "global"
		return d
	}
	pr12 := prChange(12, hostileTitle, []string{"bob"}, []compliance.Ticket{ticket})
	pr12.Approvals[0].At = approvedAt
	// Before the period: the deploy the first one of the period must chain to.
	before := at
	at = reportMonday.Add(-48 * time.Hour)
	add(compliance.EvidenceDeploymentCreated, repo, "deploy/100", deploy(100, "prod", "", sha("H0"), 6100, 0, prChange(11, "Earlier", []string{"bob"}, nil)))
	at = before

	run := add(compliance.EvidenceCheckRun, repo, sha("H1"), check.CheckRunEvidence{
		Repo: repo, BaseSHA: sha("H0"), HeadSHA: sha("H1"), PolicyHash: "sha256:p1", PolicySource: "global", Compliant: true,
		Facts: compliance.Facts{Range: compliance.Range{Repo: repo, Changes: []compliance.Change{{Kind: compliance.KindPullRequest, PR: &compliance.PullRequest{
			Number: 12, HeadSHA: sha("pr12-head"), Reviews: []compliance.Review{
				{User: "bob", State: "APPROVED", CommitID: sha("pr12-head"), SubmittedAt: approvedAt},
			}}}}}},
	})
	add(compliance.EvidenceDeploymentCreated, repo, "deploy/1", deploy(1, "prod", sha("H0"), sha("H1"), 5001, run.Seq, pr12))
	add(compliance.EvidenceDeploymentStatus, repo, "deploy/1", deploygate.DeploymentStatusEvidence{DeployID: 1, GitHubDeploymentID: 5001, StatusID: 1, State: "success"})
	add(compliance.EvidenceMergeVerdict, repo, mergegate.Subject(repo, 13), mergegate.MergeVerdictEvidence{
		Repo: repo, Number: 13, Title: "Hotfix", MergedBy: "erin", MergeSHA: sha("m13"), Compliant: false, PolicyHash: "sha256:p1",
		Report: compliance.Report{Changes: []compliance.ChangeReport{{Number: 13, Violations: []compliance.Violation{{Code: compliance.MissingApproval, Message: "needs 1 approval, has 0"}}}}},
	})
	add(compliance.EvidenceDirectPush, repo, sha("DP1"), mergegate.DirectPushEvidence{Repo: repo, Ref: "refs/heads/main", SHA: sha("DP1"), Message: "quick fix\n\nbody", Pusher: "mallory"})
	add(compliance.EvidenceDeployRequested, repo, "deploy/2", deploygate.DeployRequestEvidence{DeployID: 2, Service: "pay", Environment: "prod", Repo: repo, Ref: "v2", Requester: "U0CAROL", Emergency: true, EmergencyReason: "payments <b>down</b>"})
	pr13 := prChange(13, "Hotfix", nil, nil, compliance.Violation{Code: compliance.MissingApproval, Message: "needs 1 approval, has 0"})
	d2 := deploy(2, "prod", sha("H1"), sha("H2"), 5002, 0, pr13)
	d2.Override = &deploygate.Override{By: "U0CAROL", Reason: "payments <b>down</b>", At: at}
	add(compliance.EvidenceDeploymentCreated, repo, "deploy/2", d2)
	opened := add(compliance.EvidenceRetroReview, repo, "deploy/2", emergency.RetroReviewEvidence{Event: "opened", DeployID: 2, Change: "#13", Repo: repo, PRNumber: 13, Due: at.Add(72 * time.Hour), At: at})
	add(compliance.EvidenceRetroReview, repo, "deploy/2", emergency.RetroReviewEvidence{Event: "closed", DeployID: 2, Change: "#13", Repo: repo, By: "U0DAVE", Via: "slack", At: opened.At.Add(48 * time.Hour)})
	add(compliance.EvidenceDeployRefused, repo, "deploy/3", deploygate.DeployRefusedEvidence{DeployID: 3, Service: "pay", Environment: "prod", HeadSHA: sha("H3"), Requester: "U0ALICE", Reason: "not compliant", Violations: []string{"#14 missing_ticket"}})
	add(compliance.EvidenceDeployAttemptDenied, repo, "deploy", deploygate.AttemptDeniedEvidence{Service: "pay", Environment: "prod", User: "U0EVE", Action: "request", Reason: "not a deployer"})
	at = at.Add(7 * 24 * time.Hour) // the next week
	add(compliance.EvidenceDeploymentCreated, repo, "deploy/4", deploy(4, "prod", sha("H2"), sha("H4"), 5004, 0, prChange(15, "Fifteen", []string{"bob"}, nil)))
	add(compliance.EvidenceDeploymentStatus, repo, "deploy/4", deploygate.DeploymentStatusEvidence{DeployID: 4, GitHubDeploymentID: 5004, StatusID: 2, State: "failure"})
	// GitHub still runs H2 (deploy 4 failed): deploy 5's base is H2, and it chains.
	add(compliance.EvidenceDeploymentCreated, repo, "deploy/5", deploy(5, "prod", sha("H2"), sha("H5"), 5005, 0, prChange(16, "Sixteen", []string{"bob"}, nil)))
	// Something else was deployed since: deploy 6's base is not what sockembot shipped.
	add(compliance.EvidenceDeploymentCreated, repo, "deploy/6", deploy(6, "prod", sha("OUTSIDE"), sha("H6"), 5006, 0, prChange(17, "Seventeen", []string{"bob"}, nil)))
	add(compliance.EvidenceDeploymentCreated, repo, "deploy/7", deploy(7, "staging", "", sha("H7"), 5007, 0, prChange(18, "Eighteen", []string{"bob"}, nil)))
	// After the period: not counted.
	at = reportMonday.AddDate(0, 2, 0)
	add(compliance.EvidenceDeploymentCreated, repo, "deploy/8", deploy(8, "prod", sha("H6"), sha("H8"), 5008, 0, prChange(19, "Later", []string{"bob"}, nil)))
}

// reportOf writes the report of q on s.
func reportOf(t testing.TB, s *store.Store, q ReportQuery) (string, ReportOutcome) {
	t.Helper()
	if q.From.IsZero() {
		q.From, q.To = reportMonday, reportMonday.AddDate(0, 0, 28)
	}
	if q.Generated.IsZero() {
		q.Generated = reportMonday.AddDate(0, 1, 0)
	}
	var b bytes.Buffer
	res, err := Report(context.Background(), s, q, &b)
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	return b.String(), res
}

// figure reads the summary figure with the given id.
func figure(t testing.TB, page, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `">([^<]*)<`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no figure %s in the report", id)
	}
	return m[1]
}

func TestReportOfAPeriod(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		reportStory(t, s)
		page, res := reportOf(t, s, ReportQuery{Sample: 25, Seed: 7, SeedGiven: true})
		if !res.Chain.Intact() || !strings.Contains(page, "Evidence chain: intact (") {
			t.Fatalf("chain: %+v", res.Chain)
		}
		for id, want := range map[string]string{
			"fig-deploys": "6", "fig-changes": "6", "fig-compliant-share": "83.3 %", "fig-refused": "1",
			"fig-emergencies": "1", "fig-retro": "1 / 1", "fig-merges": "1", "fig-direct-pushes": "1",
			"fig-denied": "1", "fig-checks": "1", "fig-gaps": "1", "fig-population": "6", "seed": "7",
		} {
			if got := figure(t, page, id); got != want {
				t.Errorf("%s = %q, want %q", id, got, want)
			}
		}
		if res.Population != 6 || res.Sampled != 6 || res.Gaps != 1 {
			t.Errorf("outcome %+v", res)
		}
		for _, want := range []string{
			"prod 5, staging 1",                           // deploys by environment
			"median 2 days to close",                      // the retroactive review
			"not compliant 1",                             // why deploys were refused
			"<code>sha256:p1</code>",                      // the policy in force
			"changes that reached prod outside sockembot", // the gap, with both SHAs
			sha("H5"), sha("OUTSIDE"),
			"first deploy sockembot recorded to staging",
			"bob at 2024-03-03 12:00 UTC on <code>" + sha("pr12-head")[:12] + "</code> (the final commit)",
			"PAY-1: In Progress",                  // the ticket's status at deploy time
			"retroactive review closed by U0DAVE", // the override's review
			"non-compliant merge", "direct push", "refused deploy", "emergency deploy requested", "deployed past violations",
			"#14 missing_ticket", "quick fix", "needs 1 approval, has 0",
		} {
			if !strings.Contains(page, want) {
				t.Errorf("the report lacks %q", want)
			}
		}
		// Deploy 100 (before) and 8 (after) are outside the period; 100 is only the chain's start.
		if strings.Contains(page, "Later") || strings.Contains(page, "acme/pay#11") {
			t.Error("the report shows a change deployed outside the period")
		}
		for _, n := range []int{12, 13, 15, 16, 17, 18} {
			if !strings.Contains(page, fmt.Sprintf(`acme/pay#%d:`, n)) {
				t.Errorf("the sample (all 6 changes) lacks #%d", n)
			}
		}
		selfContained(t, page)
	})
}

// selfContained fails when the page could fetch or run anything, or shows hostile text as markup.
func selfContained(t testing.TB, page string) {
	t.Helper()
	if !strings.HasPrefix(page, "<!DOCTYPE html>") || strings.Count(page, "<html") != 1 || !strings.HasSuffix(strings.TrimSpace(page), "</html>") {
		t.Error("not one HTML document")
	}
	if strings.Count(page, "<svg") < 2 {
		t.Error("fewer than two inline SVG charts")
	}
	if m := regexp.MustCompile(`(?i)\b(src|href|action|srcset|poster|data)\s*=\s*["']?\s*(https?:|//|ftp:|file:)`).FindString(page); m != "" {
		t.Errorf("the report points outside itself: %s", m)
	}
	if m := regexp.MustCompile(`(?i)<(script|img|iframe|link|object|embed|base)\b|@import|url\(`).FindString(page); m != "" {
		t.Errorf("the report holds %q", m)
	}
	if strings.Contains(page, hostileTitle) {
		t.Error("a pull request's title was written unescaped")
	}
}

func TestReportFilters(t *testing.T) {
	s := storetest.SQLite(t)
	reportStory(t, s)
	page, res := reportOf(t, s, ReportQuery{Env: "staging", Sample: 25, Seed: 1, SeedGiven: true})
	if figure(t, page, "fig-deploys") != "1" || res.Population != 1 || figure(t, page, "fig-refused") != "0" || res.Gaps != 0 {
		t.Errorf("--env staging: deploys %s, population %d, gaps %d", figure(t, page, "fig-deploys"), res.Population, res.Gaps)
	}
	page, res = reportOf(t, s, ReportQuery{Repo: "ACME/other", Sample: 25})
	if figure(t, page, "fig-deploys") != "0" || res.Population != 0 || !strings.Contains(page, "nothing to sample") {
		t.Errorf("--repo of another repository: deploys %s, population %d", figure(t, page, "fig-deploys"), res.Population)
	}
	if page, res := reportOf(t, s, ReportQuery{}); res.Sampled != 0 || !strings.Contains(page, "No sample was asked for") {
		t.Errorf("--sample 0: %d sampled", res.Sampled)
	}
	// The period's second week alone: deploy 5 still chains past deploy 4 of the same week, and
	// deploy 4 to deploy 2 of the week before.
	page, res = reportOf(t, s, ReportQuery{From: reportMonday.AddDate(0, 0, 7), To: reportMonday.AddDate(0, 0, 14), Sample: 25})
	if figure(t, page, "fig-deploys") != "4" || res.Gaps != 1 || strings.Contains(page, "first deploy sockembot recorded to prod") {
		t.Errorf("second week: deploys %s, gaps %d", figure(t, page, "fig-deploys"), res.Gaps)
	}
}

func TestReportSampleIsReproducible(t *testing.T) {
	s := storetest.SQLite(t)
	reportStory(t, s)
	sampleOf := func(seed uint64) string {
		page, res := reportOf(t, s, ReportQuery{Sample: 3, Seed: seed, SeedGiven: true})
		if res.Sampled != 3 || res.Population != 6 {
			t.Fatalf("seed %d: %d of %d", seed, res.Sampled, res.Population)
		}
		return page[strings.Index(page, `<section id="sample">`):strings.Index(page, `<section id="exceptions">`)]
	}
	a := sampleOf(42)
	if b := sampleOf(42); a != b {
		t.Error("the same seed drew another sample")
	}
	differ := 0
	for seed := uint64(1); seed <= 10; seed++ {
		if sampleOf(seed) != a {
			differ++
		}
	}
	if differ < 5 {
		t.Errorf("only %d of 10 other seeds drew another sample", differ)
	}
}

func TestSamplePicks(t *testing.T) {
	if got := samplePicks(1, 5, 10); fmt.Sprint(got) != "[0 1 2 3 4]" {
		t.Errorf("k > n: %v", got)
	}
	if got := samplePicks(1, 0, 25); len(got) != 0 {
		t.Errorf("empty population: %v", got)
	}
	// Uniform: over many seeds each position is drawn about k/n of the time.
	const n, k, draws = 20, 5, 20000
	hits := make([]int, n)
	for seed := range uint64(draws) {
		picks := samplePicks(seed, n, k)
		if len(picks) != k {
			t.Fatalf("seed %d: %d picks", seed, len(picks))
		}
		for i, p := range picks {
			if p < 0 || p >= n || (i > 0 && picks[i-1] >= p) {
				t.Fatalf("seed %d: picks %v not distinct, sorted and in range", seed, picks)
			}
			hits[p]++
		}
	}
	want := float64(draws * k / n)
	for p, h := range hits {
		if d := float64(h) - want; d > want*0.06 || d < -want*0.06 {
			t.Errorf("position %d drawn %d times, want about %.0f", p, h, want)
		}
	}
	// Pinned: a change here would change every sample an auditor already drew.
	if got := fmt.Sprint(samplePicks(2024, 1000, 5)); got != pinnedPicks {
		t.Errorf("samplePicks(2024, 1000, 5) = %s, want %s", got, pinnedPicks)
	}
}

func TestReportRefusesWhatItCannotShow(t *testing.T) {
	s := storetest.SQLite(t)
	for _, q := range []ReportQuery{
		{From: reportMonday, To: reportMonday},
		{From: reportMonday, To: reportMonday.AddDate(6, 0, 0)},
		{From: reportMonday, To: reportMonday.AddDate(0, 1, 0), Sample: MaxSample + 1},
		{From: reportMonday, To: reportMonday.AddDate(0, 1, 0), Sample: -1},
	} {
		if _, err := Report(context.Background(), s, q, &bytes.Buffer{}); err == nil {
			t.Errorf("%v..%v sample %d: no error", q.From, q.To, q.Sample)
		}
	}
	// An empty store: the report says so.
	page, res := reportOf(t, s, ReportQuery{Sample: 25})
	if res.Chain.State != chainEmpty || !strings.Contains(page, "Evidence chain: EMPTY") {
		t.Errorf("empty store: %+v", res.Chain)
	}
}

const pinnedPicks = "[38 39 406 553 688]"

func TestWeekStart(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"2024-03-04T00:00:00Z", "2024-03-04"}, {"2024-03-10T23:59:59Z", "2024-03-04"},
		{"2024-03-11T00:00:00Z", "2024-03-11"}, {"2024-03-06T12:00:00+05:00", "2024-03-04"},
	} {
		in, _ := time.Parse(time.RFC3339, c.in)
		if got := weekStart(in).Format(time.DateOnly); got != c.want {
			t.Errorf("weekStart(%s) = %s, want %s", c.in, got, c.want)
		}
	}
	if n := len(weeksOf(reportMonday, reportMonday.AddDate(0, 0, 28))); n != 4 {
		t.Errorf("4 weeks: %d", n)
	}
}

func TestDays(t *testing.T) {
	for d, want := range map[float64]string{0: "0 minutes", 5.0 / 1440: "5 minutes", 1.0 / 24: "1 hour", 0.5: "12 hours", 1: "1 day", 2.4: "2 days"} {
		if got := days(d); got != want {
			t.Errorf("days(%v) = %q, want %q", d, got, want)
		}
	}
}
