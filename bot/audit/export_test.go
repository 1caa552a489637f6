package audit

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"sockembot/bot/deploygate"
	"sockembot/integrations/store"
	"sockembot/integrations/store/storetest"
	"strings"
	"testing"
	"time"

	"sockembot/compliance"
)

// deployment is a deployment_created body with the given changes; i varies the names.
func deployment(i int, repo string, changes ...compliance.ChangeReport) deploygate.DeploymentEvidence {
	compliant := true
	for _, c := range changes {
		compliant = compliant && c.Compliant
	}
	return deploygate.DeploymentEvidence{
		DeployID: int64(i), Service: "pay", Environment: "prod", Repo: repo, Ref: fmt.Sprintf("v1.%d.0", i),
		SHA: fmt.Sprintf("%040x", i), BaseSHA: fmt.Sprintf("%040x", i+1000), Requester: "U0ALICE", Deployer: "U0BOB",
		GitHubDeploymentID: int64(5000 + i), CheckSeq: int64(i), PolicyHash: "sha256:policy",
		Report:    compliance.Report{Repo: repo, Compliant: compliant, Changes: changes},
		Compliant: compliant,
	}
}

func prChange(n int, title string, approvers []string, tickets []compliance.Ticket, violations ...compliance.Violation) compliance.ChangeReport {
	c := compliance.ChangeReport{
		Kind: compliance.KindPullRequest, Number: n, Title: title, URL: fmt.Sprintf("https://github.com/acme/pay/pull/%d", n),
		Author: "dave", MergedBy: "erin", MergeSHA: fmt.Sprintf("%040x", n), Commits: []string{fmt.Sprintf("%040x", n)},
		Tickets: tickets, Approvals: []compliance.Approval{}, Compliant: len(violations) == 0, Violations: violations,
	}
	for _, a := range approvers {
		c.Approvals = append(c.Approvals, compliance.Approval{User: a, At: time.Date(2024, 2, 28, 12, 0, 0, 0, time.UTC)})
	}
	if c.Violations == nil {
		c.Violations = []compliance.Violation{}
	}
	return c
}

func TestExport(t *testing.T) {
	storetest.Each(t, testExport)
}

func testExport(t *testing.T, s *store.Store) {
	ctx := context.Background()
	add := func(at time.Time, kind, repo string, body any) compliance.Record {
		t.Helper()
		rec, err := s.Append(ctx, compliance.Evidence{At: at, Kind: kind, Repo: repo, Subject: "deploy", Body: body})
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	march := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	april := time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)

	inProgress := compliance.Ticket{Key: "PAY-1", Found: true, Status: "In Progress", StatusCategory: "indeterminate"}
	missing := compliance.Ticket{Key: "PAY-9", Found: false}
	d1 := deployment(1, "acme/pay",
		prChange(12, "Add refunds", []string{"bob", "carol"}, []compliance.Ticket{inProgress}),
		prChange(13, `=HYPERLINK("http://evil.example","x")`, nil, []compliance.Ticket{missing},
			compliance.Violation{Code: compliance.MissingApproval, Message: "needs 1 approval, has 0"},
			compliance.Violation{Code: compliance.TicketNotFound, Message: "PAY-9 does not exist"}),
	)
	d1.Override = &deploygate.Override{By: "U0CAROL", Reason: "payments down, hotfix", At: march.Add(10 * time.Hour)}
	d2 := deployment(2, "acme/web", compliance.ChangeReport{
		Kind: compliance.KindDirectPush, Title: "fix typo", URL: "https://github.com/acme/web/commit/abc", Author: "frank",
		Compliant: false, Violations: []compliance.Violation{{Code: compliance.DirectPush, Message: "pushed straight to main"}},
	})
	d3 := deployment(3, "acme/pay", prChange(14, "Later", []string{"bob"}, nil))

	r1 := add(march.Add(10*time.Hour+time.Second/3), compliance.EvidenceDeploymentCreated, "acme/pay", d1)
	add(march.Add(11*time.Hour), compliance.EvidenceCheckRun, "acme/pay", map[string]bool{"compliant": true}) // not a deployment
	r2 := add(march.AddDate(0, 0, 14), compliance.EvidenceDeploymentCreated, "acme/web", d2)
	r3 := add(april, compliance.EvidenceDeploymentCreated, "acme/pay", d3) // the first instant after the period
	// d1 went through in_progress to success, but the webhooks arrived out of order: the latest
	// status is the one GitHub numbered last. d2 failed.
	status := func(d deploygate.DeploymentEvidence, id int64, state string) deploygate.DeploymentStatusEvidence {
		return deploygate.DeploymentStatusEvidence{DeployID: d.DeployID, GitHubDeploymentID: d.GitHubDeploymentID, StatusID: id, State: state}
	}
	add(march.Add(12*time.Hour), compliance.EvidenceDeploymentStatus, "acme/pay", status(d1, 71, "success"))
	add(march.Add(13*time.Hour), compliance.EvidenceDeploymentStatus, "acme/pay", status(d1, 70, "in_progress"))
	add(march.AddDate(0, 0, 15), compliance.EvidenceDeploymentStatus, "acme/web", status(d2, 80, "failure"))

	export := func(q ExportQuery) []ExportRow {
		t.Helper()
		var rows []ExportRow
		if err := Export(ctx, s, q, func(r ExportRow) error { rows = append(rows, r); return nil }); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	summary := func(rows []ExportRow) string {
		var parts []string
		for _, r := range rows {
			parts = append(parts, fmt.Sprintf("%d:%d", r.EvidenceSeq, r.PRNumber))
		}
		return strings.Join(parts, " ")
	}
	for _, c := range []struct {
		name string
		q    ExportQuery
		want string
	}{
		{"March, To exclusive", ExportQuery{From: march, To: april}, fmt.Sprintf("%d:12 %d:13 %d:0", r1.Seq, r1.Seq, r2.Seq)},
		{"one repository", ExportQuery{From: march, To: april, Repo: "acme/pay"}, fmt.Sprintf("%d:12 %d:13", r1.Seq, r1.Seq)},
		{"one repository, named in another case", ExportQuery{From: march, To: april, Repo: "ACME/Pay"}, fmt.Sprintf("%d:12 %d:13", r1.Seq, r1.Seq)},
		{"From inclusive", ExportQuery{From: march.AddDate(0, 0, 14), To: april.Add(time.Nanosecond)}, fmt.Sprintf("%d:0 %d:14", r2.Seq, r3.Seq)},
		{"empty period", ExportQuery{From: march.AddDate(-1, 0, 0), To: march}, ""},
	} {
		if got := summary(export(c.q)); got != c.want {
			t.Errorf("%s: rows %q, want %q", c.name, got, c.want)
		}
	}
	// Every kind of evidence in the period, in chain order, for the audit of what was not deployed.
	var kinds []string
	if err := events(ctx, s, ExportQuery{From: march, To: april, Repo: "ACME/PAY"}, func(r compliance.Record) error {
		kinds = append(kinds, r.Kind)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(kinds, " "), "deployment_created check_run deployment_status deployment_status"; got != want {
		t.Errorf("events of acme/pay in March: %q, want %q", got, want)
	}
	var ev bytes.Buffer
	if err := WriteEventsJSON(ctx, s, ExportQuery{From: march, To: april}, &ev); err != nil {
		t.Fatal(err)
	}
	var events []map[string]any
	if err := json.Unmarshal(ev.Bytes(), &events); err != nil || len(events) != 6 || events[1]["kind"] != "check_run" {
		t.Errorf("events JSON (%v): %s", err, ev.String())
	}
	// A period an export cannot answer is an error, never an empty export that reads as "no deploys".
	for name, q := range map[string]ExportQuery{
		"reversed":         {From: april, To: march},
		"empty":            {From: march, To: march},
		"no end":           {From: march},
		"beyond year 2262": {From: march, To: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)},
		"before year 1678": {From: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), To: april},
	} {
		if err := Export(ctx, s, q, func(ExportRow) error { return nil }); err == nil || !strings.Contains(err.Error(), "period") {
			t.Errorf("%s period: err = %v, want the period refused", name, err)
		}
	}

	rows := export(ExportQuery{From: march, To: april})
	want := ExportRow{
		DeployedAt: r1.At, Service: "pay", Environment: "prod", Repo: "acme/pay", Deployer: "U0BOB", Requester: "U0ALICE",
		DeployID: 1, DeploymentID: 5001, DeploymentStatus: "success", SHA: d1.SHA, PRNumber: 13, PRURL: "https://github.com/acme/pay/pull/13",
		Title: d1.Report.Changes[1].Title, Author: "dave", Approvers: []string{}, Tickets: []string{"PAY-9 (not found)"},
		Compliant: false, Violations: []string{"missing_approval: needs 1 approval, has 0", "ticket_not_found: PAY-9 does not exist"},
		OverrideBy: "U0CAROL", OverrideReason: "payments down, hotfix", EvidenceSeq: r1.Seq, PolicyHash: "sha256:policy",
	}
	if g, w := mustJSON(t, rows[1]), mustJSON(t, want); g != w {
		t.Errorf("overridden change:\n got %s\nwant %s", g, w)
	}
	if r := rows[0]; strings.Join(r.Approvers, ",") != "bob,carol" || strings.Join(r.Tickets, ",") != "PAY-1 (In Progress)" ||
		!r.Compliant || len(r.Violations) != 0 || r.Title != "Add refunds" {
		t.Errorf("compliant change: %+v", r)
	}
	if r := rows[2]; r.PRNumber != 0 || r.Title != "fix typo" || r.OverrideBy != "" || r.Violations[0] != "direct_push: pushed straight to main" {
		t.Errorf("direct push: %+v", r)
	}

	var buf bytes.Buffer
	if err := WriteCSV(ctx, s, ExportQuery{From: march, To: april}, &buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || strings.Join(recs[0], ",") != strings.Join(csvHeader, ",") {
		t.Fatalf("CSV: %d records, header %v", len(recs), recs[0])
	}
	col := func(row int, name string) string {
		for i, h := range csvHeader {
			if h == name {
				return recs[row][i]
			}
		}
		t.Fatalf("no column %s", name)
		return ""
	}
	for _, c := range []struct {
		row       int
		col, want string
	}{
		{1, "approvers", "bob; carol"},
		{1, "tickets", "PAY-1 (In Progress)"},
		{1, "deployed_at", "2024-03-01T10:00:00Z"},
		{1, "pr_number", "12"},
		{2, "title", `'=HYPERLINK("http://evil.example","x")`}, // a formula would run when an auditor opens it
		{2, "violations", "missing_approval: needs 1 approval, has 0; ticket_not_found: PAY-9 does not exist"},
		{2, "override_reason", "payments down, hotfix"},
		{2, "compliant", "false"},
		{3, "pr_number", ""},
		{1, "deployment_status", "success"},
		{3, "deployment_status", "failure"},
		{3, "evidence_seq", fmt.Sprint(r2.Seq)},
	} {
		if got := col(c.row, c.col); got != c.want {
			t.Errorf("CSV row %d %s = %q, want %q", c.row, c.col, got, c.want)
		}
	}

	buf.Reset()
	if err := WriteJSON(ctx, s, ExportQuery{From: march, To: april}, &buf); err != nil {
		t.Fatal(err)
	}
	var decoded []ExportRow
	if err := json.Unmarshal(buf.Bytes(), &decoded); err != nil {
		t.Fatalf("JSON export does not parse: %v\n%s", err, buf.String())
	}
	if g, w := mustJSON(t, decoded), mustJSON(t, rows); g != w {
		t.Errorf("JSON export:\n got %s\nwant %s", g, w)
	}
	if decoded[1].Title != d1.Report.Changes[1].Title {
		t.Errorf("JSON export altered the title: %q", decoded[1].Title)
	}
	buf.Reset()
	if err := WriteJSON(ctx, s, ExportQuery{From: april.AddDate(1, 0, 0), To: april.AddDate(2, 0, 0)}, &buf); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(buf.Bytes(), &decoded); err != nil || len(decoded) != 0 {
		t.Errorf("empty JSON export %q: %v", buf.String(), err)
	}

	stop := errors.New("stop")
	if err := Export(ctx, s, ExportQuery{From: march, To: april}, func(ExportRow) error { return stop }); err != stop {
		t.Errorf("Export returned %v, want the callback's error", err)
	}

	// A deployment record that cannot be read fails the export rather than leaving a hole in it.
	bad := add(april.AddDate(0, 1, 0), compliance.EvidenceDeploymentCreated, "acme/pay", "not a deployment")
	err = Export(ctx, s, ExportQuery{From: april.AddDate(0, 1, 0), To: april.AddDate(0, 2, 0)}, func(ExportRow) error { return nil })
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("record %d", bad.Seq)) {
		t.Errorf("export of an unreadable deployment: %v", err)
	}
}

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
