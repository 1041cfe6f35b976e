/**
 * The KMS authorization model as a pure function (AWS KMS Developer Guide, "Determining access"):
 *  - the key policy is the root of access: a statement naming the caller allows directly; one naming
 *    only the caller's account delegates to the account's identity policies (users, groups, roles);
 *  - an explicit Deny anywhere (key policy or identity policy) wins;
 *  - grants add access for their grantee and operations, within their constraints;
 *  - anything else is denied. The account root is bound by the key policy only.
 * Operations that name no key (CreateKey, ListKeys, IAM calls) have no resource policy: identity
 * policies decide, and root may do everything.
 */
import { conditionHolds, type ConditionContext } from './conditions.js';
import { evaluate, globMatch, type Decision, type PolicyDocument, type PolicyPrincipal } from './policy.js';

export interface IdentityPolicy {
  /** Where it comes from, for the reason: e.g. `inline policy 'p' of user alice`. */
  readonly source: string;
  readonly document: PolicyDocument;
}

export interface GrantConstraintsLike {
  readonly encryptionContextSubset?: Readonly<Record<string, string>>;
  readonly encryptionContextEquals?: Readonly<Record<string, string>>;
}

export interface GrantLike {
  readonly grantId: string;
  readonly granteePrincipal: string;
  readonly operations: readonly string[];
  readonly constraints?: GrantConstraintsLike;
}

export interface AuthorizationRequest {
  readonly principal: PolicyPrincipal & { readonly isRoot: boolean };
  /** e.g. `kms:Decrypt` */
  readonly action: string;
  readonly resource: string;
  readonly context: ConditionContext;
  /** The key policy; absent for actions on no key. */
  readonly keyPolicy?: PolicyDocument;
  readonly identityPolicies: readonly IdentityPolicy[];
  readonly grants?: readonly GrantLike[];
  /** The request's encryption context, for grant constraints. */
  readonly encryptionContext?: Readonly<Record<string, string>>;
}

/** Does the grant cover this principal, operation and encryption context? */
export function grantAllows(g: GrantLike, principal: PolicyPrincipal, operation: string, ctx: Readonly<Record<string, string>> | undefined): boolean {
  const grantee = g.granteePrincipal;
  if (grantee !== principal.arn && grantee !== principal.roleArn) return false;
  if (!g.operations.includes(operation)) return false;
  const c = g.constraints;
  if (c?.encryptionContextEquals) {
    const want = c.encryptionContextEquals;
    const have = ctx ?? {};
    if (Object.keys(want).length !== Object.keys(have).length) return false;
    if (!Object.entries(want).every(([k, v]) => have[k] === v)) return false;
  }
  if (c?.encryptionContextSubset) {
    const have = ctx ?? {};
    if (!Object.entries(c.encryptionContextSubset).every(([k, v]) => have[k] === v)) return false;
  }
  return true;
}

function identityDecision(req: AuthorizationRequest): Decision {
  let allow: Decision | undefined;
  for (const p of req.identityPolicies) {
    const d = evaluate(p.document, { principal: req.principal, action: req.action, resource: req.resource, context: req.context }, p.source);
    if (d.effect === 'Deny') return d;
    if (d.effect === 'Allow' && !allow) allow = d;
  }
  return allow ?? { effect: 'ImplicitDeny', reason: `no identity policy allows ${req.action}` };
}

export function authorize(req: AuthorizationRequest): Decision {
  const id = req.principal.isRoot ? undefined : identityDecision(req);
  if (id?.effect === 'Deny') return id;
  if (!req.keyPolicy) {
    if (req.principal.isRoot) return { effect: 'Allow', reason: `account root may perform ${req.action}` };
    return id!;
  }
  const kp = evaluate(req.keyPolicy, { principal: req.principal, action: req.action, resource: req.resource, context: req.context });
  if (kp.effect === 'Deny') return kp;
  if (kp.effect === 'Allow') {
    if (kp.allowedAs === 'principal') return kp;
    if (id?.effect === 'Allow') return { effect: 'Allow', reason: `${kp.reason} enables IAM policies; ${id.reason}` };
  }
  const operation = req.action.startsWith('kms:') ? req.action.slice(4) : req.action;
  const grant = req.grants?.find((g) => grantAllows(g, req.principal, operation, req.encryptionContext));
  if (grant) return { effect: 'Allow', reason: `allowed by grant ${grant.grantId}` };
  if (kp.effect === 'Allow') return { effect: 'ImplicitDeny', reason: `${kp.reason} enables IAM policies, but ${id!.reason}` };
  return { effect: 'ImplicitDeny', reason: `${kp.reason}, and no grant applies` };
}

/** Does any statement of this document allow `action` on `resource` for someone (used by the SoD guard)? */
export function documentAllows(doc: PolicyDocument, principal: PolicyPrincipal, action: string, resource: string, context: ConditionContext = {}): boolean {
  return evaluate(doc, { principal, action, resource, context }).effect === 'Allow';
}

export { conditionHolds, globMatch };
