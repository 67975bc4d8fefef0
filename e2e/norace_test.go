//go:build !race

package e2e

// raceEnabled: these tests are built without -race, so the gateway they run is too.
const raceEnabled = false
