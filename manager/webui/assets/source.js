// The page's data source: the cluster's objects, kept fresh. Views read
// `state` and are told by onChange when it changed.
//
// It follows the Watch stream (with summaries: each change carries its
// Event record, for the timeline) and reads the list methods, which add
// what the objects alone lack (a node's reservations, a service's
// running count), when the stream opens and when a change arrives. A
// resync (the browser fell behind, or the manager dropped the watch)
// reads everything again and watches afresh.
import {call, stream} from './api.js';

export const state = {cluster: null, nodes: [], services: [], tasks: [], loadedAt: null};

// refreshDelay coalesces a burst of events (a failover commits many task
// changes) into one refresh.
const refreshDelay = 100;
// statusEvery polls the Raft status, which has no events of its own.
const statusEvery = 2000;

export function start({onChange, onEvent, onLive, onError}) {
  let timer = null;
  let running = false;
  let again = false;
  async function refresh() {
    if (running) { again = true; return; }
    running = true;
    try {
      const [cluster, nodes, services, tasks] = await Promise.all([
        call('ClusterStatus'), call('ListNodes'), call('ListServices'), call('ListTasks')]);
      Object.assign(state, {
        cluster, nodes: nodes.nodes || [], services: services.services || [], tasks: tasks.tasks || [],
        loadedAt: new Date(),
      });
      onError(null);
      onChange();
    } catch (err) {
      onError(err.message);
    } finally {
      running = false;
      if (again) { again = false; schedule(); }
    }
  }
  function schedule() {
    if (timer) return;
    timer = setTimeout(() => { timer = null; refresh(); }, refreshDelay);
  }
  async function status() {
    try {
      state.cluster = await call('ClusterStatus');
      onChange();
    } catch (err) {
      onError(err.message);
    }
  }
  function watch() {
    stream('Watch', {summaries: 'true'}, {
      // Subscribed: every change from here on arrives, so one full read
      // now leaves no gap (also after a reconnect).
      onOpen: () => { onLive('live'); refresh(); },
      onMessage: (m) => {
        if (m.snapshot || !m.changes) return;
        for (const c of m.changes) if (c.event) onEvent(c.event);
        schedule();
      },
      onResync: (r) => { onLive('resync', r.reason); refresh(); watch(); },
      onError: (msg, closed) => onLive(closed ? 'closed' : 'reconnecting', msg),
    });
  }
  watch();
  setInterval(status, statusEvery);
  refresh();
}
