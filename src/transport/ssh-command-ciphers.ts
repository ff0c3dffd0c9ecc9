/**
 * The cipher order for `ssh -W` (ssh-command.ts). OpenSSH's built-in order puts
 * chacha20-poly1305 first, for CPUs without AES instructions; on x86-64 and arm64 AES-GCM is
 * the cheaper cipher on both ends of the link (sshd decrypts every byte nbdcrypt writes), and
 * it is what the ssh2 transport prefers too. So when the user's ssh configuration leaves the
 * cipher list at OpenSSH's default, the AES-GCM ciphers move to its front; a configured list
 * (Ciphers in ssh_config, for this host or all) is used as it is.
 * `ssh -G` prints the configuration ssh would use, without connecting. Spec: ssh_config(5).
 */
import { execFile } from 'node:child_process';

const GCM = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com'];

/** The `ciphers` line of `ssh -G ARGS`, or undefined if ssh cannot say. */
function effectiveCiphers(args: string[]): Promise<string[] | undefined> {
  return new Promise((resolve) => {
    execFile('ssh', ['-G', ...args], { timeout: 10_000 }, (err, stdout) => {
      const line = err ? undefined : /^ciphers (\S+)$/m.exec(stdout)?.[1];
      resolve(line?.split(','));
    });
  });
}

/**
 * The -o Ciphers=LIST argument that puts AES-GCM first, or none: when the configuration
 * (`configArgs`: -F, -p, -l and the host, as the connection will use them) chooses its own
 * list, on CPUs where AES-GCM is not known to be faster, or when ssh -G fails.
 */
export async function preferredCipherArgs(configArgs: string[], arch: string = process.arch): Promise<string[]> {
  if (arch !== 'x64' && arch !== 'arm64') return [];
  const host = configArgs.slice(-1);
  const [configured, builtIn] = await Promise.all([effectiveCiphers(configArgs), effectiveCiphers(['-F', '/dev/null', ...host])]);
  if (!configured || !builtIn || configured.join(',') !== builtIn.join(',')) return [];
  const gcm = GCM.filter((c) => configured.includes(c));
  if (gcm.length === 0) return [];
  return ['-o', `Ciphers=${[...gcm, ...configured.filter((c) => !gcm.includes(c))].join(',')}`];
}
