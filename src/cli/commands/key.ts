/** Placeholder until the 'key' command lands; replaced by its owner. */
import { NbdcryptError } from '../../errors.js';

export const help = 'nbdcrypt key: not built yet\n';

export async function run(_argv: string[]): Promise<number> {
  throw new NbdcryptError('ENOTSUP', "'key' is not built yet");
}
