import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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
    const jiti = createJiti(import.meta.url, { moduleCache: false, alias: configAliases(file) });
    const loaded = await jiti.import<unknown>(file, { default: true });
    return typeof loaded === 'function' ? await (loaded as () => unknown)() : loaded;
  } catch (cause) {
    throw new ConfigError(`cannot load ${file}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * A config may live anywhere, not only inside a project that installed hindsight, and
 * still import 'hindsight' (and 'zod' for its event schemas):
 * - 'hindsight' always means the hindsight that is loading it, whether it runs through npx,
 *   a global install or a checkout, so its types and brands are the ones this copy checks;
 * - 'zod' is the config's own where its folder can resolve one, else the one hindsight uses.
 */
function configAliases(file: string): Record<string, string> {
  const built = fileURLToPath(new URL('../index.js', import.meta.url));
  const aliases: Record<string, string> = {
    hindsight: existsSync(built) ? built : fileURLToPath(new URL('../index.ts', import.meta.url)),
  };
  try {
    createRequire(file).resolve('zod');
  } catch {
    aliases.zod = fileURLToPath(import.meta.resolve('zod'));
  }
  return aliases;
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
