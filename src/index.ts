export * from './protocol/index.js';
export * from './identity/index.js';
export * from './crypto/index.js';
export * from './codes/index.js';
export * from './core/types.js';
export * from './core/errors.js';
export * from './client/index.js';
