/** Versioned byte layouts. Pure: no I/O, no crypto. */
export { canonicalEncryptionContext } from './encryption-context.js';
export {
  BLOB_IV_BYTES, BLOB_MAX_KEY_ID_BYTES, BLOB_NONCE_BYTES, BLOB_TAG_BYTES, BLOB_VERSION_1,
  decodeBlob, decodeBlobView, encodeBlob, encodeBlobHeader, joinBlob, MAX_BLOB_BYTES, MIN_BLOB_BYTES,
  type BlobFields, type BlobHeaderFields, type CiphertextBlob,
} from './ciphertext-blob.js';
export { encodeImportToken, isWellFormedImportToken, IMPORT_TOKEN_BYTES, IMPORT_TOKEN_VERSION_1 } from './import-token.js';
