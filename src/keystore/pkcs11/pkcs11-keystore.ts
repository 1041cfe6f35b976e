import type { EncryptionContext } from '../../types/index.js';
import {
  BLOB_IV_BYTES, BLOB_NONCE_BYTES, BLOB_TAG_BYTES, canonicalEncryptionContext, encodeBlob, encodeBlobHeader,
  type CiphertextBlob,
} from '../../format/index.js';
import { randomBytesPooled } from '../../crypto/index.js';
import { InvalidCiphertextException, KeyUnavailableException, KmsError } from '../../errors/index.js';
import type { StorageWriter } from '../../barrier/index.js';
import type { KeyStore, MaterialRef } from '../keystore.js';
import {
  cbcEncryptDataMechanism, ckr, findSecretKeys, gcmMechanism, generateTokenAesKey, P, Pkcs11Token, TokenError, type Handle, type Session,
} from './token.js';

/*
 * Backing keys inside a PKCS#11 token. Each (key, version) is an AES-256 token object generated in
 * the token as CKA_SENSITIVE, not CKA_EXTRACTABLE, usable only for derivation (CKA_DERIVE; no
 * ENCRYPT/DECRYPT/WRAP), labelled `keyhold/<key id>/<version>`. Keyhold never holds its bytes.
 *
 * The blob is the same version-1 layout as the software store's (src/format/ciphertext-blob.ts);
 * only the derivation of the per-request key differs, and it happens in the token:
 *
 *   K   = CKM_AES_CBC_ENCRYPT_DATA(backing key, iv = 0^16, data = nonce (32 random bytes)),
 *         a session object, sensitive and non-extractable, destroyed after use
 *   AAD = header || canonicalEncryptionContext(context)
 *   ciphertext || tag = CKM_AES_GCM(K, iv (12 random bytes), 128-bit tag) over the plaintext
 *
 * As with HKDF in the software store, each K encrypts one message, so NIST SP 800-38D's 2^32
 * invocation limit is never approached and the backing key is never a GCM key. (AES-CBC over a
 * fresh 256-bit random nonce is a PRF output; PKCS#11 offers no HKDF in SoftHSM 2.6.)
 */

/** No object with the label (yet): SoftHSM shows another process's new objects only after a rescan. */
class MaterialNotFound extends Error {}

/**
 * How long a missing object is looked for again, re-initializing the module between looks: objects
 * another process created (a sibling worker, --workers) may not be visible before that.
 */
const NOT_FOUND_RETRY_MS = 2000;
const NOT_FOUND_POLL_MS = 100;

const LABEL = (ref: MaterialRef) => `keyhold/${ref.keyId}/${ref.keyVersion}`;
const ZERO_IV = Buffer.alloc(16);

export class Pkcs11KeyStore implements KeyStore {
  readonly name: string;
  private readonly handles = new Map<string, Handle>();
  private handlesEpoch: number;

  /** `onFailure` hears the cause of every token failure (the client only gets KeyUnavailableException). */
  constructor(
    readonly token: Pkcs11Token,
    private readonly onFailure: (e: unknown) => void = () => {},
  ) {
    this.name = `pkcs11:${token.spec.name}`;
    this.handlesEpoch = token.epoch;
  }

  async generate(ref: MaterialRef, _w: StorageWriter): Promise<void> {
    const label = LABEL(ref);
    this.guard(() =>
      this.token.withSession((lib, s) => {
        const h = generateTokenAesKey(lib, s, label, { derive: true });
        this.handles.set(label, h);
      }),
    );
  }

  async encrypt(ref: MaterialRef, plaintext: Buffer, context: EncryptionContext | undefined): Promise<Buffer> {
    const fresh = randomBytesPooled(BLOB_NONCE_BYTES + BLOB_IV_BYTES);
    const nonce = Buffer.from(fresh.subarray(0, BLOB_NONCE_BYTES));
    const iv = Buffer.from(fresh.subarray(BLOB_NONCE_BYTES));
    const fields = { version: 1, keyId: ref.keyId, keyVersion: ref.keyVersion, nonce, iv } as const;
    const header = encodeBlobHeader(fields);
    const aad = Buffer.concat([header, canonicalEncryptionContext(context)]);
    const sealed = await this.lookingAgain(() =>
      this.withKey(ref, (lib, s, base) => {
        const k = this.derive(s, base, nonce);
        try {
          const p = P();
          lib.C_EncryptInit(s, gcmMechanism(iv, aad), k);
          return Buffer.from(lib.C_Encrypt(s, plaintext, Buffer.alloc(plaintext.length + BLOB_TAG_BYTES)));
        } finally {
          lib.C_DestroyObject(s, k);
        }
      }),
    );
    if (sealed.length !== plaintext.length + BLOB_TAG_BYTES) throw new KeyUnavailableException(UNAVAILABLE);
    return encodeBlob({
      ...fields,
      ciphertext: sealed.subarray(0, plaintext.length),
      tag: sealed.subarray(plaintext.length),
    });
  }

  async decrypt(ref: MaterialRef, blob: CiphertextBlob, context: EncryptionContext | undefined): Promise<Buffer> {
    let header: Buffer;
    try {
      header = encodeBlobHeader(blob);
    } catch {
      throw new InvalidCiphertextException();
    }
    if (!header.equals(blob.header)) throw new InvalidCiphertextException();
    const aad = Buffer.concat([header, canonicalEncryptionContext(context)]);
    const sealed = Buffer.concat([blob.ciphertext, blob.tag]);
    return this.lookingAgain(() =>
      this.withKey(ref, (lib, s, base) => {
        const k = this.derive(s, base, blob.nonce);
        try {
          const p = P();
          lib.C_DecryptInit(s, gcmMechanism(blob.iv, aad), k);
          try {
            return Buffer.from(lib.C_Decrypt(s, sealed, Buffer.alloc(sealed.length)));
          } catch (e) {
            // SoftHSM reports a bad tag as CKR_GENERAL_ERROR, others as CKR_ENCRYPTED_DATA_INVALID:
            // every failure of the decrypt call itself is an unreadable blob, with no detail.
            const code = ckr(e);
            if (code === 'CKR_SESSION_HANDLE_INVALID' || code === 'CKR_DEVICE_REMOVED' || code === 'CKR_TOKEN_NOT_PRESENT') throw e;
            throw new InvalidCiphertextException();
          }
        } finally {
          try {
            lib.C_DestroyObject(s, k);
          } catch {
            // a failed C_Decrypt may have ended the operation; the session object goes with the session
          }
        }
      }),
    );
  }

  /** A data key from the token's random generator, encrypted in the token. */
  async generateDataKey(ref: MaterialRef, length: number, context: EncryptionContext | undefined): Promise<{ plaintext: Buffer; blob: Buffer }> {
    const plaintext = this.guard(() => this.token.withSession((lib, s) => Buffer.from(lib.C_GenerateRandom(s, Buffer.alloc(length)))));
    return { plaintext, blob: await this.encrypt(ref, plaintext, context) };
  }

  async destroy(ref: MaterialRef, _w: StorageWriter): Promise<void> {
    const label = LABEL(ref);
    const destroyAll = () => this.token.withSession((lib, s) => {
      const found = this.find(s, label);
      for (const h of found) lib.C_DestroyObject(s, h);
      return found.length;
    });
    if (this.guard(destroyAll) === 0) {
      // Perhaps made by another process and not yet visible here: look once more after a refresh.
      this.guard(() => this.token.refresh());
      this.guard(destroyAll);
    }
    this.handles.delete(label);
  }

  /** True when the token holds material for ref (for tests and health checks). */
  has(ref: MaterialRef): boolean {
    return this.token.withSession((_lib, s) => this.find(s, LABEL(ref)).length > 0);
  }

  private derive(s: Session, base: Handle, nonce: Buffer): Handle {
    const p = P();
    return this.token.lib.C_DeriveKey(
      s,
      cbcEncryptDataMechanism(ZERO_IV, nonce),
      base,
      [
        { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
        { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
        { type: p.CKA_VALUE_LEN, value: 32 },
        { type: p.CKA_TOKEN, value: false },
        { type: p.CKA_SENSITIVE, value: true },
        { type: p.CKA_EXTRACTABLE, value: false },
        { type: p.CKA_ENCRYPT, value: true },
        { type: p.CKA_DECRYPT, value: true },
      ],
    );
  }

  private find(s: Session, label: string): Handle[] {
    return findSecretKeys(this.token.lib, s, label, 4);
  }

  /** Runs fn with the backing key's handle; a stale cached handle is looked up once more. */
  private withKey<T>(ref: MaterialRef, fn: (lib: Pkcs11Token['lib'], s: Session, base: Handle) => T): T {
    const label = LABEL(ref);
    if (this.handlesEpoch !== this.token.epoch) {
      this.handles.clear();
      this.handlesEpoch = this.token.epoch;
    }
    return this.token.withSession((lib, s) => {
      for (let attempt = 0; ; attempt++) {
        let h = this.handles.get(label);
        if (!h) {
          const found = this.find(s, label);
          // Ambiguous: refuse. Absent: perhaps not yet visible to this process (lookingAgain).
          if (found.length > 1) throw new KeyUnavailableException(UNAVAILABLE);
          if (found.length === 0) throw new MaterialNotFound();
          h = found[0]!;
          this.handles.set(label, h);
        }
        try {
          return fn(lib, s, h);
        } catch (e) {
          const code = ckr(e);
          if (attempt === 0 && (code === 'CKR_OBJECT_HANDLE_INVALID' || code === 'CKR_KEY_HANDLE_INVALID')) {
            this.handles.delete(label);
            continue;
          }
          throw e;
        }
      }
    });
  }

  /**
   * guard(), and while the backing key is not found, looks again for NOT_FOUND_RETRY_MS. Material
   * that is gone for good (destroyed in the token) ends as KeyUnavailableException; never invented.
   */
  private async lookingAgain<T>(fn: () => T): Promise<T> {
    const deadline = Date.now() + NOT_FOUND_RETRY_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return this.guard(fn);
      } catch (e) {
        if (!(e instanceof MaterialNotFound)) throw e;
        if (Date.now() >= deadline) throw new KeyUnavailableException(UNAVAILABLE);
        if (attempt > 0) await new Promise((r) => setTimeout(r, NOT_FOUND_POLL_MS));
        // Another process may have made it (Pkcs11Token.refresh says why this is needed).
        try {
          this.token.refresh();
        } catch (err) {
          this.onFailure(err);
          throw new KeyUnavailableException(UNAVAILABLE);
        }
      }
    }
  }

  /** Every failure that is not already a KMS answer becomes KeyUnavailableException; no fallback. */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof KmsError || e instanceof MaterialNotFound) throw e;
      if (e instanceof TokenError) this.handles.clear();
      this.onFailure(e);
      throw new KeyUnavailableException(UNAVAILABLE);
    }
  }
}

const UNAVAILABLE = 'The key material for this KMS key in its custom key store is not available. You can retry the request.';
