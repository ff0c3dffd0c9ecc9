/**
 * `nbdcrypt serve`: open a LUKS2 volume on TARGET and serve its plaintext over NBD on private
 * local listeners until SIGINT/SIGTERM (or, with `--unencrypted`, TARGET's raw bytes: the
 * debugging/baseline mode). The command only composes: its help (serve-help.ts), its options
 * (serve-options.ts), the runtime it creates first (serve-runtime.ts), the stack
 * (serve-stack.ts) and the life cycle (serve-lifecycle.ts).
 */
import type { Environment } from '../environment.js';
import { serve } from '../serve-lifecycle.js';
import { parseServeArgs } from '../serve-options.js';
import { createServeRuntime } from '../serve-runtime.js';

export { serveHelp as help } from '../serve-help.js';

export async function run(argv: string[], env: Environment): Promise<number> {
  const runtime = createServeRuntime(env);
  return serve(parseServeArgs(argv, env), runtime);
}
