package render

import "strings"

// Clippy is the ASCII paperclip that tells a person their change can't go out, and why. A
// friendly face on a refusal gets violations fixed faster than a red cross.
func Clippy(lines ...string) string {
	art := []string{
		" __",
		"/  \\",
		"|  |",
		"@  @",
		"|  |",
		"|| |/",
		"|| ||",
		"|\\_/|",
		"\\___/",
	}
	bubble := append([]string{"It looks like you're trying to ship a change that"}, lines...)
	var b strings.Builder
	for i := 0; i < len(art) || i < len(bubble); i++ {
		left := ""
		if i < len(art) {
			left = art[i]
		}
		b.WriteString(left)
		if i < len(bubble) {
			b.WriteString(strings.Repeat(" ", 8-len(left)))
			if i == 0 {
				b.WriteString("  ")
			} else {
				b.WriteString("  ")
			}
			b.WriteString(bubble[i])
		}
		b.WriteString("\n")
	}
	return b.String()
}
