// The snapshot subsystem's only door: the format shared by publishers and clients — manifest,
// canonical JSON, hashing, publisher keys, signing and verifying, in-tree resolution. Turning a
// folder into a snapshot is src/build/, which clients never load.
export { canonicalJson } from './canonical.ts';
export { sha256Hex, isHash, shortHash, HASH_PATTERN, nodeCrypto } from './hash.ts';
export {
  generatePublisherKey, parsePrivateKeyPem, parsePublicKey, privateKeyToPem, signBytes, verifyBytes, PUBLIC_KEY_PATTERN,
  type PublisherKey, type VerifyKey,
} from './keys.ts';
export {
  ENVELOPE_FORMAT, MANIFEST_SCHEMA, MAX_APP_NAME, MAX_SIGNATURES, MODULE_FORMAT, SIGNATURE_CONTEXT, appNameProblem, blobsToRun, carriesPackages, carriesProgram, changedPackages, eachBlob, manifestBlobs, moduleBlobs, staticClosure,
  type BlobRef, type FileRef, type ImportKind, type ImportRecord, type Manifest, type ManifestSignature, type ModuleError, type ModuleRecord, type PackageRecord, type SignedManifest,
} from './manifest.ts';
export { validateManifest } from './validate.ts';
export {
  sealManifest, sealBytes, sealedFromVerified, openManifest, reopenManifest, packagesRange, readEnvelope, checkEnvelopeStart, parseVerified, readManifestUnverified, EnvelopeCheck,
  MAX_MANIFEST_BYTES, MAX_HEADER_BYTES, MAX_MANIFEST_DEPTH, MAX_MANIFEST_VALUES,
  type Envelope, type SealedManifest,
} from './seal.ts';
export { signSnapshot, snapshotManifest, nextVersion, DEFAULT_TTL_MS, DEFAULT_SERVE_TTL_MS, type Snapshot, type SnapshotContent, type SignOptions } from './snapshot.ts';
export { resolveSpecifier, defaultEntry, type PackageInfo, type Resolution, type ResolveTree } from './resolve.ts';
export { eagerClosure, lazyEdge, policyKey, withTlaBelow, type EagerRules, type LazyDecision, type LazyPolicy } from './lazy-policy.ts';
