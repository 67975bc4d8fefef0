package main

import (
	"testing"
)

func TestJudge(t *testing.T) {
	// got builds what a stream received: pairs of (order, index).
	got := func(pairs ...int) []received {
		var rs []received
		for i := 0; i < len(pairs); i += 2 {
			rs = append(rs, received{order: uint64(pairs[i]), index: int64(pairs[i+1])})
		}
		return rs
	}
	tests := []struct {
		name string
		got  []received
		want []int64
		v    verdict
	}{
		{"exact", got(1, 10, 2, 11, 5, 12), []int64{10, 11, 12}, verdict{}},
		{"exact in another order of indices", got(1, 12, 2, 10, 3, 11), []int64{10, 11, 12}, verdict{}},
		{"nothing published, nothing received", nil, nil, verdict{}},
		{"one missing", got(1, 10, 3, 12), []int64{10, 11, 12}, verdict{missing: 1}},
		{"all missing", nil, []int64{10, 11}, verdict{missing: 2}},
		{"a duplicate", got(1, 10, 2, 11, 2, 11), []int64{10, 11}, verdict{extra: 1, disorder: 1}},
		{"never acknowledged", got(1, 10, 2, 99), []int64{10}, verdict{extra: 1}},
		{"out of order", got(2, 11, 1, 10, 3, 12), []int64{10, 11, 12}, verdict{disorder: 1}},
		{"missing and extra", got(1, 10, 2, 13), []int64{10, 11}, verdict{missing: 1, extra: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := judge(tt.got, tt.want)
			if v != tt.v {
				t.Errorf("judge = %+v, want %+v", v, tt.v)
			}
			if v.exact() != (tt.v == verdict{}) {
				t.Errorf("exact() = %t for %+v", v.exact(), v)
			}
		})
	}
}

func TestOrder(t *testing.T) {
	tests := []struct {
		kind, id string
		want     uint64
		ok       bool
	}{
		{natsse, "dn0x748fle8c-42", 42, true},
		{natsse, "dn0x748fle8c-0", 0, true},
		{natsse, "42", 0, false},
		{natsse, "dn0x748fle8c-x", 0, false},
		{nchan, "1795641862:3", 1795641862<<24 | 3, true},
		{nchan, "1795641862", 0, false},
		{nchan, "1795641862:[3],1", 0, false},
	}
	for _, tt := range tests {
		tg, err := newTarget(tt.kind, "http://127.0.0.1:1")
		if err != nil {
			t.Fatal(err)
		}
		got, ok := tg.order(tt.id)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("%s order(%q) = %d, %t; want %d, %t", tt.kind, tt.id, got, ok, tt.want, tt.ok)
		}
	}
	// Within one second nchan's tags count up; the next second starts again at 0.
	tg, _ := newTarget(nchan, "http://127.0.0.1:1")
	a, _ := tg.order("1795641862:999")
	b, _ := tg.order("1795641863:0")
	if a >= b {
		t.Errorf("order(1795641862:999) = %d, not below order(1795641863:0) = %d", a, b)
	}
}

func TestParseData(t *testing.T) {
	index, sent, ok := parseData("42 1700000000000000000 xxxx")
	if !ok || index != 42 || sent != 1700000000000000000 {
		t.Errorf("parseData = %d, %d, %t", index, sent, ok)
	}
	if _, _, ok := parseData("hello"); ok {
		t.Error("parseData(hello) is ok")
	}
}
