/** The part of hyperdht (https://github.com/holepunchto/hyperdht) that src/discovery/ uses. */
declare module 'hyperdht' {
  export interface KeyPair {
    publicKey: Buffer;
    secretKey: Buffer;
  }
  interface Query extends AsyncIterable<{ peers?: { publicKey: Buffer }[] }> {
    finished(): Promise<void>;
    destroy(err?: Error): void;
  }
  interface MutableGetResult {
    seq: number;
    value: Buffer;
    signature: Buffer;
  }
  interface HyperDHTOptions {
    bootstrap?: { host: string; port: number }[] | string[];
    ephemeral?: boolean;
    host?: string;
    port?: number;
  }
  class HyperDHT {
    constructor(opts?: HyperDHTOptions);
    static keyPair(seed?: Buffer): KeyPair;
    fullyBootstrapped(): Promise<void>;
    toArray(): { host: string; port: number }[];
    lookup(target: Buffer): Query;
    announce(target: Buffer, keyPair: KeyPair, relayAddresses?: unknown[]): Query;
    mutablePut(keyPair: KeyPair, value: Buffer, opts?: { seq?: number }): Promise<{ seq: number }>;
    mutableGet(publicKey: Buffer, opts?: { seq?: number; latest?: boolean }): Promise<MutableGetResult | null>;
    destroy(): Promise<void>;
    on(event: string, f: (...args: unknown[]) => void): this;
  }
  export default HyperDHT;
}

declare module 'hyperdht/testnet.js' {
  import type HyperDHT from 'hyperdht';
  interface Testnet {
    nodes: HyperDHT[];
    bootstrap: { host: string; port: number }[];
    createNode(opts?: object): HyperDHT;
    destroy(): Promise<void>;
  }
  export default function createTestnet(size?: number, opts?: { host?: string; port?: number; teardown?: unknown }): Promise<Testnet>;
}
