// h builds an element: h('div', {class: 'x', 'data-id': id}, child, ...).
// Children are nodes or strings (set as text, never parsed as HTML), so a
// name from the cluster cannot inject markup.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// bar is a usage bar: used of total, with a label.
export function bar(label, used, total, fmt) {
  used = Number(used || 0);
  total = Number(total || 0);
  const pct = total > 0 ? Math.min(100, Math.round((used / total) * 100)) : 0;
  // The width is set through the DOM: the page's policy allows no
  // inline style attributes.
  const fill = h('span', {class: 'bar-fill'});
  fill.style.width = `${pct}%`;
  return h('div', {class: 'bar', title: `${label}: ${fmt(used)} of ${fmt(total)} reserved`},
    h('span', {class: 'bar-label'}, `${label} ${fmt(used)} / ${fmt(total)}`),
    h('span', {class: 'bar-track'}, fill));
}

export const cpus = (nano) => `${(Number(nano || 0) / 1e9).toFixed(1)}`;
export function bytes(n) {
  n = Number(n || 0);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
export function ago(ts) {
  if (!ts) return '';
  const s = Math.max(0, (Date.now() - Date.parse(ts)) / 1000);
  if (s < 60) return `${s.toFixed(0)}s ago`;
  if (s < 3600) return `${(s / 60).toFixed(0)}m ago`;
  return `${(s / 3600).toFixed(0)}h ago`;
}
export const short = (id) => (id || '').slice(0, 12);
