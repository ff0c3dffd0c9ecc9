/**
 * `cryptsetup luksDump` text for a LUKS1 header, identical to cryptsetup 2.6's (its
 * luksDump_with_LUKS1 layout): the header fields, the volume key digest and salt, and each
 * of the 8 keyslots, ENABLED with its PBKDF2 iterations, salt, key material offset and
 * stripes, or DISABLED. Tabs and hex layout match byte for byte so the outputs can be diffed.
 * Spec: docs/formats.md (LUKS1 dump text).
 */
import type { Luks1Header } from './luks1-header.js';
import { hex, volumeKeyDumpText } from './luks2-dump.js';

export function formatLuks1Dump(deviceName: string, h: Luks1Header): string {
  const out: string[] = [];
  const w = (s: string) => out.push(s);
  w(`LUKS header information for ${deviceName}\n\n`);
  w('Version:       \t1\n');
  w(`Cipher name:   \t${h.cipherName}\n`);
  w(`Cipher mode:   \t${h.cipherMode}\n`);
  w(`Hash spec:     \t${h.hashSpec}\n`);
  w(`Payload offset:\t${h.payloadOffset}\n`);
  w(`MK bits:       \t${h.keyBytes * 8}\n`);
  w(`MK digest:     \t${hex(h.mkDigest, '')}\n`);
  w(`MK salt:       \t${hex(h.mkDigestSalt.subarray(0, 16), '')}\n`);
  w(`               \t${hex(h.mkDigestSalt.subarray(16), '')}\n`);
  w(`MK iterations: \t${h.mkDigestIterations}\n`);
  w(`UUID:          \t${h.uuid}\n\n`);
  for (const k of h.keyslots) {
    if (!k.active) {
      w(`Key Slot ${k.id}: DISABLED\n`);
      continue;
    }
    w(`Key Slot ${k.id}: ENABLED\n`);
    w(`\tIterations:         \t${k.iterations}\n`);
    w(`\tSalt:               \t${hex(k.salt.subarray(0, 16), '')}\n`);
    w(`\t                      \t${hex(k.salt.subarray(16), '')}\n`);
    w(`\tKey material offset:\t${k.keyMaterialOffset}\n`);
    w(`\tAF stripes:            \t${k.stripes}\n`);
  }
  return out.join('');
}

/** The `--dump-volume-key` text for a LUKS1 volume (same layout as LUKS2's). */
export function formatLuks1VolumeKeyDump(deviceName: string, h: Luks1Header, key: Buffer): string {
  return volumeKeyDumpText(deviceName, { cipher: h.cipherName, mode: h.cipherMode, payloadSectors: h.payloadOffset, uuid: h.uuid }, key);
}
