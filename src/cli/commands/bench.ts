/** Placeholder until the 'bench' command lands; replaced by its owner. */
import { NbdcryptError } from '../../errors.js';

export const help = 'nbdcrypt bench: not built yet\n';

export async function run(_argv: string[]): Promise<number> {
  throw new NbdcryptError('ENOTSUP', "'bench' is not built yet");
}
