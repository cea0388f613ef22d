/**
 * The `--metrics-port` endpoint: `GET /metrics` (Prometheus text format) and `GET /healthz`,
 * on node:http, nothing else.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ExitCode, RepriseError } from '../../compiler/errors.js';
import type { RunMetrics } from './metrics.js';

export interface MetricsServer {
  /** `http://127.0.0.1:<port>/metrics` when bound to all interfaces, else the bound host. */
  url: string;
  /** The bound port (useful with port 0). */
  port: number;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  /** Interface to bind. @defaultValue all interfaces (Prometheus usually scrapes from another host) */
  host?: string;
}

/**
 * Serves `metrics` on `port` (0 picks a free one). Rejects with `METRICS_PORT_UNAVAILABLE` when
 * the port cannot be bound.
 */
export async function startMetricsServer(port: number, metrics: Pick<RunMetrics, 'metrics' | 'contentType'>, opts: MetricsServerOptions = {}): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('ok\n');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics\n');
      return;
    }
    metrics.metrics().then(
      (body) => {
        res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`metrics collection failed: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(
        new RepriseError('METRICS_PORT_UNAVAILABLE', `cannot serve metrics on port ${port}: ${err.code ?? err.message}`, {
          exit: ExitCode.invalidInput,
          hint: 'choose another --metrics-port, or 0 for any free port',
          cause: err,
        }),
      );
    };
    server.once('error', onError);
    server.listen({ port, host: opts.host }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const anyHost = !opts.host || opts.host === '0.0.0.0' || opts.host === '::';
  const host = anyHost ? '127.0.0.1' : opts.host!.includes(':') ? `[${opts.host}]` : opts.host!;
  return {
    url: `http://${host}:${addr.port}/metrics`,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
