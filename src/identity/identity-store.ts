import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { DecodedCache, type Storage, type StorageReader, type StorageWriter } from '../storage/index.js';
import {
  DeleteConflictException, EntityAlreadyExistsException, ExpiredTokenException, IamLimitExceededException, InvalidInputException, LimitExceededException,
  NoSuchEntityException,
} from '../errors/index.js';
import type { AccountId, Principal } from '../types/index.js';
import type { AccessKeyRecord, AccessKeyStatus, GroupRecord, LastUsed, ManagedPolicyRecord, PolicyHolder, RoleRecord, TagRecord, UserRecord } from './records.js';

/**
 * Seals secrets at rest. The barrier implements it; identity/ depends only on this interface so that
 * it never sees the root key (main.ts wires the barrier in).
 */
export interface SecretBox {
  seal(path: string, plaintext: Buffer): Buffer;
  open(path: string, sealed: Buffer): Buffer;
}

export type { AccessKeyRecord, AccessKeyStatus } from './records.js';

export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** Storage layout, in one place. IAM names are unique without regard to case, as in AWS. */
const P = {
  accessKey: (id: string) => `iam/accesskey/${id}`,
  secret: (id: string) => `iam/accesskey-secret/${id}`,
  account: (id: string) => `iam/account/${id}`,
  userPrefix: (acct: string) => `iam/user/${acct}/`,
  user: (acct: string, name: string) => `iam/user/${acct}/${name.toLowerCase()}`,
  groupPrefix: (acct: string) => `iam/group/${acct}/`,
  group: (acct: string, name: string) => `iam/group/${acct}/${name.toLowerCase()}`,
  rolePrefix: (acct: string) => `iam/role/${acct}/`,
  role: (acct: string, name: string) => `iam/role/${acct}/${name.toLowerCase()}`,
  userKeyPrefix: (acct: string, user: string) => `iam/userkey/${acct}/${user.toLowerCase()}/`,
  userKey: (acct: string, user: string, akid: string) => `iam/userkey/${acct}/${user.toLowerCase()}/${akid}`,
  userSessionPrefix: (acct: string, user: string) => `iam/usersession/${acct}/${user.toLowerCase()}/`,
  userSession: (acct: string, user: string, akid: string) => `iam/usersession/${acct}/${user.toLowerCase()}/${akid}`,
  lastUsed: (akid: string) => `iam/lastused/${akid}`,
  alertWebhookPrefix: (acct: string) => `alerts/webhook/${acct}/`,
  alertWebhook: (acct: string, id: string) => `alerts/webhook/${acct}/${id}`,
  alertWebhookSecret: (acct: string, id: string) => `alerts/webhook-secret/${acct}/${id}`,
  policyPrefix: (acct: string) => `iam/policy/${acct}/`,
  policy: (acct: string, name: string) => `iam/policy/${acct}/${name.toLowerCase()}`,
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

/** A known credential that no longer authenticates, and why (see inspectRefusedCredential). */
export interface RefusedCredential {
  readonly state: 'access-key-inactive' | 'user-offboarded' | 'user-deleted' | 'session-ended' | 'session-expired';
  readonly principal: Principal;
  readonly secretAccessKey: string;
}

/** A per-account alert webhook (its secret is sealed and shown once, when added). */
export interface AlertWebhook {
  readonly webhookId: string;
  readonly url: string;
  readonly createdAt: number;
}

export const MAX_ALERT_WEBHOOKS = 10;

/** Per-account settings. */
export interface AccountSettings {
  /** The separation-of-duties guard; on unless set to false. */
  separationOfDuties?: boolean;
  /** Alerts: CIDR blocks the account's calls are expected from; a call from elsewhere raises an alert. Absent or empty: no check. */
  alertSourceCidrs?: string[];
  /** Alerts: on a critical alert, deactivate the (user) access key that triggered it. Off unless true. */
  alertAutoDeactivate?: boolean;
}

export type EntityKind = 'user' | 'group' | 'role';

/** A policy that applies to a principal, with where it comes from (for decision reasons). */
export interface NamedPolicy {
  /** e.g. `user policy 'p1' of alice`, `managed policy arn:aws:iam::aws:policy/KeyholdKeyUser via group ops` */
  readonly source: string;
  /** inline: the document; managed: undefined (the caller resolves the ARN) */
  readonly document?: string;
  readonly managedArn?: string;
}

/** AWS IAM quota: versions kept per customer-managed policy. */
export const MAX_POLICY_VERSIONS = 5;

const POLICY_ARN = /^arn:aws:iam::(\d{12}):policy\/(?:.*\/)?([^/]+)$/;

/** Minimum and maximum session length, AWS's bounds for AssumeRole. */
export const MIN_SESSION_SECONDS = 900;
export const DEFAULT_SESSION_SECONDS = 3600;
export const MAX_ROLE_SESSION_SECONDS = 43200;
export const MAX_ACCESS_KEYS_PER_USER = 2;

const enc = (v: unknown) => Buffer.from(JSON.stringify(v));
const dec = <T>(b: Buffer) => JSON.parse(b.toString('utf8')) as T;

/** AWS unique ids: a 4-letter type prefix (AIDA user, AGPA group, AROA role) and 17 base32 characters. */
export function newUniqueId(prefix: 'AIDA' | 'AGPA' | 'AROA' | 'ANPA'): string {
  const bytes = randomBytes(17);
  let s = prefix;
  for (const b of bytes) s += BASE32[b & 31];
  return s;
}

function pathOf(kind: EntityKind, acct: string, name: string): string {
  return kind === 'user' ? P.user(acct, name) : kind === 'group' ? P.group(acct, name) : P.role(acct, name);
}

function entityWord(kind: EntityKind): string {
  return kind === 'user' ? 'user' : kind === 'group' ? 'group' : 'role';
}

export function noSuchEntity(kind: EntityKind, name: string): NoSuchEntityException {
  return kind === 'role'
    ? new NoSuchEntityException(`The role with name ${name} cannot be found.`)
    : kind === 'group'
      ? new NoSuchEntityException(`The group with name ${name} cannot be found.`)
      : new NoSuchEntityException(`The user with name ${name} cannot be found.`);
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

/** An access key record with its secret opened (kept in memory only while the key can sign). */
interface OpenedCredential {
  status: AccessKeyStatus; secretAccessKey: string; principal: Principal; tokenSha256?: string; expiresAt?: number;
}

export class IdentityStore {
  /** Last use of each access key seen by this process, written to storage at most once a minute per key. */
  private readonly lastUsedSeen = new Map<string, LastUsed & { writtenAt: number }>();

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
   * Finds the secret and principal for a SigV4 access key id. Unknown or inactive keys, and a
   * session presented without its token (or with another), give undefined (the caller answers
   * UnrecognizedClientException, as AWS does); an expired session gives ExpiredTokenException.
   */
  async authenticate(accessKeyId: string, sessionToken: string | undefined, nowMs = Date.now()): Promise<{ secretAccessKey: string; principal: Principal } | undefined> {
    const path = P.accessKey(accessKeyId);
    const b = await this.storage.getCached(path);
    if (!b) return undefined;
    const cred = this.credentials.get(path, b);
    if (cred.status !== 'Active') {
      // A credential that can no longer sign anything: its secret is not kept decoded in memory.
      this.credentials.forget(path);
      return undefined;
    }
    if (cred.tokenSha256 === undefined) return sessionToken === undefined ? cred : undefined;
    if (sessionToken === undefined) return undefined;
    const given = Buffer.from(sha256Hex(sessionToken), 'hex');
    if (!timingSafeEqual(given, Buffer.from(cred.tokenSha256, 'hex'))) return undefined;
    if (cred.expiresAt !== undefined && nowMs >= cred.expiresAt) {
      this.credentials.forget(path);
      throw new ExpiredTokenException('The security token included in the request is expired');
    }
    return cred;
  }

  /**
   * For a credential that authentication refused: whose it is and why it no longer works, with its
   * secret so that the caller can tell whether the request was signed with the real (old) secret.
   * Undefined for unknown (or deleted) access key ids and for credentials that are still usable.
   * Only the alert detectors' input (an audit detail) is built from this; nothing reaches the caller.
   */
  async inspectRefusedCredential(accessKeyId: string, sessionToken: string | undefined, nowMs = Date.now()): Promise<RefusedCredential | undefined> {
    const b = await this.storage.get(P.accessKey(accessKeyId));
    if (!b) return undefined;
    const rec = dec<AccessKeyRecord>(b);
    // Decoded without the cache: a refused credential's secret is not kept in memory.
    const cred = this.openCredential(b);
    let state: RefusedCredential['state'] | undefined;
    if (rec.kind === 'session') {
      const tokenMatches = sessionToken !== undefined && rec.tokenSha256 !== undefined
        && timingSafeEqual(Buffer.from(sha256Hex(sessionToken), 'hex'), Buffer.from(rec.tokenSha256, 'hex'));
      if (!tokenMatches) return undefined;
      if (rec.endedAt !== undefined || rec.status !== 'Active') state = 'session-ended';
      else if (rec.expiresAt !== undefined && nowMs >= rec.expiresAt) state = 'session-expired';
    } else if (rec.kind === 'user') {
      const u = rec.userName ? await this.getEntity<UserRecord>('user', rec.accountId, rec.userName) : undefined;
      if (!u || u.userId !== rec.userId) state = 'user-deleted';
      else if (u.offboardedAt !== undefined) state = 'user-offboarded';
      else if (rec.status !== 'Active') state = 'access-key-inactive';
    } else if (rec.status !== 'Active') {
      state = 'access-key-inactive';
    }
    if (state === undefined) return undefined;
    return { state, principal: cred.principal, secretAccessKey: cred.secretAccessKey };
  }

  /** The secret and principal of an access key record, opened once per version of the record. */
  private readonly credentials = new DecodedCache<OpenedCredential>((b) => this.openCredential(b));

  private openCredential(b: Buffer): OpenedCredential {
    const rec = JSON.parse(b.toString('utf8')) as AccessKeyRecord;
    const accessKeyId = rec.accessKeyId;
    const secretAccessKey = this.box.open(P.secret(accessKeyId), Buffer.from(rec.sealedSecret, 'base64')).toString('utf8');
    return { status: rec.status, secretAccessKey, principal: principalOf(rec), tokenSha256: rec.tokenSha256, expiresAt: rec.expiresAt };
  }

  // ---- account settings ----

  async accountSettings(acct: string): Promise<AccountSettings> {
    const b = await this.storage.getCached(P.account(acct));
    return b ? ((dec<{ settings?: AccountSettings }>(b).settings) ?? {}) : {};
  }

  async updateAccountSettings(acct: string, change: Partial<AccountSettings>): Promise<AccountSettings> {
    return this.storage.transaction(async (tx) => {
      const b = await tx.get(P.account(acct));
      if (!b) throw new NoSuchEntityException(`The account ${acct} cannot be found.`);
      const rec = dec<{ settings?: AccountSettings }>(b);
      rec.settings = { ...rec.settings, ...change };
      await tx.put(P.account(acct), enc(rec));
      return rec.settings;
    });
  }

  /**
   * The optional response to a critical alert: deactivates the access key (a user's key) or ends
   * the role session it belongs to. The account root's keys are never deactivated this way (that
   * would lock the account's administrator out); the outcome says so.
   */
  async deactivateForAlert(accessKeyId: string, acct: string, now: number): Promise<{ outcome: 'deactivated' | 'already-inactive' | 'root-kept' | 'unknown'; principalArn?: string }> {
    return this.storage.transaction(async (tx) => {
      const rec = await this.getAccessKey(accessKeyId, tx);
      if (!rec || rec.accountId !== acct) return { outcome: 'unknown' as const };
      const principalArn = principalOf(rec).arn;
      if (rec.kind === 'root') return { outcome: 'root-kept' as const, principalArn };
      if (rec.status !== 'Active' || rec.endedAt !== undefined) return { outcome: 'already-inactive' as const, principalArn };
      rec.status = 'Inactive';
      if (rec.kind === 'session') rec.endedAt = now;
      await tx.put(P.accessKey(accessKeyId), enc(rec));
      return { outcome: 'deactivated' as const, principalArn };
    });
  }

  // ---- per-account alert webhooks ----

  /**
   * Adds a webhook for the account's alerts with a new HMAC secret, sealed at rest (the storage
   * path is its associated data) and returned only here, once.
   */
  async addAlertWebhook(acct: string, url: string, now: number): Promise<AlertWebhook & { secret: string }> {
    const webhookId = 'wh-' + randomBytes(12).toString('hex');
    const secret = 'whsec_' + randomBytes(32).toString('base64url');
    const rec = {
      webhookId, url, createdAt: now,
      sealedSecret: this.box.seal(P.alertWebhookSecret(acct, webhookId), Buffer.from(secret, 'utf8')).toString('base64'),
    };
    await this.storage.transaction(async (tx) => {
      if ((await tx.count(P.alertWebhookPrefix(acct))) >= MAX_ALERT_WEBHOOKS) {
        throw new LimitExceededException(`An account can have at most ${MAX_ALERT_WEBHOOKS} alert webhooks.`);
      }
      await tx.put(P.alertWebhook(acct, webhookId), enc(rec));
    });
    return { webhookId, url, createdAt: now, secret };
  }

  async listAlertWebhooks(acct: string): Promise<AlertWebhook[]> {
    return (await this.storage.list(P.alertWebhookPrefix(acct))).map((r) => {
      const { webhookId, url, createdAt } = dec<AlertWebhook>(r.value);
      return { webhookId, url, createdAt };
    });
  }

  /** The webhook's HMAC key, or undefined once it is deleted. */
  async alertWebhookSecret(acct: string, webhookId: string): Promise<Buffer | undefined> {
    const b = await this.storage.get(P.alertWebhook(acct, webhookId));
    if (!b) return undefined;
    return this.box.open(P.alertWebhookSecret(acct, webhookId), Buffer.from(dec<{ sealedSecret: string }>(b).sealedSecret, 'base64'));
  }

  /** False when the account has no such webhook. */
  async deleteAlertWebhook(acct: string, webhookId: string): Promise<boolean> {
    return this.storage.transaction(async (tx) => {
      if (!(await tx.get(P.alertWebhook(acct, webhookId)))) return false;
      await tx.delete(P.alertWebhook(acct, webhookId));
      return true;
    });
  }

  // ---- generic entity access ----

  async getEntity<T>(kind: EntityKind, acct: string, name: string, r: StorageReader = this.storage): Promise<T | undefined> {
    const b = await r.get(pathOf(kind, acct, name));
    return b ? dec<T>(b) : undefined;
  }

  async mustGet<T>(kind: EntityKind, acct: string, name: string, r: StorageReader = this.storage): Promise<T> {
    const e = await this.getEntity<T>(kind, acct, name, r);
    if (!e) throw noSuchEntity(kind, name);
    return e;
  }

  /** Read-modify-write of one user, group or role in a transaction; `mutate` may throw to abort. */
  async updateEntity<T extends object>(kind: EntityKind, acct: string, name: string, mutate: (e: T, tx: StorageWriter) => Promise<void> | void): Promise<T> {
    return this.storage.transaction(async (tx) => {
      const e = await this.mustGet<T>(kind, acct, name, tx);
      await mutate(e, tx);
      await tx.put(pathOf(kind, acct, name), enc(e));
      return e;
    });
  }

  async listEntities<T>(kind: EntityKind, acct: string): Promise<T[]> {
    const prefix = kind === 'user' ? P.userPrefix(acct) : kind === 'group' ? P.groupPrefix(acct) : P.rolePrefix(acct);
    return (await this.storage.list(prefix)).map((r) => dec<T>(r.value));
  }

  // ---- users ----

  async createUser(acct: string, userName: string, path: string, tags: TagRecord[], now: number): Promise<UserRecord> {
    const user: UserRecord = {
      userName, userId: newUniqueId('AIDA'), arn: `arn:aws:iam::${acct}:user${path}${userName}`, path, accountId: acct,
      createdAt: now, tags, groups: [], inlinePolicies: {}, attachedPolicies: [],
    };
    await this.storage.transaction(async (tx) => {
      if (!(await tx.putIfAbsent(P.user(acct, userName), enc(user)))) {
        throw new EntityAlreadyExistsException(`User with name ${userName} already exists.`);
      }
    });
    return user;
  }

  /** AWS refuses to delete a user that still has keys, policies or groups. */
  async deleteUser(acct: string, userName: string): Promise<void> {
    await this.storage.transaction(async (tx) => {
      const u = await this.mustGet<UserRecord>('user', acct, userName, tx);
      if ((await tx.count(P.userKeyPrefix(acct, userName))) > 0) throw new DeleteConflictException('Cannot delete entity, must delete access keys first.');
      if (Object.keys(u.inlinePolicies).length > 0) throw new DeleteConflictException('Cannot delete entity, must delete policies first.');
      if (u.attachedPolicies.length > 0) throw new DeleteConflictException('Cannot delete entity, must detach all policies first.');
      if (u.groups.length > 0) throw new DeleteConflictException('Cannot delete entity, must remove users from group first.');
      await tx.delete(P.user(acct, userName));
    });
  }

  // ---- access keys ----

  async createAccessKey(acct: string, userName: string, now: number): Promise<{ record: AccessKeyRecord; secretAccessKey: string }> {
    return this.storage.transaction(async (tx) => {
      const u = await this.mustGet<UserRecord>('user', acct, userName, tx);
      if (u.offboardedAt !== undefined) throw new InvalidInputException(`User ${u.userName} has been offboarded; it cannot get new access keys.`);
      if ((await tx.count(P.userKeyPrefix(acct, userName))) >= MAX_ACCESS_KEYS_PER_USER) {
        throw new IamLimitExceededException(`Cannot exceed quota for AccessKeysPerUser: ${MAX_ACCESS_KEYS_PER_USER}`);
      }
      const accessKeyId = newAccessKeyId('AKIA');
      const secretAccessKey = newSecretAccessKey();
      const record: AccessKeyRecord = {
        accessKeyId, accountId: acct, kind: 'user', userName: u.userName, userArn: u.arn, userId: u.userId, status: 'Active', createdAt: now,
        sealedSecret: this.box.seal(P.secret(accessKeyId), Buffer.from(secretAccessKey)).toString('base64'),
      };
      await tx.put(P.accessKey(accessKeyId), enc(record));
      await tx.put(P.userKey(acct, u.userName, accessKeyId), Buffer.alloc(0));
      return { record, secretAccessKey };
    });
  }

  async listAccessKeys(acct: string, userName: string, r: StorageReader = this.storage): Promise<AccessKeyRecord[]> {
    const prefix = P.userKeyPrefix(acct, userName);
    const out: AccessKeyRecord[] = [];
    for (const row of await r.list(prefix)) {
      const b = await r.get(P.accessKey(row.key.slice(prefix.length)));
      if (b) out.push(dec<AccessKeyRecord>(b));
    }
    return out;
  }

  async getAccessKey(accessKeyId: string, r: StorageReader = this.storage): Promise<AccessKeyRecord | undefined> {
    const b = await r.get(P.accessKey(accessKeyId));
    return b ? dec<AccessKeyRecord>(b) : undefined;
  }

  private async userKeyOrThrow(tx: StorageReader, acct: string, userName: string, accessKeyId: string): Promise<AccessKeyRecord> {
    const rec = await this.getAccessKey(accessKeyId, tx);
    if (!rec || rec.kind !== 'user' || rec.accountId !== acct || rec.userName?.toLowerCase() !== userName.toLowerCase()) {
      throw new NoSuchEntityException(`The Access Key with id ${accessKeyId} cannot be found.`);
    }
    return rec;
  }

  async updateAccessKey(acct: string, userName: string, accessKeyId: string, status: AccessKeyStatus): Promise<void> {
    await this.storage.transaction(async (tx) => {
      await this.mustGet<UserRecord>('user', acct, userName, tx);
      const rec = await this.userKeyOrThrow(tx, acct, userName, accessKeyId);
      rec.status = status;
      await tx.put(P.accessKey(accessKeyId), enc(rec));
    });
  }

  async deleteAccessKey(acct: string, userName: string, accessKeyId: string): Promise<void> {
    await this.storage.transaction(async (tx) => {
      await this.mustGet<UserRecord>('user', acct, userName, tx);
      await this.userKeyOrThrow(tx, acct, userName, accessKeyId);
      await tx.delete(P.accessKey(accessKeyId));
      await tx.delete(P.secret(accessKeyId));
      await tx.delete(P.userKey(acct, userName, accessKeyId));
      await tx.delete(P.lastUsed(accessKeyId));
    });
    this.lastUsedSeen.delete(accessKeyId);
    this.credentials.forget(P.accessKey(accessKeyId));
  }

  /** Notes a use of an access key; persisted at most once a minute per key (the hot path stays read-only). */
  async noteUse(accessKeyId: string, use: LastUsed): Promise<void> {
    const seen = this.lastUsedSeen.get(accessKeyId);
    const writtenAt = seen && use.time - seen.writtenAt < 60_000 ? seen.writtenAt : use.time;
    // Fields named, not spread: an object spread here took microseconds per request (V8's slow clone path).
    this.lastUsedSeen.set(accessKeyId, { time: use.time, serviceName: use.serviceName, region: use.region, writtenAt });
    if (writtenAt === use.time) await this.storage.put(P.lastUsed(accessKeyId), enc(use));
  }

  async lastUsed(accessKeyId: string): Promise<LastUsed | undefined> {
    const seen = this.lastUsedSeen.get(accessKeyId);
    const b = await this.storage.get(P.lastUsed(accessKeyId));
    const stored = b ? dec<LastUsed>(b) : undefined;
    if (seen && (!stored || seen.time >= stored.time)) return { time: seen.time, serviceName: seen.serviceName, region: seen.region };
    return stored;
  }

  // ---- groups ----

  async createGroup(acct: string, groupName: string, path: string, now: number): Promise<GroupRecord> {
    const group: GroupRecord = {
      groupName, groupId: newUniqueId('AGPA'), arn: `arn:aws:iam::${acct}:group${path}${groupName}`, path, accountId: acct,
      createdAt: now, members: [], inlinePolicies: {}, attachedPolicies: [],
    };
    await this.storage.transaction(async (tx) => {
      if (!(await tx.putIfAbsent(P.group(acct, groupName), enc(group)))) {
        throw new EntityAlreadyExistsException(`Group with name ${groupName} already exists.`);
      }
    });
    return group;
  }

  async addUserToGroup(acct: string, groupName: string, userName: string): Promise<void> {
    await this.storage.transaction(async (tx) => {
      const g = await this.mustGet<GroupRecord>('group', acct, groupName, tx);
      const u = await this.mustGet<UserRecord>('user', acct, userName, tx);
      if (!u.groups.includes(g.groupName)) u.groups.push(g.groupName);
      if (!g.members.includes(u.userName)) g.members.push(u.userName);
      await tx.put(P.group(acct, groupName), enc(g));
      await tx.put(P.user(acct, userName), enc(u));
    });
  }

  async removeUserFromGroup(acct: string, groupName: string, userName: string): Promise<void> {
    await this.storage.transaction(async (tx) => this.removeFromGroupIn(tx, acct, groupName, userName));
  }

  private async removeFromGroupIn(tx: StorageWriter, acct: string, groupName: string, userName: string): Promise<void> {
    const g = await this.mustGet<GroupRecord>('group', acct, groupName, tx);
    const u = await this.mustGet<UserRecord>('user', acct, userName, tx);
    if (!u.groups.includes(g.groupName)) throw new NoSuchEntityException(`The user with name ${userName} cannot be found in group ${groupName}.`);
    u.groups = u.groups.filter((x) => x !== g.groupName);
    g.members = g.members.filter((x) => x !== u.userName);
    await tx.put(P.group(acct, groupName), enc(g));
    await tx.put(P.user(acct, userName), enc(u));
  }

  async deleteGroup(acct: string, groupName: string): Promise<void> {
    await this.storage.transaction(async (tx) => {
      const g = await this.mustGet<GroupRecord>('group', acct, groupName, tx);
      if (g.members.length > 0) throw new DeleteConflictException('Cannot delete entity, must remove users from group first.');
      if (Object.keys(g.inlinePolicies).length > 0) throw new DeleteConflictException('Cannot delete entity, must delete policies first.');
      if (g.attachedPolicies.length > 0) throw new DeleteConflictException('Cannot delete entity, must detach all policies first.');
      await tx.delete(P.group(acct, groupName));
    });
  }

  // ---- roles ----

  async createRole(acct: string, input: { roleName: string; path: string; assumeRolePolicyDocument: string; description: string; maxSessionDuration: number; tags: TagRecord[] }, now: number): Promise<RoleRecord> {
    const role: RoleRecord = {
      ...input, roleId: newUniqueId('AROA'), arn: `arn:aws:iam::${acct}:role${input.path}${input.roleName}`, accountId: acct,
      createdAt: now, inlinePolicies: {}, attachedPolicies: [],
    };
    await this.storage.transaction(async (tx) => {
      if (!(await tx.putIfAbsent(P.role(acct, input.roleName), enc(role)))) {
        throw new EntityAlreadyExistsException(`Role with name ${input.roleName} already exists.`);
      }
    });
    return role;
  }

  async deleteRole(acct: string, roleName: string): Promise<void> {
    await this.storage.transaction(async (tx) => {
      const r = await this.mustGet<RoleRecord>('role', acct, roleName, tx);
      if (Object.keys(r.inlinePolicies).length > 0) throw new DeleteConflictException('Cannot delete entity, must delete policies first.');
      if (r.attachedPolicies.length > 0) throw new DeleteConflictException('Cannot delete entity, must detach all policies first.');
      await tx.delete(P.role(acct, roleName));
    });
  }

  /**
   * Starts a role session: temporary credentials (ASIA... key, secret, session token) that expire.
   * The secret is sealed like any other; only the token's SHA-256 is kept.
   */
  async createSession(
    role: RoleRecord, sessionName: string, durationSeconds: number, source: Principal, now: number,
  ): Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken: string; expiresAt: number }> {
    const accessKeyId = newAccessKeyId('ASIA');
    const secretAccessKey = newSecretAccessKey();
    const sessionToken = randomBytes(96).toString('base64');
    const expiresAt = now + durationSeconds * 1000;
    const sourceUserName = source.type === 'IAMUser' ? source.userName : source.type === 'AssumedRole' ? (await this.getAccessKey(source.accessKeyId))?.sourceUserName : undefined;
    const record: AccessKeyRecord = {
      accessKeyId, accountId: role.accountId, kind: 'session', userId: `${role.roleId}:${sessionName}`, status: 'Active', createdAt: now,
      sealedSecret: this.box.seal(P.secret(accessKeyId), Buffer.from(secretAccessKey)).toString('base64'),
      roleName: role.roleName, roleArn: role.arn, roleId: role.roleId, sessionName, expiresAt, tokenSha256: sha256Hex(sessionToken),
      sourceArn: source.arn, ...(sourceUserName ? { sourceUserName } : {}),
    };
    await this.storage.transaction(async (tx) => {
      await tx.put(P.accessKey(accessKeyId), enc(record));
      if (sourceUserName) await tx.put(P.userSession(role.accountId, sourceUserName, accessKeyId), Buffer.alloc(0));
    });
    return { accessKeyId, secretAccessKey, sessionToken, expiresAt };
  }

  /** Sessions a user started (directly or through sessions of theirs). */
  async sessionsOfUser(acct: string, userName: string, r: StorageReader = this.storage): Promise<AccessKeyRecord[]> {
    const prefix = P.userSessionPrefix(acct, userName);
    const out: AccessKeyRecord[] = [];
    for (const row of await r.list(prefix)) {
      const rec = await this.getAccessKey(row.key.slice(prefix.length), r);
      if (rec) out.push(rec);
    }
    return out;
  }

  // ---- policies of a principal ----

  /**
   * Every identity policy that applies to a principal: for a user its own and its groups', for an
   * assumed role the role's. Root has none (it needs none); an offboarded user has none.
   */
  async policiesFor(principal: Principal, r: StorageReader = { get: (k) => this.storage.getCached(k), list: (p, o) => this.storage.list(p, o), count: (p) => this.storage.count(p) }): Promise<NamedPolicy[]> {
    const acct = principal.accountId;
    const out: NamedPolicy[] = [];
    const add = (h: PolicyHolder, what: string) => {
      for (const [name, document] of Object.entries(h.inlinePolicies)) out.push({ source: `inline policy '${name}' of ${what}`, document });
      for (const arn of h.attachedPolicies) out.push({ source: `managed policy ${arn} attached to ${what}`, managedArn: arn });
    };
    if (principal.type === 'IAMUser' && principal.userName) {
      const u = await this.getEntity<UserRecord>('user', acct, principal.userName, r);
      if (!u || u.offboardedAt !== undefined) return [];
      add(u, `user ${u.userName}`);
      for (const gn of u.groups) {
        const g = await this.getEntity<GroupRecord>('group', acct, gn, r);
        if (g) add(g, `group ${g.groupName}`);
      }
    } else if (principal.type === 'AssumedRole' && principal.roleName) {
      const role = await this.getEntity<RoleRecord>('role', acct, principal.roleName, r);
      if (role) add(role, `role ${role.roleName}`);
    }
    return out;
  }

  /** Tags of the principal (aws:PrincipalTag/*): the user's or the role's. */
  async principalTags(principal: Principal): Promise<Record<string, string>> {
    const r: StorageReader = { get: (k) => this.storage.getCached(k), list: (p, o) => this.storage.list(p, o), count: (p) => this.storage.count(p) };
    let tags: TagRecord[] = [];
    if (principal.type === 'IAMUser' && principal.userName) tags = (await this.getEntity<UserRecord>('user', principal.accountId, principal.userName, r))?.tags ?? [];
    if (principal.type === 'AssumedRole' && principal.roleName) tags = (await this.getEntity<RoleRecord>('role', principal.accountId, principal.roleName, r))?.tags ?? [];
    return Object.fromEntries(tags.map((t) => [t.key, t.value]));
  }

  /**
   * True for a principal that exists and can act: root, a user not offboarded, a role, or a live
   * session. Deleted or offboarded users and ended or expired sessions are not active.
   */
  async isActivePrincipal(arn: string, nowMs = Date.now()): Promise<boolean> {
    let m = /^arn:aws:iam::(\d{12}):root$/.exec(arn);
    if (m) return (await this.storage.get(P.account(m[1]!))) !== undefined;
    m = /^arn:aws:iam::(\d{12}):user\/(?:.*\/)?([^/]+)$/.exec(arn);
    if (m) {
      const u = await this.getEntity<UserRecord>('user', m[1]!, m[2]!);
      return u !== undefined && u.arn === arn && u.offboardedAt === undefined;
    }
    m = /^arn:aws:iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(arn);
    if (m) return (await this.getEntity<RoleRecord>('role', m[1]!, m[2]!)) !== undefined;
    m = /^arn:aws:sts::(\d{12}):assumed-role\/([^/]+)\/(.+)$/.exec(arn);
    if (m) {
      const role = await this.getEntity<RoleRecord>('role', m[1]!, m[2]!);
      if (!role) return false;
      // Any live session of that name counts.
      for (const row of await this.storage.list('iam/accesskey/ASIA')) {
        const rec = dec<AccessKeyRecord>(row.value);
        if (rec.roleArn === role.arn && rec.sessionName === m[3] && rec.status === 'Active' && rec.endedAt === undefined && (rec.expiresAt ?? 0) > nowMs) return true;
      }
      return false;
    }
    return false;
  }

  // ---- customer-managed policies ----

  async createPolicy(acct: string, input: { policyName: string; path: string; description: string; document: string; tags: TagRecord[] }, now: number): Promise<ManagedPolicyRecord> {
    const rec: ManagedPolicyRecord = {
      policyName: input.policyName, policyId: newUniqueId('ANPA'), arn: `arn:aws:iam::${acct}:policy${input.path}${input.policyName}`, path: input.path,
      accountId: acct, description: input.description, createdAt: now, updatedAt: now, defaultVersionId: 'v1',
      versions: [{ versionId: 'v1', document: input.document, createdAt: now }], nextVersion: 2, tags: input.tags,
    };
    await this.storage.transaction(async (tx) => {
      if (!(await tx.putIfAbsent(P.policy(acct, input.policyName), enc(rec)))) {
        throw new EntityAlreadyExistsException(`A policy called ${input.policyName} already exists. Duplicate names are not allowed.`);
      }
    });
    return rec;
  }

  /** A customer-managed policy by ARN (the ARN must match exactly, path included). */
  async getPolicy(arn: string, r: StorageReader = this.storage): Promise<ManagedPolicyRecord | undefined> {
    const m = POLICY_ARN.exec(arn);
    if (!m) return undefined;
    const b = await r.get(P.policy(m[1]!, m[2]!));
    const rec = b ? dec<ManagedPolicyRecord>(b) : undefined;
    return rec && rec.arn === arn ? rec : undefined;
  }

  /** The default version's document of a customer-managed policy, for evaluation (cached read). */
  async managedPolicyDocument(arn: string): Promise<string | undefined> {
    const rec = await this.getPolicy(arn, { get: (k) => this.storage.getCached(k), list: (p, o) => this.storage.list(p, o), count: (p) => this.storage.count(p) });
    return rec?.versions.find((v) => v.versionId === rec.defaultVersionId)?.document;
  }

  async listPolicies(acct: string): Promise<ManagedPolicyRecord[]> {
    return (await this.storage.list(P.policyPrefix(acct))).map((row) => dec<ManagedPolicyRecord>(row.value));
  }

  /** Read-modify-write of one customer-managed policy in a transaction; `mutate` may throw to abort. */
  async updatePolicy(arn: string, mutate: (p: ManagedPolicyRecord) => void): Promise<ManagedPolicyRecord> {
    return this.storage.transaction(async (tx) => {
      const rec = await this.getPolicy(arn, tx);
      if (!rec) throw new NoSuchEntityException(`Policy ${arn} does not exist or is not attachable.`);
      mutate(rec);
      await tx.put(P.policy(rec.accountId, rec.policyName), enc(rec));
      return rec;
    });
  }

  /** The users, groups and roles a managed policy (AWS or customer) is attached to. */
  async policyAttachments(acct: string, arn: string, r: StorageReader = this.storage): Promise<{ kind: EntityKind; name: string }[]> {
    const out: { kind: EntityKind; name: string }[] = [];
    for (const [kind, prefix] of [['user', P.userPrefix(acct)], ['group', P.groupPrefix(acct)], ['role', P.rolePrefix(acct)]] as const) {
      for (const row of await r.list(prefix)) {
        const h = dec<PolicyHolder & { userName?: string; groupName?: string; roleName?: string }>(row.value);
        if (h.attachedPolicies.includes(arn)) out.push({ kind, name: (h.userName ?? h.groupName ?? h.roleName)! });
      }
    }
    return out;
  }

  /** AWS refuses to delete a policy that is attached, or that has versions besides the default. */
  async deletePolicy(arn: string): Promise<void> {
    await this.storage.transaction(async (tx) => {
      const rec = await this.getPolicy(arn, tx);
      if (!rec) throw new NoSuchEntityException(`Policy ${arn} was not found.`);
      if ((await this.policyAttachments(rec.accountId, arn, tx)).length > 0) throw new DeleteConflictException('Cannot delete a policy attached to entities.');
      if (rec.versions.length > 1) {
        throw new DeleteConflictException("This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.");
      }
      await tx.delete(P.policy(rec.accountId, rec.policyName));
    });
  }

  // ---- offboarding ----

  /**
   * Revokes everything a user holds, in one transaction: access keys deactivated, sessions they
   * started ended, removed from every group, inline policies deleted and managed ones detached.
   * The user is marked offboarded (kept on record for audit and review). Returns what was done.
   */
  async offboardUser(acct: string, userName: string, now: number): Promise<{
    user: UserRecord; deactivatedKeys: string[]; endedSessions: { accessKeyId: string; roleArn: string; sessionName: string }[];
    removedFromGroups: string[]; deletedInlinePolicies: string[]; detachedPolicies: string[];
  }> {
    return this.storage.transaction(async (tx) => {
      const u = await this.mustGet<UserRecord>('user', acct, userName, tx);
      const deactivatedKeys: string[] = [];
      for (const k of await this.listAccessKeys(acct, u.userName, tx)) {
        if (k.status === 'Active') deactivatedKeys.push(k.accessKeyId);
        k.status = 'Inactive';
        await tx.put(P.accessKey(k.accessKeyId), enc(k));
      }
      const endedSessions: { accessKeyId: string; roleArn: string; sessionName: string }[] = [];
      for (const s of await this.sessionsOfUser(acct, u.userName, tx)) {
        if (s.status === 'Active' && (s.expiresAt ?? 0) > now) endedSessions.push({ accessKeyId: s.accessKeyId, roleArn: s.roleArn!, sessionName: s.sessionName! });
        s.status = 'Inactive';
        s.endedAt = now;
        await tx.put(P.accessKey(s.accessKeyId), enc(s));
      }
      const removedFromGroups = [...u.groups];
      for (const gn of removedFromGroups) {
        const g = await this.getEntity<GroupRecord>('group', acct, gn, tx);
        if (g) {
          g.members = g.members.filter((x) => x !== u.userName);
          await tx.put(P.group(acct, gn), enc(g));
        }
      }
      const deletedInlinePolicies = Object.keys(u.inlinePolicies);
      const detachedPolicies = [...u.attachedPolicies];
      u.groups = [];
      u.inlinePolicies = {};
      u.attachedPolicies = [];
      u.offboardedAt = now;
      await tx.put(P.user(acct, u.userName), enc(u));
      return { user: u, deactivatedKeys, endedSessions, removedFromGroups, deletedInlinePolicies, detachedPolicies };
    });
  }
}

/** The principal an access key stands for. */
export function principalOf(rec: AccessKeyRecord): Principal {
  const accountId = rec.accountId as AccountId;
  const accessKeyId = rec.accessKeyId;
  if (rec.kind === 'root') return { accountId, arn: rootArn(rec.accountId), type: 'Root', accessKeyId, userId: rec.accountId };
  if (rec.kind === 'session') {
    return {
      accountId, arn: `arn:aws:sts::${rec.accountId}:assumed-role/${rec.roleName}/${rec.sessionName}`, type: 'AssumedRole', accessKeyId,
      userId: rec.userId, roleName: rec.roleName, roleArn: rec.roleArn, sessionName: rec.sessionName, sourceArn: rec.sourceArn,
    };
  }
  return {
    accountId, arn: rec.userArn ?? `arn:aws:iam::${rec.accountId}:user/${rec.userName}`, type: 'IAMUser', accessKeyId, userId: rec.userId, userName: rec.userName,
  };
}

export { entityWord };
