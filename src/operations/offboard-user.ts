/**
 * OffboardUser (Keyhold's own operation; `keyhold access offboard <user>`): turns "someone left"
 * into one audited step. Before anything is revoked it works out which keys the user could use
 * (directly, through groups, or through roles they hold live sessions of) and which keys they
 * actually used to decrypt (from the audit log, with times). Then, at once: every access key
 * deactivated, every role session they started ended (those credentials stop working immediately),
 * grants naming them as grantee or retiring principal removed, group memberships and policies
 * removed. Finally the keys they could decrypt with, or did, are rotated on demand unless told not to.
 */
import { NotFoundException } from '../errors/index.js';
import type { AccessKeyRecord, UserRecord } from '../identity/index.js';
import type { KeyRecord } from '../keys/index.js';
import type { AccountId, Principal } from '../types/index.js';
import { authorizeAccount, decideOnKey, updateKey } from './common.js';
import type { CallContext, Operation, Services } from './context.js';
import { addVersion, MAX_ON_DEMAND_ROTATIONS, setRotation } from './rotation-common.js';
import { rotationOf } from '../keys/index.js';

/** What "could use" looks at: the cryptographic operations and the administrative ones. */
const USE_ACTIONS = ['Decrypt', 'Encrypt', 'ReEncryptFrom', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext'] as const;
const ADMIN_ACTIONS = ['PutKeyPolicy', 'ScheduleKeyDeletion', 'DisableKey', 'CreateGrant'] as const;
const DECRYPTING_EVENTS = new Set(['Decrypt', 'ReEncrypt']);

export interface OffboardInput {
  userName: string;
  noRotate?: boolean;
}

export interface OffboardReport {
  userName: string;
  userArn: string;
  offboardedAt: Date;
  deactivatedAccessKeys: string[];
  endedSessions: { accessKeyId: string; roleArn: string; sessionName: string }[];
  removedFromGroups: string[];
  deletedInlinePolicies: string[];
  detachedPolicies: string[];
  removedGrants: { keyArn: string; grantId: string }[];
  keysUsable: { keyArn: string; actions: string[]; via: string[] }[];
  keysDecrypted: { keyArn: string; count: number; firstTime: Date; lastTime: Date }[];
  rotatedKeys: string[];
  notRotated: { keyArn: string; reason: string }[];
}

function callAs(call: CallContext, principal: Principal): CallContext {
  return { ...call, principal, accountId: principal.accountId };
}

export const offboardUser: Operation<OffboardInput, OffboardReport> = {
  name: 'OffboardUser',
  eventSource: 'keyhold.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    const acct = call.accountId;
    const user = await svc.identity.getEntity<UserRecord>('user', acct, input.userName);
    await authorizeAccount(svc, call, 'OffboardUser', audit, user?.arn ?? `arn:aws:iam::${acct}:user/${input.userName}`, 'keyhold');
    if (!user) throw new NotFoundException(`The user with name ${input.userName} cannot be found.`);
    audit.detail('userName', user.userName);
    const now = svc.clock.now();

    // 1. Who the user can act as: the user itself, and each role session they started that is live.
    const keys: AccessKeyRecord[] = await svc.identity.listAccessKeys(acct, user.userName);
    const sessions = await svc.identity.sessionsOfUser(acct, user.userName);
    const userPrincipal: Principal = { accountId: acct as AccountId, arn: user.arn, type: 'IAMUser', accessKeyId: keys[0]?.accessKeyId ?? '', userId: user.userId, userName: user.userName };
    const actingAs: { principal: Principal; via: string }[] = user.offboardedAt === undefined ? [{ principal: userPrincipal, via: 'user' }] : [];
    for (const s of sessions) {
      if (s.status !== 'Active' || (s.expiresAt ?? 0) <= now) continue;
      actingAs.push({
        principal: { accountId: acct as AccountId, arn: `arn:aws:sts::${acct}:assumed-role/${s.roleName}/${s.sessionName}`, type: 'AssumedRole', accessKeyId: s.accessKeyId, userId: s.userId, roleName: s.roleName, roleArn: s.roleArn, sessionName: s.sessionName },
        via: `session ${s.sessionName} of role ${s.roleName}`,
      });
    }

    // 2. Every key they could use, and through what (evaluated before anything is revoked).
    const allKeys: KeyRecord[] = [];
    for (const id of await svc.keys.listAccountKeyIds(acct)) {
      const k = await svc.keys.getKey(id);
      if (k && k.state !== 'PendingDeletion') allKeys.push(k);
    }
    const keysUsable: OffboardReport['keysUsable'] = [];
    const couldDecrypt = new Set<string>();
    for (const k of allKeys) {
      const actions = new Set<string>();
      const via = new Set<string>();
      for (const a of actingAs) {
        const c = callAs(call, a.principal);
        for (const action of [...USE_ACTIONS, ...ADMIN_ACTIONS]) {
          const d = await decideOnKey(svc, c, k, action, undefined);
          if (d.effect === 'Allow') {
            actions.add(action);
            via.add(`${a.via}: ${d.reason}`);
            if (action === 'Decrypt') couldDecrypt.add(k.arn);
          }
        }
      }
      // A grant usable only under an encryption context still counts: it names them.
      for (const g of k.grants ?? []) {
        if (g.granteePrincipal === user.arn) {
          for (const op of g.operations) actions.add(op);
          via.add(`grant ${g.grantId}`);
          if (g.operations.includes('Decrypt')) couldDecrypt.add(k.arn);
        }
      }
      if (actions.size > 0) keysUsable.push({ keyArn: k.arn, actions: [...actions].sort(), via: [...via] });
    }

    // 3. What they actually decrypted: the audit log, by each access key they held and each session.
    const regions = new Set(allKeys.map((k) => k.region));
    const decrypted = new Map<string, { count: number; first: number; last: number }>();
    for (const akid of [...keys.map((k) => k.accessKeyId), ...sessions.map((s) => s.accessKeyId)]) {
      for (const region of regions) {
        for (const { event } of await svc.audit.lookup({ accountId: acct, region, attribute: { key: 'AccessKeyId', value: akid }, limit: 100_000 })) {
          if (!DECRYPTING_EVENTS.has(event.eventName) || event.errorCode !== undefined) continue;
          const t = Date.parse(event.eventTime);
          // ReEncrypt lists the source key first; Decrypt names one key.
          const arn = event.resources[0]?.arn;
          if (!arn) continue;
          const e = decrypted.get(arn) ?? { count: 0, first: t, last: t };
          e.count += 1;
          e.first = Math.min(e.first, t);
          e.last = Math.max(e.last, t);
          decrypted.set(arn, e);
        }
      }
    }
    const keysDecrypted = [...decrypted].map(([keyArn, e]) => ({ keyArn, count: e.count, firstTime: new Date(e.first), lastTime: new Date(e.last) }));

    // 4. Revoke, at once: grants on keys, then the identity side in one transaction.
    const removedGrants: OffboardReport['removedGrants'] = [];
    for (const k of allKeys) {
      if (!(k.grants ?? []).some((g) => g.granteePrincipal === user.arn || g.retiringPrincipal === user.arn)) continue;
      await updateKey(svc, k.keyId, (rec) => {
        const keep = (rec.grants ?? []).filter((g) => g.granteePrincipal !== user.arn && g.retiringPrincipal !== user.arn);
        for (const g of rec.grants ?? []) if (!keep.includes(g)) removedGrants.push({ keyArn: rec.arn, grantId: g.grantId });
        rec.grants = keep;
      });
    }
    const revoked = await svc.identity.offboardUser(acct, user.userName, now);

    // 5. Rotate what they could read, unless told not to.
    const rotatedKeys: string[] = [];
    const notRotated: OffboardReport['notRotated'] = [];
    if (!input.noRotate) {
      const toRotate = new Set([...couldDecrypt, ...decrypted.keys()]);
      for (const k of allKeys) {
        if (!toRotate.has(k.arn)) continue;
        if (k.state !== 'Enabled') {
          notRotated.push({ keyArn: k.arn, reason: `key is ${k.state}` });
          continue;
        }
        if (k.origin !== 'AWS_KMS') {
          notRotated.push({ keyArn: k.arn, reason: `origin ${k.origin} keys are not rotated here` });
          continue;
        }
        try {
          let version = 0;
          await updateKey(svc, k.keyId, async (rec, tx) => {
            if (rotationOf(rec).onDemandCount >= MAX_ON_DEMAND_ROTATIONS) throw new Error(`the limit of ${MAX_ON_DEMAND_ROTATIONS} on-demand rotations is reached`);
            version = await addVersion(svc, rec, tx, 'ON_DEMAND', now);
            setRotation(rec, (r) => {
              r.onDemandCount += 1;
            });
          });
          audit.key(k.arn, version);
          rotatedKeys.push(k.arn);
        } catch (e) {
          notRotated.push({ keyArn: k.arn, reason: (e as Error).message });
        }
      }
    }

    const report: OffboardReport = {
      userName: user.userName, userArn: user.arn, offboardedAt: new Date(now),
      deactivatedAccessKeys: revoked.deactivatedKeys, endedSessions: revoked.endedSessions, removedFromGroups: revoked.removedFromGroups,
      deletedInlinePolicies: revoked.deletedInlinePolicies, detachedPolicies: revoked.detachedPolicies, removedGrants,
      keysUsable, keysDecrypted, rotatedKeys, notRotated,
    };
    audit.detail('deactivatedAccessKeys', report.deactivatedAccessKeys);
    audit.detail('endedSessions', report.endedSessions.map((s) => s.accessKeyId));
    audit.detail('removedGrants', removedGrants.map((g) => g.grantId));
    audit.detail('keysUsable', keysUsable.map((k) => k.keyArn));
    audit.detail('keysDecrypted', keysDecrypted.map((k) => k.keyArn));
    audit.detail('rotatedKeys', rotatedKeys);
    return report;
  },
};

export type { Services };
