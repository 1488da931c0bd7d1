package raftstore

import (
	"fmt"
	"testing"
	"time"
)

// TestLeaderFanout: each subscriber sees leadership edges, never the same
// value twice in a row, and a subscriber that was told true hears false
// before its channel closes, even when raft's last notification is lost.
func TestLeaderFanout(t *testing.T) {
	cases := []struct {
		name    string
		leading bool   // at subscription
		notify  []bool // raft's notifications before close
		want    string // everything the channel gives until closed
	}{
		{name: "leader at subscription, raft repeats it", leading: true, notify: []bool{true}, want: "[true false]"},
		{name: "loses leadership", leading: true, notify: []bool{true, false}, want: "[true false]"},
		{name: "gains leadership", notify: []bool{true}, want: "[true false]"},
		{name: "follower throughout", notify: []bool{false}, want: "[]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			notify := make(chan bool)
			f := newLeaderFanout(notify)
			ch, cancel := f.subscribe(tc.leading)
			t.Cleanup(cancel)
			for _, v := range tc.notify {
				select {
				case notify <- v: // unbuffered: run has taken it
				case <-time.After(10 * time.Second):
					t.Fatal("fanout does not read notifications")
				}
			}
			f.close()
			got := []bool{}
			for v := range ch {
				got = append(got, v)
			}
			if fmt.Sprint(got) != tc.want {
				t.Errorf("channel gave %v, want %s", got, tc.want)
			}
		})
	}
}
