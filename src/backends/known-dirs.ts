/**
 * Directories a backend made or found during its life, which is one task's: the writes of a
 * package's files then look for their directory once, not once per file. A directory removed behind
 * our back meanwhile makes a write fail, and the attempt after it starts with a new backend.
 */
export class KnownDirs {
  private readonly dirs = new Set<string>()

  has(dir: string): boolean {
    return this.dirs.has(dir)
  }

  add(dir: string): void {
    this.dirs.add(dir)
  }

  /** `path` was removed: it and whatever was below it are unknown again. */
  forget(path: string): void {
    for (const dir of this.dirs) if (dir === path || dir.startsWith(`${path}/`)) this.dirs.delete(dir)
  }
}
