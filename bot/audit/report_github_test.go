package audit

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"sockembot/bot/check"
	"sockembot/bot/deploygate"
	"sockembot/compliance"
	fakegithub "sockembot/integrations/fake/github"
	"sockembot/integrations/github"
	"sockembot/integrations/store/storetest"
)

// With --github the report asks GitHub what happened outside sockembot: a deployment someone made
// by hand (even one carrying a forged sockembot payload), and a default-branch commit no recorded
// check covered. It goes through the real client to the fake GitHub.
func TestReportComparesWithGitHub(t *testing.T) {
	g := fakegithub.New(fakegithub.Options{Start: reportMonday.Add(time.Hour)})
	t.Cleanup(g.Close)
	repo := g.AddRepo("acme/pay", "main")
	checked := repo.Commit("PAY-1 Refunds", "alice")
	unchecked := repo.Commit("hotfix straight to main", "mallory")
	ours := repo.Deploy(checked, "prod", "success")
	byHand := repo.AddDeployment(fakegithub.Deployment{SHA: unchecked, Environment: "prod", Creator: "mallory", Description: "manual deploy"})
	forged := repo.AddDeployment(fakegithub.Deployment{SHA: unchecked, Environment: "prod", Creator: "mallory",
		Payload: []byte(fmt.Sprintf(`{"sockembot":{"deploy_id":1,"check_seq":1}}`))})
	staging := repo.AddDeployment(fakegithub.Deployment{SHA: unchecked, Environment: "staging", Creator: "mallory"})
	client, err := github.New(github.Options{BaseURL: g.URL(), Retries: -1})
	if err != nil {
		t.Fatal(err)
	}

	s := storetest.SQLite(t)
	ctx := context.Background()
	run, err := s.Append(ctx, compliance.Evidence{At: reportMonday.Add(2 * time.Hour), Kind: compliance.EvidenceCheckRun, Repo: "acme/pay", Subject: checked,
		Body: check.CheckRunEvidence{Repo: "acme/pay", HeadSHA: checked, Compliant: true, Report: compliance.Report{Changes: []compliance.ChangeReport{{Number: 1, Commits: []string{checked}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	d := deployment(1, "acme/pay", prChange(1, "PAY-1 Refunds", []string{"bob"}, nil))
	d.Environment, d.SHA, d.BaseSHA, d.GitHubDeploymentID, d.CheckSeq = "prod", checked, "", ours, run.Seq
	if _, err := s.Append(ctx, compliance.Evidence{At: reportMonday.Add(3 * time.Hour), Kind: compliance.EvidenceDeploymentCreated, Repo: "acme/pay", Subject: deploygate.Subject(1), Body: d}); err != nil {
		t.Fatal(err)
	}

	page, _ := reportOf(t, s, ReportQuery{Env: "prod", Sample: 5, GitHub: client})
	section := page[strings.Index(page, "Compared with GitHub"):strings.Index(page, `<section id="sample">`)]
	for _, want := range []string{fmt.Sprintf("<td>%d</td>", byHand), fmt.Sprintf("<td>%d</td>", forged), unchecked, "hotfix straight to main", "mallory"} {
		if !strings.Contains(section, want) {
			t.Errorf("the comparison with GitHub lacks %q:\n%s", want, section)
		}
	}
	for _, unwanted := range []string{fmt.Sprintf("<td>%d</td>", ours), fmt.Sprintf("<td>%d</td>", staging), checked} {
		if strings.Contains(section, unwanted) {
			t.Errorf("the comparison with GitHub lists %q, which sockembot made, checked, or is another environment", unwanted)
		}
	}
	// GitHub down: the report is not made, rather than made without the comparison asked for.
	g.Close()
	if _, err := Report(ctx, s, ReportQuery{From: reportMonday, To: reportMonday.AddDate(0, 0, 7), Sample: 5, GitHub: client}, &strings.Builder{}); err == nil {
		t.Error("the report was made though GitHub could not be asked")
	}
}
