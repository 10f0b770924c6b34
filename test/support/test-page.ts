/**
 * Builds test/browser/page (the client library bundled by Vite, as an app would) into a
 * temporary directory, for the browser tests and the browser benchmark to serve.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** Returns the directory holding index.html and assets/; the caller removes it. */
export async function buildTestPage(): Promise<string> {
  const vite = await import('vite');
  const outDir = mkdtempSync(join(tmpdir(), 'e2ee-test-page-'));
  await vite.build({
    configFile: false,
    root: here('../browser/page/'),
    base: '/',
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 4096 },
  });
  return outDir;
}
