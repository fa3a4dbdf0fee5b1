import path from 'node:path';
import { ConfigError } from '../errors.js';

export type DatabaseChoice =
  | { kind: 'url'; url: string; from: '--database-url' | 'DATABASE_URL' | 'config' }
  | { kind: 'embedded'; baseDir: string; from: '--embedded' | 'config' };

export interface DatabaseInputs {
  flagUrl?: string;
  embeddedFlag?: boolean;
  envUrl?: string;
  configUrl?: string;
  configEmbedded?: boolean;
  cwd: string;
}

/** Where the embedded server of a project lives. */
export function embeddedBaseDir(cwd: string): string {
  return path.join(cwd, '.hindsight');
}

/**
 * Which database a command uses: --database-url, then --embedded, then DATABASE_URL,
 * then the config's databaseUrl, then the config's `embedded: true`. Nothing else: a
 * scheduled check must never run against an empty embedded database by accident.
 */
export function chooseDatabase(inputs: DatabaseInputs): DatabaseChoice {
  if (inputs.flagUrl) return { kind: 'url', url: inputs.flagUrl, from: '--database-url' };
  if (inputs.embeddedFlag) return { kind: 'embedded', baseDir: embeddedBaseDir(inputs.cwd), from: '--embedded' };
  if (inputs.envUrl) return { kind: 'url', url: inputs.envUrl, from: 'DATABASE_URL' };
  if (inputs.configUrl) return { kind: 'url', url: inputs.configUrl, from: 'config' };
  if (inputs.configEmbedded) return { kind: 'embedded', baseDir: embeddedBaseDir(inputs.cwd), from: 'config' };
  throw new ConfigError(
    'no database configured: pass --database-url, set DATABASE_URL, set databaseUrl in the config, ' +
      'or use the embedded PostgreSQL with --embedded (or `embedded: true` in the config)',
  );
}
