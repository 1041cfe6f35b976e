import { randomBytes } from 'node:crypto';
import { SecretBytes } from '../../crypto/index.js';
import { SealError, type Seal } from '../../barrier/index.js';
import { ckr, findSecretKeys, gcmMechanism, generateTokenAesKey, Pkcs11Token, type Handle } from './token.js';

/*
 * The root key wrapped under an AES-256 key that lives in a declared HSM and never leaves it
 * (sensitive, not extractable, ENCRYPT/DECRYPT only), labelled `keyhold-seal`. Stored form:
 *
 *   version u8 = 0x01 | iv (12 bytes) | AES-256-GCM(seal key, iv, root key, AAD = "keyhold/seal/hsm/v1") || tag (16)
 *
 * The GCM runs in the token. The seal key is made on first start (when the data dir has no root key
 * yet) and looked up by label afterwards; without the token the server cannot start.
 */

const SEAL_LABEL = 'keyhold-seal';
const AAD = Buffer.from('keyhold/seal/hsm/v1');
const VERSION = 1;

export class HsmSeal implements Seal {
  readonly kind = 'hsm';

  constructor(private readonly token: Pkcs11Token) {}

  private sealKey(create: boolean): Handle {
    return this.token.withSession((lib, s) => {
      const found = findSecretKeys(lib, s, SEAL_LABEL, 2);
      if (found.length > 1) throw new SealError(`HSM ${this.token.spec.name} holds more than one '${SEAL_LABEL}' key`);
      if (found.length === 1) return found[0]!;
      if (!create) throw new SealError(`HSM ${this.token.spec.name} has no '${SEAL_LABEL}' key: it is not the token this root key was sealed with`);
      return generateTokenAesKey(lib, s, SEAL_LABEL, { encryptDecrypt: true });
    });
  }

  async wrap(rootKey: SecretBytes): Promise<Buffer> {
    const key = this.sealKey(true);
    const iv = randomBytes(12);
    const sealed = this.token.withSession((lib, s) => {
      lib.C_EncryptInit(s, gcmMechanism(iv, AAD), key);
      return Buffer.from(lib.C_Encrypt(s, rootKey.insecureExpose(), Buffer.alloc(rootKey.length + 16)));
    });
    return Buffer.concat([Buffer.from([VERSION]), iv, sealed]);
  }

  async unwrap(wrapped: Buffer): Promise<SecretBytes> {
    if (wrapped.length < 1 + 12 + 16 || wrapped[0] !== VERSION) throw new SealError('the stored root key has an unknown format');
    const key = this.sealKey(false);
    const iv = wrapped.subarray(1, 13);
    const sealed = wrapped.subarray(13);
    let plain: Buffer;
    try {
      plain = this.token.withSession((lib, s) => {
        lib.C_DecryptInit(s, gcmMechanism(iv, AAD), key);
        return Buffer.from(lib.C_Decrypt(s, sealed, Buffer.alloc(sealed.length)));
      });
    } catch (e) {
      throw new SealError(`the HSM seal key in ${this.token.spec.name} does not open the stored root key (${ckr(e) ?? 'error'})`);
    }
    const key32 = SecretBytes.from(plain);
    plain.fill(0);
    return key32;
  }
}
