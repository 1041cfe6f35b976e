/**
 * Policy Condition blocks: the AWS condition operators, evaluated as a pure function over the
 * request context. Keys compare without regard to case (as AWS's do); values as each operator says.
 *
 * Semantics (IAM User Guide, "Condition element", "Multivalued context keys"):
 *  - all operators of a block, and all keys under one operator, must hold (AND);
 *  - the values listed for one key are alternatives (OR); negated operators hold when no value matches;
 *  - a key missing from the request makes positive operators fail and negated operators hold;
 *    `...IfExists` makes any operator hold when the key is missing;
 *  - `ForAnyValue:` holds when some request value matches (false when the key is missing or empty);
 *    `ForAllValues:` holds when every request value matches (true when missing or empty);
 *  - `Null` tests presence: "true" holds when the key is missing, "false" when it is present.
 */
import { MalformedPolicyDocumentException } from '../errors/index.js';

/** The request context: condition key (any case) -> one value or several. */
export type ConditionContext = Readonly<Record<string, string | readonly string[] | undefined>>;

type Matcher = (requestValue: string, policyValue: string) => boolean;

interface OperatorSpec {
  readonly match: Matcher;
  readonly negated: boolean;
}

const norm = (s: string) => s.toLowerCase();

function parseNumber(s: string): number | undefined {
  if (!/^-?\d+(\.\d+)?$/.test(s.trim())) return undefined;
  return Number(s);
}

/** ISO 8601 dates, or epoch seconds, as AWS accepts in Date conditions. */
function parseDate(s: string): number | undefined {
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
}

function numeric(cmp: (a: number, b: number) => boolean): Matcher {
  return (r, p) => {
    const a = parseNumber(r);
    const b = parseNumber(p);
    return a !== undefined && b !== undefined && cmp(a, b);
  };
}

function date(cmp: (a: number, b: number) => boolean): Matcher {
  return (r, p) => {
    const a = parseDate(r);
    const b = parseDate(p);
    return a !== undefined && b !== undefined && cmp(a, b);
  };
}

/** `*` and `?` wildcards, case-sensitive. */
export function wildcardMatch(pattern: string, value: string, caseInsensitive = false): boolean {
  if (pattern === '*') return true;
  if (!pattern.includes('*') && !pattern.includes('?')) return caseInsensitive ? norm(pattern) === norm(value) : pattern === value;
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, caseInsensitive ? 'is' : 's').test(value);
}

/** ARNs compare part by part (six colon-separated parts), each with wildcards. */
function arnLike(r: string, p: string): boolean {
  const rp = r.split(':');
  const pp = p.split(':');
  if (rp.length < 6 || pp.length < 6) return wildcardMatch(p, r);
  const rHead = rp.slice(0, 5);
  const pHead = pp.slice(0, 5);
  const rRes = rp.slice(5).join(':');
  const pRes = pp.slice(5).join(':');
  return rHead.every((x, i) => wildcardMatch(pHead[i]!, x)) && wildcardMatch(pRes, rRes);
}

// ---- IP addresses (IPv4 and IPv6 CIDR) ----

function ipv4ToBig(s: string): bigint | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  let v = 0n;
  for (const part of m.slice(1)) {
    const n = Number(part);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function ipv6ToBig(s: string): bigint | undefined {
  if (!s.includes(':')) return undefined;
  let text = s;
  let tail: bigint[] = [];
  const v4 = /(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(text);
  if (v4) {
    const b = ipv4ToBig(v4[1]!);
    if (b === undefined) return undefined;
    tail = [b >> 16n, b & 0xffffn];
    text = text.slice(0, -v4[1]!.length) + (text.endsWith('::' + v4[1]) ? '' : '0');
    if (text.endsWith(':0')) text = text.slice(0, -2);
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (h: string) => (h === '' ? [] : h.split(':').map((x) => (/^[0-9a-fA-F]{1,4}$/.test(x) ? BigInt(parseInt(x, 16)) : -1n)));
  const left = parse(halves[0]!);
  const right = halves.length === 2 ? parse(halves[1]!) : [];
  const total = left.length + right.length + tail.length;
  if (halves.length === 1 && total !== 8) return undefined;
  if (total > 8 || [...left, ...right].some((x) => x < 0n)) return undefined;
  const groups = [...left, ...Array<bigint>(8 - total).fill(0n), ...right, ...tail];
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

function ipInCidr(ip: string, cidr: string): boolean {
  const [net, bitsText] = cidr.split('/');
  const v4 = ipv4ToBig(ip);
  const v6 = v4 === undefined ? ipv6ToBig(ip) : undefined;
  const width = v4 !== undefined ? 32 : 128;
  const addr = v4 ?? v6;
  const netAddr = width === 32 ? ipv4ToBig(net!) : ipv6ToBig(net!);
  if (addr === undefined || netAddr === undefined) return false;
  const bits = bitsText === undefined ? width : Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > width) return false;
  const shift = BigInt(width - bits);
  return addr >> shift === netAddr >> shift;
}

const OPERATORS: Readonly<Record<string, OperatorSpec>> = {
  stringequals: { match: (r, p) => r === p, negated: false },
  stringnotequals: { match: (r, p) => r === p, negated: true },
  stringequalsignorecase: { match: (r, p) => norm(r) === norm(p), negated: false },
  stringnotequalsignorecase: { match: (r, p) => norm(r) === norm(p), negated: true },
  stringlike: { match: (r, p) => wildcardMatch(p, r), negated: false },
  stringnotlike: { match: (r, p) => wildcardMatch(p, r), negated: true },
  numericequals: { match: numeric((a, b) => a === b), negated: false },
  numericnotequals: { match: numeric((a, b) => a === b), negated: true },
  numericlessthan: { match: numeric((a, b) => a < b), negated: false },
  numericlessthanequals: { match: numeric((a, b) => a <= b), negated: false },
  numericgreaterthan: { match: numeric((a, b) => a > b), negated: false },
  numericgreaterthanequals: { match: numeric((a, b) => a >= b), negated: false },
  dateequals: { match: date((a, b) => a === b), negated: false },
  datenotequals: { match: date((a, b) => a === b), negated: true },
  datelessthan: { match: date((a, b) => a < b), negated: false },
  datelessthanequals: { match: date((a, b) => a <= b), negated: false },
  dategreaterthan: { match: date((a, b) => a > b), negated: false },
  dategreaterthanequals: { match: date((a, b) => a >= b), negated: false },
  bool: { match: (r, p) => norm(r) === norm(p), negated: false },
  binaryequals: { match: (r, p) => r === p, negated: false },
  ipaddress: { match: (r, p) => ipInCidr(r, p), negated: false },
  notipaddress: { match: (r, p) => ipInCidr(r, p), negated: true },
  arnequals: { match: (r, p) => arnLike(r, p), negated: false },
  arnlike: { match: (r, p) => arnLike(r, p), negated: false },
  arnnotequals: { match: (r, p) => arnLike(r, p), negated: true },
  arnnotlike: { match: (r, p) => arnLike(r, p), negated: true },
};

interface ParsedOperator {
  readonly name: string;
  readonly set?: 'any' | 'all';
  readonly ifExists: boolean;
  readonly spec?: OperatorSpec;
  readonly isNull: boolean;
}

function parseOperator(raw: string): ParsedOperator | undefined {
  let name = raw;
  let set: 'any' | 'all' | undefined;
  const lower = raw.toLowerCase();
  if (lower.startsWith('foranyvalue:')) {
    set = 'any';
    name = raw.slice('ForAnyValue:'.length);
  } else if (lower.startsWith('forallvalues:')) {
    set = 'all';
    name = raw.slice('ForAllValues:'.length);
  }
  let ifExists = false;
  if (name.toLowerCase().endsWith('ifexists')) {
    ifExists = true;
    name = name.slice(0, -'IfExists'.length);
  }
  const key = name.toLowerCase();
  if (key === 'null') return set || ifExists ? undefined : { name, ifExists: false, isNull: true };
  const spec = OPERATORS[key];
  if (!spec) return undefined;
  return { name, set, ifExists, spec, isNull: false };
}

function valueList(v: unknown): string[] | undefined {
  const one = (x: unknown) => (typeof x === 'string' ? x : typeof x === 'number' || typeof x === 'boolean' ? String(x) : undefined);
  if (Array.isArray(v)) {
    const out = v.map(one);
    return out.length > 0 && out.every((x) => x !== undefined) ? (out as string[]) : undefined;
  }
  const s = one(v);
  return s === undefined ? undefined : [s];
}

/** Checks a Condition block when a policy is stored, so a typo is an error and not a silent deny. */
export function validateCondition(condition: Readonly<Record<string, unknown>>, where: string): void {
  for (const [op, block] of Object.entries(condition)) {
    if (!parseOperator(op)) throw new MalformedPolicyDocumentException(`${where}: Condition has an unknown operator '${op}'.`);
    if (!block || typeof block !== 'object' || Array.isArray(block)) {
      throw new MalformedPolicyDocumentException(`${where}: Condition operator '${op}' must map condition keys to values.`);
    }
    for (const [key, v] of Object.entries(block)) {
      if (!/^[a-zA-Z0-9]+:[^\s]+$/.test(key)) throw new MalformedPolicyDocumentException(`${where}: '${key}' is not a condition key (service:name).`);
      if (!valueList(v)) throw new MalformedPolicyDocumentException(`${where}: Condition ${op} ${key} must be a string, number, boolean or a non-empty list of them.`);
    }
  }
}

function lookup(ctx: ConditionContext, key: string): readonly string[] | undefined {
  const k = key.toLowerCase();
  const v = ctx[k];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? [v] : v;
}

/** Replaces policy variables such as ${aws:username} with context values (AWS: an unknown one matches nothing). */
export function substituteVariables(text: string, ctx: ConditionContext): string {
  if (!text.includes('${')) return text;
  return text.replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
    if (name === '*') return '*';
    if (name === '?') return '?';
    if (name === '$') return '$';
    const v = lookup(ctx, name);
    return v && v.length === 1 ? v[0]! : '\u0000no-such-variable\u0000';
  });
}

/** True when every operator of the Condition block holds for the context. */
export function conditionHolds(condition: Readonly<Record<string, unknown>>, ctx: ConditionContext): boolean {
  for (const [rawOp, block] of Object.entries(condition)) {
    const op = parseOperator(rawOp);
    if (!op) return false; // validated at parse time; unknown here means never grant
    for (const [key, rawValues] of Object.entries(block as Record<string, unknown>)) {
      const policyValues = (valueList(rawValues) ?? []).map((v) => substituteVariables(v, ctx));
      const requestValues = lookup(ctx, key);
      const present = requestValues !== undefined && requestValues.length > 0;
      if (op.isNull) {
        const wantMissing = policyValues.some((v) => norm(v) === 'true');
        if (wantMissing === present) return false;
        continue;
      }
      const spec = op.spec!;
      const matchesOne = (r: string) => policyValues.some((p) => spec.match(r, p));
      let holds: boolean;
      if (op.set === 'all') {
        holds = !present || requestValues!.every((r) => (spec.negated ? !matchesOne(r) : matchesOne(r)));
      } else if (op.set === 'any') {
        holds = present && requestValues!.some((r) => (spec.negated ? !matchesOne(r) : matchesOne(r)));
      } else if (!present) {
        holds = op.ifExists || spec.negated;
      } else {
        const any = requestValues!.some(matchesOne);
        holds = spec.negated ? !any : any;
      }
      if (!holds) return false;
    }
  }
  return true;
}
