import { IamValidationError } from '../../errors/index.js';

/**
 * The form-encoded input of the AWS query protocol: flat names such as `UserName`,
 * `Tags.member.1.Key`, `PolicyArns.member.2.arn`. Values arrive as strings; these readers type them.
 */
export class Form {
  private readonly params = new Map<string, string>();

  constructor(body: string) {
    for (const [k, v] of new URLSearchParams(body)) this.params.set(k, v);
  }

  get action(): string | undefined {
    return this.params.get('Action');
  }

  get version(): string | undefined {
    return this.params.get('Version');
  }

  str(name: string): string | undefined {
    return this.params.get(name);
  }

  int(name: string): number | undefined {
    const v = this.params.get(name);
    if (v === undefined) return undefined;
    if (!/^-?\d+$/.test(v)) throw new IamValidationError(`1 validation error detected: Value '${v}' at '${name}' failed to satisfy constraint: Member must be an integer`);
    return Number(v);
  }

  bool(name: string): boolean | undefined {
    const v = this.params.get(name);
    return v === undefined ? undefined : v === 'true';
  }

  /** `Name.member.1`, `Name.member.2`, ... as a list of strings. */
  strList(name: string): string[] | undefined {
    return this.indexed(name, (prefix) => this.params.get(prefix));
  }

  /** `Name.member.N.Key` / `Name.member.N.Value` as tags. */
  tags(name = 'Tags'): { key: string; value: string }[] | undefined {
    return this.indexed(name, (prefix) => {
      const key = this.params.get(`${prefix}.Key`);
      if (key === undefined) return undefined;
      return { key, value: this.params.get(`${prefix}.Value`) ?? '' };
    });
  }

  private indexed<T>(name: string, read: (prefix: string) => T | undefined): T[] | undefined {
    const out: T[] = [];
    let seen = false;
    for (const k of this.params.keys()) if (k === name || k.startsWith(`${name}.`)) seen = true;
    if (!seen) return undefined;
    for (let i = 1; i <= 1000; i++) {
      const v = read(`${name}.member.${i}`);
      if (v === undefined) break;
      out.push(v);
    }
    return out;
  }
}
