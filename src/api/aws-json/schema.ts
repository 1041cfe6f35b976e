import { SerializationException, validationError } from '../../errors/index.js';

/**
 * Wire shapes for AWS JSON 1.1, declared per operation with the constraints of the AWS model.
 * Wire names (`CiphertextBlob`) live only here; `decodeInput` hands operations camelCase objects with
 * Buffers and Dates, and `encodeOutput` turns their results back into wire JSON.
 */
export type Shape =
  | { readonly kind: 'string'; readonly min?: number; readonly max?: number; readonly pattern?: RegExp; readonly enum?: readonly string[]; readonly sensitive?: boolean }
  | { readonly kind: 'blob'; readonly min?: number; readonly max?: number; readonly sensitive?: boolean }
  | { readonly kind: 'integer'; readonly min?: number; readonly max?: number }
  | { readonly kind: 'boolean' }
  | { readonly kind: 'timestamp' }
  | { readonly kind: 'map'; readonly value: Shape }
  | { readonly kind: 'list'; readonly member: Shape; readonly min?: number; readonly max?: number }
  | { readonly kind: 'structure'; readonly members: Readonly<Record<string, Shape>>; readonly required?: readonly string[] }
  | { readonly kind: 'any' };

type Req<S> = S extends { required: readonly (infer R)[] } ? R : never;
export type InternalName<K extends string> = K extends `AWS${infer R}` ? `aws${R}` : Uncapitalize<K>;

type InferStruct<M extends Record<string, Shape>, R extends string> = {
  [K in keyof M & string as K extends R ? InternalName<K> : never]: Infer<M[K]>;
} & {
  [K in keyof M & string as K extends R ? never : InternalName<K>]?: Infer<M[K]>;
};

/** The internal (camelCase) type a wire shape decodes to. */
export type Infer<S> = S extends { kind: 'string'; enum: readonly (infer E)[] }
  ? E
  : S extends { kind: 'string' }
    ? string
    : S extends { kind: 'blob' }
      ? Buffer
      : S extends { kind: 'integer' }
        ? number
        : S extends { kind: 'boolean' }
          ? boolean
          : S extends { kind: 'timestamp' }
            ? Date
            : S extends { kind: 'map'; value: infer V }
              ? Record<string, Infer<V>>
              : S extends { kind: 'list'; member: infer M }
                ? Infer<M>[]
                : S extends { kind: 'structure'; members: infer M extends Record<string, Shape> }
                  ? InferStruct<M, Req<S> & string>
                  : unknown;

// ---- constructors (so schemas read like the AWS model) ----
export const str = <const O extends Omit<Extract<Shape, { kind: 'string' }>, 'kind'>>(o?: O) => ({ kind: 'string', ...o }) as { kind: 'string' } & O;
export const blob = <const O extends Omit<Extract<Shape, { kind: 'blob' }>, 'kind'>>(o?: O) => ({ kind: 'blob', ...o }) as { kind: 'blob' } & O;
export const int = <const O extends Omit<Extract<Shape, { kind: 'integer' }>, 'kind'>>(o?: O) => ({ kind: 'integer', ...o }) as { kind: 'integer' } & O;
export const bool = () => ({ kind: 'boolean' }) as const;
export const timestamp = () => ({ kind: 'timestamp' }) as const;
export const any = () => ({ kind: 'any' }) as const;
export const map = <const V extends Shape>(value: V) => ({ kind: 'map', value }) as const;
export const list = <const M extends Shape, const O extends { min?: number; max?: number }>(member: M, o?: O) =>
  ({ kind: 'list', member, ...o }) as { kind: 'list'; member: M } & O;
export const struct = <const M extends Record<string, Shape>, const R extends readonly (keyof M & string)[] = []>(members: M, required?: R) =>
  ({ kind: 'structure', members, required: required ?? [] }) as { kind: 'structure'; members: M; required: R };

const nameCache = new Map<string, string>();
export function internalName(wire: string): string {
  let n = nameCache.get(wire);
  if (n === undefined) {
    n = wire.startsWith('AWS') ? `aws${wire.slice(3)}` : wire.charAt(0).toLowerCase() + wire.slice(1);
    nameCache.set(wire, n);
  }
  return n;
}

/**
 * Strict base64: Node's decoder skips characters it does not know, so decode and check that the
 * canonical encoding of the result is what was sent (cheaper than a regex over a 5 KB string).
 */
function decodeBase64Strict(v: string): Buffer | undefined {
  if (v.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(v, 'base64');
  return bytes.toString('base64') === v ? bytes : undefined;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function quote(v: string, sensitive: boolean | undefined): string {
  return sensitive ? '' : ` '${v.length > 256 ? v.slice(0, 256) + '...' : v}'`;
}

/**
 * Decodes and validates a parsed JSON body. Type errors are SerializationException (the body does
 * not fit the wire format); constraint violations are collected into one ValidationException worded
 * as AWS words them. Unknown members are ignored, as AWS does.
 */
export function decodeInput<S extends Shape>(shape: S, body: unknown): Infer<S> {
  const problems: string[] = [];
  const out = decodeValue(shape, body ?? {}, '', problems);
  if (problems.length) throw validationError(problems);
  return out as Infer<S>;
}

/** The untyped form, for the dispatcher that holds shapes as plain `Shape`. */
export function decodeWire(shape: Shape, body: unknown): unknown {
  const problems: string[] = [];
  const out = decodeValue(shape, body ?? {}, '', problems);
  if (problems.length) throw validationError(problems);
  return out;
}

function decodeValue(shape: Shape, v: unknown, path: string, problems: string[]): unknown {
  switch (shape.kind) {
    case 'structure': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        throw new SerializationException(`Expected an object${path ? ` at '${path}'` : ''} but found ${typeName(v)}.`);
      }
      const src = v as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const [wire, member] of Object.entries(shape.members)) {
        const name = internalName(wire);
        const mpath = path ? `${path}.${name}` : name;
        const value = src[wire];
        if (value === undefined || value === null) {
          if (shape.required?.includes(wire)) problems.push(`Value null at '${mpath}' failed to satisfy constraint: Member must not be null`);
          continue;
        }
        out[name] = decodeValue(member, value, mpath, problems);
      }
      return out;
    }
    case 'string': {
      if (typeof v !== 'string') throw new SerializationException(`Expected a string at '${path}' but found ${typeName(v)}.`);
      if (shape.enum && !shape.enum.includes(v)) {
        problems.push(`Value${quote(v, shape.sensitive)} at '${path}' failed to satisfy constraint: Member must satisfy enum value set: [${shape.enum.join(', ')}]`);
      }
      lengthChecks(v.length, shape, path, problems, quote(v, shape.sensitive));
      if (shape.pattern && !shape.pattern.test(v)) {
        problems.push(`Value${quote(v, shape.sensitive)} at '${path}' failed to satisfy constraint: Member must satisfy regular expression pattern: ${shape.pattern.source}`);
      }
      return v;
    }
    case 'blob': {
      const bytes = typeof v === 'string' ? decodeBase64Strict(v) : undefined;
      if (!bytes) throw new SerializationException(`Expected base64-encoded bytes at '${path}'.`);
      lengthChecks(bytes.length, shape, path, problems, shape.sensitive ? '' : '');
      return bytes;
    }
    case 'integer': {
      if (typeof v !== 'number' || !Number.isInteger(v)) throw new SerializationException(`Expected an integer at '${path}' but found ${typeName(v)}.`);
      if (shape.min !== undefined && v < shape.min) problems.push(`Value '${v}' at '${path}' failed to satisfy constraint: Member must have value greater than or equal to ${shape.min}`);
      if (shape.max !== undefined && v > shape.max) problems.push(`Value '${v}' at '${path}' failed to satisfy constraint: Member must have value less than or equal to ${shape.max}`);
      return v;
    }
    case 'boolean':
      if (typeof v !== 'boolean') throw new SerializationException(`Expected a boolean at '${path}' but found ${typeName(v)}.`);
      return v;
    case 'timestamp': {
      if (typeof v === 'number') return new Date(v * 1000);
      if (typeof v === 'string' && !Number.isNaN(Date.parse(v))) return new Date(v);
      throw new SerializationException(`Expected a timestamp at '${path}'.`);
    }
    case 'map': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SerializationException(`Expected a map at '${path}' but found ${typeName(v)}.`);
      const out: Record<string, unknown> = {};
      for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
        out[k] = decodeValue(shape.value, val, `${path}.${k}`, problems);
      }
      return out;
    }
    case 'list': {
      if (!Array.isArray(v)) throw new SerializationException(`Expected a list at '${path}' but found ${typeName(v)}.`);
      if (shape.min !== undefined && v.length < shape.min) problems.push(`Value at '${path}' failed to satisfy constraint: Member must have length greater than or equal to ${shape.min}`);
      if (shape.max !== undefined && v.length > shape.max) problems.push(`Value at '${path}' failed to satisfy constraint: Member must have length less than or equal to ${shape.max}`);
      return v.map((item, i) => decodeValue(shape.member, item, `${path}.${i + 1}.member`, problems));
    }
    case 'any':
      return v;
  }
}

function lengthChecks(len: number, shape: { min?: number; max?: number }, path: string, problems: string[], shown: string): void {
  if (shape.min !== undefined && len < shape.min) problems.push(`Value${shown} at '${path}' failed to satisfy constraint: Member must have length greater than or equal to ${shape.min}`);
  if (shape.max !== undefined && len > shape.max) problems.push(`Value${shown} at '${path}' failed to satisfy constraint: Member must have length less than or equal to ${shape.max}`);
}

/** Turns an operation's result into wire JSON: PascalCase names, base64 blobs, epoch-second timestamps. */
export function encodeOutput(shape: Shape, v: unknown): unknown {
  if (v === undefined || v === null) return undefined;
  switch (shape.kind) {
    case 'structure': {
      const src = v as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const [wire, member] of Object.entries(shape.members)) {
        const value = encodeOutput(member, src[internalName(wire)]);
        if (value !== undefined) out[wire] = value;
      }
      return out;
    }
    case 'blob':
      return (v as Buffer).toString('base64');
    case 'timestamp':
      return (v instanceof Date ? v.getTime() : (v as number)) / 1000;
    case 'list':
      return (v as unknown[]).map((item) => encodeOutput(shape.member, item));
    case 'map': {
      const out: Record<string, unknown> = {};
      for (const [k, val] of Object.entries(v as Record<string, unknown>)) out[k] = encodeOutput(shape.value, val);
      return out;
    }
    default:
      return v;
  }
}

/**
 * The same JSON text as `JSON.stringify(encodeOutput(shape, v) ?? {})`, written directly: no
 * intermediate object, and base64 text goes in as it is (it needs no escaping), where
 * JSON.stringify would scan and copy every character of a 7.5 KB CiphertextBlob again.
 * Members in shape order, absent (undefined or null) members left out, as encodeOutput does.
 */
export function encodeOutputJson(shape: Shape, v: unknown): string {
  return jsonOf(shape, v) ?? '{}';
}

/** JSON text of one value, or undefined where encodeOutput gives undefined (the member is left out). */
function jsonOf(shape: Shape, v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  switch (shape.kind) {
    case 'structure': {
      const src = v as Record<string, unknown>;
      let out = '';
      for (const wire in shape.members) {
        const value = jsonOf(shape.members[wire]!, src[internalName(wire)]);
        if (value === undefined) continue;
        out += (out === '' ? '{' : ',') + JSON.stringify(wire) + ':' + value;
      }
      return out === '' ? '{}' : out + '}';
    }
    case 'blob':
      // Base64's alphabet (A-Z a-z 0-9 + / =) has nothing JSON must escape.
      return '"' + (v as Buffer).toString('base64') + '"';
    case 'timestamp':
      return JSON.stringify((v instanceof Date ? v.getTime() : (v as number)) / 1000);
    case 'list': {
      let out = '';
      for (const item of v as unknown[]) out += (out === '' ? '[' : ',') + (jsonOf(shape.member, item) ?? 'null');
      return out === '' ? '[]' : out + ']';
    }
    case 'map': {
      let out = '';
      for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
        const value = jsonOf(shape.value, val);
        if (value === undefined) continue;
        out += (out === '' ? '{' : ',') + JSON.stringify(k) + ':' + value;
      }
      return out === '' ? '{}' : out + '}';
    }
    default:
      return JSON.stringify(v);
  }
}
