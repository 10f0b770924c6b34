/**
 * Vite build of the demo web client: `npm run build:demo` (or automatically by `npm start`
 * when client/demo/dist is missing or older than its sources). The output in client/demo/dist
 * is served by the server at "/".
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  root: here('.'),
  base: '/',
  logLevel: 'warn',
  build: {
    outDir: here('dist'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // libsodium's ESM build inlines its WebAssembly (~500 KB); the Twilio SDK is its own chunk.
    chunkSizeWarningLimit: 2048,
  },
});
