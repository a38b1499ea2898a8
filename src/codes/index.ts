export * from './identity-code.js';
export * from './safety-number.js';
export * from './verify.js';
