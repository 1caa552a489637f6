package bot_test

import (
	"slices"
	"testing"

	"sockembot/bot/deploygate"
	"sockembot/integrations/store"
)

// The deploy gate's states are what the deploys table accepts: a state one side knows and the
// other does not would fail a transition at run time.
func TestDeployStatesMatchTheStore(t *testing.T) {
	var gate []string
	for _, s := range deploygate.States {
		gate = append(gate, string(s))
	}
	slices.Sort(gate)
	stored := slices.Clone(store.DeployStates)
	slices.Sort(stored)
	if !slices.Equal(gate, stored) {
		t.Fatalf("deploy gate states %v, store states %v", gate, stored)
	}
}
