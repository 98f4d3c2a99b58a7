// A small file system of a test's own (tmpfs, which mounting needs root for), to fill until it is full and free
// again: the real ENOSPC behind a full disk, without filling the machine's.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from './temporal.js';

export interface TestTmpfs {
  /** Where it is mounted. */
  dir: string;
  /** Writes a file until the file system refuses more (ENOSPC): nothing else fits then. */
  fill(): void;
  /** Removes what fill() wrote. */
  free(): void;
  /** Unmounts it and removes its directory (close whatever has files open on it first). */
  unmount(): void;
}

const FILLER = '.filler';

/** Mounts a tmpfs of `bytes` on a new temp directory; a string (why not) when this machine refuses to mount one. */
export function mountTmpfs(prefix: string, bytes: number): TestTmpfs | string {
  const dir = tempDir(prefix);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    return `cannot mount a tmpfs here (needs root and mount(8)): ${stderr || (err as Error).message}`;
  }
  const filler = path.join(dir, FILLER);
  return {
    dir,
    fill() {
      const fd = fs.openSync(filler, 'a');
      const chunk = Buffer.alloc(64 * 1024, 1);
      try {
        // A write that finds less room writes what fits; the next one meets ENOSPC.
        for (;;) fs.writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      } finally {
        fs.closeSync(fd);
      }
    },
    free() {
      fs.rmSync(filler, { force: true });
    },
    unmount() {
      try {
        execFileSync('umount', [dir], { stdio: 'pipe' });
      } catch (err) {
        // Something still holds a file open there: detached now (gone once it lets go), and reported.
        execFileSync('umount', ['--lazy', dir], { stdio: 'pipe' });
        throw new Error(`${dir} was busy at unmount (a file left open); unmounted lazily`, { cause: err });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
