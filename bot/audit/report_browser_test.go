package audit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
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

// quarter is what a quarter's story recorded, as the report must count it.
type quarter struct {
	deploys, changes, compliant, refused, emergencies, merges, pushes int
}

// quarterStory records thirteen weeks of a team's work, as the gates record it: merges with
// their verdicts, deploys to staging then production (each with the check it went out on and
// its GitHub status), refusals, an emergency deploy past violations and its retroactive review,
// a direct push, and one deploy whose base shows something reached production outside
// sockembot. It is seeded, so every run records the same quarter.
func quarterStory(t testing.TB, s *store.Store, from time.Time) quarter {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	var q quarter
	at := from
	add := func(t0 time.Time, kind, repo, subject string, body any) compliance.Record {
		t.Helper()
		rec, err := s.Append(ctx, compliance.Evidence{At: t0, Kind: kind, Repo: repo, Subject: subject, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	const repo = "acme/payments"
	people := []string{"alice", "bob", "carol", "dave", "erin"}
	titles := []string{"Partial refunds", "Retry webhooks with backoff", "Idempotency keys for charges", "Currency rounding fix",
		"Faster settlement export", "Dispute evidence upload", "Card updater job", "Ledger reconciliation", "3-D Secure fallback", "Payout schedule API"}
	heads := map[string]string{"staging": sha("s0"), "production": sha("p0")}
	pr, deployID, gh, status := 100, int64(1), int64(9000), int64(1)
	var pending []compliance.ChangeReport // merged, on staging, not yet in production
	for day := 0; day < 13*7; day++ {
		date := from.AddDate(0, 0, day)
		if wd := date.Weekday(); wd == time.Saturday || wd == time.Sunday {
			continue
		}
		at = date.Add(9 * time.Hour)
		// Today's merges.
		var merged []compliance.ChangeReport
		for range 1 + r.IntN(3) {
			pr++
			author, reviewer := people[r.IntN(5)], people[r.IntN(5)]
			for reviewer == author {
				reviewer = people[r.IntN(5)]
			}
			key := fmt.Sprintf("PAY-%d", 300+pr)
			c := prChange(pr, key+" "+titles[pr%len(titles)], []string{reviewer},
				[]compliance.Ticket{{Key: key, Found: true, Status: "In Review", StatusCategory: "indeterminate", URL: "https://acme.atlassian.net/browse/" + key}})
			c.URL, c.Author, c.MergedBy = fmt.Sprintf("https://github.com/%s/pull/%d", repo, pr), author, reviewer
			c.Approvals[0].At = at.Add(-2 * time.Hour)
			if r.IntN(12) == 0 || (day == 45 && len(merged) == 0) { // now and then a change without a ticket slips in
				c.Tickets, c.Compliant = []compliance.Ticket{}, false
				c.Violations = []compliance.Violation{{Code: compliance.MissingTicket, Message: "no Jira ticket referenced in the title, body, branch or commits"}}
			}
			at = at.Add(20 * time.Minute)
			add(at, compliance.EvidenceMergeVerdict, repo, mergegate.Subject(repo, pr), mergegate.MergeVerdictEvidence{
				Repo: repo, Number: pr, Title: c.Title, MergedBy: reviewer, MergeSHA: c.MergeSHA, MergedAt: at, Compliant: c.Compliant,
				PolicyHash: "5860dcc3c9e5a6f0", PolicySource: "global", Report: compliance.Report{Repo: repo, Changes: []compliance.ChangeReport{c}},
			})
			q.merges++
			merged = append(merged, c)
		}
		deploy := func(env string, changes []compliance.ChangeReport, urgent bool) {
			at = at.Add(45 * time.Minute)
			head := sha(fmt.Sprintf("%s-%d", env, deployID))
			compliant := true
			for _, c := range changes {
				compliant = compliant && c.Compliant
			}
			facts := compliance.Range{Repo: repo}
			for _, c := range changes {
				facts.Changes = append(facts.Changes, compliance.Change{Kind: compliance.KindPullRequest, PR: &compliance.PullRequest{
					Number: c.Number, HeadSHA: c.Commits[0], Reviews: []compliance.Review{{User: c.Approvals[0].User, State: "APPROVED", CommitID: c.Commits[0], SubmittedAt: c.Approvals[0].At}}}})
			}
			run := add(at, compliance.EvidenceCheckRun, repo, head, check.CheckRunEvidence{Repo: repo, BaseSHA: heads[env], HeadSHA: head,
				PolicyHash: "5860dcc3c9e5a6f0", PolicySource: "global", Compliant: compliant, Facts: compliance.Facts{Range: facts},
				Report: compliance.Report{Repo: repo, Compliant: compliant, Changes: changes}})
			if !compliant && !urgent {
				add(at.Add(time.Minute), compliance.EvidenceDeployRefused, repo, deploygate.Subject(deployID), deploygate.DeployRefusedEvidence{
					DeployID: deployID, Service: "payments", Environment: env, HeadSHA: head, Requester: "U0ALICE", CheckSeq: run.Seq,
					Reason: "not compliant", Violations: deploygate.ViolationCodes(compliance.Report{Changes: changes})})
				q.refused++
				deployID++
				return
			}
			if urgent {
				add(at, compliance.EvidenceDeployRequested, repo, deploygate.Subject(deployID), deploygate.DeployRequestEvidence{
					DeployID: deployID, Service: "payments", Environment: env, Repo: repo, Ref: "main", Requester: "U0CAROL",
					Emergency: true, EmergencyReason: "card payments failing for EU customers"})
				q.emergencies++
			}
			gh++
			d := deploygate.DeploymentEvidence{DeployID: deployID, Service: "payments", Environment: env, Repo: repo, Ref: "main",
				SHA: head, BaseSHA: heads[env], Requester: "U0ALICE", Deployer: "U0BOB", GitHubDeploymentID: gh, CheckSeq: run.Seq,
				PolicyHash: "5860dcc3c9e5a6f0", PolicySource: "global", Report: compliance.Report{Repo: repo, Compliant: compliant, Changes: changes},
				Compliant: compliant, ThreadURL: "https://acme.slack.com/archives/C0RELEASES/p1709543000000100"}
			if urgent && !compliant {
				d.Override = &deploygate.Override{By: "U0CAROL", Reason: "card payments failing for EU customers", At: at}
			}
			add(at.Add(2*time.Minute), compliance.EvidenceDeploymentCreated, repo, deploygate.Subject(deployID), d)
			add(at.Add(9*time.Minute), compliance.EvidenceDeploymentStatus, repo, deploygate.Subject(deployID), deploygate.DeploymentStatusEvidence{
				DeployID: deployID, Service: "payments", Environment: env, GitHubDeploymentID: gh, StatusID: status, State: "success", SHA: head})
			status++
			if d.Override != nil {
				for _, c := range changes {
					if c.Compliant {
						continue
					}
					open := add(at.Add(3*time.Minute), compliance.EvidenceRetroReview, repo, deploygate.Subject(deployID), emergency.RetroReviewEvidence{
						Event: "opened", DeployID: deployID, Change: c.Name(), Repo: repo, PRNumber: c.Number, Due: at.AddDate(0, 0, 2), At: at.Add(3 * time.Minute)})
					add(open.At.Add(30*time.Hour), compliance.EvidenceRetroReview, repo, deploygate.Subject(deployID), emergency.RetroReviewEvidence{
						Event: "closed", DeployID: deployID, Change: c.Name(), Repo: repo, By: "U0DAVE", Via: "slack", At: open.At.Add(30 * time.Hour)})
				}
			}
			heads[env] = head
			q.deploys++
			for _, c := range changes {
				q.changes++
				if c.Compliant {
					q.compliant++
				}
			}
			deployID++
		}
		// Staging takes today's merges, with whatever failed to reach it before. A change
		// without its ticket is refused; the team adds one and it goes the next day.
		deploy("staging", merged, false)
		fixed := merged[:0:0]
		for _, c := range merged {
			if !c.Compliant && day != 45 {
				c.Tickets = []compliance.Ticket{{Key: fmt.Sprintf("PAY-%d", 300+c.Number), Found: true, Status: "In Review", StatusCategory: "indeterminate"}}
				c.Compliant, c.Violations = true, []compliance.Violation{}
			}
			fixed = append(fixed, c)
		}
		pending = append(pending, fixed...)
		if day == 45 {
			// An incident: production gets today's changes at once, past the missing ticket.
			deploy("production", pending, true)
			pending = nil
			continue
		}
		if day == 58 {
			// Someone deploys a hotfix to production by hand: the next deploy's base shows it.
			heads["production"] = sha("hand-deployed")
			add(at.Add(time.Hour), compliance.EvidenceDirectPush, repo, sha("hotfix"), mergegate.DirectPushEvidence{
				Repo: repo, Ref: "refs/heads/main", SHA: sha("hotfix"), Message: "hotfix: disable 3-D Secure for one BIN", Pusher: "mallory"})
			q.pushes++
		}
		if date.Weekday() == time.Tuesday || date.Weekday() == time.Thursday {
			deploy("production", pending, false)
			pending = nil
		}
	}
	return q
}

// The report opened in a real browser: nothing fetched, nothing logged as an error, the summary
// figures readable from the rendered page, and printing gives a page per section. With
// SOCKEMBOT_SCREENSHOT=FILE it also writes the README's screenshot.
func TestReportInBrowser(t *testing.T) {
	s := storetest.SQLite(t)
	from := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	want := quarterStory(t, s, from)
	path := filepath.Join(t.TempDir(), "report.html")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Report(context.Background(), s, ReportQuery{From: from, To: from.AddDate(0, 3, 0), Sample: 25, Seed: 20240401, SeedGiven: true,
		Generated: time.Date(2024, 4, 2, 8, 0, 0, 0, time.UTC), Version: "sockembot v1.0.0",
		Command: "sockembot audit report --from 2024-01-01 --to 2024-03-31 --sample 25 --seed 20240401"}, f)
	if cerr := f.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	p := openPage(t, path)
	if r := p.requests(); len(r) != 0 {
		t.Errorf("the report asked for %q", r)
	}
	if e := p.consoleErrors(); len(e) != 0 {
		t.Errorf("console errors: %q", e)
	}
	for sel, want := range map[string]string{
		"#fig-deploys":         fmt.Sprint(want.deploys),
		"#fig-changes":         fmt.Sprint(want.changes),
		"#fig-compliant-share": percent(want.compliant, want.changes),
		"#fig-refused":         fmt.Sprint(want.refused),
		"#fig-emergencies":     fmt.Sprint(want.emergencies),
		"#fig-merges":          fmt.Sprint(want.merges),
		"#fig-direct-pushes":   fmt.Sprint(want.pushes),
		"#fig-gaps":            "1",
		"#seed":                "20240401",
	} {
		if got := p.text(sel); got != want {
			t.Errorf("%s reads %q on the page, want %q", sel, got, want)
		}
	}
	if got := p.text("#chain"); !strings.HasPrefix(got, "Evidence chain: intact (") {
		t.Errorf("chain line: %q", got)
	}
	if n := p.count("figure.chart svg"); n != 2 {
		t.Errorf("%d charts rendered, want 2", n)
	}
	if n := p.count(".card.sample"); n != 25 {
		t.Errorf("%d sampled changes shown, want 25", n)
	}
	// The charts' text is real text, legible to a reader and a screen reader.
	if got := p.text("#chart-deploys svg"); !strings.Contains(got, "deploys per week") {
		t.Errorf("the deploys chart reads %q", got)
	}
	// Printed, each of the five sections starts a page.
	pdf := string(p.pdf(t))
	if pages := len(regexp.MustCompile(`/Type\s*/Page[^s]`).FindAllString(pdf, -1)); !strings.HasPrefix(pdf, "%PDF") || pages < 5 {
		t.Errorf("printed to %d PDF pages, want at least 5 (a section per page)", pages)
	}
	if out := os.Getenv("SOCKEMBOT_SCREENSHOT"); out != "" {
		p.screenshot(t, out, 1000, 1720)
		t.Logf("screenshot written to %s", out)
	}
}
