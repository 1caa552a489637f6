package render

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"sockembot/compliance"
)

// MergeNote is what the release channel hears of one merge.
type MergeNote struct {
	Repo      string
	Number    int
	Title     string
	URL       string
	MergedBy  string
	Compliant bool
	Change    compliance.ChangeReport // the verdict on the pull request
	// Reconciled: found by the reconcile job, no webhook announced the merge.
	Reconciled bool
	Seq        int64 // evidence record of the verdict
}

// MergeNoteText is the one line in the release channel for each merge.
func MergeNoteText(n MergeNote) string {
	link := Link(n.URL, fmt.Sprintf("%s#%d", n.Repo, n.Number))
	verdict := ":white_check_mark: compliant: " + StatusDescription(n.Change)
	if !n.Compliant {
		verdict = ":x: NOT compliant: " + StatusDescription(n.Change)
	}
	note := fmt.Sprintf("Merged %s “%s” by %s — %s (evidence #%d", link, Esc(n.Title), Esc(OrUnknown(n.MergedBy)), Esc(verdict), n.Seq)
	if n.Reconciled {
		note += "; found by reconciliation, no webhook announced it"
	}
	return note + ")"
}

// MergeFailureNote tells the release channel that a merge could not be judged, with the error
// and the stack where it happened. f.Doing and f.Consequence are not shown: the note says both.
func MergeFailureNote(subject string, f Failure) string {
	return fmt.Sprintf(":warning: %s was merged but sockembot could not judge it; it is not treated as compliant and will be retried.\n%s",
		Esc(subject), CodeBlock(strings.TrimRight(f.report(), "\n")))
}

// DirectPush is one commit that reached the default branch without a pull request.
type DirectPush struct {
	SHA     string
	Message string
	Author  string
	Seq     int64 // its evidence record
}

// DirectPushAlert tells the release channel about commits pushed straight to branch.
func DirectPushAlert(repo, branch, pusher string, ds []DirectPush) string {
	var b strings.Builder
	what := fmt.Sprintf("%d commits", len(ds))
	if len(ds) == 1 {
		what = "1 commit"
	}
	fmt.Fprintf(&b, ":rotating_light: Direct push to %s %s by %s: %s without a pull request, so nobody reviewed the change.\n",
		Esc(repo), Code(branch), Esc(OrUnknown(pusher)), what)
	for _, d := range ds {
		title, _, _ := strings.Cut(d.Message, "\n")
		fmt.Fprintf(&b, "• %s %s (%s) — evidence #%d\n", Code(Short(d.SHA)), Esc(title), Esc(OrUnknown(d.Author)), d.Seq)
	}
	return strings.TrimRight(b.String(), "\n")
}

// Summary is one day of the gates in numbers.
type Summary struct {
	Day                time.Time
	Merges             int
	CompliantMerges    int
	Deploys            int
	CompliantDeploys   int
	DirectPushes       int
	RefusedDeploys     int                     // deploy requests refused as not compliant
	Violations         map[compliance.Code]int // by kind, each change's violation counted once across merges and deploys
	NonCompliantMerges []string                // repo#n
	Overrides          int                     // emergency deploys past violations
	// OverdueReviews are the retroactive reviews still open past their deadline, as of when
	// the summary was made, a line of mrkdwn each (escaped by whoever wrote it).
	OverdueReviews []string
	// The evidence chain's newest record when the summary was made: posted to Slack, it is an
	// anchor kept outside the database for `audit verify --anchor`.
	HeadSeq  int64
	HeadHash string
}

// SummaryText renders a summary for the release channel.
func SummaryText(s Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*Daily summary for %s*\n", s.Day.Format("Mon 2 Jan 2006"))
	fmt.Fprintf(&b, "Merges: %d (%d compliant, %d not) · Deploys: %d (%d compliant) · Refused as non-compliant: %d · Direct pushes: %d\n",
		s.Merges, s.CompliantMerges, s.Merges-s.CompliantMerges, s.Deploys, s.CompliantDeploys, s.RefusedDeploys, s.DirectPushes)
	if len(s.Violations) == 0 {
		b.WriteString("Violations: none")
	} else {
		codes := make([]string, 0, len(s.Violations))
		for c := range s.Violations {
			codes = append(codes, string(c))
		}
		sort.Slice(codes, func(i, j int) bool {
			ci, cj := s.Violations[compliance.Code(codes[i])], s.Violations[compliance.Code(codes[j])]
			if ci != cj {
				return ci > cj
			}
			return codes[i] < codes[j]
		})
		parts := make([]string, len(codes))
		for i, c := range codes {
			parts[i] = fmt.Sprintf("%s ×%d", c, s.Violations[compliance.Code(c)])
		}
		b.WriteString("Violations: " + strings.Join(parts, " · "))
	}
	if len(s.NonCompliantMerges) > 0 {
		b.WriteString("\nMerged without meeting the policy: " + Esc(strings.Join(s.NonCompliantMerges, ", ")))
	}
	if s.Overrides > 0 {
		fmt.Fprintf(&b, "\nEmergency overrides: %d", s.Overrides)
	}
	if len(s.OverdueReviews) > 0 {
		fmt.Fprintf(&b, "\n*Overdue retroactive reviews (%d):*\n%s", len(s.OverdueReviews), strings.Join(s.OverdueReviews, "\n"))
	}
	if s.HeadHash != "" {
		fmt.Fprintf(&b, "\nEvidence chain head: record %d, hash %s (an anchor: %s)", s.HeadSeq, Code(s.HeadHash),
			Code(fmt.Sprintf("sockembot audit verify --anchor %d:%s", s.HeadSeq, s.HeadHash)))
	}
	return b.String()
}
