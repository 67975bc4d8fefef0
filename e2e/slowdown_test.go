package e2e

import "time"

// raceSlowdown is how much slower than a normal build a gateway built with the race
// detector may be in the tests that time it: the detector makes Go code 2 to 20 times
// slower, and the work these tests time (thousands of streams ending) is CPU-bound.
const raceSlowdown = 4

// cpuBound is the time the gateway under test may take for CPU-bound work that README
// promises in d on a normal build: d, or raceSlowdown times d when it is built with the
// race detector (as it is when these tests are).
func cpuBound(d time.Duration) time.Duration {
	if raceEnabled {
		return raceSlowdown * d
	}
	return d
}
