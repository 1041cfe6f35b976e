import type { HsmConnectionError, HsmDirectory, KeyStore } from '../keystore.js';
import { Pkcs11KeyStore } from './pkcs11-keystore.js';
import { P, Pkcs11Token, TokenError, type TokenSpec } from './token.js';

/**
 * The HSMs declared to the server. Tokens are opened on first use and opened again after a failure,
 * so a server starts while an HSM is down and its keys come back when it does.
 */
export class HsmPool implements HsmDirectory {
  private readonly specs = new Map<string, TokenSpec>();
  private readonly tokens = new Map<string, Pkcs11Token>();
  private readonly stores = new Map<string, Pkcs11KeyStore>();

  constructor(specs: readonly TokenSpec[], private readonly onFailure: (name: string, e: unknown) => void = () => {}) {
    for (const s of specs) this.specs.set(s.name, s);
  }

  names(): readonly string[] {
    return [...this.specs.keys()];
  }

  /** The logged-in token for `name`; throws TokenError when it cannot be reached. */
  token(name: string): Pkcs11Token {
    const t = this.tokens.get(name);
    if (t) return t;
    const spec = this.specs.get(name);
    if (!spec) throw new TokenError('token-not-found', `no HSM named ${name} is declared`);
    const opened = Pkcs11Token.open(spec);
    this.tokens.set(name, opened);
    return opened;
  }

  keyStore(name: string): KeyStore {
    let s = this.stores.get(name);
    if (!s) {
      s = new Pkcs11KeyStore(this.token(name), (e) => this.onFailure(name, e));
      this.stores.set(name, s);
    }
    return s;
  }

  async check(name: string, password?: string): Promise<HsmConnectionError | undefined> {
    if (!this.specs.has(name)) return 'CLUSTER_NOT_FOUND';
    try {
      const t = this.token(name);
      // A round trip to the token, not just the cached login.
      t.withSession((lib, s) => lib.C_GenerateRandom(s, Buffer.alloc(1)));
      if (password !== undefined && !t.pinMatches(password)) return 'INVALID_CREDENTIALS';
      return undefined;
    } catch (e) {
      this.onFailure(name, e);
      if (e instanceof TokenError) {
        if (e.failure === 'pin-incorrect') return 'INVALID_CREDENTIALS';
        if (e.failure === 'pin-locked') return 'USER_LOCKED_OUT';
        if (e.failure === 'module') return 'INTERNAL_ERROR';
        return 'NETWORK_ERRORS';
      }
      return 'INTERNAL_ERROR';
    }
  }

  close(): void {
    for (const t of this.tokens.values()) t.close();
    this.tokens.clear();
    this.stores.clear();
  }
}

export { P };
