package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// memory returns the memory of process pid and its children in bytes, 0 if unknown: the
// sum of their proportional set sizes (PSS), so that the pages nginx's workers share with
// each other and with their master — nchan's shared memory among them — count once. For
// a single process like the gateway it is its resident memory (RSS) less its share of
// libraries mapped by others.
func memory(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	var total int64
	for _, p := range append([]int{pid}, children(pid)...) {
		total += pss(p)
	}
	return total
}

// pss reads a process's PSS from /proc/<pid>/smaps_rollup.
func pss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("Pss:")); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// children returns the ids of the processes whose parent is pid.
func children(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces and parentheses, so read after
		// the last ')'.
		i := bytes.LastIndex(b, []byte(") "))
		if i < 0 {
			continue
		}
		if f := strings.Fields(string(b[i+2:])); len(f) > 1 {
			if ppid, _ := strconv.Atoi(f[1]); ppid == pid {
				kids = append(kids, p)
			}
		}
	}
	return kids
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
