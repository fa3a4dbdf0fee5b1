import { z } from 'zod';

/** What an alert is about; a webhook's `events` picks some of them. */
export const ALERT_KINDS = ['verify.mismatches', 'verify.incomplete', 'schedule.missed', 'listener.lag', 'slot.lost', 'slot.missing', 'lease.unheld'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/** An HTTP header name: an RFC 9110 token. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * A webhook address: http or https, without credentials (fetch refuses them; put them in
 * `headers`). Messages never repeat the address: its path or query may be the secret.
 */
const webhookUrl = z.string().superRefine((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'not a URL: give an absolute http:// or https:// address' });
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: `a webhook is http:// or https://, not ${url.protocol}//` });
  if (url.username || url.password) ctx.addIssue({ code: 'custom', message: 'the URL holds credentials: put them in headers (for example Authorization) instead' });
});

/** Header values may be secrets: no issue about them echoes the value (see resolve.ts, `given`). */
const headers = z.record(z.string(), z.unknown()).superRefine((record, ctx) => {
  for (const [name, value] of Object.entries(record)) {
    if (!HEADER_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'not a valid HTTP header name' });
    else if (typeof value !== 'string') ctx.addIssue({ code: 'custom', path: [name], message: 'a header value is a string' });
    else if (/[\r\n\0]/.test(value)) ctx.addIssue({ code: 'custom', path: [name], message: 'a header value cannot hold a line break or NUL' });
  }
});

const webhookSpec = z
  .object({
    url: webhookUrl,
    /** Sent with every POST (an Authorization header, a signing secret): never logged. */
    headers: headers.optional(),
    /** Only these kinds. Default: every kind. */
    events: z.array(z.enum(ALERT_KINDS)).min(1).optional(),
  })
  .strict();

/** `alerts` in the config: where `hindsight run` POSTs what needs a person (see README, Alerts). */
export const alertsSpec = z
  .object({
    webhooks: z.array(webhookSpec).min(1),
    /** The console's base address as people reach it, e.g. https://hindsight.internal:9464: alerts link to its pages. Default: no links. */
    consoleUrl: z
      .string()
      .refine((text) => URL.canParse(text) && /^https?:$/.test(new URL(text).protocol), { message: 'an absolute http:// or https:// address' })
      .optional(),
    /** Alert when WAL not yet consumed by the listener passes this many bytes. Default 1 GiB. */
    listenerLagBytes: z.number().int().positive().default(1024 * 1024 * 1024),
    /** Alert when no updater has held a read model's lease for this long. Default 120. */
    leaseUnheldSeconds: z.number().positive().default(120),
    /** Each POST's timeout. Default 5000. */
    timeoutMs: z.number().int().positive().default(5000),
    /** Retries after a failed POST (network error, timeout, 5xx or 429). Default 3. */
    retries: z.number().int().min(0).max(20).default(3),
  })
  .strict();

export type AlertsSpec = z.output<typeof alertsSpec>;

export interface Webhook {
  url: string;
  headers: Readonly<Record<string, string>>;
  /** undefined: every kind. */
  events: ReadonlySet<AlertKind> | undefined;
  /** How the log names it: its position and origin, never its path, query or headers. */
  label: string;
}

export interface AlertSettings {
  webhooks: readonly Webhook[];
  consoleUrl: string | undefined;
  listenerLagBytes: number;
  leaseUnheldSeconds: number;
  timeoutMs: number;
  retries: number;
}

export function resolveAlerts(spec: AlertsSpec | undefined): AlertSettings | undefined {
  if (!spec) return undefined;
  return {
    webhooks: spec.webhooks.map((w, i) => ({
      url: w.url,
      headers: (w.headers ?? {}) as Record<string, string>,
      events: w.events ? new Set(w.events) : undefined,
      label: `webhook ${i + 1} (${new URL(w.url).origin})`,
    })),
    consoleUrl: spec.consoleUrl?.replace(/\/+$/, ''),
    listenerLagBytes: spec.listenerLagBytes,
    leaseUnheldSeconds: spec.leaseUnheldSeconds,
    timeoutMs: spec.timeoutMs,
    retries: spec.retries,
  };
}
