/** The Storage seam and its engines. PostgreSQL (storage/postgres) is loaded only by main.ts. */
export type { ListOptions, Storage, StorageEntry, StorageReader, StorageWriter } from './storage.js';
export { MAX_KEY_LENGTH } from './storage.js';
export { MemoryStorage } from './memory/memory-storage.js';
export { SqliteStorage, SQLITE_SCHEMA_VERSION, type SqliteStorageOptions } from './sqlite/sqlite-storage.js';
export { DecodedCache } from './decoded-cache.js';
