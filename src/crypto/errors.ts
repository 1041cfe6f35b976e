/**
 * Raised by every decrypt/unwrap primitive when its input does not authenticate. It deliberately
 * carries no detail (bad tag, bad length, bad padding, wrong IV all look the same), so that callers
 * cannot leak which check failed (STYLE.md §7). Callers map it to their own error, e.g.
 * InvalidCiphertextException.
 */
export class AuthenticationFailedError extends Error {
  constructor() {
    super('authentication failed');
    this.name = 'AuthenticationFailedError';
  }
}
