package bot

import (
	"os"
	"strings"
	"testing"

	"sockembot/compliance"
)

// The example in the repository is what people copy: it must load, and mean what it says.
func TestExampleConfigLoads(t *testing.T) {
	data, err := os.ReadFile("../sockembot.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		t.Fatalf("sockembot.example.yaml: %v", err)
	}
	if cfg.ReleaseChannel == "" || cfg.Services["payments"].Repo != "acme/payments" || len(cfg.Emergency["production"].BreakGlass) == 0 ||
		cfg.People["U0ALICE"] != "alice" || cfg.Policy.SeparationOfDuties.RequesterSoleApprover != compliance.ActionRefuse ||
		cfg.Policy.Emergency.ReviewWithinBusinessDays != 2 {
		t.Errorf("example config read as %+v", cfg)
	}
}

func TestConfigProblemsAreNamed(t *testing.T) {
	const svc = "services:\n  pay:\n    repo: acme/pay\n    environments: [staging, production]\n"
	tests := []struct {
		name, yaml, says string
	}{
		{"unknown key", "release_channel: C1\nreleese_channel: C2\n", "releese_channel"},
		{"service without repo", "services:\n  pay:\n    environments: [prod]\n", `service "pay" has no repo`},
		{"repo not owner/name", "services:\n  pay:\n    repo: pay\n    environments: [prod]\n", "is not OWNER/NAME"},
		{"service without environments", "services:\n  pay:\n    repo: acme/pay\n", "lists no environments"},
		{"bad duties action", "policy:\n  separation_of_duties:\n    requester_sole_approver: maybe\n", `not "maybe"`},
		{"review deadline zero", "policy:\n  emergency:\n    review_within_business_days: 0\n", "review_within_business_days must be 1 or more"},
		{"policy typo", "policy:\n  approvals:\n    requried: 2\n", "requried"},
		{"deployers environment typo", svc + "deployers:\n  prodution: [U0ALICE]\n", `deployers: "prodution" is not an environment of any service (they are: staging, production)`},
		{"emergency environment typo", svc + "emergency:\n  prod: [U0ALICE]\n", `emergency: "prod" is not an environment`},
		{"production environments typo", svc + "production_environments: [prodution]\n", `production_environments: "prodution" is not an environment`},
		{"emergency entry typo", svc + "emergency:\n  production: {break_glas: [U0ALICE]}\n", "field break_glas not found in an emergency entry"},
		{"emergency entry without break glass", svc + "emergency:\n  production: {reviewers: [U0BOB]}\n", `emergency: "production" lists nobody who may break glass`},
		{"policy floor typo", "policy_floor:\n  approvals: {requried: 1}\n", "policy_floor: yaml: unmarshal errors"},
		{"global policy below the floor", "policy_floor:\n  approvals: {required: 2}\n", "policy is looser than policy_floor: approvals.required is 1; the floor is 2"},
		{"policy owner not a login", "policy_owners: [\"@carol\"]\n", `policy_owners[0]: "@carol" is not a GitHub login`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("ParseConfig: %v, want it to say %q", err, tt.says)
			}
		})
	}
}

func TestConfigWarnsOfAnOpenProductionEnvironment(t *testing.T) {
	cfg, err := ParseConfig([]byte("services:\n  pay:\n    repo: acme/pay\n    environments: [staging, production]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := cfg.Warnings(); len(w) != 1 || !strings.Contains(w[0], `"production" has no deployers entry`) {
		t.Fatalf("warnings %q", w)
	}
	cfg.Deployers = map[string][]string{"production": {"U0ALICE"}}
	if w := cfg.Warnings(); len(w) != 0 {
		t.Fatalf("warnings %q with deployers set", w)
	}
}

// The floor constrains only what it names; the owners and the floor reach the policy every gate
// passes to a check, and a repository's own file can set neither.
func TestPolicyFloorAndOwners(t *testing.T) {
	cfg, err := ParseConfig([]byte("policy_owners: [carol, dave]\npolicy_floor:\n  approvals: {required: 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Policy.Floor
	if f == nil || f.Approvals.Required != 1 || f.Tickets.Required || !f.Approvals.AllowAuthor || f.Approvals.InvalidateOnPush {
		t.Fatalf("floor %+v", f)
	}
	if strings.Join(cfg.Policy.Owners, ",") != "carol,dave" {
		t.Fatalf("owners %v", cfg.Policy.Owners)
	}
	if got := cfg.deployConfig().Policy; got.Floor != f || len(got.Owners) != 2 {
		t.Errorf("the deploy gate's policy lacks the owners or the floor: %+v", got)
	}
}

// Retroactive reviewers: the configured ones, else the environment's deployers, else nobody.
func TestEmergencyReviewers(t *testing.T) {
	const svc = "services:\n  pay:\n    repo: acme/pay\n    environments: [staging, production, sandbox]\n"
	cfg, err := ParseConfig([]byte(svc + `deployers:
  production: [U0ALICE, S0OPS]
emergency:
  production: [U0ALICE]
  staging: {break_glass: [U0ALICE], reviewers: [U0CAROL]}
  sandbox: {break_glass: [U0ALICE]}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.retroReviewers()
	if strings.Join(got["production"], ",") != "U0ALICE,S0OPS" || strings.Join(got["staging"], ",") != "U0CAROL" || len(got["sandbox"]) != 0 {
		t.Fatalf("reviewers %v", got)
	}
	if strings.Join(cfg.deployConfig().Emergency["staging"], ",") != "U0ALICE" {
		t.Errorf("break glass %v", cfg.deployConfig().Emergency)
	}
	warned := false
	for _, w := range cfg.Warnings() {
		warned = warned || strings.Contains(w, `emergency deploys to "sandbox" have nobody to review them`)
	}
	if !warned {
		t.Errorf("no warning for an emergency path nobody can review: %q", cfg.Warnings())
	}
}
