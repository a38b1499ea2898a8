/** The client's persistence in SQLite: schema and migrations, the store, opening, backup. */
export { SqliteClientStore, STORE_PROBLEMS_MAX } from './sqlite-store.js';
export { SCHEMA_VERSION, migrate } from './schema.js';
export {
  STORE_FILE_NAME, LEGACY_STATE_FILE_NAME, MIGRATED_SUFFIX, STORE_BUSY_TIMEOUT_MS, openStore, openStoreForReading, openDb, storePath,
  type ReadableStore,
} from './open.js';
export { backupStore, type BackupResult } from './backup.js';
