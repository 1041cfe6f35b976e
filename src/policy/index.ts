export * from './policy.js';
export * from './conditions.js';
export * from './authorize.js';
export * from './managed.js';
export * from './widening.js';
