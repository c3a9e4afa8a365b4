// The snapshot subsystem's only door: manifest format, canonical JSON, hashing, publisher keys,
// signing/verifying, and (build.ts) turning a folder into a snapshot.
export { canonicalJson } from './canonical.ts';
export { sha256Hex, isHash, shortHash, HASH_PATTERN } from './hash.ts';
export {
  generatePublisherKey, parsePrivateKeyPem, parsePublicKey, privateKeyToPem, signBytes, verifyBytes,
  type PublisherKey, type VerifyKey,
} from './keys.ts';
export {
  MANIFEST_SCHEMA, MODULE_FORMAT, SIGNATURE_CONTEXT, manifestBlobs,
  type BlobRef, type ImportKind, type ImportRecord, type Manifest, type ManifestSignature, type ModuleRecord, type SignedManifest,
} from './manifest.ts';
export { validateManifest } from './validate.ts';
export { sealManifest, openManifest, MAX_MANIFEST_BYTES, type SealedManifest } from './seal.ts';
export { signSnapshot, nextVersion, DEFAULT_TTL_MS, type Snapshot, type SnapshotContent, type SignOptions } from './snapshot.ts';
export {
  SnapshotBuilder, DEFAULT_BUILD_OPTIONS, formatUnresolved,
  type BuildOptions, type BuildResult, type UnresolvedImport,
} from './build.ts';
export { formatBytes, type SkippedFile } from './files.ts';
export { publishSnapshot, type PublishResult } from './publish.ts';
export { resolveSpecifier, type Resolution } from './resolve.ts';
export { transformModule, type ModuleTransform, type ImportSite } from './transform.ts';
