package gateway

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDashboardSeries checks that every series the Grafana dashboard shipped in deploy/
// queries is one the gateway exports, so that the two cannot drift apart.
func TestDashboardSeries(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	families, err := e.gw.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := make(map[string]bool)
	for _, mf := range families {
		exported[mf.GetName()] = true
	}
	raw, err := os.ReadFile("../deploy/grafana/natsse.json")
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dashboard); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	name := regexp.MustCompile(`\b(natsse|go|process)_[a-z_]+\b`)
	queried := 0
	for _, p := range dashboard.Panels {
		for _, target := range p.Targets {
			for _, n := range name.FindAllString(target.Expr, -1) {
				queried++
				if !exported[n] && !exported[strings.TrimSuffix(n, "_bucket")] {
					t.Errorf("panel %q queries %s, which the gateway does not export", p.Title, n)
				}
			}
		}
	}
	if queried < 10 {
		t.Fatalf("the dashboard queries %d series", queried)
	}
}
