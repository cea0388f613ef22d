/** A real local HTTP server that records every request (for http effects, webhooks, probes). */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  json: unknown;
}

export interface TestHttpServer {
  url: string;
  requests: RecordedRequest[];
  /** Decides each response (default 200 `{"ok":true}`). */
  respond: (req: RecordedRequest, res: ServerResponse) => void;
  close(): Promise<void>;
}

export async function startHttpServer(): Promise<TestHttpServer> {
  const state: TestHttpServer = {
    url: '',
    requests: [],
    respond: (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"ok":true}'); },
    close: async () => undefined,
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try { json = body ? JSON.parse(body) : undefined; } catch { json = undefined; }
      const rec: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, json };
      state.requests.push(rec);
      state.respond(rec, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address();
  state.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  state.close = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  return state;
}
