export { Barrier, BarrierError } from './barrier.js';
export type { Storage, StorageReader, StorageWriter } from './barrier.js';
export { FileSeal, PassphraseSeal, SealError } from './seal.js';
export type { Seal } from './seal.js';
