import fs from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { resolveConfig, type ResolvedConfig } from './resolve.js';

/** Looked for in this order when no --config is given. */
export const CONFIG_FILE_NAMES = ['hindsight.config.ts', 'hindsight.config.mts', 'hindsight.config.js', 'hindsight.config.mjs', 'hindsight.config.json'];

/**
 * Loads and validates a config file: `file` if given (it must exist), otherwise the
 * first of CONFIG_FILE_NAMES in `cwd`, otherwise the defaults (no aggregates).
 * TypeScript files are loaded with jiti, since Node 20 cannot import .ts files itself.
 */
export async function loadConfig(file?: string, cwd: string = process.cwd()): Promise<ResolvedConfig> {
  const found = file ? path.resolve(cwd, file) : await firstExisting(cwd);
  if (!found) return resolveConfig({});
  if (file && !(await exists(found))) {
    throw new ConfigError(`config file not found: ${found}`);
  }
  return resolveConfig(await readConfigFile(found), path.relative(cwd, found) || found);
}

async function readConfigFile(file: string): Promise<unknown> {
  if (file.endsWith('.json')) {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (cause) {
      throw new ConfigError(`cannot read ${file}: ${(cause as Error).message}`, { cause });
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (cause) {
      throw new ConfigError(`${file} is not valid JSON: ${(cause as Error).message}`, { cause });
    }
  }
  try {
    const { createJiti } = await import('jiti');
    const jiti = createJiti(import.meta.url, { moduleCache: false });
    const loaded = await jiti.import<unknown>(file, { default: true });
    return typeof loaded === 'function' ? await (loaded as () => unknown)() : loaded;
  } catch (cause) {
    throw new ConfigError(`cannot load ${file}: ${(cause as Error).message}`, { cause });
  }
}

async function firstExisting(cwd: string): Promise<string | undefined> {
  for (const name of CONFIG_FILE_NAMES) {
    const candidate = path.join(cwd, name);
    if (await exists(candidate)) return candidate;
  }
  return undefined;
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}
