/** SettingsStore on PostgreSQL. */
import type { PostgresConnection } from './connection.postgres.js';
import { required, text } from './rows.js';
import type { SettingsStore } from './types.js';

const SQL = {
  getSetting: 'SELECT value FROM settings WHERE key = $1',
  insertSetting: 'INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING value',
} as const;

export function postgresSettings({ first }: PostgresConnection): SettingsStore {
  return {
    async getSetting(key) {
      const row = await first(SQL.getSetting, [key]);
      return row ? text(row, 'value') : null;
    },
    async putSettingIfAbsent(key, value) {
      // ON CONFLICT waits for a concurrent first writer to commit, so the read after it finds the row.
      const row = (await first(SQL.insertSetting, [key, value])) ?? (await first(SQL.getSetting, [key]));
      return text(required(row), 'value');
    },
  };
}
