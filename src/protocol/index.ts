// The wire protocol's only door, shared by the server and every client: HTTP paths, headers and
// content types, the batch framing, the JSON error body, the /status body, and the channel
// messages as discriminated unions with their validating parsers.
export { PROTOCOL_VERSION, PATHS, HEADERS, CONTENT_TYPES, blobPath, type BatchRequest } from './http.ts';
export { batchFrameHeader, batchResponseLength, readBatchFrames, type BatchFrame } from './batch.ts';
export { parseErrorBody, type ErrorBody, type WireError } from './errors.ts';
export { STATUS_CLIENT_LIMIT, type ClientInfo, type ClusterStatus, type ServerStatus } from './status.ts';
export {
  parseClientMessage, parseServerMessage, decodeMessage, encodeMessage, INLINE_MANIFEST_MAX_FRAME,
  type ClientMessage, type ServerMessage, type HelloMessage, type VersionMessage, type PongMessage, type ErrorMessage,
  type StatusMessage, type PingMessage, type ParseResult,
} from './messages.ts';
