/**
 * An sftp subsystem for sshd that is OpenSSH's sftp-server without fsync@openssh.com and
 * limits@openssh.com, as SFTP servers other than OpenSSH's are: it runs sftp-server and
 * drops those extensions from the VERSION packet (the first packet it sends), passing
 * everything else through. Run by sshd as `Subsystem sftp NODE THIS_FILE` (see
 * sftpWithoutFsync()).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SFTP_SERVER = '/usr/lib/openssh/sftp-server';
const FXP_VERSION = 2;

/** The Subsystem command that runs this file. */
export function sftpWithoutFsync(): string {
  return `${process.execPath} ${fileURLToPath(import.meta.url)}`;
}

/** VERSION packet (length prefix included) without the extensions in `drop`. */
export function withoutExtensions(packet: Buffer, drop: string[]): Buffer {
  const parts: Buffer[] = [packet.subarray(4, 9)]; // type + version
  for (let p = 9; p < packet.length; ) {
    const nameLen = packet.readUInt32BE(p);
    const name = packet.subarray(p + 4, p + 4 + nameLen).toString();
    const dataLen = packet.readUInt32BE(p + 4 + nameLen);
    const end = p + 8 + nameLen + dataLen;
    if (!drop.includes(name)) parts.push(packet.subarray(p, end));
    p = end;
  }
  const body = Buffer.concat(parts);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

function main(): void {
  const child = spawn(SFTP_SERVER, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  process.stdin.pipe(child.stdin);
  let head = Buffer.alloc(0);
  let passing = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (passing) return void process.stdout.write(chunk);
    head = Buffer.concat([head, chunk]);
    if (head.length < 4 || head.length < 4 + head.readUInt32BE(0)) return;
    const end = 4 + head.readUInt32BE(0);
    passing = true;
    const first = head.subarray(0, end);
    process.stdout.write(first[4] === FXP_VERSION ? withoutExtensions(first, ['fsync@openssh.com', 'limits@openssh.com']) : first);
    if (head.length > end) process.stdout.write(head.subarray(end));
  });
  child.stdout.on('end', () => process.stdout.end());
  child.on('exit', (code) => process.exit(code ?? 1));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
