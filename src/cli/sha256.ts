import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';

type Data = string | ArrayBuffer | ArrayBufferView;

function toBuffer(data: Data): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/**
 * SHA-256 / HMAC-SHA-256 in the shape SignatureV4 wants (@smithy/types Checksum), over node:crypto:
 * @smithy/hash-node is not a dependency of this project, and this is all the signer needs (the
 * `keyhold` client commands and the benchmark's pre-signer).
 */
export class Sha256 {
  private readonly secret: Buffer | undefined;
  private state: Hash | Hmac;

  constructor(secret?: Data) {
    this.secret = secret === undefined ? undefined : toBuffer(secret);
    this.state = this.fresh();
  }

  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', this.secret);
  }

  update(data: Data): void {
    this.state.update(toBuffer(data));
  }

  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.state.digest());
  }

  reset(): void {
    this.state = this.fresh();
  }
}

