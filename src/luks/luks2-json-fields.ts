/**
 * Field readers for LUKS2 JSON metadata: the JSON value types, 64-bit numbers stored as
 * decimal strings (parsed with overflow checks, and refused above 2^53, which a JS number
 * cannot hold exactly), 32-bit integers, base64, id lists, and `runChecks`, which applies a
 * table of (field, kind, required) rows to one object. Every failure is an EBADHDR error that
 * names the field path, e.g. `keyslots.1.area.offset`.
 * Spec: docs/formats.md (LUKS2 JSON metadata).
 */
import { NbdcryptError } from '../errors.js';

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

/** Highest keyslot id + 1: the bound of the id lists in digests and tokens. */
const MAX_KEYSLOT_IDS = 32;

export function bad(path: string, why: string): NbdcryptError {
  return new NbdcryptError('EBADHDR', `LUKS2 metadata: ${path} ${why}; the header is damaged or was not written by a LUKS2 tool`);
}

export function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export type Kind = 'string' | 'int' | 'u64' | 'u64|dynamic' | 'b64' | 'object' | 'ids' | 'strings';
/** One row of a check table: field name, kind, mandatory. */
export type Check = readonly [field: string, kind: Kind, required: boolean];

const U64_MAX = (1n << 64n) - 1n;

/** A decimal-string 64-bit number; must also fit a JS safe integer to be usable here. */
export function parseU64(v: Json | undefined, path: string): number {
  if (typeof v !== 'string' || !/^[0-9]{1,20}$/.test(v)) throw bad(path, 'must be a string of decimal digits');
  const n = BigInt(v);
  if (n > U64_MAX) throw bad(path, `value ${v} overflows 64 bits`);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(path, `value ${v} is larger than 2^53, which nbdcrypt does not support`);
  return Number(n);
}

function parseInt32(v: Json | undefined, path: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff) throw bad(path, 'must be a 32-bit integer');
  return v;
}

function parseB64(v: Json | undefined, path: string): Buffer {
  if (typeof v !== 'string' || v.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw bad(path, 'must be standard base64');
  return Buffer.from(v, 'base64');
}

function parseIds(v: Json | undefined, path: string, max: number): number[] {
  if (!Array.isArray(v)) throw bad(path, 'must be an array of decimal strings');
  return v.map((e, i) => parseId(e, `${path}[${i}]`, max));
}

export function parseId(v: Json | string | undefined, path: string, max: number): number {
  if (typeof v !== 'string' || !/^(0|[1-9][0-9]?)$/.test(v) || Number(v) >= max) throw bad(path, `must be an id "0".."${max - 1}"`);
  return Number(v);
}

/** Runs a check table over `obj`; returns the parsed values by field name. */
export function runChecks(obj: Json | undefined, path: string, table: readonly Check[]): Record<string, unknown> {
  if (!isObject(obj)) throw bad(path, 'must be a JSON object');
  const out: Record<string, unknown> = {};
  for (const [field, kind, required] of table) {
    const v = obj[field];
    const p = `${path}.${field}`;
    if (v === undefined) {
      if (required) throw bad(p, 'is missing');
      continue;
    }
    switch (kind) {
      case 'string':
        if (typeof v !== 'string') throw bad(p, 'must be a string');
        out[field] = v;
        break;
      case 'int':
        out[field] = parseInt32(v, p);
        break;
      case 'u64':
        out[field] = parseU64(v, p);
        break;
      case 'u64|dynamic':
        out[field] = v === 'dynamic' ? 'dynamic' : parseU64(v, p);
        break;
      case 'b64':
        out[field] = parseB64(v, p);
        break;
      case 'object':
        if (!isObject(v)) throw bad(p, 'must be a JSON object');
        out[field] = v;
        break;
      case 'ids':
        out[field] = parseIds(v, p, MAX_KEYSLOT_IDS);
        break;
      case 'strings':
        if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw bad(p, 'must be an array of strings');
        out[field] = v;
        break;
    }
  }
  return out;
}

