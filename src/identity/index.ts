export * from './identity-store.js';
export type * from './records.js';
