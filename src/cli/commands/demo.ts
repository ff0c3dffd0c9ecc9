/** Placeholder until the 'demo' command lands; replaced by its owner. */
import { NbdcryptError } from '../../errors.js';

export const help = 'nbdcrypt demo: not built yet\n';

export async function run(_argv: string[]): Promise<number> {
  throw new NbdcryptError('ENOTSUP', "'demo' is not built yet");
}
