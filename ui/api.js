// The API as the page calls it: every request carries the API key kept in sessionStorage (when there is one), and
// the event stream is read with fetch() rather than EventSource, which cannot send an Authorization header.

const KEY = 'batchline.apiKey';

export const apiKey = {
  get: () => sessionStorage.getItem(KEY) ?? '',
  set: (key) => (key ? sessionStorage.setItem(KEY, key) : sessionStorage.removeItem(KEY)),
};

/** An answer other than 2xx, with the API's error code and message when it sent one. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(extra = {}) {
  const key = apiKey.get();
  return key ? { authorization: `Bearer ${key}`, ...extra } : extra;
}

/** A JSON call; resolves to the parsed body, rejects with ApiError. */
export async function call(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const error = parsed && parsed.error;
    throw new ApiError(res.status, error?.code ?? 'http', error?.message ?? `${res.status} ${res.statusText}`);
  }
  return parsed;
}

/**
 * Follows a Server-Sent Events stream until its end event, an abort, or a 204 (the end was seen): parses the
 * `id:`, `event:`, `data:` and `retry:` fields and calls onEvent(type, id, data) with `data` as text, so a consumer
 * that only counts an event never parses it. A dropped connection is resumed after `retry` ms with Last-Event-ID,
 * exactly where it stopped. onState('open' | 'retrying' | 'ended' | 'error: ...') reports the connection.
 */
export async function followEvents(path, { signal, onEvent, onState }) {
  let lastEventId = '';
  let retryMs = 2000;
  for (;;) {
    if (signal.aborted) return;
    try {
      const res = await fetch(path, {
        headers: headers({
          accept: 'text/event-stream',
          ...(lastEventId ? { 'last-event-id': lastEventId } : {}),
        }),
        signal,
      });
      if (res.status === 204) {
        onState('ended');
        return;
      }
      if (!res.ok) {
        const text = await res.text();
        let message = `${res.status}`;
        try {
          message = JSON.parse(text).error.message;
        } catch {
          // not the API's error shape
        }
        throw new ApiError(res.status, 'http', message);
      }
      onState('open');
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      let id;
      let type = '';
      let data = [];
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let start = 0;
        let nl;
        while ((nl = buffer.indexOf('\n', start)) >= 0) {
          let line = buffer.slice(start, nl);
          start = nl + 1;
          if (line.endsWith('\r')) line = line.slice(0, -1);
          if (line === '') {
            if (id !== undefined) lastEventId = id;
            if (data.length > 0 || type) onEvent(type || 'message', id ?? lastEventId, data.join('\n'));
            if (lastEventId === 'end') {
              onState('ended');
              await reader.cancel().catch(() => {});
              return;
            }
            id = undefined;
            type = '';
            data = [];
          } else if (line[0] !== ':') {
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            let v = colon < 0 ? '' : line.slice(colon + 1);
            if (v[0] === ' ') v = v.slice(1);
            if (field === 'data') data.push(v);
            else if (field === 'event') type = v;
            else if (field === 'id') id = v;
            else if (field === 'retry' && /^\d+$/.test(v)) retryMs = Number(v);
          }
        }
        buffer = buffer.slice(start);
      }
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
        onState(`error: ${err.message}`);
        return; // the client's fault (no key, another tenant's batch): retrying does not help
      }
    }
    if (signal.aborted) return;
    onState('retrying');
    await new Promise((resolve) => setTimeout(resolve, retryMs));
  }
}
