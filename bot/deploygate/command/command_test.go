package command

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		text string
		want Command
	}{
		{"empty text shows help", "", Command{Kind: CmdHelp}},
		{"help", "help", Command{Kind: CmdHelp}},
		{"service only", "payments", Command{Kind: CmdDeploy, Service: "payments"}},
		{"service at ref", "payments@v1.4.2", Command{Kind: CmdDeploy, Service: "payments", Ref: "v1.4.2"}},
		{"ref with slashes", "payments@release/2024-06", Command{Kind: CmdDeploy, Service: "payments", Ref: "release/2024-06"}},
		{"to env", "payments@main to production", Command{Kind: CmdDeploy, Service: "payments", Ref: "main", Env: "production"}},
		{"from base", "payments to production from v1.4.1", Command{Kind: CmdDeploy, Service: "payments", Env: "production", From: "v1.4.1"}},
		{"clauses in any order", "payments@abc1234 from v1 to staging", Command{Kind: CmdDeploy, Service: "payments", Ref: "abc1234", Env: "staging", From: "v1"}},
		{"keywords in capitals", "payments TO production", Command{Kind: CmdDeploy, Service: "payments", Env: "production"}},
		{"extra spaces", "  payments   to\tproduction ", Command{Kind: CmdDeploy, Service: "payments", Env: "production"}},
		{"status", "status payments", Command{Kind: CmdStatus, Service: "payments"}},
		{"status with env", "status payments production", Command{Kind: CmdStatus, Service: "payments", Env: "production"}},
		{"history", "history payments staging", Command{Kind: CmdHistory, Service: "payments", Env: "staging"}},
		{"lock with bare reason", "lock payments production db migration running", Command{Kind: CmdLock, Service: "payments", Env: "production", Reason: "db migration running"}},
		{"lock with quoted reason", `lock payments production "incident 42"`, Command{Kind: CmdLock, Service: "payments", Env: "production", Reason: "incident 42"}},
		{"lock with curly quotes", "lock payments production “incident 42”", Command{Kind: CmdLock, Service: "payments", Env: "production", Reason: "incident 42"}},
		{"lock reason with escaped ampersand", "lock payments production R&amp;D freeze", Command{Kind: CmdLock, Service: "payments", Env: "production", Reason: "R&D freeze"}},
		{"unlock", "unlock payments production", Command{Kind: CmdUnlock, Service: "payments", Env: "production"}},
		{"emergency", `payments@hotfix to production emergency "checkout is down INC-42"`,
			Command{Kind: CmdDeploy, Service: "payments", Ref: "hotfix", Env: "production", Emergency: true, Reason: "checkout is down INC-42"}},
		{"emergency first, curly quotes", "payments emergency “card captures failing since 09:00” to production",
			Command{Kind: CmdDeploy, Service: "payments", Env: "production", Emergency: true, Reason: "card captures failing since 09:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.text)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.text, err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.text, got, tt.want)
			}
		})
	}
}

func TestParseCommandMalformed(t *testing.T) {
	tests := []struct {
		name string
		text string
		says string // part of the explanation
	}{
		{"to without a value", "payments to", "`to` needs a value"},
		{"from without a value", "payments from", "`from` needs a value"},
		{"two environments", "payments to staging to production", "`to` was given twice"},
		{"environment without to", "payments production", "name the environment with `to ENV`"},
		{"empty ref", "payments@ to production", "Nothing after `@`"},
		{"no service before at", "@main", "no service name"},
		{"two ats", "payments@a@b", "more than one `@`"},
		{"bad service name", "pay$ments", "not a valid service name"},
		{"bad environment name", "payments to prod!", "not a valid environment name"},
		{"bad ref", "payments@main..evil", "not a valid git ref"},
		{"status without service", "status", "`status` needs a service"},
		{"history with too much", "history payments production extra", "`history` needs a service"},
		{"lock without reason", "lock payments production", "needs a service, an environment and a reason"},
		{"lock with empty quoted reason", `lock payments production ""`, "needs a reason"},
		{"unlock without env", "unlock payments", "`unlock` needs a service and an environment"},
		{"unclosed quote", `lock payments production "incident`, "never closed"},
		{"quote inside a word", `pay"ments`, "quote in the middle"},
		{"help with arguments", "help me", "`help` takes nothing"},
		{"emergency without reason", "payments to production emergency", "`emergency` needs a reason in quotes"},
		{"emergency with unquoted reason", "payments to production emergency checkout down now", "`emergency` needs a reason in quotes"},
		{"emergency reason too short", `payments to production emergency "urgent"`, "at least 3 words"},
		{"emergency twice", `payments emergency "a b c" emergency "d e f"`, "`emergency` was given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.text)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.text, got)
			}
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("error is %T, want *UsageError", err)
			}
			if problem := ue.Problem(func(s string) string { return "`" + s + "`" }); !strings.Contains(problem, tt.says) {
				t.Errorf("problem %q does not say %q", problem, tt.says)
			}
			// Every refusal also says how to write the command.
			if !strings.Contains(err.Error(), "/deploy SERVICE[@REF] [to ENV] [from REF]") {
				t.Errorf("error text lacks the usage: %q", err.Error())
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"payments@main to production from v1", `lock a b "c d"`, "status x", "“”"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("non-usage error %T", err)
			}
			return
		}
		if c.Kind == CmdDeploy && c.Service == "" {
			t.Fatalf("deploy without a service from %q", s)
		}
	})
}

// What the person typed reaches the problem only through the quote its reader gives, which
// escapes it for where it is shown; the parser's own words never do.
func TestUsageErrorQuotesWhatWasTyped(t *testing.T) {
	_, err := Parse("payments to production <!here>`x`")
	var ue *UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v, want a usage error", err)
	}
	got := ue.Problem(func(s string) string { return "[" + strings.ToUpper(s) + "]" })
	want := "I don't understand [<!HERE>`X`] in [/DEPLOY PAYMENTS TO PRODUCTION <!HERE>`X`]: name the environment with `to ENV` and the base with `from REF`."
	if got != want {
		t.Errorf("problem\n got %q\nwant %q", got, want)
	}
}
