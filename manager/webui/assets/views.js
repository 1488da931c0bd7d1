// The pages. Each view is a function of the data source's state that
// returns the page's element; the app re-renders the current view when
// the state changes.
import {h, bar, cpus, bytes, ago, short} from './dom.js';
import {stream} from './api.js';
import {serviceActions, nodeActions} from './actions.js';

const terminal = new Set(['complete', 'failed', 'shutdown', 'rejected', 'orphaned']);
const isActive = (t) => t.desired_state === 'running' && !terminal.has(t.status?.state);
const taskName = (t) => `${t.service_name}.${t.slot && t.slot !== '0' ? t.slot : short(t.node_id)}`;

function nodeName(state, id) {
  const n = state.nodes.find((s) => s.node.id === id);
  return n ? n.node.hostname : short(id);
}

function taskChip(t) {
  return h('a', {class: 'chip', href: `#/task/${t.id}`, 'data-task': t.id, 'data-state': t.status?.state || 'new',
    title: `${t.status?.state}: ${t.status?.message || ''}`}, taskName(t));
}

function managers(state) {
  const c = state.cluster;
  if (!c) return h('p', {}, 'loading…');
  return h('section', {class: 'managers'},
    h('h2', {}, 'Managers'),
    h('p', {class: 'meta'}, `cluster ${short(c.cluster_id)} · term ${c.term || 0} · commit ${c.commit_index || 0} · applied ${c.applied_index || 0} · answered by ${short(c.answered_by)}`),
    h('table', {},
      h('tr', {}, h('th', {}, 'id'), h('th', {}, 'address'), h('th', {}, 'raft'), h('th', {}, 'voter'), h('th', {}, 'reachable')),
      (c.managers || []).map((m) => h('tr', {'data-manager': m.id, 'data-raft': m.raft_state},
        h('td', {}, short(m.id)), h('td', {}, m.addr),
        h('td', {}, h('span', {class: `badge raft-${m.raft_state}`}, m.raft_state)),
        h('td', {}, m.voter ? 'yes' : 'standby'), h('td', {}, m.reachable ? 'yes' : 'no')))));
}

function nodeCard(state, s) {
  const n = s.node;
  const tasks = state.tasks.filter((t) => t.node_id === n.id && isActive(t));
  const res = n.resources || {};
  const rsv = s.reserved || {};
  return h('div', {class: `node status-${n.status}`, 'data-node': n.hostname, 'data-status': n.status},
    h('div', {class: 'node-head'},
      h('strong', {}, n.hostname),
      h('span', {class: `badge status-${n.status}`}, n.status),
      h('span', {class: 'meta'}, `${n.role}${s.manager_status ? ' (' + s.manager_status + ')' : ''} · ${n.availability}`)),
    n.status_message ? h('p', {class: 'meta'}, n.status_message) : null,
    nodeActions(n),
    bar('CPU', rsv.nano_cpus, res.nano_cpus, cpus),
    bar('memory', rsv.memory_bytes, res.memory_bytes, bytes),
    h('div', {class: 'chips'}, tasks.length ? tasks.map(taskChip) : h('span', {class: 'meta'}, 'no tasks')));
}

export function timelineItem(ev) {
  const a = ev.attributes || {};
  const detail = a.state || a.status || (a.replicas ? `replicas ${a.replicas}` : '');
  const bad = a.status === 'down' || ['failed', 'orphaned', 'rejected'].includes(a.state);
  const t = new Date(ev.time || Date.now());
  return h('li', {class: bad ? 'ev bad' : (a.state === 'running' || a.status === 'ready' ? 'ev good' : 'ev'),
    'data-type': ev.type, 'data-detail': detail},
    h('time', {}, t.toLocaleTimeString([], {hour12: false}) + '.' + String(t.getMilliseconds()).padStart(3, '0')),
    h('span', {class: 'ev-kind'}, `${ev.type} ${ev.action}`),
    h('span', {class: 'ev-name'}, ev.name || short(ev.id)),
    detail ? h('span', {class: 'ev-detail'}, detail) : null,
    a.node && ev.type === 'task' ? h('span', {class: 'meta'}, `on ${short(a.node)}`) : null);
}

function timeline(events, limit) {
  return h('ol', {class: 'timeline', id: 'timeline'}, events.slice(-limit).reverse().map(timelineItem));
}

export function clusterView(state, events) {
  return h('div', {class: 'cluster'},
    h('div', {class: 'main'}, managers(state),
      h('section', {}, h('h2', {}, `Nodes (${state.nodes.length})`),
        h('div', {class: 'nodes'}, state.nodes.map((s) => nodeCard(state, s))))),
    h('aside', {}, h('h2', {}, 'Live events'), timeline(events, 40)));
}

function updateState(svc) {
  const u = svc.update_status;
  return u && u.state ? `${u.state}${u.message ? ': ' + u.message : ''}` : '';
}

export function servicesView(state) {
  return h('section', {},
    h('h2', {}, `Services (${state.services.length})`),
    h('table', {class: 'services'},
      h('tr', {}, h('th', {}, 'name'), h('th', {}, 'mode'), h('th', {}, 'replicas'), h('th', {}, 'image'), h('th', {}, 'version'), h('th', {}, 'update')),
      state.services.map((s) => {
        const svc = s.service;
        const running = Number(s.running || 0);
        const desired = Number(s.desired || 0);
        return h('tr', {'data-service': svc.spec.name, 'data-running': running, 'data-desired': desired},
          h('td', {}, h('a', {href: `#/service/${encodeURIComponent(svc.spec.name)}`}, svc.spec.name)),
          h('td', {}, svc.spec.mode || 'replicated'),
          h('td', {class: running === desired ? 'ok' : 'warn'}, `${running}/${desired}`),
          h('td', {}, svc.spec.image), h('td', {}, svc.spec_version || ''),
          h('td', {}, updateState(svc)));
      })));
}

function taskRow(state, t) {
  return h('tr', {'data-task': t.id, 'data-state': t.status?.state},
    h('td', {}, h('a', {href: `#/task/${t.id}`}, short(t.id))),
    h('td', {}, taskName(t)), h('td', {}, nodeName(state, t.node_id)),
    h('td', {}, t.desired_state), h('td', {}, h('span', {class: `badge state-${t.status?.state}`}, t.status?.state)),
    h('td', {}, t.status?.err || t.status?.message || t.status?.pending_reason || ''),
    h('td', {}, ago(t.status?.timestamp || t.updated_at)));
}

function taskTable(state, tasks) {
  const sorted = [...tasks].sort((a, b) => Number(a.slot) - Number(b.slot) || Date.parse(b.created_at) - Date.parse(a.created_at));
  return h('table', {class: 'tasks'},
    h('tr', {}, ['task', 'name', 'node', 'desired', 'state', 'message', 'since'].map((c) => h('th', {}, c))),
    sorted.map((t) => taskRow(state, t)));
}

export function serviceView(state, name) {
  const s = state.services.find((x) => x.service.spec.name === name || x.service.id === name);
  if (!s) return h('p', {}, `no service ${name}`);
  const svc = s.service;
  const tasks = state.tasks.filter((t) => t.service_id === svc.id);
  return h('section', {'data-service-page': svc.spec.name},
    h('h2', {}, `Service ${svc.spec.name}`),
    h('dl', {},
      h('dt', {}, 'id'), h('dd', {}, svc.id),
      h('dt', {}, 'image'), h('dd', {}, svc.spec.image),
      h('dt', {}, 'replicas'), h('dd', {}, `${s.running || 0} running of ${s.desired || 0}`),
      h('dt', {}, 'version'), h('dd', {}, svc.spec_version || ''),
      h('dt', {}, 'update'), h('dd', {}, updateState(svc) || 'none')),
    serviceActions(svc),
    h('h3', {}, 'Tasks and their history'), taskTable(state, tasks));
}

// taskView shows a task, the history of its slot and its logs. The log
// pane is made once per task and kept across re-renders.
const logPanes = new Map();

function logPane(id) {
  if (logPanes.has(id)) return logPanes.get(id);
  const pre = h('pre', {class: 'logs', 'data-logs': id}, '');
  const status = h('p', {class: 'meta'}, 'reading logs…');
  stream('ServiceLogs', {service: id, follow: 'true', tail: '200'}, {
    onOpen: () => { status.textContent = 'following'; },
    onMessage: (l) => { pre.append(`${l.stream === 'stderr' ? '! ' : ''}${atob(l.line || '')}`); },
    onEnd: () => { status.textContent = 'end of logs'; },
    onError: (msg) => { status.textContent = `logs: ${msg}`; },
  });
  const el = h('div', {}, status, pre);
  logPanes.set(id, el);
  return el;
}

export function taskView(state, id) {
  const t = state.tasks.find((x) => x.id === id);
  if (!t) return h('p', {}, `no task ${id}`);
  const sameSlot = (x) => x.service_id === t.service_id && (t.slot && t.slot !== '0' ? x.slot === t.slot : x.node_id === t.node_id);
  return h('section', {'data-task-page': t.id},
    h('h2', {}, `Task ${taskName(t)}`),
    h('dl', {},
      h('dt', {}, 'id'), h('dd', {}, t.id),
      h('dt', {}, 'service'), h('dd', {}, h('a', {href: `#/service/${encodeURIComponent(t.service_name)}`}, t.service_name)),
      h('dt', {}, 'node'), h('dd', {}, nodeName(state, t.node_id)),
      h('dt', {}, 'state'), h('dd', {}, `${t.status?.state} (desired ${t.desired_state})`),
      h('dt', {}, 'container'), h('dd', {}, short(t.status?.container_id)),
      h('dt', {}, 'exit code'), h('dd', {}, t.status?.exit_code ?? '')),
    h('h3', {}, 'History of the slot'), taskTable(state, state.tasks.filter(sameSlot)),
    h('h3', {}, 'Logs'), logPane(t.id));
}

export function eventsView(events) {
  return h('section', {}, h('h2', {}, `Events (${events.length}, newest first)`), timeline(events, events.length));
}
