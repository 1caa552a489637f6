package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// The command line: each command's help (its flags, the environment it reads, its exit codes),
// and usage errors that name the flag and the form it wants.

const usage = `sockembot — SOC 2 change management for GitHub, Jira and Slack

Usage:
  sockembot check --repo OWNER/NAME --base REF --head REF [--policy FILE] [--format text|json]
  sockembot run                     the Slack bot (socket mode) and the GitHub webhook endpoint
  sockembot demo [--keep DIR]       the whole bot against built-in fakes (no credentials)
  sockembot audit export --from DATE --to DATE [--repo R] [--kind K] [--format csv|json]
  sockembot audit report --from DATE --to DATE [--repo R] [--env E] [--sample N] [--seed S] [--github] [-o FILE]
  sockembot audit verify [--anchor SEQ:MAC] [--allow-empty]
  sockembot version

Every command answers --help with its flags and the environment it reads.
Exit codes: 0 compliant / ok, 1 not compliant / tampered, 2 could not run (or a usage error).
`

// envDoc says what each environment variable is, for the commands' help.
var envDoc = map[string]string{
	"GITHUB_TOKEN":                "GitHub token (read access to the repositories; run also writes statuses, comments and deployments); not with GITHUB_APP_ID",
	"GITHUB_APP_ID":               "run as this GitHub App (with its private key); check runs, merge queues and Actions deployments need it",
	"GITHUB_APP_PRIVATE_KEY_FILE": "path to the App's private key (.pem) as GitHub issued it",
	"GITHUB_APP_PRIVATE_KEY":      "the App's private key as text, for platforms with only variables (instead of the file)",
	"GITHUB_APP_INSTALLATION_ID":  "the App's installation id; default: found per repository and cached",
	"GITHUB_API_URL":              "GitHub's API, default https://api.github.com/ (GitHub Enterprise: https://HOST/api/v3/)",
	"GITHUB_WEBHOOK_SECRET":       "the webhooks' secret: every delivery's X-Hub-Signature-256 is checked with it",
	"JIRA_URL":                    "the Jira site, e.g. https://acme.atlassian.net/ (Cloud) or your Data Center URL",
	"JIRA_USER":                   "with JIRA_TOKEN: the Cloud account's e-mail (basic auth with an API token)",
	"JIRA_TOKEN":                  "a Cloud API token (with JIRA_USER) or a Data Center personal access token (alone)",
	"DATABASE_URL":                "the evidence store: unset = SQLite file ./sockembot.db, sqlite://PATH, or postgres://...",
	"SLACK_APP_TOKEN":             "the app-level token xapp-... (socket mode, connections:write)",
	"SLACK_BOT_TOKEN":             "the bot token xoxb-...",
	"SLACK_API_URL":               "Slack's Web API, default https://slack.com/api/",
	"PORT":                        "HTTP port for /webhooks/github and /healthz, default 8080",
	"METRICS_ADDR":                "where /metrics is served (HOST:PORT, not on $PORT), default 127.0.0.1:9090; off: nowhere",
	"METRICS_TOKEN":               "when set, a scrape of /metrics must send Authorization: Bearer METRICS_TOKEN",
	"SOCKEMBOT_CONFIG":            "the config file, default ./sockembot.yaml",

	"SOCKEMBOT_EVIDENCE_KEY": "the evidence chain's key: at least 32 random bytes as hex (openssl rand -hex 32) or base64; kept outside the database",
}

// commandHelp is one command's --help.
type commandHelp struct {
	name  string // "audit export"
	usage string // the arguments after the name
	about string
	env   []string
	exit  string
}

func (h commandHelp) text(fs *flag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s\n\n%s\n", strings.TrimSpace("sockembot "+h.name+" "+h.usage), strings.TrimSpace(h.about))
	if fs != nil {
		var flags bytes.Buffer
		fs.SetOutput(&flags)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		if flags.Len() > 0 {
			fmt.Fprintf(&b, "\nFlags:\n%s", flags.String())
		}
	}
	if len(h.env) > 0 {
		b.WriteString("\nEnvironment:\n")
		for _, e := range h.env {
			fmt.Fprintf(&b, "  %-22s %s\n", e, envDoc[e])
		}
	}
	if h.exit != "" {
		fmt.Fprintf(&b, "\nExit codes: %s\n", h.exit)
	}
	return b.String()
}

var (
	checkHelp = commandHelp{name: "check", usage: "--repo OWNER/NAME --base REF --head REF [--policy FILE] [--format text|json]",
		about: `Checks every change in base..head of a repository against the change policy (the repository's
own .sockembot.yml, else --policy, else the built-in one): a Jira ticket per change, an
independent approval on its final commit, no direct pushes. With DATABASE_URL the run is
recorded as evidence, which needs SOCKEMBOT_EVIDENCE_KEY.`,
		env:  []string{"GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY_FILE", "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_INSTALLATION_ID", "GITHUB_API_URL", "JIRA_URL", "JIRA_USER", "JIRA_TOKEN", "DATABASE_URL", "SOCKEMBOT_EVIDENCE_KEY"},
		exit: "0 compliant, 1 not compliant, 2 the check could not run (a failure report goes to stderr).",
	}
	runHelp = commandHelp{name: "run", usage: "",
		about: `Runs the bot: /deploy in Slack over socket mode, the GitHub webhook endpoint (the merge gate)
and /healthz on $PORT, /metrics on $METRICS_ADDR, and the scheduled jobs. It refuses to start,
saying why, on a missing token, secret or evidence key, or a bad config.`,
		env:  []string{"SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "SLACK_API_URL", "GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY_FILE", "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_INSTALLATION_ID", "GITHUB_API_URL", "GITHUB_WEBHOOK_SECRET", "JIRA_URL", "JIRA_USER", "JIRA_TOKEN", "DATABASE_URL", "SOCKEMBOT_EVIDENCE_KEY", "PORT", "METRICS_ADDR", "METRICS_TOKEN", "SOCKEMBOT_CONFIG"},
		exit: "0 stopped cleanly, 2 could not start or stopped on an error.",
	}
	demoHelp = commandHelp{name: "demo", usage: "[--keep DIR]",
		about: `Runs the whole bot against built-in fakes of Slack, GitHub and Jira and a SQLite store, and
tells what happens in numbered scenes. Needs no credentials and reads no environment: the
evidence key is random (with --keep, saved beside the store in evidence.key).`,
		exit: "0 the story was told, 2 it could not finish.",
	}
	auditHelp = commandHelp{name: "audit", usage: "export|report|verify [flags]",
		about: `Reads the evidence store: "export" lists what was deployed in a period (or every record),
"report" writes an auditor's HTML report of a period, "verify" checks the evidence chain. Run
"sockembot audit export --help", "audit report --help" or "audit verify --help".`,
		env: []string{"DATABASE_URL", "SOCKEMBOT_EVIDENCE_KEY"},
	}
	exportHelp = commandHelp{name: "audit export", usage: "--from DATE --to DATE [--repo OWNER/NAME] [--kind deployments|events] [--format csv|json]",
		about: `Prints one row per change deployed in the period (or, with --kind events, every evidence
record), streaming. Dates are UTC days (YYYY-MM-DD, --to inclusive) or RFC 3339 instants.`,
		env:  []string{"DATABASE_URL"},
		exit: "0 exported, 2 could not export (the output is then incomplete).",
	}
	reportHelp = commandHelp{name: "audit report", usage: "--from DATE --to DATE [--repo OWNER/NAME] [--env NAME] [--sample N] [--seed S] [--github] [-o FILE]",
		about: `Writes one self-contained HTML file (no script, nothing fetched, prints to PDF) for an
auditor: the evidence chain checked now, the period's figures and weekly charts, the
population's completeness (consecutive deploys must chain), a sample of N deployed changes
drawn with a seed it prints (the same seed re-draws the same sample), and every exception.
It reads only the evidence store, streaming; --github also asks GitHub what happened outside
sockembot. Dates are UTC days (YYYY-MM-DD, --to inclusive) or RFC 3339 instants.`,
		env:  []string{"DATABASE_URL", "SOCKEMBOT_EVIDENCE_KEY", "GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY_FILE", "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_INSTALLATION_ID", "GITHUB_API_URL"},
		exit: "0 written, chain intact; 1 written, chain BROKEN or the store empty; 2 not written (or the chain NOT VERIFIED: no evidence key).",
	}
	verifyHelp = commandHelp{name: "audit verify", usage: "[--anchor SEQ:MAC] [--allow-empty]",
		about: `Walks the evidence chain and names the first record edited, inserted, deleted or reordered.
The keyed part's MACs are checked with SOCKEMBOT_EVIDENCE_KEY; without it only the links are,
and verify says so and exits 2. Records written before the chain was keyed are plain SHA-256,
reported apart. With --anchor (the head posted in a deploy's Slack thread or the daily
summary), also checks that record still has that MAC: a chain cut short since is caught. An
empty store fails unless --allow-empty.`,
		env:  []string{"DATABASE_URL", "SOCKEMBOT_EVIDENCE_KEY"},
		exit: "0 intact, 1 tampered or empty, 2 could not verify (no key, nothing keyed yet, or an error).",
	}
	versionHelp = commandHelp{name: "version", usage: "", about: "Prints the module version and the commit sockembot was built from.", exit: "0."}
)

// usageError is a command line sockembot will not run: said on stderr with a pointer to --help.
func usageError(stderr io.Writer, cmd, format string, args ...any) int {
	fmt.Fprintf(stderr, "sockembot %s: %s\nRun 'sockembot %s --help' for usage.\n", cmd, fmt.Sprintf(format, args...), cmd)
	return exitCouldNotRun
}

// parseFlags parses args for a command. done is true when the command must stop with code:
// --help printed (0) or a usage error said (2).
func parseFlags(fs *flag.FlagSet, h commandHelp, args []string, stdout, stderr io.Writer) (code int, done bool) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, h.text(fs))
		return exitCompliant, true
	case err != nil:
		return usageError(stderr, h.name, "%v", err), true
	case fs.NArg() > 0:
		// Flag parsing stops at the first word that is not a flag: whatever follows it would be
		// silently dropped.
		return usageError(stderr, h.name, "unexpected argument %q (flags take the form --name value)", fs.Arg(0)), true
	}
	return 0, false
}

// isHelp says whether args ask for help.
func isHelp(args []string) bool {
	return len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help")
}

// versionText is the module's version and the commit it was built from, as the Go toolchain
// recorded them in the binary.
func versionText() string {
	var b strings.Builder
	info, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintf(&b, "sockembot (no build information)\ngo: %s\n", runtime.Version())
		return b.String()
	}
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	fmt.Fprintf(&b, "%s %s\n", info.Main.Path, version)
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		fmt.Fprintf(&b, "revision: %s\n", rev)
		if t := settings["vcs.time"]; t != "" {
			fmt.Fprintf(&b, "committed: %s\n", t)
		}
		if settings["vcs.modified"] == "true" {
			b.WriteString("modified: yes (built from a working tree with uncommitted changes)\n")
		} else {
			b.WriteString("modified: no\n")
		}
	} else {
		b.WriteString("revision: unknown (built without VCS information, e.g. by go run or go test)\n")
	}
	fmt.Fprintf(&b, "go: %s\n", info.GoVersion)
	return b.String()
}

// moduleVersion names the build in one line, for what sockembot writes (the audit report).
func moduleVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "sockembot"
	}
	v := "sockembot " + info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " (" + s.Value[:12] + ")"
		}
	}
	return v
}

// ephemeralPlatform names the environment variable that shows sockembot runs on a platform whose
// filesystem does not outlive a restart, or "" when none does.
func ephemeralPlatform(getenv func(string) string) string {
	for _, v := range []string{"DYNO", "RENDER", "FLY_APP_NAME", "K_SERVICE", "RAILWAY_ENVIRONMENT", "KUBERNETES_SERVICE_HOST"} {
		if getenv(v) != "" {
			return v
		}
	}
	return ""
}

// storeWarning is what run says when the evidence store is a local SQLite file on such a
// platform: the evidence chain would be lost on the next restart.
func storeWarning(getenv func(string) string) string {
	url := getenv("DATABASE_URL")
	if url != "" && !strings.HasPrefix(url, "sqlite://") && strings.Contains(url, "://") {
		return ""
	}
	platform := ephemeralPlatform(getenv)
	if platform == "" {
		return ""
	}
	return fmt.Sprintf("the evidence store is a local SQLite file, and %s says this platform's filesystem does not last: "+
		"the evidence chain will be lost on restart. Set DATABASE_URL=postgres://... (see README, Running it)", platform)
}
