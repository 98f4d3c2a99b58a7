// A small Server-Sent Events reader for tests (the wire format per the HTML spec: id/event/data fields, blank
// line ends an event, lines starting with ':' are comments).

export interface SseEvent {
  id?: string;
  event: string;
  data: any;
}

/**
 * Opens an event stream and yields its events until the server closes it or `stop` aborts. `lastEventId` is
 * sent as the Last-Event-ID header, as a reconnecting EventSource does.
 */
export async function* readSse(
  url: string,
  options: { lastEventId?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
): AsyncGenerator<SseEvent> {
  const res = await fetch(url, {
    headers: {
      accept: 'text/event-stream',
      ...(options.lastEventId ? { 'last-event-id': options.lastEventId } : {}),
      ...options.headers,
    },
    signal: options.signal,
  });
  if (res.status !== 200)
    throw Object.assign(new Error(`SSE ${url}: HTTP ${res.status} ${await res.text()}`), { status: res.status });
  const decoder = new TextDecoder();
  let buffer = '';
  let current: { id?: string; event?: string; data: string[] } = { data: [] };
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      if (line === '') {
        if (current.data.length > 0 || current.event) {
          yield {
            ...(current.id !== undefined ? { id: current.id } : {}),
            event: current.event ?? 'message',
            data: JSON.parse(current.data.join('\n')),
          };
        }
        current = { data: [] };
      } else if (!line.startsWith(':')) {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') current.id = value;
        else if (field === 'event') current.event = value;
        else if (field === 'data') current.data.push(value);
      }
    }
  }
}
