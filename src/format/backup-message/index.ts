/** The AWS Encryption SDK message format v2 (framed, committing suites): byte layouts only. */
export * from './layout.js';
