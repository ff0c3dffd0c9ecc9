/**
 * LUKS2 metadata validation as a table: each row breaks one field of a valid header's JSON
 * (made by nbdcrypt format, in cryptsetup's layout) and names the field the error must name.
 * Also the 64-bit decimal-string reader at its edges (2^53, 2^64) and the compact writer
 * giving back exactly the text it read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { isNbdcryptError } from '../../src/errors.js';
import { formatVolume } from '../../src/luks/format-volume.js';
import { readHeaders } from '../../src/luks/luks2-header.js';
import { parseU64, type JsonObject } from '../../src/luks/luks2-json-fields.js';
import { parseMetadata } from '../../src/luks/luks2-metadata.js';
import { serializeMetadata } from '../../src/luks/luks2-metadata-json.js';

const HDR = 0x4000;

async function validJson(): Promise<string> {
  const dev = new MemoryDevice(17 * 1024 * 1024);
  await formatVolume(dev, Buffer.from('x'), { pbkdf: 'pbkdf2', pbkdfForceIterations: 1000 });
  return (await readHeaders(dev)).chosen.json;
}

// Free-form edits of parsed JSON: the point is to produce shapes the types forbid.
type Edit = (m: Record<string, any>) => void;

/** [what is broken, edit, the field path the message must name, and why]. */
const rows: Array<[string, Edit, string]> = [
  ['config missing', (m) => delete m.config, '(top level).config is missing'],
  ['json_size mismatch', (m) => (m.config.json_size = '8192'), 'config.json_size 8192 does not match'],
  ['keyslots_size not 4 KiB aligned', (m) => (m.config.keyslots_size = '4097'), 'config.keyslots_size must be a multiple of 4096'],
  ['64-bit number as a JSON number', (m) => (m.segments['0'].offset = 16777216), 'segments.0.offset must be a string of decimal digits'],
  ['64-bit overflow', (m) => (m.segments['0'].offset = '18446744073709551616'), 'segments.0.offset value 18446744073709551616 overflows 64 bits'],
  ['above 2^53', (m) => (m.segments['0'].iv_tweak = '9007199254740993'), 'segments.0.iv_tweak value 9007199254740993 is larger than 2^53'],
  ['segment offset not 512-aligned', (m) => (m.segments['0'].offset = '16777217'), 'segments.0.offset must be a multiple of 512'],
  ['sector size', (m) => (m.segments['0'].sector_size = 8192), 'segments.0.sector_size must be 512, 1024, 2048 or 4096'],
  ['segment inside the metadata', (m) => (m.segments['0'].offset = '16384'), 'segments.0.offset 16384 overlaps the metadata and keyslots area'],
  ['keyslot id', (m) => (m.keyslots['32'] = m.keyslots['0']), 'keyslots key "32" must be an id'],
  ['key_size', (m) => (m.keyslots['0'].key_size = 0), 'keyslots.0.key_size must be 1 … 512 bytes'],
  ['area offset missing', (m) => delete m.keyslots['0'].area.offset, 'keyslots.0.area.offset is missing'],
  ['area outside the keyslots area', (m) => (m.keyslots['0'].area.offset = '4096'), 'keyslots.0.area [4096, '],
  ['kdf type', (m) => (m.keyslots['0'].kdf.type = 'scrypt'), "keyslots.0.kdf.type 'scrypt' is not argon2id, argon2i or pbkdf2"],
  ['kdf extra key', (m) => (m.keyslots['0'].kdf.extra = 1), 'keyslots.0.kdf must have exactly the keys type, hash, iterations, salt'],
  ['salt not base64', (m) => (m.keyslots['0'].kdf.salt = 'not base64!'), 'keyslots.0.kdf.salt must be standard base64'],
  ['argon2 memory above 4 GiB', (m) => (m.keyslots['0'].kdf = { type: 'argon2id', time: 4, memory: 4194305, cpus: 1, salt: m.keyslots['0'].kdf.salt }), 'keyslots.0.kdf.memory must be 8 … 4194304 KiB'],
  ['int above 32 bits', (m) => (m.keyslots['0'].kdf.iterations = 2 ** 32), 'keyslots.0.kdf.iterations must be a 32-bit integer'],
  ['digest refers to a missing keyslot', (m) => (m.digests['0'].keyslots = ['0', '5']), 'digests.0.keyslots refers to keyslot 5, which does not exist'],
  ['segment without digest', (m) => (m.digests['0'].segments = []), 'segments.0 is not referenced by any digest'],
  ['token keyslot', (m) => (m.tokens['0'] = { type: 'x', keyslots: ['3'] }), 'tokens.0.keyslots refers to keyslot 3'],
  ['overlapping areas', (m) => (m.keyslots['1'] = JSON.parse(JSON.stringify(m.keyslots['0']))), 'keyslots.1.area overlaps the area of keyslot 0'],
];

test('each broken field is refused with EBADHDR naming that field', async () => {
  const text = await validJson();
  assert.doesNotThrow(() => parseMetadata(text, HDR));
  for (const [what, edit, expected] of rows) {
    const m = JSON.parse(text) as Record<string, unknown>;
    edit(m);
    assert.throws(
      () => parseMetadata(JSON.stringify(m), HDR),
      (e) => isNbdcryptError(e, 'EBADHDR') && e.message.startsWith('LUKS2 metadata: ') && e.message.includes(expected),
      `${what}: expected a message with "${expected}"`,
    );
  }
  assert.throws(() => parseMetadata('{"keyslots":', HDR), (e) => isNbdcryptError(e, 'EBADHDR') && /the JSON area does not parse/.test(e.message));
});

test('64-bit decimal strings: exact up to 2^53, refused beyond', () => {
  assert.equal(parseU64('0', 'x'), 0);
  assert.equal(parseU64('9007199254740991', 'x'), Number.MAX_SAFE_INTEGER);
  assert.throws(() => parseU64('9007199254740992', 'f.g'), (e) => isNbdcryptError(e, 'EBADHDR') && /f\.g value 9007199254740992 is larger than 2\^53/.test(e.message));
  assert.throws(() => parseU64('18446744073709551615', 'x'), /larger than 2\^53/);
  assert.throws(() => parseU64('18446744073709551616', 'x'), /overflows 64 bits/);
  for (const bad of ['-1', '1e3', ' 1', '', '0x10', '123456789012345678901']) assert.throws(() => parseU64(bad, 'x'), /must be a string of decimal digits/, bad);
});

test('the writer gives back the text it read (unknown optional fields kept)', async () => {
  const text = await validJson();
  const m = JSON.parse(text) as JsonObject;
  (m.config as JsonObject).flags = ['allow-discards'];
  (m.keyslots as Record<string, JsonObject>)['0']!.priority = 2;
  const withExtras = JSON.stringify(m);
  assert.equal(serializeMetadata(parseMetadata(withExtras, HDR).raw), withExtras);
  assert.equal(serializeMetadata(parseMetadata(text, HDR).raw), text);
});
