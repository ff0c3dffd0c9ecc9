/**
 * Bytes of short-lived Buffers that the I/O paths were handed, so that the process can have
 * them collected while they are young. Every socket read is a fresh Buffer of up to 64 KiB,
 * and ssh2 allocates a new one for each SSH packet it sends: under load that is hundreds of
 * MB/s of memory outside V8's heap. V8 counts such memory against its old-generation limit
 * until the next full collection, but it only runs a minor collection when the (tiny) JS heap
 * fills its young generation. A serving command creates the heap guard that acts on these
 * reports and passes its `noteTransientBytes` to the NBD server, the NBD client and the SSH
 * transport; a layer given none reports to `ignoreTransientBytes`.
 */

/** Called with the size of every Buffer an I/O path received or allocated and dropped. */
export type NoteTransientBytes = (bytes: number) => void;

export const ignoreTransientBytes: NoteTransientBytes = () => undefined;
