/**
 * Errors thrown to users of the API and the CLI. Each has a stable `code` to match on; the CLI
 * prints `message` as one line and exits non-zero. Wire error numbers live in
 * src/protocol/constants.ts (WireError); drop reasons of the codec in src/protocol/codec.ts.
 */
export class PeerpostError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PeerpostError';
  }
}

/** Bad input from the user: a flag value, an address, a contact name, a file. Exit code 2. */
export class UsageError extends PeerpostError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'UsageError';
  }
}
