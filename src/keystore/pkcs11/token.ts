import { createRequire } from 'node:module';
import { timingSafeEqual, createHash } from 'node:crypto';
import type * as Pkcs11Types from 'pkcs11js';

/*
 * One PKCS#11 token, found by label in a module (a shared library such as SoftHSM's), logged in as
 * the user. The module is loaded once per process and initialized with CKF_OS_LOCKING_OK: without
 * it SoftHSM crashes under concurrent sessions (TOOLCHAIN.md, pitfalls of item 1).
 *
 * Sessions are kept in a small pool. A call that fails with an error saying the session, the login
 * or the token went away drops every session, finds the token again by label (its slot id changes
 * whenever the token is re-initialized), logs in again and retries once. Anything else is the
 * caller's to interpret. There is no fallback to anything outside the token.
 */

const require = createRequire(import.meta.url);
type Pkcs11Module = typeof Pkcs11Types;
let pkcs11js: Pkcs11Module | undefined;
/** The native binding, loaded on first use so that a server without HSMs never needs it. */
export function P(): Pkcs11Module {
  return (pkcs11js ??= require('pkcs11js') as Pkcs11Module);
}

export type Handle = Buffer;
export type Session = Handle;

/** What a token failure is, for the caller that must map it to an AWS error. */
export type TokenFailure = 'pin-incorrect' | 'pin-locked' | 'token-not-found' | 'module' | 'token';

export class TokenError extends Error {
  constructor(readonly failure: TokenFailure, message: string, readonly code?: string) {
    super(message);
    this.name = 'TokenError';
  }
}

/** The CKR_ name in a pkcs11js error ("CKR_PIN_INCORRECT:160 ..." or a message containing it). */
export function ckr(e: unknown): string | undefined {
  const m = /CKR_[A-Z_]+/.exec(String((e as Error)?.message ?? e));
  return m?.[0];
}

/** Errors after which the session (or the whole login) is gone and a reopen may help. */
const SESSION_LOST = new Set([
  'CKR_SESSION_HANDLE_INVALID', 'CKR_SESSION_CLOSED', 'CKR_USER_NOT_LOGGED_IN', 'CKR_DEVICE_REMOVED',
  'CKR_TOKEN_NOT_PRESENT', 'CKR_DEVICE_ERROR', 'CKR_CRYPTOKI_NOT_INITIALIZED', 'CKR_SLOT_ID_INVALID',
  'CKR_TOKEN_NOT_RECOGNIZED', 'CKR_SESSION_COUNT',
]);

interface LoadedModule {
  readonly lib: Pkcs11Types.PKCS11;
  users: number;
  /** Bumped by every re-initialization: sessions and object handles from before are void. */
  epoch: number;
  refreshedAt: number;
  /** False after a C_Initialize failed (e.g. a token store gone missing): retried on next use. */
  initialized: boolean;
  initAttemptAt: number;
}

const REINIT_INTERVAL_MS = 200;

/** C_Initialize again after a failure, at most every REINIT_INTERVAL_MS; throws TokenError while it fails. */
function ensureInitialized(m: LoadedModule, path: string): void {
  if (m.initialized) return;
  const now = Date.now();
  if (now - m.initAttemptAt < REINIT_INTERVAL_MS) throw new TokenError('token', `PKCS#11 module ${path} is not initialized (retrying)`);
  m.initAttemptAt = now;
  try {
    m.lib.C_Initialize({ flags: P().CKF_OS_LOCKING_OK });
  } catch (e) {
    if (ckr(e) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') throw new TokenError('token', `C_Initialize failed for ${path}: ${ckr(e) ?? (e as Error).message}`, ckr(e));
  }
  m.initialized = true;
  m.epoch++;
}
/** A module may be initialized only once per process: tokens in the same module share it. */
const modules = new Map<string, LoadedModule>();

function loadModule(path: string): LoadedModule {
  let m = modules.get(path);
  if (!m) {
    const p = P();
    const lib = new p.PKCS11();
    try {
      lib.load(path);
    } catch (e) {
      throw new TokenError('module', `cannot load PKCS#11 module ${path}: ${(e as Error).message}`);
    }
    try {
      lib.C_Initialize({ flags: p.CKF_OS_LOCKING_OK });
    } catch (e) {
      if (ckr(e) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
        throw new TokenError('module', `C_Initialize failed for ${path}: ${ckr(e) ?? (e as Error).message}`);
      }
    }
    m = { lib, users: 0, epoch: 0, refreshedAt: 0, initialized: true, initAttemptAt: 0 };
    modules.set(path, m);
  }
  return m;
}

export interface TokenSpec {
  /** The name the HSM is declared under (`--hsm NAME=...`). */
  readonly name: string;
  readonly modulePath: string;
  readonly tokenLabel: string;
  /** The user PIN; held only in memory. */
  readonly pin: string;
}

const MAX_IDLE_SESSIONS = 8;

export class Pkcs11Token {
  private readonly mod: LoadedModule;
  private slot: Handle | undefined;
  private idle: Session[] = [];
  private generation = 0;
  private closed = false;
  private seenEpoch = 0;

  private constructor(readonly spec: TokenSpec) {
    this.mod = loadModule(spec.modulePath);
    this.mod.users++;
    this.seenEpoch = this.mod.epoch;
  }

  /** Changes whenever the module was re-initialized (object handles from before are void). */
  get epoch(): number {
    return this.mod.epoch;
  }

  /**
   * Re-initializes the module (C_Finalize, C_Initialize) so that it reads its tokens afresh.
   * SoftHSM 2.6's file store stops noticing objects that another process creates once this process
   * has written objects of its own (measured with two processes writing to one token); a fresh
   * C_Initialize sees them. Used only when an object that should exist is not found, at most once
   * per 200 ms per module. Every token on the module reopens its sessions on next use.
   */
  refresh(): void {
    const now = Date.now();
    if (now - this.mod.refreshedAt < REINIT_INTERVAL_MS) return;
    this.mod.refreshedAt = now;
    try {
      this.lib.C_Finalize();
    } catch {
      // not initialized: C_Initialize below
    }
    this.mod.initialized = false;
    this.mod.epoch++;
    this.mod.initAttemptAt = 0;
    ensureInitialized(this.mod, this.spec.modulePath);
  }

  get lib(): Pkcs11Types.PKCS11 {
    return this.mod.lib;
  }

  /** Loads the module, finds the token by label and logs in; throws TokenError when it cannot. */
  static open(spec: TokenSpec): Pkcs11Token {
    const t = new Pkcs11Token(spec);
    try {
      t.release(t.openSession());
    } catch (e) {
      t.close();
      throw e;
    }
    return t;
  }

  /** True when `password` is this token's user PIN (constant time over equal-length digests). */
  pinMatches(password: string): boolean {
    const a = createHash('sha256').update(password, 'utf8').digest();
    const b = createHash('sha256').update(this.spec.pin, 'utf8').digest();
    return timingSafeEqual(a, b);
  }

  private findSlot(): Handle {
    const lib = this.lib;
    let slots: Handle[];
    try {
      slots = lib.C_GetSlotList(true);
    } catch (e) {
      throw new TokenError('token', `C_GetSlotList failed: ${ckr(e) ?? (e as Error).message}`, ckr(e));
    }
    for (const s of slots) {
      try {
        if (lib.C_GetTokenInfo(s).label.trim() === this.spec.tokenLabel) return s;
      } catch {
        // a slot whose token vanished between the two calls
      }
    }
    throw new TokenError('token-not-found', `no token labelled "${this.spec.tokenLabel}" in ${this.spec.modulePath}`);
  }

  private openSession(): Session {
    if (this.closed) throw new TokenError('token', `HSM ${this.spec.name} is closed`);
    ensureInitialized(this.mod, this.spec.modulePath);
    this.syncEpoch();
    const p = P();
    this.slot ??= this.findSlot();
    let s: Session;
    try {
      s = this.lib.C_OpenSession(this.slot, p.CKF_RW_SESSION | p.CKF_SERIAL_SESSION);
    } catch (e) {
      this.slot = undefined;
      throw new TokenError('token', `C_OpenSession failed: ${ckr(e) ?? (e as Error).message}`, ckr(e));
    }
    // Login state is per application and token: the first session logs in, later ones see
    // CKR_USER_ALREADY_LOGGED_IN.
    try {
      this.lib.C_Login(s, p.CKU_USER, this.spec.pin);
    } catch (e) {
      const code = ckr(e);
      if (code !== 'CKR_USER_ALREADY_LOGGED_IN') {
        try {
          this.lib.C_CloseSession(s);
        } catch {
          // already gone
        }
        if (code === 'CKR_PIN_INCORRECT') throw new TokenError('pin-incorrect', `the PIN for HSM ${this.spec.name} is incorrect`, code);
        if (code === 'CKR_PIN_LOCKED') throw new TokenError('pin-locked', `the user PIN of HSM ${this.spec.name} is locked`, code);
        throw new TokenError('token', `C_Login failed: ${code ?? (e as Error).message}`, code);
      }
    }
    return s;
  }

  private release(s: Session): void {
    if (this.closed || this.idle.length >= MAX_IDLE_SESSIONS) {
      try {
        this.lib.C_CloseSession(s);
      } catch {
        // nothing to do
      }
      return;
    }
    this.idle.push(s);
  }

  /** After a re-initialization of the module every session of ours is already gone. */
  private syncEpoch(): void {
    if (this.seenEpoch === this.mod.epoch) return;
    this.idle = [];
    this.slot = undefined;
    this.generation++;
    this.seenEpoch = this.mod.epoch;
  }

  /** Drops every pooled session so the next call finds the token and logs in afresh. */
  private reset(): void {
    for (const s of this.idle) {
      try {
        this.lib.C_CloseSession(s);
      } catch {
        // the session is what failed
      }
    }
    this.idle = [];
    if (this.slot !== undefined) {
      try {
        this.lib.C_CloseAllSessions(this.slot);
      } catch {
        // the slot may be gone
      }
    }
    this.slot = undefined;
    this.generation++;
  }

  /**
   * Runs `fn` with a logged-in session. Calls are synchronous (they take microseconds on SoftHSM,
   * TOOLCHAIN.md); a session is never shared between two calls at once. On a lost session or token
   * the pool is reset and `fn` is tried once more on a fresh session.
   */
  withSession<T>(fn: (lib: Pkcs11Types.PKCS11, s: Session) => T): T {
    this.syncEpoch();
    for (let attempt = 0; ; attempt++) {
      const s = this.idle.pop() ?? this.openSession();
      const gen = this.generation;
      try {
        const out = fn(this.lib, s);
        this.release(s);
        return out;
      } catch (e) {
        const code = ckr(e);
        if (code && SESSION_LOST.has(code)) {
          if (code === 'CKR_CRYPTOKI_NOT_INITIALIZED') this.mod.initialized = false;
          if (gen === this.generation) this.reset();
          if (attempt === 0) continue;
          throw new TokenError('token', `HSM ${this.spec.name}: ${code}`, code);
        }
        this.release(s);
        throw e;
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.reset();
    this.closed = true;
    this.mod.users--;
    // The module stays initialized: C_Finalize would end other tokens' sessions in this process.
  }
}

/** CKM_AES_GCM with a 96-bit IV and a 128-bit tag. */
export function gcmMechanism(iv: Buffer, aad: Buffer): Pkcs11Types.Mechanism {
  const p = P();
  const parameter: Pkcs11Types.AesGCM = { type: p.CK_PARAMS_AES_GCM, iv, aad, ivBits: 96, tagBits: 128 };
  return { mechanism: p.CKM_AES_GCM, parameter };
}

/** CKM_AES_CBC_ENCRYPT_DATA: the derived key is AES-CBC(base key, iv, data). */
export function cbcEncryptDataMechanism(iv: Buffer, data: Buffer): Pkcs11Types.Mechanism {
  const p = P();
  const parameter: Pkcs11Types.AesCBC = { type: p.CK_PARAMS_AES_CBC, iv, data };
  return { mechanism: p.CKM_AES_CBC_ENCRYPT_DATA, parameter };
}

/** The secret-key objects labelled `label` in the token, at most `max` of them. */
export function findSecretKeys(lib: Pkcs11Types.PKCS11, s: Session, label: string, max: number): Handle[] {
  const p = P();
  lib.C_FindObjectsInit(s, [
    { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
    { type: p.CKA_LABEL, value: label },
  ]);
  try {
    return lib.C_FindObjects(s, max);
  } finally {
    lib.C_FindObjectsFinal(s);
  }
}

/** What a token AES key may be used for; every usage not named is set to false. */
export interface TokenKeyUsage {
  encryptDecrypt?: boolean;
  derive?: boolean;
}

/**
 * Generates a persistent AES-256 key inside the token, labelled `label` (also its CKA_ID): private,
 * sensitive, not extractable, not modifiable and not copyable, so its bytes never leave the token and
 * no second object with its value can be made, with only the usages asked for (never WRAP, UNWRAP,
 * SIGN or VERIFY). Every usage is set explicitly: SoftHSM 2.6, for one, makes a generated AES key
 * SIGN, VERIFY, WRAP and UNWRAP capable (and modifiable and copyable) when the template leaves them
 * out. These attributes apply to keys made from now on; a token key made by an older template keeps
 * the attributes it was made with (it is not modifiable, and Keyhold does not replace it).
 */
export function generateTokenAesKey(lib: Pkcs11Types.PKCS11, s: Session, label: string, usage: TokenKeyUsage): Handle {
  const p = P();
  return lib.C_GenerateKey(s, { mechanism: p.CKM_AES_KEY_GEN }, [
    { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
    { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
    { type: p.CKA_VALUE_LEN, value: 32 },
    { type: p.CKA_TOKEN, value: true },
    { type: p.CKA_PRIVATE, value: true },
    { type: p.CKA_SENSITIVE, value: true },
    { type: p.CKA_EXTRACTABLE, value: false },
    { type: p.CKA_MODIFIABLE, value: false },
    // C_CopyObject of a copyable key makes a second object with the same value (SoftHSM allows it
    // with an empty template); a second 'keyhold-seal' would also stop the server from starting.
    { type: p.CKA_COPYABLE, value: false },
    { type: p.CKA_ENCRYPT, value: usage.encryptDecrypt === true },
    { type: p.CKA_DECRYPT, value: usage.encryptDecrypt === true },
    { type: p.CKA_DERIVE, value: usage.derive === true },
    { type: p.CKA_WRAP, value: false },
    { type: p.CKA_UNWRAP, value: false },
    { type: p.CKA_SIGN, value: false },
    { type: p.CKA_VERIFY, value: false },
    { type: p.CKA_LABEL, value: label },
    { type: p.CKA_ID, value: Buffer.from(label) },
  ]);
}
