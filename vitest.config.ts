import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/long/**', 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // expect.poll waits for what a page or a peer does next; on 2 busy cores that takes more than the default second.
    expect: { poll: { timeout: 10_000 } },
  },
});
