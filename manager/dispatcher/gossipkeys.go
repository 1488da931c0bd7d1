package dispatcher

import (
	"context"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// sendKeys sends the agent the cluster's gossip keyring when its version
// differs from the one sent last on this session (*sent). Agents start
// gossip only once they have it, so it follows the first assignment set
// at once.
func (s *session) sendKeys(sent *uint64) error {
	ring, ok := s.d.cfg.State.Read().GossipKeyring()
	if !ok || ring.Version == *sent {
		return nil
	}
	msg := &shoalpb.GossipKeys{Version: ring.Version, Keys: ring.Raw()}
	if err := s.stream.Send(&shoalpb.ManagerMessage{Msg: &shoalpb.ManagerMessage_GossipKeys{GossipKeys: msg}}); err != nil {
		return err
	}
	*sent = ring.Version
	return nil
}

// watchKeys wakes every session when the gossip keyring changes, so that
// each sends the new version (sendKeys) without waiting for a task change.
func (d *Dispatcher) watchKeys(ctx context.Context) error {
	var last uint64
	for {
		changed := d.cfg.State.Changed()
		if ring, ok := d.cfg.State.Read().GossipKeyring(); ok && ring.Version != last {
			last = ring.Version
			d.pokeAll()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}
