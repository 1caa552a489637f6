package render

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscapingRules(t *testing.T) {
	for _, tt := range []struct{ name, got, want string }{
		{"control characters", Esc("<!channel> & <@U024BE7LH> <https://evil.example|click>"),
			"&lt;!channel&gt; &amp; &lt;@U024BE7LH&gt; &lt;https://evil.example|click&gt;"},
		{"an escape is escaped again, so it shows as typed", Esc("&lt;"), "&amp;lt;"},
		{"backticks", Esc("a `b` ```c```"), "a ˋbˋ ˋˋˋcˋˋˋ"},
		{"inline code", Code("fix/<!here>&`x`"), "`fix/&lt;!here&gt;&amp;ˋxˋ`"},
		{"inline code is one line", Code("a\nb\t c"), "`a b c`"},
		{"code block", CodeBlock("x ``` <!channel>"), "```\nx ˋˋˋ &lt;!channel&gt;\n```"},
		{"link", Link("https://github.com/acme/payments/pull/1", "#1 <b> & `x`"), "<https://github.com/acme/payments/pull/1|#1 &lt;b&gt; &amp; ˋxˋ>"},
		{"link with & in its URL", Link("https://jira.example/browse?a=1&b=2", "PAY-1"), "<https://jira.example/browse?a=1&amp;b=2|PAY-1>"},
		{"link without a label", Link("https://ci.example/1", ""), "<https://ci.example/1|https://ci.example/1>"},
		{"a | in the URL would start the label", Link("https://evil.example/x|<!channel>", "logs"), "logs"},
		{"a > in the URL would end the link", Link("https://ci.example/a>b", "logs"), "logs"},
		{"a < in the URL would open another", Link("https://ci.example/<!here>", "logs"), "logs"},
		{"white space", Link("https://ci.example/a b", "logs"), "logs"},
		{"not a web page", Link("javascript:alert(1)", "<x>"), "&lt;x&gt;"},
		{"no host", Link("https:///etc/passwd", "x"), "x"},
		{"no URL", Link("", "PAY-1"), "PAY-1"},
		{"user", Mention("U0ALICE"), "<@U0ALICE>"},
		{"user group", Mention("S0OPS"), "<!subteam^S0OPS>"},
		{"not an id", Mention("<!channel>"), "&lt;!channel&gt;"},
		{"nobody", Mention(""), "someone"},
		{"channel", Channel("C0RELEASE"), "<#C0RELEASE>"},
		{"not a channel", Channel("#releases|<!here>"), "`#releases|&lt;!here&gt;`"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

// broken says what a piece of escaped mrkdwn ends or starts with that was cut in half, or "".
func broken(piece string) string {
	if j := strings.LastIndexByte(piece, '&'); j >= 0 {
		rest := piece[j:]
		whole := false
		for _, e := range []string{"&amp;", "&lt;", "&gt;"} {
			if strings.HasPrefix(rest, e) {
				whole = true
			}
		}
		if !whole {
			return "an escape cut in half at the end"
		}
	}
	if j := strings.LastIndexByte(piece, '<'); j >= 0 && !strings.Contains(piece[j:], ">") {
		return "a link cut in half at the end"
	}
	if j := strings.IndexByte(piece, '>'); j >= 0 && !strings.Contains(piece[:j], "<") {
		return "the second half of a link at the start"
	}
	for _, e := range []string{"amp;", "lt;", "gt;"} {
		if strings.HasPrefix(piece, e) {
			return "the second half of an escape at the start"
		}
	}
	return ""
}

func TestCutsNeverSplitAnEscapeOrALink(t *testing.T) {
	text := Esc("R&D <b> ") + Link("https://github.com/acme/payments/pull/7", "#7 a, b & <c>") + ", " +
		Mention("U0ALICE") + Esc(" && >> ") + Link("https://jira.example/browse/PAY-1", "PAY-1") + Esc(" tail & end")
	n := utf8.RuneCountInString(text)
	for max := 2; max < n; max++ {
		clipped := Clip(text, max)
		if utf8.RuneCountInString(clipped) > max {
			t.Fatalf("Clip(%d) is %d characters", max, utf8.RuneCountInString(clipped))
		}
		if why := broken(strings.TrimSuffix(clipped, "…")); why != "" {
			t.Errorf("Clip(%d): %s: %q", max, why, clipped)
		}
	}
	// Parts at least as long as the longest link (the first, 66 characters).
	for max := 66; max < n; max++ {
		parts := SplitText(text, max)
		if strings.ReplaceAll(strings.Join(parts, ""), " ", "") != strings.ReplaceAll(strings.ReplaceAll(text, "\n", ""), " ", "") {
			t.Fatalf("SplitText(%d) lost text: %q", max, parts)
		}
		for _, p := range parts {
			if utf8.RuneCountInString(p) > max {
				t.Fatalf("SplitText(%d): a part of %d characters", max, utf8.RuneCountInString(p))
			}
			if why := broken(p); why != "" {
				t.Errorf("SplitText(%d): %s: %q", max, why, p)
			}
		}
	}
}

// A link longer than a whole part is cut rather than left to loop forever.
func TestSplitTextOfALinkLongerThanAPart(t *testing.T) {
	long := Link("https://github.com/acme/payments/pull/1", strings.Repeat("x", 100))
	parts := SplitText(long, 50)
	if strings.Join(parts, "") != long {
		t.Fatalf("lost text: %q", parts)
	}
	for _, p := range parts {
		if utf8.RuneCountInString(p) > 50 {
			t.Fatalf("a part of %d characters", utf8.RuneCountInString(p))
		}
	}
}
