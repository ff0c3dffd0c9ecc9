/** Placeholder until the 'format' command lands; replaced by its owner. */
import { NbdcryptError } from '../../errors.js';

export const help = 'nbdcrypt format: not built yet\n';

export async function run(_argv: string[]): Promise<number> {
  throw new NbdcryptError('ENOTSUP', "'format' is not built yet");
}
