package natsbus

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"
)

// nodeProcessEnv carries the route ports and store of the cluster node that a test binary
// runs instead of its tests (see TestMain).
const nodeProcessEnv = "NATSBUS_TEST_NODE_PROCESS"

// nodeProcess is what runNodeProcess needs to run a node.
type nodeProcess struct {
	Node     int
	Ports    []int
	StoreDir string
}

// TestMain runs a cluster node instead of the tests when startNodeProcess asks for one.
func TestMain(m *testing.M) {
	if spec := os.Getenv(nodeProcessEnv); spec != "" {
		os.Exit(runNodeProcess(spec))
	}
	os.Exit(m.Run())
}

// runNodeProcess runs the cluster node spec describes, for a test to kill: it prints
// "ready" once the node serves, and runs until its standard input closes.
func runNodeProcess(spec string) int {
	var np nodeProcess
	if err := json.Unmarshal([]byte(spec), &np); err != nil {
		fmt.Fprintln(os.Stderr, "node process:", err)
		return 2
	}
	o := DefaultOptions()
	o.StoreDir = np.StoreDir
	clusterNode(np.Node, np.Ports)(&o)
	b, err := New(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "node process:", err)
		return 1
	}
	defer b.Close()
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// startNodeProcess starts node i of the cluster of ports in a process of its own, and
// returns once it is ready. The process is killed at the end of the test.
func startNodeProcess(t *testing.T, i int, ports []int) *exec.Cmd {
	t.Helper()
	spec, _ := json.Marshal(nodeProcess{Node: i, Ports: ports, StoreDir: t.TempDir()})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nodeProcessEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // the node ends when it closes, should this process die
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- true
				break
			}
		}
		close(ready)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("node %d's process ended before it was ready", i)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("node %d's process not ready after 2 minutes", i)
	}
	return cmd
}

// makeLeader asks the stream's leader to hand over to the server named name until it has.
func makeLeader(t *testing.T, b *Bus, name string) {
	t.Helper()
	req := []byte(fmt.Sprintf(`{"placement":{"preferred":%q}}`, name))
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		info, err := b.info(ctx)
		cancel()
		if err == nil && info.Cluster.Leader == name {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not become the stream's leader: %v", name, err)
		}
		if err == nil {
			_, _ = b.nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+b.opts.Stream, req, 5*time.Second)
		}
		<-time.After(200 * time.Millisecond) // polling interval
	}
}

// waitLeader polls until the stream has a leader, and returns when it first saw it.
func waitLeader(t *testing.T, b *Bus) time.Time {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		_, err := b.info(ctx)
		cancel()
		if err == nil {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stream leader a minute after the kill: %v", err)
		}
		<-time.After(50 * time.Millisecond) // polling interval
	}
}

// published is the outcome of one Publish.
type published struct {
	data       string
	seq        uint64
	err        error
	sent, done time.Time
}

// TestPublishLeaderDeath kills the stream leader's node (SIGKILL: no hand-over) while the
// two other nodes publish, half with message ids of their own and half without. Every
// publish is answered within the leader election — not after its whole timeout — and with
// success, as the survivors keep a quorum; every acknowledged event is stored once.
func TestPublishLeaderDeath(t *testing.T) {
	t.Parallel()
	ports := freePorts(t, 3)
	var victim *exec.Cmd
	buses := make([]*Bus, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range buses {
		wg.Go(func() { buses[i], errs[i] = New(testOptions(t, clusterNode(i, ports))) })
	}
	victim = startNodeProcess(t, 2, ports)
	wg.Wait()
	for i, b := range buses {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		t.Cleanup(func() { b.Close() })
	}
	makeLeader(t, buses[0], "n2")

	const (
		// publishTimeout is longer than the gateway's default (10s), as an election may take
		// up to 10s: in nats-server 2.15, a follower campaigns after 4 to 9s without news.
		publishTimeout = 20 * time.Second
		// answerWithin bounds the wait of a publish after the new leader shows up: an
		// attempt sent as it takes over may go unanswered (attemptTimeout), then the
		// backlog of every waiting publish is stored at once, on a busy machine.
		answerWithin = attemptTimeout + 2*time.Second
	)
	var (
		mu       sync.Mutex
		outcomes []published
		killedAt time.Time
	)
	acked := func(after time.Time) (n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, o := range outcomes {
			if o.err == nil && o.sent.After(after) {
				n++
			}
		}
		return n
	}
	// Each node publishes every 10ms, each publish on a goroutine of its own, as HTTP
	// publishers would: publishes go on being sent while the stream has no leader.
	stop := make(chan struct{})
	var loops, publishes sync.WaitGroup
	for node, b := range buses {
		loops.Go(func() {
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				publishes.Go(func() {
					o := published{data: fmt.Sprintf("n%d-%d", node, i), sent: time.Now()}
					p := Publication{Topic: "death", Data: []byte(o.data)}
					if i%2 == 0 {
						p.MsgID = o.data
					}
					ctx, cancel := context.WithTimeout(t.Context(), publishTimeout)
					res, err := b.Publish(ctx, p)
					cancel()
					o.seq, o.err, o.done = res.Seq, err, time.Now()
					mu.Lock()
					outcomes = append(outcomes, o)
					mu.Unlock()
				})
			}
		})
	}
	halt := func() {
		close(stop)
		loops.Wait()
		publishes.Wait()
	}
	waitAcks := func(n int, since time.Time, what string) {
		deadline := time.Now().Add(time.Minute)
		for acked(since) < n {
			if time.Now().After(deadline) {
				halt()
				t.Fatalf("fewer than %d publishes acknowledged %s within a minute", n, what)
			}
			<-time.After(20 * time.Millisecond) // polling interval
		}
	}
	waitAcks(100, time.Time{}, "before the kill")
	killedAt = time.Now()
	if err := victim.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	electedAt := waitLeader(t, buses[0])
	waitAcks(200, electedAt, "after the election")
	halt()

	// Every publish was answered in time, and with success.
	var slowest published
	inFlight := 0
	for _, o := range outcomes {
		if o.done.Sub(o.sent) > slowest.done.Sub(slowest.sent) {
			slowest = o
		}
		if o.sent.Before(killedAt) && o.done.After(killedAt) {
			inFlight++
		}
		if o.err != nil {
			t.Errorf("publish %s failed after %s: %v", o.data, o.done.Sub(o.sent).Round(time.Millisecond), o.err)
		}
	}
	t.Logf("new leader %s after the kill; %d publishes, %d of them in flight at the kill; the slowest took %s (sent %s after the kill)",
		electedAt.Sub(killedAt).Round(time.Millisecond), len(outcomes), inFlight,
		slowest.done.Sub(slowest.sent).Round(time.Millisecond), slowest.sent.Sub(killedAt).Round(time.Millisecond))
	if late := slowest.done.Sub(electedAt); late > answerWithin {
		t.Errorf("publish %s was answered %s after the new leader showed up, %s after it was sent: want at most %s after the leader",
			slowest.data, late.Round(time.Millisecond), slowest.done.Sub(slowest.sent).Round(time.Millisecond), answerWithin)
	}
	checkStoredOnce(t, buses[0], outcomes)
}

// checkStoredOnce checks that every acknowledged publication of outcomes is stored at its
// sequence, and that none was stored twice.
func checkStoredOnce(t *testing.T, b *Bus, outcomes []published) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, last, err := b.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string][]uint64{}
	err = b.Replay(ctx, []string{"death"}, 0, last, func(m Message) error {
		stored[string(m.Data)] = append(stored[string(m.Data)], m.Seq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, o := range outcomes {
		if o.err == nil && !slices.Equal(stored[o.data], []uint64{o.seq}) {
			if bad++; bad <= 10 {
				t.Errorf("%s acknowledged at seq %d, stored at %v", o.data, o.seq, stored[o.data])
			}
		}
	}
	for data, seqs := range stored {
		if len(seqs) > 1 {
			if bad++; bad <= 10 {
				t.Errorf("%s stored %d times: %v", data, len(seqs), seqs)
			}
		}
	}
}
