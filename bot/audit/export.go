// Package audit is the auditor's side of the evidence store: the export of every change deployed
// in a period (CSV or JSON, a row per change), the export of every evidence record, and the daily
// summary's figures. It reads the store only, streaming, and never writes to it.
package audit

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"sockembot/bot/deploygate"
	"sockembot/bot/emergency"
	"sockembot/compliance"
	"sockembot/integrations/store"
)

// ExportQuery selects deployments made in [From, To), optionally of one repository (matched
// without regard to case, as GitHub names are).
type ExportQuery struct {
	From, To time.Time
	Repo     string
}

// Validate refuses a period that is empty, reversed, or beyond what evidence times can hold: an
// export that silently lists nothing would mislead an auditor.
func (q ExportQuery) Validate() error {
	return store.Period{From: q.From, To: q.To}.Validate()
}

// Store is the evidence an export reads.
type Store interface {
	Events(ctx context.Context, q store.Period, fn func(compliance.Record) error) error
	Records(ctx context.Context, kind, subject string, fn func(compliance.Record) error) error
}

// ExportRow is one change deployed: what an auditor samples. JSON names are the export's contract.
type ExportRow struct {
	DeployedAt   time.Time `json:"deployed_at"`
	Service      string    `json:"service"`
	Environment  string    `json:"environment"`
	Repo         string    `json:"repo"`
	Deployer     string    `json:"deployer"`
	Requester    string    `json:"requester"`
	DeployID     int64     `json:"deploy_id"`
	DeploymentID int64     `json:"github_deployment_id"`
	// DeploymentStatus is the latest state GitHub reported for the deployment (success,
	// failure, error, in_progress, ...); empty when none was reported.
	DeploymentStatus string   `json:"deployment_status"`
	SHA              string   `json:"sha"`
	PRNumber         int      `json:"pr_number,omitempty"`
	PRURL            string   `json:"pr_url"`
	Title            string   `json:"title"`
	Author           string   `json:"author"`
	Approvers        []string `json:"approvers"`
	Tickets          []string `json:"tickets"` // "PAY-1 (In Progress)": status at deploy time
	Compliant        bool     `json:"compliant"`
	Violations       []string `json:"violations"` // "code: message"
	OverrideBy       string   `json:"override_by,omitempty"`
	OverrideReason   string   `json:"override_reason,omitempty"`
	// The retroactive review of an overridden change: when it is due, and who approved it when
	// (empty while still open).
	RetroReviewDue  *time.Time `json:"retro_review_due,omitempty"`
	RetroReviewedBy string     `json:"retro_reviewed_by,omitempty"`
	// RetroReviewedVia says what RetroReviewedBy is: "slack" (a Slack user id) or
	// "github_review" (a GitHub login).
	RetroReviewedVia string     `json:"retro_reviewed_via,omitempty"`
	RetroReviewedAt  *time.Time `json:"retro_reviewed_at,omitempty"`
	// The policy the change was judged under, and the digest's Slack thread.
	PolicyHash   string `json:"policy_hash"`
	PolicySource string `json:"policy_source,omitempty"`
	ThreadURL    string `json:"thread_url,omitempty"`
	EvidenceSeq  int64  `json:"evidence_seq"`
}

// Export calls fn for each change of each deployment_created record in q, in deploy order. It
// decodes one record at a time, so memory stays flat however long the period. A record that
// cannot be decoded is an error, not a skipped row: an export with holes would mislead.
func Export(ctx context.Context, s Store, q ExportQuery, fn func(ExportRow) error) error {
	if err := q.Validate(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	// Retroactive reviews are few (one per change overridden in an emergency): held in memory.
	reviews, err := emergency.RetroReviews(ctx, s)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	retro := retroByDeploy(reviews)
	// So are deployments (one per deploy, against many changes): their latest status, by
	// GitHub's status id rather than by arrival, as webhooks may come out of order.
	statuses, err := latestStatuses(ctx, s, q.From)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	err = s.Events(ctx, store.Period{From: q.From, To: q.To, Repo: q.Repo, Kind: compliance.EvidenceDeploymentCreated}, func(r compliance.Record) error {
		var d deploygate.DeploymentEvidence
		if err := json.Unmarshal(r.Body, &d); err != nil {
			return fmt.Errorf("export: record %d: decode deployment: %w", r.Seq, err)
		}
		for _, c := range d.Report.Changes {
			row := exportRow(r.Seq, r.At, &d, c)
			row.DeploymentStatus = statuses[d.GitHubDeploymentID].State
			if rv, ok := retro[emergency.RetroReviewEvidence{DeployID: d.DeployID, Change: c.Name()}.Key()]; ok {
				due := rv.Opened.Due
				row.RetroReviewDue = &due
				if rv.Closed != nil {
					at := rv.Closed.At
					row.RetroReviewedBy, row.RetroReviewedVia, row.RetroReviewedAt = rv.Closed.By, rv.Closed.Via, &at
				}
			}
			if err := fn(row); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

// latestStatuses maps each GitHub deployment with a status recorded since from to its latest one.
func latestStatuses(ctx context.Context, s Store, from time.Time) (map[int64]deploygate.DeploymentStatusEvidence, error) {
	latest := map[int64]deploygate.DeploymentStatusEvidence{}
	err := s.Events(ctx, store.Period{From: from, Kind: compliance.EvidenceDeploymentStatus}, func(r compliance.Record) error {
		var st deploygate.DeploymentStatusEvidence
		if err := json.Unmarshal(r.Body, &st); err != nil {
			return fmt.Errorf("record %d: decode deployment status: %w", r.Seq, err)
		}
		if prev, ok := latest[st.GitHubDeploymentID]; !ok || st.StatusID >= prev.StatusID {
			latest[st.GitHubDeploymentID] = st
		}
		return nil
	})
	return latest, err
}

func exportRow(seq int64, at time.Time, d *deploygate.DeploymentEvidence, c compliance.ChangeReport) ExportRow {
	row := ExportRow{
		DeployedAt: at, Service: d.Service, Environment: d.Environment, Repo: d.Repo,
		Deployer: d.Deployer, Requester: d.Requester, DeployID: d.DeployID,
		DeploymentID: d.GitHubDeploymentID, SHA: d.SHA,
		PRNumber: c.Number, PRURL: c.URL, Title: c.Title, Author: c.Author,
		Approvers: []string{}, Tickets: []string{}, Violations: []string{},
		Compliant: c.Compliant, EvidenceSeq: seq,
		PolicyHash: d.PolicyHash, PolicySource: d.PolicySource, ThreadURL: d.ThreadURL,
	}
	for _, a := range c.Approvals {
		row.Approvers = append(row.Approvers, a.User)
	}
	for _, t := range c.Tickets {
		status := t.Status
		if !t.Found {
			status = "not found"
		}
		row.Tickets = append(row.Tickets, fmt.Sprintf("%s (%s)", t.Key, status))
	}
	for _, v := range c.Violations {
		row.Violations = append(row.Violations, fmt.Sprintf("%s: %s", v.Code, v.Message))
	}
	if d.Override != nil {
		row.OverrideBy, row.OverrideReason = d.Override.By, d.Override.Reason
	}
	return row
}

var csvHeader = []string{
	"deployed_at", "service", "environment", "repo", "deployer", "requester", "deploy_id",
	"github_deployment_id", "deployment_status", "sha", "pr_number", "pr_url", "title", "author", "approvers", "tickets",
	"compliant", "violations", "override_by", "override_reason",
	"retro_review_due", "retro_reviewed_by", "retro_reviewed_via", "retro_reviewed_at",
	"policy_hash", "policy_source", "thread_url", "evidence_seq",
}

// WriteCSV streams the export of q as CSV with a header row; list cells are joined with "; ".
func WriteCSV(ctx context.Context, st Store, q ExportQuery, w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	err := Export(ctx, st, q, func(r ExportRow) error {
		pr := ""
		if r.PRNumber != 0 {
			pr = strconv.Itoa(r.PRNumber)
		}
		return cw.Write([]string{
			r.DeployedAt.Format(time.RFC3339), cell(r.Service), cell(r.Environment), cell(r.Repo),
			cell(r.Deployer), cell(r.Requester), strconv.FormatInt(r.DeployID, 10),
			strconv.FormatInt(r.DeploymentID, 10), cell(r.DeploymentStatus), cell(r.SHA), pr, cell(r.PRURL), cell(r.Title),
			cell(r.Author), cell(strings.Join(r.Approvers, "; ")), cell(strings.Join(r.Tickets, "; ")),
			strconv.FormatBool(r.Compliant), cell(strings.Join(r.Violations, "; ")),
			cell(r.OverrideBy), cell(r.OverrideReason),
			timeCell(r.RetroReviewDue), cell(r.RetroReviewedBy), cell(r.RetroReviewedVia), timeCell(r.RetroReviewedAt),
			cell(r.PolicyHash), cell(r.PolicySource), cell(r.ThreadURL),
			strconv.FormatInt(r.EvidenceSeq, 10),
		})
	})
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

func timeCell(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// cell defuses spreadsheet formulas: auditors open the CSV in Excel, and a PR title is written by
// anyone who can open a pull request. A leading quote is the OWASP-recommended neutraliser; the
// JSON export keeps the text exactly.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// WriteJSON streams the export of q as one JSON array, a row per line.
func WriteJSON(ctx context.Context, st Store, q ExportQuery, w io.Writer) error {
	return writeJSONArray(w, func(emit func(any) error) error {
		return Export(ctx, st, q, func(r ExportRow) error { return emit(r) })
	})
}

// writeJSONArray writes what walk emits as one JSON array, an element per line, streaming.
func writeJSONArray(w io.Writer, walk func(emit func(any) error) error) error {
	bw := bufio.NewWriter(w)
	sep := "[\n"
	err := walk(func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		bw.WriteString(sep)
		sep = ",\n"
		_, err = bw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	if sep == "[\n" {
		bw.WriteString("[")
	}
	bw.WriteString("\n]\n")
	return bw.Flush()
}

// eventJSON is an evidence record as the events export writes it: the body as the JSON it is.
type eventJSON struct {
	Seq      int64           `json:"seq"`
	At       time.Time       `json:"at"`
	Kind     string          `json:"kind"`
	Repo     string          `json:"repo"`
	Subject  string          `json:"subject"`
	Body     json.RawMessage `json:"body"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

// WriteEventsCSV streams the events of q as CSV: one row per record, its body as JSON text.
func WriteEventsCSV(ctx context.Context, st Store, q ExportQuery, w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"seq", "at", "kind", "repo", "subject", "body", "prev_hash", "hash"}); err != nil {
		return err
	}
	err := events(ctx, st, q, func(r compliance.Record) error {
		return cw.Write([]string{strconv.FormatInt(r.Seq, 10), r.At.UTC().Format(time.RFC3339Nano), r.Kind, cell(r.Repo),
			cell(r.Subject), cell(string(r.Body)), r.PrevHash, r.Hash})
	})
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// WriteEventsJSON streams the events of q as one JSON array, a record per line.
func WriteEventsJSON(ctx context.Context, st Store, q ExportQuery, w io.Writer) error {
	return writeJSONArray(w, func(emit func(any) error) error {
		return events(ctx, st, q, func(r compliance.Record) error {
			return emit(eventJSON{Seq: r.Seq, At: r.At.UTC(), Kind: r.Kind, Repo: r.Repo, Subject: r.Subject, Body: r.Body, PrevHash: r.PrevHash, Hash: r.Hash})
		})
	})
}

// events walks every evidence record of any kind made in q's period (of q.Repo, when set), in
// chain order: check runs, deploy requests, refusals, denied attempts, confirmations,
// cancellations, deployments and their statuses, overrides, retroactive reviews, merge verdicts,
// direct pushes, Jira updates. It streams, like Export.
func events(ctx context.Context, s Store, q ExportQuery, fn func(compliance.Record) error) error {
	if err := q.Validate(); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	return s.Events(ctx, store.Period{From: q.From, To: q.To, Repo: q.Repo}, fn)
}
