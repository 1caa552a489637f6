package compliance_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	c "sockembot/compliance"
)

func TestTicketKeys(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"PAY-12 refunds", []string{"PAY-12"}},
		{"Handle UTF-8, SHA-256 and ISO-8601", []string{"UTF-8", "SHA-256", "ISO-8601"}},
		{"PAY-12, PAY-13 and again PAY-12", []string{"PAY-12", "PAY-13"}},
		{"(PAY-12) [OPS-3]: #PAY-4. PAY-5", []string{"PAY-12", "OPS-3", "PAY-4", "PAY-5"}},
		{"feature/PAY-12-fix", []string{"PAY-12"}},
		{"PAY_OPS-3 and P2-4", []string{"PAY_OPS-3", "P2-4"}},
		{"pay-12 is lower case", []string{}},
		{"Pay-12 is mixed case", []string{}},
		{"PAY-0 and PAY-012 are not issue numbers", []string{}},
		{"A-1 has a one-letter project", []string{}},
		{"xPAY-12 PAY-12x 1PAY-3 éPAY-5 PAY-6é", []string{}},
		{"fix_PAY-4 and PAY-5_followup", []string{"PAY-4", "PAY-5"}},
		{"ABC-DEF-12", []string{"DEF-12"}},
		{"", []string{}},
	}
	for _, tt := range tests {
		if got := c.TicketKeys(tt.text); !slices.Equal(got, tt.want) || got == nil {
			t.Errorf("TicketKeys(%q) = %#v, want %#v", tt.text, got, tt.want)
		}
	}
}

func TestBranchTicketKeys(t *testing.T) {
	tests := []struct {
		branch string
		want   []string
	}{
		{"pay-12-fix", []string{"PAY-12"}},
		{"feature/pay-12-fix", []string{"PAY-12"}},
		{"feature/PAY-12_fix", []string{"PAY-12"}},
		{"alice/fix_pay-1", []string{"FIX_PAY-1", "PAY-1"}}, // a lower-case word before an underscore is not the project
		{"hot_fix_pay-2-retry", []string{"HOT_FIX_PAY-2", "FIX_PAY-2", "PAY-2"}},
		{"PAY_OPS-3", []string{"PAY_OPS-3"}}, // an upper-case project key with an underscore stays whole
		{"feature-Pay-7", []string{"PAY-7"}},
		{"release-2026", []string{"RELEASE-2026"}}, // a candidate; the project list decides
		{"v1.2-3", []string{}},
		{"main", []string{}},
	}
	for _, tt := range tests {
		if got := c.BranchTicketKeys(tt.branch); !slices.Equal(got, tt.want) {
			t.Errorf("BranchTicketKeys(%q) = %#v, want %#v", tt.branch, got, tt.want)
		}
	}
}

func TestCandidateKeys(t *testing.T) {
	pr := pullRequest(func(pr *c.PullRequest) {
		pr.Title = "PAY-1 UTF-8"
		pr.Body = "See PAY-2 and PAY-1; pay-9 is not a key here"
		pr.HeadBranch = "ops-3-pay-2"
		pr.Commits = []c.Commit{{Message: "PAY-4"}, {Message: "OPS-3 again, PAY-5"}}
	})
	if got, want := c.CandidateKeys(pr), []string{"PAY-1", "UTF-8", "PAY-2", "OPS-3", "PAY-4", "PAY-5"}; !slices.Equal(got, want) {
		t.Errorf("pull request: %v, want %v", got, want)
	}
	if got, want := c.CandidateKeys(directPush("PAY-7 hotfix\n\nalso OPS-1")), []string{"PAY-7", "OPS-1"}; !slices.Equal(got, want) {
		t.Errorf("direct push: %v, want %v", got, want)
	}
	if got := c.CandidateKeys(c.Change{Kind: c.KindPullRequest}); got == nil || len(got) != 0 {
		t.Errorf("pull request without facts: %#v, want []", got)
	}
}

func TestLookupKeys(t *testing.T) {
	r := facts(
		pullRequest(func(pr *c.PullRequest) { pr.Title = "PAY-3 UTF-8 OPS-1" }),
		directPush("PAY-3 again, SHA-256, XYZ-1"),
		pullRequest(func(pr *c.PullRequest) { pr.Title = "Refunds"; pr.HeadBranch = "pay-10-refunds" }),
	).Range
	if got, want := c.LookupKeys(c.DefaultPolicy(), r, []string{"PAY", "OPS"}), []string{"OPS-1", "PAY-10", "PAY-3"}; !slices.Equal(got, want) {
		t.Errorf("LookupKeys = %v, want %v", got, want)
	}
	p := c.DefaultPolicy()
	p.Tickets.Projects = []string{"PAY"}
	if got, want := c.LookupKeys(p, r, []string{"PAY", "OPS"}), []string{"PAY-10", "PAY-3"}; !slices.Equal(got, want) {
		t.Errorf("LookupKeys with tickets.projects = %v, want %v", got, want)
	}
	if got := c.LookupKeys(p, r, nil); len(got) != 0 {
		t.Errorf("LookupKeys with no Jira projects = %v, want none", got)
	}
}

var wantKey = regexp.MustCompile(`^[A-Z][A-Z0-9_]+-[1-9][0-9]*$`)

func FuzzTicketKeys(f *testing.F) {
	for _, seed := range []string{
		"PAY-12 refunds", "UTF-8 SHA-256 ISO-8601", "feature/pay-12-fix", "PAY-12PAY-13", "PAY-1 PAY-1 pay-1",
		"ABC-DEF-12", "PAY-0 PAY-012", "éPAY-1 PAY-1é", "ſha-1 \u212aey-2", "\xffPAY-3\xfe", "x_y-1_", "A-1",
		strings.Repeat("PAY-9", 50),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		upper := asciiUpper(text)
		for name, keys := range map[string][]string{"TicketKeys": c.TicketKeys(text), "BranchTicketKeys": c.BranchTicketKeys(text)} {
			seen := map[string]bool{}
			for _, k := range keys {
				if !wantKey.MatchString(k) {
					t.Errorf("%s(%q): %q is not a Jira key", name, text, k)
				}
				if !strings.Contains(upper, k) {
					t.Errorf("%s(%q): %q is not in the input", name, text, k)
				}
				if seen[k] {
					t.Errorf("%s(%q): %q twice", name, text, k)
				}
				seen[k] = true
			}
			if name == "TicketKeys" {
				for _, k := range keys {
					if !strings.Contains(text, k) {
						t.Errorf("TicketKeys(%q): %q is not in the input as written", text, k)
					}
				}
			}
		}
	})
}

// asciiUpper upper-cases ASCII letters only, so a key cannot "appear" through Unicode case
// mapping (ſ → S).
func asciiUpper(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if 'a' <= ch && ch <= 'z' {
			b[i] = ch - 'a' + 'A'
		}
	}
	return string(b)
}
