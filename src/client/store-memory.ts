/**
 * A ClientStore in memory, for tests and the simulator. It keeps the JSON text, so what a new
 * Client loads after a simulated restart shares nothing with the old one, exactly as with a file.
 */
import type { ClientSnapshot, ClientStore } from './store.js';

export class MemoryClientStore implements ClientStore {
  private text: string | undefined;
  /** How many times save() was called. */
  saves = 0;

  load(): ClientSnapshot | undefined {
    return this.text === undefined ? undefined : (JSON.parse(this.text) as ClientSnapshot);
  }

  save(snapshot: ClientSnapshot): void {
    this.text = JSON.stringify(snapshot);
    this.saves++;
  }

  /** Bytes of the last saved snapshot. */
  get sizeBytes(): number {
    return this.text?.length ?? 0;
  }
}
