import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';
import { migrations } from '../../migrations/index.js';

/**
 * Shipped migrations are frozen: databases that ran them will never run them again, so
 * an edit would make an upgraded schema differ from a fresh one. Change the schema with
 * a new migration, and add its checksum here when it ships.
 */
const SHIPPED: Record<string, string> = {
  '0001_event_store.ts': 'd71c3dea35c62d117f4a6dda83b8fafaac996a289f15d66c60562257a82b891a',
  '0002_projections.ts': 'cb5892d71203c32e5d87cdf4f35f2bf6da3f2e402da6c86e13f37a13809e923e',
  '0003_replication.ts': 'c1e47d852cd4e6097a4ffff5130e8cb62843ce359850b68308c3d4f70ee80d2c',
  '0004_verification.ts': '46a56abd8b90ed1d19ecc97240dc7f0ed22f71d9fe96607c7b6f6ec25a98fa14',
  '0005_schedules.ts': '6d1ab4bf7718780bd13d440d0c40023c209cf63389e4569faad6ff62e323b2d0',
  '0006_verify_chunks.ts': '6b11581d0ea7b0e1c3bbe555d316b2d52be5694c1e80c100d4fc1db49aff1231',
  '0007_chunk_absent_heads.ts': 'bb9b35b22157cfef3ad00dc765139d2b9c84a4e6d4d117f8fe427ee7fe07af32',
};

const folder = path.resolve(import.meta.dirname, '../../migrations');

test('shipped migration files are unchanged', () => {
  for (const [file, checksum] of Object.entries(SHIPPED)) {
    const actual = createHash('sha256').update(fs.readFileSync(path.join(folder, file))).digest('hex');
    expect({ file, checksum: actual }).toEqual({ file, checksum });
  }
});

test('every migration in the list has a file, in order, and none is missing from the list', () => {
  const files = fs.readdirSync(folder).filter((f) => /^\d{4}_.+\.ts$/.test(f)).sort();
  expect(migrations.map((m) => `${m.name}.ts`)).toEqual(files);
});
