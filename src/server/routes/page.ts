// GET/HEAD /: a self-contained status page for a human at a browser. No scripts, no external
// resources; the listing is capped so a huge snapshot does not make a huge page.
import type { IncomingMessage } from 'node:http';
import { CONTENT_TYPES, type ServerStatus } from '../../protocol/index.ts';
import type { PublishedSnapshot } from '../snapshots.ts';
import { html, type Html } from '../html.ts';
import { send, type Response } from '../respond.ts';

export const PAGE_MODULE_ROWS = 500;

const STYLE = 'body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{padding:2px 12px 2px 0;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}code{font-size:13px}';

function modulesTable(current: PublishedSnapshot): Html {
  const entries = Object.entries(current.snapshot.manifest.modules);
  const rows = entries.slice(0, PAGE_MODULE_ROWS).map(([path, record]) =>
    html`<tr><td><code>${path}</code></td><td class="n">${record.blob.size}</td><td class="n">${record.map?.size ?? '—'}</td></tr>`);
  const more = entries.length > PAGE_MODULE_ROWS ? html`<p>and ${entries.length - PAGE_MODULE_ROWS} more</p>` : html``;
  return html`<table><tr><th>module</th><th>bytes</th><th>map bytes</th></tr>${rows}</table>${more}`;
}

function clientsTable(status: ServerStatus): Html {
  if (status.clients.length === 0) return html`<p>No channel clients connected.</p>`;
  const rows = status.clients.map((client) =>
    html`<tr><td>${client.id}</td><td>${client.address}</td><td>${client.connectedAt}</td><td>${client.version ?? '—'}</td><td>${client.lastStatusAt ?? '—'}</td></tr>`);
  return html`<table><tr><th>id</th><th>address</th><th>connected</th><th>runs version</th><th>last status</th></tr>${rows}</table>`;
}

export function renderPage(status: ServerStatus, current: PublishedSnapshot | undefined): string {
  const summary = current
    ? html`<p>Version <b>${status.version}</b>, created ${status.created}, expires ${status.expires}. Publisher key id <code>${status.keyId}</code>.
${status.modules} modules, ${status.bytes} blob bytes. Published ${status.published} times since start.</p>`
    : html`<p>No snapshot published yet.</p>`;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>livemod ${status.version ?? 'server'}</title><style>${STYLE}</style></head>
<body><h1>livemod</h1>${summary}
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
