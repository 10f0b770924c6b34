/** Stands in for `ws`, `node:fs/promises` and `node:path` in the browser bundle (see vite.config.ts). */
export default undefined;
