package compliance

import (
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A Jira issue key is a project key (a letter, then letters, digits or underscores; Jira wants
// at least two characters) and an issue number, which never starts with 0. Jira keys are upper
// case; branch names are often lower-cased by the tools that create them (pay-12-fix), so
// branches get the case-blind pattern. Both are ASCII-only on purpose: Go's (?i) would also
// match the Kelvin sign and the long s.
var (
	keyPattern       = regexp.MustCompile(`[A-Z][A-Z0-9_]+-[1-9][0-9]*`)
	branchKeyPattern = regexp.MustCompile(`[A-Za-z][A-Za-z0-9_]+-[1-9][0-9]*`)
)

// TicketKeys returns the Jira-key candidates in free text (a title, body or commit message),
// deduplicated, in order of first appearance. Whether a candidate is a ticket depends on the
// Jira projects, which the caller knows: "UTF-8" and "SHA-256" are candidates here.
func TicketKeys(text string) []string {
	return scanKeys(keyPattern, text, []string{})
}

// BranchTicketKeys is TicketKeys for a branch name, where keys may be lower case
// (feature/pay-12-fix → PAY-12).
func BranchTicketKeys(branch string) []string {
	return scanKeys(branchKeyPattern, branch, []string{})
}

func scanKeys(re *regexp.Regexp, text string, keys []string) []string {
	add := func(key string) {
		if !slices.Contains(keys, key) {
			keys = append(keys, key)
		}
	}
	for _, m := range re.FindAllStringIndex(text, -1) {
		before, _ := utf8.DecodeLastRuneInString(text[:m[0]])
		after, _ := utf8.DecodeRuneInString(text[m[1]:])
		// Word boundaries, so "xPAY-1" and "PAY-1a" are not keys; an underscore may stand on
		// either side because names use it as a separator (fix_PAY-12, pay-12_fix).
		if m[0] > 0 && isAlnum(before) || m[1] < len(text) && isAlnum(after) {
			continue
		}
		match := text[m[0]:m[1]]
		add(strings.ToUpper(match))
		// Project keys may hold underscores (PAY_OPS-3), so the whole match is a candidate. A
		// lower-case word joined on with an underscore (fix_pay-12 in a branch) is not part of
		// a project key: what follows it is a candidate too. Jira's project list decides.
		project, _, _ := strings.Cut(match, "-")
		for i := 0; i < len(project); i++ {
			if project[i] != '_' || !hasLower(project[:i]) {
				continue
			}
			if rest := match[i+1:]; re.FindString(rest) == rest {
				add(strings.ToUpper(rest))
			}
		}
	}
	return keys
}

func hasLower(s string) bool { return strings.ContainsFunc(s, unicode.IsLower) }

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// CandidateKeys returns the key candidates of a change: for a pull request its title, body,
// head branch and commit messages; for a direct push its commit message. Deduplicated, in that
// order.
func CandidateKeys(c Change) []string {
	keys := []string{}
	if c.Kind != KindPullRequest {
		if c.Push != nil {
			keys = scanKeys(keyPattern, c.Push.Message, keys)
		}
		return keys
	}
	if c.PR == nil {
		return keys
	}
	keys = scanKeys(keyPattern, c.PR.Title, keys)
	keys = scanKeys(keyPattern, c.PR.Body, keys)
	keys = scanKeys(branchKeyPattern, c.PR.HeadBranch, keys)
	for _, cm := range c.PR.Commits {
		keys = scanKeys(keyPattern, cm.Message, keys)
	}
	return keys
}

// ticketFilter says whether a candidate key is a ticket reference: its project must exist in
// Jira and, when the policy lists projects, be one of them.
func ticketFilter(p Policy, jiraProjects []string) func(key string) bool {
	known := upperSet(jiraProjects)
	allowed := upperSet(p.Tickets.Projects)
	return func(key string) bool {
		project, _, _ := strings.Cut(key, "-") // project keys have no "-"
		return known[project] && (len(allowed) == 0 || allowed[project])
	}
}

func upperSet(xs []string) map[string]bool {
	set := make(map[string]bool, len(xs))
	for _, x := range xs {
		set[strings.ToUpper(strings.TrimSpace(x))] = true
	}
	return set
}

func ticketRefs(c Change, isTicket func(string) bool) []string {
	return slices.DeleteFunc(CandidateKeys(c), func(k string) bool { return !isTicket(k) })
}

// LookupKeys returns the sorted, deduplicated ticket references of a range under p: the keys
// the gatherer must ask Jira about before Evaluate.
func LookupKeys(p Policy, r Range, jiraProjects []string) []string {
	isTicket := ticketFilter(p, jiraProjects)
	keys := []string{}
	for _, c := range r.Changes {
		keys = append(keys, ticketRefs(c, isTicket)...)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}
