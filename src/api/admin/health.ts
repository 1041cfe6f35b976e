export interface Health {
  readonly healthy: boolean;
  /** Why not, in words an operator can act on. */
  readonly problems: readonly string[];
}

export type HealthSource = () => Health;

export function healthResponse(h: Health): { status: 'ok' | 'unhealthy'; problems?: readonly string[] } {
  return h.healthy ? { status: 'ok' } : { status: 'unhealthy', problems: h.problems };
}
