// The single-page app: routes on the URL's hash, renders the current view
// from the data source's state, and keeps the live event timeline.
import {start, state} from './source.js';
import {session} from './api.js';
import {onResult} from './actions.js';
import {clusterView, servicesView, serviceView, taskView, eventsView} from './views.js';

const maxEvents = 500;
const events = [];

function route() {
  const [, page = '', arg = ''] = location.hash.replace(/^#/, '').split('/');
  return {page: page || 'cluster', arg: decodeURIComponent(arg)};
}

function render() {
  const {page, arg} = route();
  const views = {
    cluster: () => clusterView(state, events),
    services: () => servicesView(state),
    service: () => serviceView(state, arg),
    task: () => taskView(state, arg),
    events: () => eventsView(events),
  };
  const view = views[page] || views.cluster;
  document.getElementById('page').replaceChildren(view());
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === page || (page === 'service' && a.dataset.nav === 'services'));
  }
}

function showError(msg) {
  const el = document.getElementById('error');
  el.hidden = !msg;
  el.textContent = msg || '';
}

function setLive(s, msg) {
  const el = document.getElementById('live');
  el.dataset.state = s;
  el.textContent = s;
  el.title = msg || 'the event stream';
}

window.addEventListener('hashchange', render);
onResult(showError);
// The role decides which write controls show; a page without a session
// stays read-only.
session().then((s) => {
  const el = document.getElementById('role');
  el.textContent = s.role;
  el.title = s.caller;
  render();
}, (err) => showError(err.message));
start({
  onChange: render,
  onEvent: (ev) => {
    events.push(ev);
    if (events.length > maxEvents) events.splice(0, events.length - maxEvents);
  },
  onLive: setLive,
  onError: showError,
});
render();
