#!/usr/bin/env node
// The hindsight CLI. The TypeScript sources are compiled to dist/ by `npm install`
// (the `prepare` script); this shim only loads the compiled entry point.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/run.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('hindsight: dist/ is missing; run `npm install` (or `npm run build`) in the hindsight folder first\n');
  process.exit(2);
}
await import(entry.href);
