import { randomBytes } from 'node:crypto';
import { DecodedCache, type Storage } from '../storage/index.js';
import type { AccountId, Principal } from '../types/index.js';

/**
 * Seals secrets at rest. The barrier implements it; identity/ depends only on this interface so that
 * it never sees the root key (main.ts wires the barrier in).
 */
export interface SecretBox {
  seal(path: string, plaintext: Buffer): Buffer;
  open(path: string, sealed: Buffer): Buffer;
}

export type AccessKeyStatus = 'Active' | 'Inactive';

export interface AccessKeyRecord {
  readonly accessKeyId: string;
  readonly accountId: string;
  readonly kind: 'root' | 'user';
  readonly userName?: string;
  readonly userId: string;
  status: AccessKeyStatus;
  readonly createdAt: number;
  /** base64 of the barrier-sealed secret access key */
  readonly sealedSecret: string;
}

export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

const P = {
  accessKey: (id: string) => `iam/accesskey/${id}`,
  secret: (id: string) => `iam/accesskey-secret/${id}`,
  account: (id: string) => `iam/account/${id}`,
};

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** AWS-shaped access key id: a 4-letter type prefix and 16 base32 characters. */
export function newAccessKeyId(prefix: 'AKIA' | 'ASIA'): string {
  const bytes = randomBytes(16);
  let s = prefix;
  for (const b of bytes) s += BASE32[b & 31];
  return s;
}

export function newSecretAccessKey(): string {
  return randomBytes(30).toString('base64').replace(/\+/g, 'A').replace(/\//g, 'B');
}

export function rootArn(accountId: string): string {
  return `arn:aws:iam::${accountId}:root`;
}

export class IdentityStore {

  constructor(private readonly storage: Storage, private readonly box: SecretBox) {}

  /**
   * Creates the account and its root access key on first start. `given` comes from the environment
   * (KEYHOLD_ROOT_ACCESS_KEY_ID / KEYHOLD_ROOT_SECRET_ACCESS_KEY); without it a key is generated and
   * returned once, with `created: true`, for the caller to hand to the operator.
   */
  async bootstrapRoot(accountId: string, given?: Credentials): Promise<{ credentials: Credentials; created: boolean }> {
    return this.storage.transaction(async (tx) => {
      const existing = await tx.get(P.account(accountId));
      const account = existing
        ? (JSON.parse(existing.toString('utf8')) as { accountId: string; createdAt: number; rootAccessKeyIds: string[] })
        : { accountId, createdAt: Date.now(), rootAccessKeyIds: [] as string[] };
      if (given) {
        const known = await tx.get(P.accessKey(given.accessKeyId));
        if (known) {
          const rec = JSON.parse(known.toString('utf8')) as AccessKeyRecord;
          const secret = this.box.open(P.secret(rec.accessKeyId), Buffer.from(rec.sealedSecret, 'base64')).toString('utf8');
          if (rec.kind !== 'root' || rec.accountId !== accountId || secret !== given.secretAccessKey) {
            throw new Error(`access key ${given.accessKeyId} already exists with other settings`);
          }
          return { credentials: given, created: false };
        }
      } else if (account.rootAccessKeyIds.length > 0) {
        return { credentials: { accessKeyId: account.rootAccessKeyIds[0]!, secretAccessKey: '' }, created: false };
      }
      const credentials = given ?? { accessKeyId: newAccessKeyId('AKIA'), secretAccessKey: newSecretAccessKey() };
      const rec: AccessKeyRecord = {
        accessKeyId: credentials.accessKeyId,
        accountId,
        kind: 'root',
        userId: accountId,
        status: 'Active',
        createdAt: Date.now(),
        sealedSecret: this.box.seal(P.secret(credentials.accessKeyId), Buffer.from(credentials.secretAccessKey)).toString('base64'),
      };
      await tx.put(P.accessKey(rec.accessKeyId), Buffer.from(JSON.stringify(rec)));
      account.rootAccessKeyIds.push(rec.accessKeyId);
      await tx.put(P.account(accountId), Buffer.from(JSON.stringify(account)));
      return { credentials, created: !given };
    });
  }

  /**
   * Is this principal still active, i.e. could it still act? Reports flag keys whose owner is not
   * ("owner no longer active"). Today the only principals are account roots: an account's root is
   * active while the account exists; anything else (an unknown ARN, a name that is no ARN) is not.
   * IAM users and roles replace this body when they exist (a deleted user, or one whose access keys
   * are all inactive, is not active).
   */
  async isActivePrincipal(arn: string): Promise<boolean> {
    const root = /^arn:aws:iam::(\d{12}):root$/.exec(arn);
    if (!root) return false;
    return (await this.storage.getCached(P.account(root[1]!))) !== undefined;
  }

  /**
   * Finds the secret and principal for a SigV4 access key id. Unknown or inactive keys give
   * undefined (the caller answers UnrecognizedClientException, as AWS does for both).
   */
  async authenticate(accessKeyId: string, sessionToken: string | undefined): Promise<{ secretAccessKey: string; principal: Principal } | undefined> {
    if (sessionToken !== undefined) return undefined; // no sessions exist before STS
    const path = P.accessKey(accessKeyId);
    const b = await this.storage.getCached(path);
    if (!b) return undefined;
    const cred = this.credentials.get(path, b);
    return cred.status === 'Active' ? cred : undefined;
  }

  /** The secret and principal of an access key record, opened once per version of the record. */
  private readonly credentials = new DecodedCache<{ status: AccessKeyStatus; secretAccessKey: string; principal: Principal }>((b) => {
    const rec = JSON.parse(b.toString('utf8')) as AccessKeyRecord;
    const accessKeyId = rec.accessKeyId;
    const secretAccessKey = this.box.open(P.secret(accessKeyId), Buffer.from(rec.sealedSecret, 'base64')).toString('utf8');
    const principal: Principal =
      rec.kind === 'root'
        ? { accountId: rec.accountId as AccountId, arn: rootArn(rec.accountId), type: 'Root', accessKeyId, userId: rec.accountId }
        : {
            accountId: rec.accountId as AccountId,
            arn: `arn:aws:iam::${rec.accountId}:user/${rec.userName}`,
            type: 'IAMUser',
            accessKeyId,
            userId: rec.userId,
            userName: rec.userName,
          };
    return { status: rec.status, secretAccessKey, principal };
  });
}
