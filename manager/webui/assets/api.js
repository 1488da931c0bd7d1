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

// stream opens a streaming method (Events, ServiceLogs) as Server-Sent
// Events and calls onMessage with each message. onOpen runs each time the
// stream is (re)connected: for Events, every change after that moment
// reaches onMessage. It returns a function that closes the stream.
export function stream(method, params, {onOpen, onMessage, onEnd, onError}) {
  const q = new URLSearchParams(params).toString();
  const es = new EventSource(`/api/v1/${method}${q ? '?' + q : ''}`);
  es.onopen = () => onOpen && onOpen();
  es.onmessage = (e) => onMessage(JSON.parse(e.data));
  es.addEventListener('end', () => { es.close(); onEnd && onEnd(); });
  es.addEventListener('error', (e) => {
    // A server-sent "error" event carries the gRPC error; a bare one is
    // the connection (the browser retries it unless it was refused).
    const msg = e.data ? JSON.parse(e.data).error : (es.readyState === EventSource.CLOSED ? 'refused' : 'reconnecting');
    onError && onError(msg, es.readyState === EventSource.CLOSED);
  });
  return () => es.close();
}
