// The page's data source: the cluster's objects, kept fresh. Views read
// `state` and are told by onChange when it changed.
//
// Today it reads the list methods and refreshes them when the Events
// stream reports a change. A Watch stream (objects plus changes) can
// replace it behind the same three things: state, onChange and the
// timeline events it passes to onEvent.
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
  stream('Events', {}, {
    // Subscribed: every change from here on arrives as an event, so one
    // full read now leaves no gap (also after a reconnect).
    onOpen: () => { onLive('live'); refresh(); },
    onMessage: (ev) => { onEvent(ev); schedule(); },
    onError: (msg, closed) => onLive(closed ? 'closed' : 'reconnecting', msg),
  });
  setInterval(status, statusEvery);
  refresh();
}
