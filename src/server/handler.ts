// The request handler: request target → route → response, with auth in front of every route
// but /healthz. It holds no server, so it runs under any node:http or node:https server, or
// in-process in tests.
import type { IncomingMessage, RequestListener } from 'node:http';
import { markServed } from '../served-here.ts';
import { ErrorCodes } from '../errors.ts';
import { CONTENT_TYPES, PATHS } from '../protocol/index.ts';
import { createTokenCheck } from './auth.ts';
import { buildStatus, type HandlerContext } from './context.ts';
import { parseRequestPath } from './request-path.ts';
import { send, sendError, type Response } from './respond.ts';
import { serveBatch } from './routes/batch.ts';
import { serveBlob } from './routes/blobs.ts';
import { serveManifest } from './routes/manifest.ts';
import { servePage } from './routes/page.ts';
import { serveStatus } from './routes/status.ts';

type Handle = (req: IncomingMessage, res: Response, context: HandlerContext, rest: string) => void | Promise<void>;

interface Route {
  readonly methods: readonly string[];
  /** Served without a token. */
  readonly open?: boolean;
  readonly handle: Handle;
}

const READ = ['GET', 'HEAD'] as const;

function routeFor(path: string, startedAt: number): { route: Route; rest: string } | undefined {
  const status = (context: HandlerContext) => buildStatus(context, startedAt);
  switch (path) {
    case PATHS.healthz:
      return { route: { methods: READ, open: true, handle: (req, res) => send(req, res, 200, { 'content-type': CONTENT_TYPES.text, 'cache-control': 'no-store' }, 'ok') }, rest: '' };
    case PATHS.manifest:
      return { route: { methods: READ, handle: serveManifest }, rest: '' };
    case PATHS.batch:
      return { route: { methods: ['POST'], handle: serveBatch }, rest: '' };
    case PATHS.status:
      return { route: { methods: READ, handle: (req, res, context) => serveStatus(req, res, status(context)) }, rest: '' };
    case PATHS.page:
      return { route: { methods: READ, handle: (req, res, context) => servePage(req, res, status(context), context.snapshots.current) }, rest: '' };
    case PATHS.channel:
      // Upgrades never reach here (the server's 'upgrade' event takes them); a plain GET is a mistake.
      return {
        route: {
          methods: ['GET'],
          handle: (req, res) => sendError(req, res, 426, ErrorCodes.BAD_REQUEST, `${PATHS.channel} is a WebSocket endpoint; connect to it with a WebSocket client`, { upgrade: 'websocket', connection: 'Upgrade' }),
        },
        rest: '',
      };
    default:
      if (path.startsWith(PATHS.blobs)) return { route: { methods: READ, handle: serveBlob }, rest: path.slice(PATHS.blobs.length) };
      return undefined;
  }
}

export const UNAUTHORIZED_MESSAGE = 'this server needs a token: send the header "Authorization: Bearer <token>" with a token it was started with';

/**
 * Creates the node:http request listener that serves the livemod HTTP protocol.
 * @example
 * const options = resolveServerOptions({});
 * const snapshots = new SnapshotStore(options.keepVersions);
 * snapshots.publish(snapshot);
 * http.createServer(createRequestHandler({ options, snapshots })).listen(8080);
 */
export function createRequestHandler(context: HandlerContext): RequestListener {
  const authorized = createTokenCheck(context.options.tokens);
  const startedAt = context.startedAt ?? Date.now();
  const handle = async (req: IncomingMessage, res: Response): Promise<void> => {
    const target = parseRequestPath(req.url);
    if (!target.ok) {
      sendError(req, res, target.status, target.status === 414 ? ErrorCodes.TOO_LARGE : ErrorCodes.BAD_REQUEST, `malformed request target: ${target.reason}`);
      return;
    }
    const found = routeFor(target.path, startedAt);
    // Auth before 404, so a client without a token learns nothing about which paths exist.
    if (!found?.route.open && !authorized(req.headers.authorization)) {
      sendError(req, res, 401, ErrorCodes.UNAUTHORIZED, UNAUTHORIZED_MESSAGE, { 'www-authenticate': 'Bearer' });
      return;
    }
    if (!found) {
      sendError(req, res, 404, ErrorCodes.NOT_FOUND, `nothing is served at ${JSON.stringify(target.path.slice(0, 100))}; livemod serves /manifest.json, /blobs/<hash>, /batch, /channel, /status and /`);
      return;
    }
    const { route, rest } = found;
    if (!route.methods.includes(req.method ?? '')) {
      const allow = route.methods.join(', ');
      sendError(req, res, 405, ErrorCodes.METHOD_NOT_ALLOWED, `${String(req.method).slice(0, 20)} is not allowed on ${target.path.slice(0, 100)}; use ${allow}`, { allow });
      return;
    }
    await route.handle(req, res, context, rest);
  };
  // The ports this handler answers on, as a client of this process must know them (served-here.ts):
  // a handler mounted on a server of the program's own is seen at its first request (a client's
  // manifest request comes before anything it would block on). Never unmarked: a wrong guess
  // only makes such a client fetch at start.
  const ports = new Set<number>();
  return (req, res) => {
    const port = req.socket.localPort;
    if (port !== undefined && !ports.has(port)) {
      ports.add(port);
      markServed(port);
    }
    handle(req, res).catch((error: unknown) => {
      context.options.log(`[livemod serve] ${req.method} ${String(req.url).slice(0, 200)} failed: ${error instanceof Error ? error.stack : String(error)}`);
      if (res.headersSent) res.destroy();
      else sendError(req, res, 500, ErrorCodes.SERVE_FAILED, 'the server failed while answering; its log says why');
    });
  };
}
