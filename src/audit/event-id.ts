/**
 * Audit event ids: UUIDs of version 7 (RFC 9562): the first 48 bits are the Unix time in
 * milliseconds, the other 74 free bits random (node:crypto's CSPRNG, through crypto/random-pool). Any UUID serves as CloudTrail's
 * EventId; time-ordered ones make the EventId index (event_keys `id:` rows) grow at its end, like
 * the rest of the log, instead of landing on a random page of an ever larger index with every event.
 */
import { randomBytesPooled } from '../crypto/index.js';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function newEventId(nowMs: number = Date.now()): string {
  const rnd = randomBytesPooled(10);
  const ms = Math.max(0, Math.floor(nowMs));
  const hi = Math.floor(ms / 2 ** 16);
  const time = hi.toString(16).padStart(8, '0').slice(-8) + '-' + (ms % 2 ** 16).toString(16).padStart(4, '0');
  const h = (i: number) => HEX[rnd[i]!]!;
  // Version 7 in the top four bits of byte 6, variant 10 in the top two of byte 8.
  return `${time}-${HEX[0x70 | (rnd[0]! & 0x0f)]}${h(1)}-${HEX[0x80 | (rnd[2]! & 0x3f)]}${h(3)}-${h(4)}${h(5)}${h(6)}${h(7)}${h(8)}${h(9)}`;
}
