// GET/HEAD /: a self-contained status page for a human at a browser. No scripts, no external
// resources; the listing is capped so a huge snapshot does not make a huge page.
import type { IncomingMessage } from 'node:http';
import { CONTENT_TYPES, type ServerStatus } from '../../protocol/index.ts';
import type { PublishedSnapshot } from '../snapshots.ts';
import { html, type Html } from '../html.ts';
import { send, type Response } from '../respond.ts';

export const PAGE_MODULE_ROWS = 500;

const STYLE = 'body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{padding:2px 12px 2px 0;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}code{font-size:13px}.ok{color:#176f2c}.bad{color:#b3261e}small{color:#555}';

function modulesTable(current: PublishedSnapshot): Html {
  const entries = Object.entries(current.snapshot.manifest.modules);
  const rows = entries.slice(0, PAGE_MODULE_ROWS).map(([path, record]) =>
    html`<tr><td><code>${path}</code></td><td class="n">${record.blob.size}</td><td class="n">${record.map?.size ?? '—'}</td></tr>`);
  const more = entries.length > PAGE_MODULE_ROWS ? html`<p>and ${entries.length - PAGE_MODULE_ROWS} more</p>` : html``;
  return html`<table><tr><th>module</th><th>bytes</th><th>map bytes</th></tr>${rows}</table>${more}`;
}

const SWAP_TEXT_LIMIT = 160;

/** A client's last swap report, as one line: what it did, to which version, how long it took, and why it failed. */
function swapCell(swap: Readonly<Record<string, unknown>> | undefined): Html {
  if (!swap) return html`\u2014`;
  const text = (value: unknown): string => String(value).slice(0, SWAP_TEXT_LIMIT);
  const status = text(swap.status ?? '?');
  const modules = Array.isArray(swap.modules) ? `${swap.modules.length} module${swap.modules.length === 1 ? '' : 's'}` : '';
  const duration = typeof swap.durationMs === 'number' ? `${swap.durationMs.toFixed(1)} ms` : '';
  const detail = [swap.version !== undefined ? `to ${text(swap.version)}` : '', modules, duration].filter(Boolean).join(', ');
  const error = swap.error !== undefined ? html`<br><small>${text(swap.error)}</small>` : html``;
  return html`<b class="${status === 'applied' ? 'ok' : status === 'failed' ? 'bad' : ''}">${status}</b> ${detail}${error}`;
}

function clientsTable(status: ServerStatus): Html {
  if (status.clients.length === 0) return html`<p>No channel clients connected.</p>`;
  const rows = status.clients.map((client) =>
    html`<tr><td>${client.id}</td><td>${client.address}</td><td>${client.connectedAt}</td><td class="n">${client.version ?? '—'}</td><td>${swapCell(client.swap)}</td><td>${client.lastStatusAt ?? '—'}</td></tr>`);
  return html`<table><tr><th>id</th><th>address</th><th>connected</th><th>runs version</th><th>last swap</th><th>last status</th></tr>${rows}</table>`;
}

function clusterPart(status: ServerStatus): Html {
  const cluster = status.cluster;
  if (!cluster) return html``;
  const broker = cluster.broker === null ? html`no broker` : html`broker <code>${cluster.broker}</code> <b class="${cluster.brokerConnected ? 'ok' : 'bad'}">${cluster.brokerConnected ? 'connected' : 'disconnected'}</b>`;
  const source = cluster.source === undefined ? html`` : html`<br>Follows <code>${cluster.source}</code>: last look ${cluster.lastLookAt ?? '—'}, last new version ${cluster.lastChangeAt ?? '—'}${cluster.lastError ? html`, <b class="bad">last error</b> ${cluster.lastError}` : html``}.`;
  return html`<p>Fleet ${cluster.role}, ${broker}.${source}</p>`;
}

export function renderPage(status: ServerStatus, current: PublishedSnapshot | undefined): string {
  const summary = current
    ? html`<p>Version <b>${status.version}</b>, created ${status.created}, expires ${status.expires}. Publisher key id <code>${status.keyId}</code>.
${status.modules} modules, ${status.bytes} blob bytes. Published ${status.published} times since start.</p>`
    : html`<p>No snapshot published yet.</p>`;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>livemod ${status.version ?? 'server'}</title><style>${STYLE}</style></head>
<body><h1>livemod</h1>${summary}${clusterPart(status)}
<h2>Channel clients (${status.clientCount})</h2>${clientsTable(status)}
<h2>Modules</h2>${current ? modulesTable(current) : html`<p>None.</p>`}
</body></html>
`.text;
}

export function servePage(req: IncomingMessage, res: Response, status: ServerStatus, current: PublishedSnapshot | undefined): void {
  send(req, res, 200, {
    'content-type': CONTENT_TYPES.html,
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
  }, renderPage(status, current));
}
