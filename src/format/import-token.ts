/*
 * Import token, version 1: what GetParametersForImport returns as ImportToken and ImportKeyMaterial
 * takes back. It is a bearer handle, not a container: everything it stands for (the key it is bound
 * to, the wrapping algorithm, the wrapping private key, the expiry) is stored server-side, sealed.
 *
 *   offset  size  field
 *   0       1     version   0x01
 *   1       32    handle    random; the server finds the parameters by a hash of the whole token
 */

export const IMPORT_TOKEN_VERSION_1 = 0x01;
export const IMPORT_TOKEN_HANDLE_BYTES = 32;
export const IMPORT_TOKEN_BYTES = 1 + IMPORT_TOKEN_HANDLE_BYTES;

export function encodeImportToken(handle: Buffer): Buffer {
  if (handle.length !== IMPORT_TOKEN_HANDLE_BYTES) throw new RangeError(`import token handle must be ${IMPORT_TOKEN_HANDLE_BYTES} bytes`);
  return Buffer.concat([Buffer.from([IMPORT_TOKEN_VERSION_1]), handle]);
}

/** True when `token` has the version-1 layout; anything else is not a token this server issued. */
export function isWellFormedImportToken(token: Buffer): boolean {
  return token.length === IMPORT_TOKEN_BYTES && token[0] === IMPORT_TOKEN_VERSION_1;
}
