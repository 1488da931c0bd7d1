// The JSON gateway: GET /api/v1/<Method>?field=value is the Control API's
// method of that name; the JSON is the response message with proto field
// names (as shoalctl --format json prints it).
export async function call(method, params = {}) {
  const q = new URLSearchParams(params).toString();
  const resp = await fetch(`/api/v1/${method}${q ? '?' + q : ''}`, {headers: {Accept: 'application/json'}});
  const body = await resp.json().catch(() => ({error: resp.statusText}));
  if (!resp.ok) throw new Error(`${method}: ${body.error || resp.statusText}`);
  return body;
}

// session is who the gateway takes this browser for: its role, the
// writes that role may make, and the token every write carries.
let current = null;
export async function session() {
  const resp = await fetch('/api/session', {headers: {Accept: 'application/json'}});
  const body = await resp.json().catch(() => ({error: resp.statusText}));
  if (!resp.ok) throw new Error(`session: ${body.error || resp.statusText}`);
  current = body;
  return body;
}

export const canWrite = (method) => !!current && (current.writes || []).includes(method);

// write makes a Control write: POST /api/v1/<Method> with the request's
// fields as JSON, the session's token in its header. The gateway answers
// a refusal (role, input) with the server's error.
export async function write(method, fields) {
  const resp = await fetch(`/api/v1/${method}`, {
    method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json', Accept: 'application/json', 'X-Shoal-Csrf': current?.csrf_token || ''},
    body: JSON.stringify(fields),
  });
  const body = await resp.json().catch(() => ({error: resp.statusText}));
  if (!resp.ok) throw new Error(`${method}: ${body.error || resp.statusText}`);
  return body;
}

// stream opens a streaming method (Watch, Events, ServiceLogs) as
// Server-Sent Events and calls onMessage with each message. onOpen runs
// each time the stream is (re)connected. onResync runs when the stream
// cannot go on (the client fell behind, or the manager dropped the
// watch); the stream is closed then and the caller opens a new one. It
// returns a function that closes the stream.
export function stream(method, params, {onOpen, onMessage, onEnd, onError, onResync}) {
  const q = new URLSearchParams(params).toString();
  const es = new EventSource(`/api/v1/${method}${q ? '?' + q : ''}`);
  es.onopen = () => onOpen && onOpen();
  es.onmessage = (e) => onMessage(JSON.parse(e.data));
  es.addEventListener('end', () => { es.close(); onEnd && onEnd(); });
  es.addEventListener('resync', (e) => { es.close(); onResync && onResync(JSON.parse(e.data)); });
  es.addEventListener('error', (e) => {
    // A server-sent "error" event carries the gRPC error; a bare one is
    // the connection (the browser retries it unless it was refused).
    const msg = e.data ? JSON.parse(e.data).error : (es.readyState === EventSource.CLOSED ? 'refused' : 'reconnecting');
    onError && onError(msg, es.readyState === EventSource.CLOSED);
  });
  return () => es.close();
}
