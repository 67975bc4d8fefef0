package e2e

import (
	"debug/buildinfo"
	"sync"
	"testing"
	"time"
)

// raceSlowdown is how much slower than a normal build a gateway built with the race
// detector may be in the tests that time it: the detector makes Go code 2 to 20 times
// slower, and the work these tests time (thousands of streams ending) is CPU-bound.
const raceSlowdown = 4

var raceBuilt = sync.OnceValues(func() (bool, error) {
	info, err := buildinfo.ReadFile(gatewayBin)
	if err != nil {
		return false, err
	}
	for _, s := range info.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true, nil
		}
	}
	return false, nil
})

// cpuBound is the time the gateway under test may take for CPU-bound work that README
// promises in d on a normal build: d, or raceSlowdown times d when the binary was built
// with the race detector.
func cpuBound(tb testing.TB, d time.Duration) time.Duration {
	tb.Helper()
	race, err := raceBuilt()
	if err != nil {
		tb.Fatalf("build info of %s: %v", gatewayBin, err)
	}
	if race {
		return raceSlowdown * d
	}
	return d
}
