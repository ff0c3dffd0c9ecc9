/**
 * Text dumps identical to cryptsetup 2.6's: `luksDump` (LUKS2_hdr_dump with its keyslot,
 * token and digest handlers) and `luksDump --dump-volume-key` (the "MK dump:" form). Tabs,
 * spacing and hex layout (16 bytes a line, each byte followed by a space) follow cryptsetup's
 * log_std/crypt_log_hex calls byte for byte so the two outputs can be diffed.
 * Spec: docs/formats.md (LUKS2 dump text).
 */
import type { HeaderFields } from './luks2-header.js';
import type { Json, JsonObject, Metadata, Segment } from './luks2-metadata.js';

/** Hex bytes as cryptsetup's crypt_log_hex prints them: each followed by a space, 16 a line. */
export function hex(buf: Buffer, lineSep: string): string {
  let s = '';
  for (let i = 0; i < buf.length; i++) {
    if (i > 0 && i % 16 === 0) s += lineSep;
    s += buf[i]!.toString(16).padStart(2, '0') + ' ';
  }
  return s;
}

function obj(v: Json | undefined): JsonObject {
  return (typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {}) as JsonObject;
}

function priorityText(p: number): string {
  return p === 0 ? 'ignored' : p === 1 ? 'normal' : p === 2 ? 'preferred' : 'invalid';
}

export function formatDump(f: HeaderFields, meta: Metadata): string {
  const out: string[] = [];
  const w = (s: string) => out.push(s);
  w('LUKS header information\n');
  w(`Version:       \t2\n`);
  w(`Epoch:         \t${f.seqid}\n`);
  w(`Metadata area: \t${f.hdrSize} [bytes]\n`);
  w(`Keyslots area: \t${meta.keyslotsSize} [bytes]\n`);
  w(`UUID:          \t${f.uuid || '(no UUID)'}\n`);
  w(`Label:         \t${f.label || '(no label)'}\n`);
  w(`Subsystem:     \t${f.subsystem || '(no subsystem)'}\n`);
  w('Flags:       \t');
  for (const fl of meta.flags) w(`${fl} `);
  w(`${meta.flags.length > 0 ? '' : '(no flags)'}\n${meta.requirements.length > 0 ? '' : '\n'}`);
  if (meta.requirements.length > 0) {
    w('Requirements:\t');
    for (const r of meta.requirements) w(`${r} `);
    w('\n\n');
  }

  w('Data segments:\n');
  for (const s of meta.segments) {
    w(`  ${s.id}: ${s.type}\n`);
    w(`\toffset: ${s.offset} [bytes]\n`);
    w(s.size === 'dynamic' ? '\tlength: (whole device)\n' : `\tlength: ${s.size} [bytes]\n`);
    w(`\tcipher: ${s.encryption}\n`);
    w(`\tsector: ${s.sectorSize} [bytes]\n`);
    const integrity = obj(obj(obj(meta.raw.segments)[String(s.id)]).integrity).type;
    if (typeof integrity === 'string') w(`\tintegrity: ${integrity}\n`);
    if (s.flags.length > 0) w(`\tflags : ${s.flags.join(', ')}\n`);
    w('\n');
  }

  w('Keyslots:\n');
  for (const k of meta.keyslots) {
    const bound = meta.digests.some((d) => d.keyslots.includes(k.id) && d.segments.length > 0);
    w(`  ${k.id}: ${k.type}${bound ? '' : ' (unbound)'}\n`);
    w(`\tKey:        ${k.keySize * 8} bits\n`);
    w(`\tPriority:   ${priorityText(k.priority)}\n`);
    w(`\tCipher:     ${k.areaEncryption}\n`);
    w(`\tCipher key: ${k.areaKeySize * 8} bits\n`);
    w(`\tPBKDF:      ${k.kdf.type}\n`);
    if (k.kdf.type === 'pbkdf2') {
      w(`\tHash:       ${k.kdf.hash}\n`);
      w(`\tIterations: ${k.kdf.iterations}\n`);
    } else {
      w(`\tTime cost:  ${k.kdf.time}\n`);
      w(`\tMemory:     ${k.kdf.memory}\n`);
      w(`\tThreads:    ${k.kdf.cpus}\n`);
    }
    w(`\tSalt:       ${hex(k.kdf.salt, '\n\t            ')}\n`);
    w(`\tAF stripes: ${k.afStripes}\n`);
    w(`\tAF hash:    ${k.afHash}\n`);
    w(`\tArea offset:${k.areaOffset} [bytes]\n`);
    w(`\tArea length:${k.areaSize} [bytes]\n`);
    for (const d of meta.digests) if (d.keyslots.includes(k.id)) w(`\tDigest ID:  ${d.id}\n`);
  }

  w('Tokens:\n');
  const tokens = obj(meta.raw.tokens);
  for (const id of Object.keys(tokens).map(Number).sort((a, b) => a - b)) {
    const t = obj(tokens[String(id)]);
    w(`  ${id}: ${String(t.type)}\n`);
    if (t.type === 'luks2-keyring' && typeof t.key_description === 'string') w(`\tKey description: ${t.key_description}\n`);
    for (const ks of Array.isArray(t.keyslots) ? t.keyslots : []) w(`\tKeyslot:    ${String(ks)}\n`);
  }

  w('Digests:\n');
  for (const d of meta.digests) {
    w(`  ${d.id}: ${d.type}\n`);
    w(`\tHash:       ${d.hash}\n`);
    w(`\tIterations: ${d.iterations}\n`);
    w(`\tSalt:       ${hex(d.salt, '\n\t            ')}\n`);
    w(`\tDigest:     ${hex(d.digest, '\n\t            ')}\n`);
  }
  return out.join('');
}

/** The `--dump-volume-key` text: header line, cipher, payload offset in 512-byte sectors, key hex. */
export function formatVolumeKeyDump(deviceName: string, f: HeaderFields, seg: Segment, key: Buffer): string {
  const dash = seg.encryption.indexOf('-');
  const cipher = dash < 0 ? seg.encryption : seg.encryption.slice(0, dash);
  const mode = dash < 0 ? '' : seg.encryption.slice(dash + 1);
  return volumeKeyDumpText(deviceName, { cipher, mode, payloadSectors: seg.offset / 512, uuid: f.uuid }, key);
}

/** The `--dump-volume-key` text, the same for LUKS1 and LUKS2. */
export function volumeKeyDumpText(deviceName: string, v: { cipher: string; mode: string; payloadSectors: number; uuid: string }, key: Buffer): string {
  return (
    `LUKS header information for ${deviceName}\n` +
    `Cipher name:   \t${v.cipher}\n` +
    `Cipher mode:   \t${v.mode}\n` +
    `Payload offset:\t${v.payloadSectors}\n` +
    `UUID:          \t${v.uuid}\n` +
    `MK bits:       \t${key.length * 8}\n` +
    `MK dump:\t${hex(key, '\n\t\t')}\n`
  );
}
