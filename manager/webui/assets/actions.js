// The write controls: shown only when the session's role may make the
// write (an operator certificate over --ui-tls); the gateway and the
// authorisation table judge every write again.
import {h} from './dom.js';
import {canWrite, write} from './api.js';

let report = () => {};
// onResult receives a write's outcome: an error's message, or null.
export function onResult(f) { report = f; }

async function run(method, fields, status) {
  status.textContent = `${method}…`;
  try {
    await write(method, fields);
    status.textContent = `${method} done`;
    report(null);
  } catch (err) {
    status.textContent = err.message;
    report(err.message);
  }
}

// The service controls are made once per service and kept across
// re-renders, so a number being typed survives a change arriving.
const servicePanes = new Map();

export function serviceActions(svc) {
  const name = svc.spec.name;
  if (!canWrite('ScaleService') && !canWrite('RollbackService')) return null;
  if (servicePanes.has(name)) return servicePanes.get(name);
  const status = h('span', {class: 'meta', 'data-write-status': name}, '');
  const input = h('input', {type: 'number', min: '0', step: '1', value: svc.spec.replicas || '0', 'data-scale-input': name, 'aria-label': 'replicas'});
  const el = h('div', {class: 'actions', 'data-actions': name},
    canWrite('ScaleService') ? [input,
      h('button', {'data-scale': name, onclick: () => run('ScaleService', {service: name, replicas: input.value}, status)}, 'Scale')] : null,
    canWrite('RollbackService') ? h('button', {'data-rollback': name, onclick: () => run('RollbackService', {service: name}, status)}, 'Roll back') : null,
    status);
  servicePanes.set(name, el);
  return el;
}

export function nodeActions(n) {
  if (!canWrite('UpdateNode')) return null;
  const to = n.availability === 'drain' ? 'active' : 'drain';
  const status = h('span', {class: 'meta'}, '');
  return h('div', {class: 'actions'},
    h('button', {'data-availability': n.hostname, onclick: () => run('UpdateNode', {node: n.id, availability: to}, status)},
      to === 'drain' ? 'Drain' : 'Activate'), status);
}
