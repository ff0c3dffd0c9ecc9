/** Placeholder until the 'dump' command lands; replaced by its owner. */
import { NbdcryptError } from '../../errors.js';

export const help = 'nbdcrypt dump: not built yet\n';

export async function run(_argv: string[]): Promise<number> {
  throw new NbdcryptError('ENOTSUP', "'dump' is not built yet");
}
