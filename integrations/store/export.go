package store

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"sockembot/compliance"
)

// DeploymentEvidence is the body of a deployment_created record: the facts of a deploy frozen at
// the moment GitHub accepted it. The audit export is built from these alone, so a later
// re-evaluation or a changed ticket can never rewrite what an auditor sees.
type DeploymentEvidence struct {
	DeployID           int64             `json:"deploy_id"`
	Service            string            `json:"service"`
	Environment        string            `json:"environment"`
	Repo               string            `json:"repo"`
	Ref                string            `json:"ref"`
	SHA                string            `json:"sha"`
	BaseSHA            string            `json:"base_sha"`
	Requester          string            `json:"requester"` // Slack user who asked for the deploy
	Deployer           string            `json:"deployer"`  // Slack user who pressed Deploy
	GitHubDeploymentID int64             `json:"github_deployment_id"`
	CheckSeq           int64             `json:"check_seq"` // the check_run record the verdict came from
	PolicyHash         string            `json:"policy_hash"`
	PolicySource       string            `json:"policy_source,omitempty"` // "global" or OWNER/NAME/.sockembot.yml
	Report             compliance.Report `json:"report"`
	Compliant          bool              `json:"compliant"`
	Override           *Override         `json:"override,omitempty"`
	// Where the deploy's story is told: the digest's Slack channel and ts, and its permalink.
	Channel   string `json:"channel,omitempty"`
	ThreadTS  string `json:"thread_ts,omitempty"`
	ThreadURL string `json:"thread_url,omitempty"`
}

// DeploymentStatusEvidence is the body of a deployment_status record: one status GitHub reported
// for a sockembot deployment.
type DeploymentStatusEvidence struct {
	DeployID           int64  `json:"deploy_id"`
	Service            string `json:"service"`
	Environment        string `json:"environment"`
	GitHubDeploymentID int64  `json:"github_deployment_id"`
	StatusID           int64  `json:"status_id"`
	State              string `json:"state"`
	Description        string `json:"description,omitempty"`
	LogURL             string `json:"log_url,omitempty"`
	Creator            string `json:"creator,omitempty"`
	SHA                string `json:"sha"`
}

// Override is an emergency deploy past a failing verdict: who, why, when.
type Override struct {
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// ExportQuery selects deployments made in [From, To), optionally of one repository (matched
// without regard to case, as GitHub names are).
type ExportQuery struct {
	From, To time.Time
	Repo     string
}

// Evidence times are kept as nanoseconds since 1970 in a 64-bit integer, which spans the years
// 1678 to 2262; an export period must lie within it.
var (
	minExportTime = time.Unix(0, math.MinInt64).UTC()
	maxExportTime = time.Unix(0, math.MaxInt64).UTC()
)

// Validate refuses a period that is empty, reversed, or beyond what evidence times can hold: an
// export that silently lists nothing would mislead an auditor.
func (q ExportQuery) Validate() error {
	switch {
	case q.From.IsZero() || q.To.IsZero():
		return errors.New("the period needs both a start and an end")
	case !q.To.After(q.From):
		return fmt.Errorf("the period ends (%s) before it starts (%s)", q.To.Format(time.DateOnly), q.From.Format(time.DateOnly))
	case q.From.Before(minExportTime) || q.To.After(maxExportTime):
		return fmt.Errorf("the period must lie between %s and %s", minExportTime.Format(time.DateOnly), maxExportTime.Format(time.DateOnly))
	}
	return nil
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
func (s *Store) Export(ctx context.Context, q ExportQuery, fn func(ExportRow) error) error {
	if err := q.Validate(); err != nil {
		return fmt.Errorf("store: export: %w", err)
	}
	// Retroactive reviews are few (one per change overridden in an emergency): held in memory.
	reviews, err := s.RetroReviews(ctx)
	if err != nil {
		return fmt.Errorf("store: export: %w", err)
	}
	retro := make(map[string]RetroReview, len(reviews))
	for _, r := range reviews {
		retro[r.Opened.Key()] = r
	}
	// So are deployments (one per deploy, against many changes): their latest status, by
	// GitHub's status id rather than by arrival, as webhooks may come out of order.
	statuses, err := s.latestStatuses(ctx, q.From)
	if err != nil {
		return fmt.Errorf("store: export: %w", err)
	}
	query := "SELECT seq, at, body FROM evidence WHERE kind = $1 AND at_ns >= $2 AND at_ns < $3"
	args := []any{KindDeploymentCreated, nanos(q.From), nanos(q.To)}
	if q.Repo != "" {
		query += " AND lower(repo) = $4"
		args = append(args, strings.ToLower(q.Repo))
	}
	rows, err := s.db.QueryContext(ctx, query+" ORDER BY at_ns, seq", args...)
	if err != nil {
		return fmt.Errorf("store: export: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var at string
		var body []byte
		if err := rows.Scan(&seq, &at, &body); err != nil {
			return fmt.Errorf("store: export: %w", err)
		}
		deployedAt, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return fmt.Errorf("store: export: record %d: time %q: %w", seq, at, err)
		}
		var d DeploymentEvidence
		if err := json.Unmarshal(body, &d); err != nil {
			return fmt.Errorf("store: export: record %d: decode deployment: %w", seq, err)
		}
		for _, c := range d.Report.Changes {
			row := exportRow(seq, deployedAt, &d, c)
			row.DeploymentStatus = statuses[d.GitHubDeploymentID].State
			if rv, ok := retro[RetroReviewEvidence{DeployID: d.DeployID, Change: ChangeName(c)}.Key()]; ok {
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
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: export: %w", err)
	}
	return nil
}

// latestStatuses maps each GitHub deployment with a status recorded since from to its latest one.
func (s *Store) latestStatuses(ctx context.Context, from time.Time) (map[int64]DeploymentStatusEvidence, error) {
	latest := map[int64]DeploymentStatusEvidence{}
	rows, err := s.db.QueryContext(ctx, "SELECT seq, body FROM evidence WHERE kind = $1 AND at_ns >= $2 ORDER BY seq",
		KindDeploymentStatus, nanos(from))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			return nil, err
		}
		var st DeploymentStatusEvidence
		if err := json.Unmarshal(body, &st); err != nil {
			return nil, fmt.Errorf("record %d: decode deployment status: %w", seq, err)
		}
		if prev, ok := latest[st.GitHubDeploymentID]; !ok || st.StatusID >= prev.StatusID {
			latest[st.GitHubDeploymentID] = st
		}
	}
	return latest, rows.Err()
}

func exportRow(seq int64, at time.Time, d *DeploymentEvidence, c compliance.ChangeReport) ExportRow {
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
func WriteCSV(ctx context.Context, st *Store, q ExportQuery, w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	err := st.Export(ctx, q, func(r ExportRow) error {
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

// ChangeName names a change in a deploy the way people and retro reviews do: "#12", or
// "direct push abc1234".
func ChangeName(c compliance.ChangeReport) string {
	if c.Kind == compliance.KindDirectPush {
		sha := ""
		if len(c.Commits) > 0 {
			sha = c.Commits[0]
		}
		if len(sha) > 7 {
			sha = sha[:7]
		}
		return "direct push " + sha
	}
	return fmt.Sprintf("#%d", c.Number)
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
func WriteJSON(ctx context.Context, st *Store, q ExportQuery, w io.Writer) error {
	return writeJSONArray(w, func(emit func(any) error) error {
		return st.Export(ctx, q, func(r ExportRow) error { return emit(r) })
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

// Events calls fn for every evidence record of any kind made in q's period (of q.Repo, when
// set), in chain order: check runs, deploy requests, refusals, denied attempts, confirmations,
// cancellations, deployments and their statuses, overrides, retroactive reviews, merge verdicts,
// direct pushes, Jira updates. It streams, like Export.
func (s *Store) Events(ctx context.Context, q ExportQuery, fn func(Record) error) error {
	if err := q.Validate(); err != nil {
		return fmt.Errorf("store: events: %w", err)
	}
	query := "SELECT " + recordCols + " FROM evidence WHERE at_ns >= $1 AND at_ns < $2"
	args := []any{nanos(q.From), nanos(q.To)}
	if q.Repo != "" {
		query += " AND lower(repo) = $3"
		args = append(args, strings.ToLower(q.Repo))
	}
	rows, err := s.db.QueryContext(ctx, query+" ORDER BY seq", args...)
	if err != nil {
		return fmt.Errorf("store: events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return fmt.Errorf("store: events: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: events: %w", err)
	}
	return nil
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
func WriteEventsCSV(ctx context.Context, st *Store, q ExportQuery, w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"seq", "at", "kind", "repo", "subject", "body", "prev_hash", "hash"}); err != nil {
		return err
	}
	err := st.Events(ctx, q, func(r Record) error {
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
func WriteEventsJSON(ctx context.Context, st *Store, q ExportQuery, w io.Writer) error {
	return writeJSONArray(w, func(emit func(any) error) error {
		return st.Events(ctx, q, func(r Record) error {
			return emit(eventJSON{Seq: r.Seq, At: r.At.UTC(), Kind: r.Kind, Repo: r.Repo, Subject: r.Subject, Body: r.Body, PrevHash: r.PrevHash, Hash: r.Hash})
		})
	})
}
