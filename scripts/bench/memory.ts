import fs from 'node:fs';

/**
 * Peak resident memory (VmHWM) of a running process, in MiB, read from /proc: the high
 * water mark since it started. Undefined where /proc is not there (not Linux) or the
 * process has gone.
 */
export function peakRssMiB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}
