export * from './certificate.js';
export * from './home.js';
export * from './store.js';
