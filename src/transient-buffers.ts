/**
 * Bytes of short-lived Buffers that the I/O paths were handed, so that the process can have
 * them collected while they are young. Every socket read is a fresh Buffer of up to 64 KiB,
 * and ssh2 allocates a new one for each SSH packet it sends: under load that is hundreds of
 * MB/s of memory outside V8's heap. V8 counts such memory against its old-generation limit
 * until the next full collection, but it only runs a minor collection when the (tiny) JS heap
 * fills its young generation. Serve registers a collector (cli/heap-guard.ts); without one,
 * reporting costs a function call and nothing happens.
 */
type Collector = (bytes: number) => void;

let collector: Collector | undefined;

/** Called with the size of every Buffer an I/O path received or allocated and dropped. */
export function noteTransientBytes(bytes: number): void {
  collector?.(bytes);
}

/** Installs (or, with undefined, removes) the process-wide collector. */
export function setTransientCollector(c: Collector | undefined): void {
  collector = c;
}
