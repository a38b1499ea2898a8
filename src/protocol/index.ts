export * from './constants.js';
export * from './messages.js';
export * from './codec.js';
export { cborCheck, cborEncode, cborDecodeChecked, CBOR_DEPTH_MAX, CBOR_ITEMS_MAX, type CborValue } from './cbor.js';
