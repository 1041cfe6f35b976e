export interface Health {
  readonly healthy: boolean;
  /** Why not, in words an operator can act on. */
  readonly problems: readonly string[];
}

export type HealthSource = () => Health;

/** Problems of a healthy server (it serves, but an operator should know) come back as warnings. */
export function healthResponse(h: Health): { status: 'ok' | 'unhealthy'; problems?: readonly string[]; warnings?: readonly string[] } {
  if (!h.healthy) return { status: 'unhealthy', problems: h.problems };
  return h.problems.length > 0 ? { status: 'ok', warnings: h.problems } : { status: 'ok' };
}
