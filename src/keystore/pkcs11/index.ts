/** The PKCS#11 backend: loaded only by main.ts (ARCHITECTURE.md), so pkcs11js is needed only with --hsm. */
export { HsmPool } from './hsm-pool.js';
export { HsmSeal } from './hsm-seal.js';
export { Pkcs11KeyStore } from './pkcs11-keystore.js';
export { Pkcs11Token, TokenError, type TokenSpec } from './token.js';
