// A loopback webhook receiver for tests: each path answers by its script (default 404), keyed by how often the
// same webhook-id came; every request is kept with its headers, body and answer.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the receiver got, and what it answered. */
export interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
  at: number;
  status: number;
  answeredAt: number;
}

export type Answer = (attemptOfThisId: number) => { status: number; headers?: Record<string, string> };

/** A loopback webhook receiver: each path answers by its script, keyed by how often this webhook-id came. */
export class Receiver {
  readonly received: Received[] = [];
  private readonly scripts = new Map<string, Answer>();
  private readonly server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const path = req.url ?? '';
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
      const attempt =
        this.received.filter((r) => r.path === path && r.headers['webhook-id'] === headers['webhook-id']).length + 1;
      const answer = this.scripts.get(path)?.(attempt) ?? { status: 404 };
      const entry: Received = { path, headers, body, at: Date.now(), status: answer.status, answeredAt: 0 };
      this.received.push(entry);
      res.writeHead(answer.status, answer.headers).end(() => (entry.answeredAt = Date.now()));
    });
  });
  port = 0;

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** A URL on this receiver whose requests `answer` scripts. */
  route(path: string, answer: Answer, host = '127.0.0.1'): string {
    this.scripts.set(path, answer);
    return `http://${host}:${this.port}${path}`;
  }

  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
