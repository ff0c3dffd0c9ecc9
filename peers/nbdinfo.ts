/**
 * libnbd's nbdinfo as the oracle for what a server advertises: `--json` for size, flags and
 * block sizes, `--list` for NBD_OPT_LIST. Spec: nbdinfo(1).
 */
import { requireTool, run } from './tools.js';

export interface NbdinfoExport {
  'export-name': string;
  'export-size': number;
  description?: string;
  is_read_only: boolean;
  can_flush: boolean;
  can_fua: boolean;
  can_trim: boolean;
  can_zero: boolean;
  can_fast_zero: boolean;
  can_cache: boolean;
  can_multi_conn: boolean;
  block_size_minimum?: number;
  block_size_preferred?: number;
  block_size_maximum?: number;
}

export interface NbdinfoResult {
  protocol: string;
  structured: boolean;
  exports: NbdinfoExport[];
}

export function nbdinfoJson(uri: string, extra: string[] = []): NbdinfoResult {
  const bin = requireTool('nbdinfo', 'libnbd-bin');
  return JSON.parse(run(bin, ['--json', ...extra, uri], { timeoutMs: 30_000 }).stdout) as NbdinfoResult;
}

/** `nbdinfo --list --json`: every export the server lists. */
export function nbdinfoList(uri: string): NbdinfoResult {
  return nbdinfoJson(uri, ['--list']);
}
