/**
 * Command-line parsing shared by the commands: Node's util.parseArgs with positionals
 * allowed, where an unknown or malformed option becomes one usage error (exit 2) that names
 * the command and points at its --help.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { NbdcryptError } from '../errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export function parseCommandArgs<O extends Options>(command: string, argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options });
  } catch (e) {
    throw new NbdcryptError('EUSAGE', `${command}: ${e instanceof Error ? e.message : String(e)}; see 'nbdcrypt ${command} --help'`);
  }
}
