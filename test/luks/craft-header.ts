/**
 * Hostile and damaged headers for the tests: rewrites the JSON metadata of a LUKS2 image with
 * valid checksums on both copies (so only the edited field is wrong), or breaks one copy.
 */
import { readHeaders, writeHeaders } from '../../src/luks/luks2-header.js';
import type { JsonObject } from '../../src/luks/luks2-json-fields.js';
import { ImageFile } from './image-file.js';

/** Applies `edit` to the metadata and writes both copies back (same seqid, fresh checksums). */
export async function editMetadata(path: string, edit: (raw: JsonObject) => void): Promise<void> {
  const dev = new ImageFile(path);
  try {
    const r = await readHeaders(dev);
    const raw = JSON.parse(r.chosen.json) as JsonObject;
    edit(raw);
    const c = r.chosen;
    await writeHeaders(dev, { hdrSize: c.hdrSize, seqid: c.seqid, label: c.label, checksumAlg: c.checksumAlg, uuid: c.uuid, subsystem: c.subsystem }, JSON.stringify(raw));
  } finally {
    await dev.close();
  }
}

/** Flips one bit of the byte at `offset` (e.g. 200: inside the primary's salt, so its checksum fails). */
export async function flipByte(path: string, offset: number): Promise<void> {
  const dev = new ImageFile(path);
  try {
    const b = await dev.read(offset, 1);
    b[0]! ^= 1;
    await dev.write(offset, b);
  } finally {
    await dev.close();
  }
}

/** `raw.keyslots[id]` etc. without casts at every use. */
export function obj(raw: JsonObject, ...path: string[]): JsonObject {
  let o = raw;
  for (const k of path) o = o[k] as JsonObject;
  return o;
}
