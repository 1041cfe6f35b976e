export * from './model.js';
export * from './repository.js';
export type { Storage, StorageReader, StorageWriter } from '../storage/index.js';
export * from './custom-key-stores.js';
export * from './usage.js';
export * from './backup-registry.js';
