export * from './protocol/index.js';
export * from './identity/index.js';
export * from './core/types.js';
