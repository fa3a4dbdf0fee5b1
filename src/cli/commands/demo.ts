import type { CommandContext } from '../context.js';

/** `hindsight demo`: the same walk-through as `npm run demo`. */
export async function runDemoCommand(ctx: CommandContext): Promise<number> {
  const { runDemo } = await import('../../../scripts/demo.js');
  await runDemo({ write: (text: string) => ctx.io.stdout(text) });
  return 0;
}
