import { IamAccessDeniedException, IamValidationError } from '../../errors/index.js';
import { MIN_SESSION_SECONDS, type RoleRecord } from '../../identity/index.js';
import { authorize, parsePolicy } from '../../policy/index.js';
import { cachedPolicy, conditionContext, identityPoliciesOf } from '../common.js';
import type { Operation } from '../context.js';
import { STS_SOURCE } from './common.js';

export const getCallerIdentity: Operation<Record<string, never>, { userId: string; account: string; arn: string }> = {
  name: 'GetCallerIdentity',
  eventSource: STS_SOURCE,
  readOnly: true,
  async run(_svc, call, _input, audit) {
    // AWS: no permission is needed to ask who you are.
    audit.decision = { effect: 'Allow', reason: 'GetCallerIdentity needs no permission' };
    return { userId: call.principal.userId, account: call.principal.accountId, arn: call.principal.arn };
  },
};

export interface AssumeRoleOutput {
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: Date };
  assumedRoleUser: { assumedRoleId: string; arn: string };
}

const ROLE_ARN = /^arn:aws:iam::(\d{12}):role\/(?:[\u0021-\u007E]*\/)?([\w+=,.@-]{1,64})$/;

/**
 * AssumeRole: the role's trust policy must allow the caller sts:AssumeRole. A trust policy that
 * names the caller allows it outright; one that names only the account delegates to the caller's
 * identity policies (as in AWS). DurationSeconds from 900 to the role's MaxSessionDuration.
 */
export const assumeRole: Operation<{ roleArn: string; roleSessionName: string; durationSeconds?: number }, AssumeRoleOutput> = {
  name: 'AssumeRole',
  eventSource: STS_SOURCE,
  readOnly: false,
  async run(svc, call, input, audit) {
    const m = input.roleArn ? ROLE_ARN.exec(input.roleArn) : null;
    if (!input.roleArn || input.roleArn.length < 20) throw new IamValidationError(`1 validation error detected: Value at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20`);
    const session = input.roleSessionName;
    if (!session || session.length < 2 || session.length > 64 || !/^[\w+=,.@-]+$/.test(session)) {
      throw new IamValidationError(`1 validation error detected: Value '${session ?? ''}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`);
    }
    const denied = () => new IamAccessDeniedException(`User: ${call.principal.arn} is not authorized to perform: sts:AssumeRole on resource: ${input.roleArn}`);
    audit.detail('roleArn', input.roleArn);
    audit.detail('roleSessionName', session);
    if (!m || m[1] !== call.accountId) {
      audit.decision = { effect: 'ImplicitDeny', reason: 'the role does not exist in the caller\'s account' };
      throw denied();
    }
    const role = await svc.identity.getEntity<RoleRecord>('role', call.accountId, m[2]!);
    if (!role || role.arn !== input.roleArn) {
      audit.decision = { effect: 'ImplicitDeny', reason: 'no such role' };
      throw denied();
    }
    const p = call.principal;
    const decision = authorize({
      principal: { arn: p.arn, accountId: p.accountId, roleArn: p.roleArn, isRoot: p.type === 'Root' },
      action: 'sts:AssumeRole',
      resource: role.arn,
      context: await conditionContext(svc, call, audit, undefined),
      keyPolicy: cachedPolicy(role.assumeRolePolicyDocument),
      identityPolicies: await identityPoliciesOf(svc, p),
    });
    audit.decision = { effect: decision.effect, reason: decision.reason.replace(/key policy/g, `trust policy of ${role.roleName}`) };
    if (decision.effect !== 'Allow') throw denied();
    const duration = input.durationSeconds ?? 3600;
    if (!Number.isInteger(duration) || duration < MIN_SESSION_SECONDS || duration > role.maxSessionDuration) {
      throw new IamValidationError(`The requested DurationSeconds exceeds the MaxSessionDuration set for this role.`);
    }
    const c = await svc.identity.createSession(role, session, duration, p, svc.clock.now());
    audit.detail('sessionAccessKeyId', c.accessKeyId);
    void parsePolicy;
    return {
      credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken, expiration: new Date(c.expiresAt) },
      assumedRoleUser: { assumedRoleId: `${role.roleId}:${session}`, arn: `arn:aws:sts::${call.accountId}:assumed-role/${role.roleName}/${session}` },
    };
  },
};
