package dispatcher

// Leading reports whether the dispatcher's liveness check leads (it drops
// gossip events until it does).
func (d *Dispatcher) Leading() bool { return d.live.isLeading() }
