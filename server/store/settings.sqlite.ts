/** SettingsStore on SQLite. */
import type { SqliteConnection } from './connection.sqlite.js';
import { text } from './rows.js';
import type { SettingsStore } from './types.js';

const SQL = {
  getSetting: 'SELECT value FROM settings WHERE key = ?',
  insertSetting: 'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING',
} as const;

export function sqliteSettings(connection: SqliteConnection): SettingsStore {
  const stmt = connection.prepare(SQL);
  const putSettingIfAbsent = connection.immediate((key: string, value: string): string => {
    stmt.insertSetting.run(key, value);
    return text(connection.must(stmt.getSetting, key), 'value');
  });
  return {
    async getSetting(key) {
      const row = connection.one(stmt.getSetting, key);
      return row ? text(row, 'value') : null;
    },
    async putSettingIfAbsent(key, value) {
      return putSettingIfAbsent(key, value);
    },
  };
}
