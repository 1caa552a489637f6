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
	if cfg.ReleaseChannel == "" || cfg.Services["payments"].Repo != "acme/payments" || len(cfg.Emergency["production"]) == 0 ||
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
