// A static snapshot in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, …), under a key prefix:
// s3://BUCKET/PREFIX/manifest.json, …/blobs/<sha256>, …/pack/<sha256>.pack — the folder layout,
// so any client reads it through the store's HTTP endpoint (or a CDN before it) as it reads a
// folder behind nginx. The SDK is imported only when a target is opened: every other command,
// and publish to a folder, never loads it.
//
// A PUT replaces an object whole and atomically, so the order publishSnapshot keeps (blobs,
// pack, then the manifest) is all a reader needs. Request checksums are the SDK's defaults
// (CRC32 on every PUT): the store checks each body as it arrives. A store that refuses them takes
// AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED, which the SDK reads itself.
import type { S3Client } from '@aws-sdk/client-s3';
import { ErrorCodes, isLivemodError, LivemodError } from '../errors.ts';
import { CONTENT_TYPES } from '../protocol/index.ts';
import { MAX_MANIFEST_BYTES } from '../snapshot/index.ts';
import { inert, quoted } from '../text.ts';
import type { SnapshotTarget } from './target.ts';

/** Cache-Control as docs/protocol.md has it: the manifest is revalidated, everything else is content-addressed. */
export const CACHE_CONTROL = {
  manifest: 'no-cache',
  immutable: 'public, max-age=31536000, immutable',
} as const;

export interface S3Location {
  readonly bucket: string;
  /** '' (the bucket's top) or segments ending in '/'. */
  readonly prefix: string;
}

export interface S3Options {
  /** The store's endpoint URL; default AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then AWS itself. */
  readonly endpoint?: string;
  /** Default AWS_REGION, then the profile's; us-east-1 for a store at its own endpoint. */
  readonly region?: string;
  /** Address buckets as ENDPOINT/BUCKET/ rather than BUCKET.ENDPOINT/: most self-hosted stores need it. */
  readonly pathStyle?: boolean;
  /** Default: the SDK's chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO, instance roles). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
  /** Objects per listing page (the S3 maximum is 1000; tests page with less). */
  readonly pageSize?: number;
  /** Where AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL and AWS_REGION are read (default process.env); the SDK reads the rest itself. */
  readonly env?: NodeJS.ProcessEnv;
}

export interface S3Target extends SnapshotTarget {
  /** Where a client reads the snapshot over HTTP, when it can be told: give it to `livemod run`. */
  readonly url: string | null;
}

const BUCKET = /^[a-z0-9](?:[a-z0-9.-]{1,61})[a-z0-9]$/;
const SEGMENT = /^[A-Za-z0-9._~-]+$/;

function invalid(url: string, why: string, option: string): LivemodError {
  return option === '--out'
    ? new LivemodError('publish', ErrorCodes.OUT_INVALID, `--out ${quoted(url)} ${why}`, { out: url })
    : new LivemodError('cli', ErrorCodes.USAGE, `${option} ${quoted(url)} ${why}`);
}

/** `s3://BUCKET/PREFIX` → bucket and prefix, refusing what S3 or a client's URL could not hold as written. */
export function parseS3Url(url: string, option = '--out'): S3Location {
  const match = /^s3:\/\/([^/?#]*)(\/[^?#]*)?$/.exec(url);
  if (!match) {
    if (/[?#]/.test(url) && url.startsWith('s3://')) throw invalid(url, 'has a query or fragment; write s3://BUCKET/PREFIX', option);
    throw invalid(url, 'is not an s3://BUCKET/PREFIX URL', option);
  }
  const bucket = match[1]!;
  if (bucket === '') throw invalid(url, 'names no bucket; write s3://BUCKET/PREFIX (e.g. s3://tools/app)', option);
  if (!BUCKET.test(bucket) || bucket.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(bucket)) {
    throw invalid(url, `has an invalid bucket name ${quoted(bucket)}: S3 bucket names are 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit`, option);
  }
  const path = (match[2] ?? '').replace(/^\//, '').replace(/\/$/, '');
  if (path === '') return { bucket, prefix: '' };
  const segments = path.split('/');
  for (const segment of segments) {
    if (segment === '' || segment === '.' || segment === '..' || !SEGMENT.test(segment)) {
      throw invalid(url, `has a prefix segment ${quoted(segment)} a client URL cannot hold as written; use letters, digits, '.', '_', '-' and '~', no empty, '.' or '..' segments`, option);
    }
  }
  return { bucket, prefix: `${segments.join('/')}/` };
}

function endpointOption(options: S3Options): { endpoint: URL | null; from: string } {
  const env = options.env ?? process.env;
  const [text, from] = options.endpoint !== undefined ? [options.endpoint, '--s3-endpoint'] : env.AWS_ENDPOINT_URL_S3 ? [env.AWS_ENDPOINT_URL_S3, 'AWS_ENDPOINT_URL_S3'] : env.AWS_ENDPOINT_URL ? [env.AWS_ENDPOINT_URL, 'AWS_ENDPOINT_URL'] : [undefined, ''];
  if (text === undefined) return { endpoint: null, from };
  let endpoint: URL | null = null;
  try {
    endpoint = new URL(text);
  } catch {
    // Reported below.
  }
  if (!endpoint || (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') || endpoint.username || endpoint.password || endpoint.search || endpoint.hash) {
    throw new LivemodError('cli', ErrorCodes.USAGE, `${from} ${quoted(text)} is not an http(s) URL of an S3 endpoint; write e.g. http://127.0.0.1:9000`);
  }
  return { endpoint, from };
}

/**
 * Where clients read `s3://BUCKET/PREFIX` over HTTP (the bucket readable by them, or a CDN in
 * front given instead): path-style or virtual-host under the endpoint, AWS's own address without
 * one; null when no region says which AWS address. Sends nothing and loads no SDK.
 */
export function s3HttpUrl(url: string, options: Pick<S3Options, 'endpoint' | 'region' | 'pathStyle' | 'env'> = {}, option = '--out'): string | null {
  const { bucket, prefix } = parseS3Url(url, option);
  const { endpoint } = endpointOption(options);
  const env = options.env ?? process.env;
  const region = options.region ?? (env.AWS_REGION || (endpoint ? 'us-east-1' : undefined));
  if (!endpoint) return region ? `https://${bucket}.s3.${region}.amazonaws.com/${prefix}` : null;
  const base = endpoint.href.replace(/\/$/, '');
  return options.pathStyle === true ? `${base}/${bucket}/${prefix}` : `${endpoint.protocol}//${bucket}.${endpoint.host}${endpoint.pathname.replace(/\/$/, '')}/${prefix}`;
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED']);
const DENIED = new Set(['AccessDenied', 'Forbidden', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken', 'TokenRefreshRequired', 'AllAccessDisabled']);

/** A system error code (ECONNREFUSED, …) anywhere in the error's causes, or a timeout. */
function networkCode(error: unknown): string | null {
  for (let at = error, depth = 0; at instanceof Error && depth < 5; at = at.cause, depth += 1) {
    const code = (at as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && UNREACHABLE.has(code)) return code;
    if (at.name === 'TimeoutError') return 'timeout';
    if (at instanceof AggregateError) for (const inner of at.errors) if (networkCode(inner)) return networkCode(inner);
  }
  return null;
}

interface Where {
  readonly location: string;
  readonly bucket: string;
  readonly endpoint: string;
}

/** An SDK or network failure as one line naming what was wrong and the fix. */
function storageError(error: unknown, action: string, where: Where): LivemodError {
  if (isLivemodError(error)) return error;
  const name = error instanceof Error ? error.name : 'Error';
  const message = error instanceof Error ? error.message : String(error);
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const details = { out: where.location, status, name };
  const fail = (reason: string, text: string): LivemodError => new LivemodError('publish', ErrorCodes.STORAGE, text, { ...details, reason }, { cause: error });
  const network = networkCode(error);
  if (network) {
    return fail('unreachable', `cannot ${action} ${where.location}: ${where.endpoint} could not be reached or dropped the connection (${network}); check --s3-endpoint (or AWS_ENDPOINT_URL_S3) and that the store is up, then publish again`);
  }
  if (name === 'NoSuchBucket') return fail('no-such-bucket', `bucket ${quoted(where.bucket)} does not exist at ${where.endpoint}; create it, or fix the bucket in --out`);
  if (DENIED.has(name) || status === 403) {
    return fail('access-denied', `${where.endpoint} refused to ${action} ${where.location} (${inert(name, 40)}); check the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) and that they may list, read and write under it`);
  }
  if (name === 'CredentialsProviderError') return fail('no-credentials', `no S3 credentials to ${action} ${where.location}; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE`);
  if (/region is missing/i.test(message)) return fail('no-region', `no region for ${where.location}; set AWS_REGION or pass --s3-region`);
  return fail('failed', `cannot ${action} ${where.location}: ${inert(name, 40)}${status ? ` (HTTP ${status})` : ''}: ${inert(message)}; check --s3-endpoint and that the bucket is an S3 bucket`);
}

function notFound(error: unknown): boolean {
  const name = error instanceof Error ? error.name : '';
  return name === 'NoSuchKey' || name === 'NotFound';
}

/**
 * Opens `s3://BUCKET/PREFIX` as a snapshot target. Nothing is sent until publishSnapshot reads
 * the manifest; credentials come from the SDK's usual chain (AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY, AWS_PROFILE, …). Close it when done: its connections are kept alive.
 * @example
 * const target = await openS3Target('s3://tools/app', { endpoint: 'http://127.0.0.1:9000', pathStyle: true });
 * try {
 *   await publishSnapshot(content, key, target);
 * } finally {
 *   await target.close();
 * }
 */
export async function openS3Target(url: string, options: S3Options = {}): Promise<S3Target> {
  const { bucket, prefix } = parseS3Url(url);
  const { endpoint } = endpointOption(options);
  const env = options.env ?? process.env;
  const region = options.region ?? (env.AWS_REGION || (endpoint ? 'us-east-1' : undefined));
  const pathStyle = options.pathStyle === true;
  const pageSize = Math.max(1, Math.min(1000, options.pageSize ?? 1000));
  const sdk = await import('@aws-sdk/client-s3');
  const client: S3Client = new sdk.S3Client({
    ...(endpoint ? { endpoint: endpoint.href } : {}),
    ...(region ? { region } : {}),
    forcePathStyle: pathStyle,
    ...(options.credentials ? { credentials: { ...options.credentials } } : {}),
    // A store that accepts the connection but never answers must not hold a publish forever.
    requestHandler: { connectionTimeout: 10_000, socketTimeout: 60_000 },
  });
  const location = `s3://${bucket}/${prefix}`;
  const where: Where = { location, bucket, endpoint: endpoint ? endpoint.origin : 'the AWS S3 endpoint' };
  const send = async <T>(action: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      throw storageError(error, action, where);
    }
  };
  const put = (key: string, bytes: Uint8Array, contentType: string, cacheControl: string): Promise<unknown> =>
    send(`write ${key} to`, () => client.send(new sdk.PutObjectCommand({ Bucket: bucket, Key: `${prefix}${key}`, Body: bytes, ContentLength: bytes.byteLength, ContentType: contentType, CacheControl: cacheControl })));
  let closed: Promise<void> | null = null;
  return {
    location,
    noun: 'prefix',
    parallel: 8,
    url: s3HttpUrl(url, options),
    async readManifest() {
      const body = await send('read the manifest in', async () => {
        try {
          const answer = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: `${prefix}manifest.json` }));
          if ((answer.ContentLength ?? 0) > MAX_MANIFEST_BYTES) {
            throw new LivemodError('publish', ErrorCodes.OUT_INVALID, `the manifest.json in ${location} is ${answer.ContentLength} bytes, not a livemod manifest; remove it or publish into another prefix`, { out: location });
          }
          return (await answer.Body?.transformToByteArray()) ?? new Uint8Array();
        } catch (error) {
          if (notFound(error)) return null;
          throw error;
        }
      });
      if (body !== null) return body;
      // No manifest: the prefix may hold the blobs and pack of a publish that stopped, nothing else.
      const listed = await send('list', () => client.send(new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: '/', MaxKeys: 3 })));
      const names = [...(listed.Contents ?? []).map((item) => item.Key ?? ''), ...(listed.CommonPrefixes ?? []).map((item) => item.Prefix ?? '')];
      const other = names.find((name) => name !== `${prefix}blobs/` && name !== `${prefix}pack/`);
      if (other !== undefined) {
        throw new LivemodError('publish', ErrorCodes.OUT_INVALID, `${location} is not empty (it holds ${quoted(other)}) and holds no livemod manifest; publish under an empty prefix or a previous snapshot`, { out: location });
      }
      return null;
    },
    async presentBlobs(blobs) {
      const present = new Set<string>();
      if (blobs.size === 0) return present;
      const from = `${prefix}blobs/`;
      let token: string | undefined;
      do {
        const page = await send('list the blobs in', () => client.send(new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: from, MaxKeys: pageSize, ...(token ? { ContinuationToken: token } : {}) })));
        for (const item of page.Contents ?? []) {
          const hash = item.Key?.slice(from.length) ?? '';
          if (blobs.get(hash)?.byteLength === item.Size) present.add(hash);
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return present;
    },
    async putBlob(hash, bytes) {
      await put(`blobs/${hash}`, bytes, CONTENT_TYPES.blob, CACHE_CONTROL.immutable);
    },
    async putPack(path, bytes) {
      const size = await send(`look for ${path} in`, async () => {
        try {
          return (await client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: `${prefix}${path}` }))).ContentLength;
        } catch (error) {
          if (notFound(error)) return undefined;
          throw error;
        }
      });
      if (size !== bytes.byteLength) await put(path, bytes, CONTENT_TYPES.blob, CACHE_CONTROL.immutable);
    },
    async putManifest(bytes) {
      await put('manifest.json', bytes, CONTENT_TYPES.json, CACHE_CONTROL.manifest);
    },
    close() {
      closed ??= Promise.resolve().then(() => client.destroy());
      return closed;
    },
  };
}
