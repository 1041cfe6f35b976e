export * from './identity-store.js';
