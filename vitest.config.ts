import { defineConfig } from 'vitest/config';

/**
 * Three projects:
 * - unit: `*.unit.test.ts`, no database (`npm run test:unit`);
 * - int: `*.int.test.ts`, a real PostgreSQL, a database per file, files in parallel;
 * - serial: `*.serial.test.ts`, tests that hold transactions open (the xid horizon is
 *   cluster-wide) or measure latency; they run one file at a time after the others.
 * The server comes from test/setup/globalSetup.ts: DATABASE_URL, or a throwaway embedded one.
 */
const database = {
  globalSetup: ['test/setup/globalSetup.ts'],
  testTimeout: 120_000,
  hookTimeout: 120_000,
};

export default defineConfig({
  test: {
    // The JSON report is what .ci/run counts; it names a second report file for a second server.
    reporters: ['default', ['json', { outputFile: process.env.HINDSIGHT_TEST_REPORT ?? 'test-results.json' }]],
    projects: [
      { test: { name: 'unit', include: ['test/**/*.unit.test.ts'], sequence: { groupOrder: 0 } } },
      { test: { name: 'int', include: ['test/**/*.int.test.ts'], ...database, sequence: { groupOrder: 0 } } },
      {
        test: {
          name: 'serial',
          include: ['test/**/*.serial.test.ts'],
          ...database,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
