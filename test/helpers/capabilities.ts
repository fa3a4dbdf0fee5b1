import pg from 'pg';

export interface ServerCapabilities {
  superuser: boolean;
  walLogical: boolean;
  versionNum: number;
}

export async function probeServer(url: string): Promise<ServerCapabilities> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    const { rows } = await client.query<{ su: string; wal: string; v: string }>(
      `SELECT current_setting('is_superuser') AS su, current_setting('wal_level') AS wal, current_setting('server_version_num') AS v`,
    );
    const row = rows[0]!;
    return { superuser: row.su === 'on', walLogical: row.wal === 'logical', versionNum: Number(row.v) };
  } finally {
    await client.end();
  }
}
