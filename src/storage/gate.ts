/**
 * One-at-a-time access for engines that keep a single connection (SQLite) or a single map (memory).
 *
 * A transaction holds the gate from BEGIN to COMMIT/ROLLBACK, across the awaits of its callback.
 * One-off operations outside a transaction run synchronously while the gate is free, and otherwise
 * queue for their turn, so they never join (or observe) another caller's open transaction. The
 * gate is handed over in FIFO order, so nothing starves.
 *
 * The only way to tell "called from inside my own transaction" (which must fail: waiting would
 * deadlock) from "called concurrently by someone else" (which must wait) is the async context, so
 * each transaction callback runs in an AsyncLocalStorage scope naming its gate.
 *
 * On Node 20 an enabled AsyncLocalStorage installs promise hooks that tax every promise in the
 * process (about a quarter of a KMS request's CPU time in bench/). So the scope is enabled only
 * while some transaction is open and disabled when the last one settles. Callbacks a settled
 * transaction left behind are outsiders either way (`active` is false).
 */
import { AsyncLocalStorage } from 'node:async_hooks';

interface TxScope {
  readonly gate: TransactionGate;
  /** False once the transaction has settled; stray callbacks it left behind are then outsiders. */
  active: boolean;
}

const scope = new AsyncLocalStorage<TxScope>();
/** Open transactions across every gate in the process; the scope is disabled at zero. */
let openScopes = 0;

export class TransactionGate {
  private held = false;
  private waiters: Array<() => void> = [];
  private head = 0;

  /** Cheap check for the hot path: when false, a synchronous operation may run right away. */
  get busy(): boolean {
    return this.held;
  }

  /**
   * Takes the gate: at once (returns undefined) when free, else a promise for the caller's turn.
   * Rejects when the caller is inside a transaction that holds this gate.
   */
  enter(what: string): Promise<void> | undefined {
    if (!this.held) {
      this.held = true;
      return undefined;
    }
    const s = scope.getStore();
    if (s !== undefined && s.gate === this && s.active) {
      return Promise.reject(new Error(
        `storage: ${what} called inside a transaction on the same store; use the transaction's handle (nested transactions are not supported)`,
      ));
    }
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  leave(): void {
    if (this.head < this.waiters.length) {
      const next = this.waiters[this.head]!;
      this.head++;
      if (this.head > 64 && this.head * 2 > this.waiters.length) {
        this.waiters = this.waiters.slice(this.head);
        this.head = 0;
      }
      next(); // the gate stays held: ownership passes straight to the next waiter
    } else {
      this.waiters = [];
      this.head = 0;
      this.held = false;
    }
  }

  /** Runs a synchronous operation in its turn (slow path of one-off operations). */
  async exclusive<T>(what: string, op: () => T): Promise<T> {
    const wait = this.enter(what);
    if (wait !== undefined) await wait;
    try {
      return op();
    } finally {
      this.leave();
    }
  }

  /** True when the current async context is inside an open transaction on this gate. */
  insideOwnTransaction(): boolean {
    const s = scope.getStore();
    return s !== undefined && s.gate === this && s.active;
  }

  /** Runs a transaction callback in a scope that marks it as this gate's transaction. */
  async runScoped<T>(fn: () => Promise<T>): Promise<T> {
    const s: TxScope = { gate: this, active: true };
    openScopes++;
    try {
      return await scope.run(s, fn);
    } finally {
      s.active = false;
      if (--openScopes === 0) scope.disable();
    }
  }
}
