// Streaming packages made by a real packager for the tests: Debian's ffmpeg (package ffmpeg, which
// .ci/run installs), a few seconds of testsrc2 and a sine at a tiny resolution, so each takes about a second.
import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

export const FFMPEG_MISSING = 'ffmpeg is not installed: apt-get install -y ffmpeg (.ci/run does)'

export function ffmpegInstalled(): boolean {
  return spawnSync('ffmpeg', ['-version']).status === 0 && spawnSync('ffprobe', ['-version']).status === 0
}

const SOURCES = (seconds: number, tone: number) => ['-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=10', '-f', 'lavfi', '-i', `sine=frequency=${tone}:sample_rate=8000`, '-t', String(seconds)]
const CODECS = ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '10', '-c:a', 'aac', '-b:a', '32k']

export interface PackageOptions {
  /** fmp4 (default) or mpegts segments. */
  readonly segments?: 'fmp4' | 'mpegts'
  /** Seconds of media; one segment a second. */
  readonly seconds?: number
  /** Prefix of segment names, so that two versions of a package can name theirs apart. */
  readonly prefix?: string
  /** Sine frequency: another tone makes other bytes. */
  readonly tone?: number
  /** One media file per rendition, its segments byte ranges of it (HLS `single_file`). */
  readonly singleFile?: boolean
}

/**
 * An HLS package in `dir`: master.m3u8 → two video variants (v0/, v1/) and an alternate audio
 * rendition (vaudio/), each a media playlist over its segments (and init segment for fMP4), or over
 * byte ranges of one file (`singleFile`).
 */
export function makeHls(dir: string, options: PackageOptions = {}): void {
  const { segments = 'fmp4', seconds = 4, prefix = 'seg', tone = 440, singleFile = false } = options
  mkdirSync(dir, { recursive: true })
  const ext = segments === 'fmp4' ? 'm4s' : 'ts'
  ffmpeg(dir, [
    ...SOURCES(seconds, tone),
    ...['-map', '0:v', '-map', '0:v', '-map', '1:a'],
    ...CODECS,
    ...['-b:v:0', '100k', '-b:v:1', '50k', '-s:v:1', '96x54'],
    ...['-f', 'hls', '-hls_time', '1', '-hls_playlist_type', 'vod', '-hls_segment_type', segments],
    ...(segments === 'fmp4' ? ['-hls_fmp4_init_filename', `${prefix}-init_%v.mp4`] : []),
    ...['-master_pl_name', 'master.m3u8', '-var_stream_map', 'v:0,agroup:aud v:1,agroup:aud a:0,agroup:aud,language:en,name:audio'],
    ...(singleFile ? ['-hls_flags', 'single_file'] : []),
    ...['-hls_segment_filename', singleFile ? `v%v/${prefix}.${ext}` : `v%v/${prefix}%d.${ext}`, 'v%v/prog.m3u8'],
  ])
}

/** A DASH package in `dir`: manifest.mpd with a SegmentTemplate over a SegmentTimeline, one video and one audio Representation. */
export function makeDash(dir: string, options: PackageOptions = {}): void {
  const { seconds = 4, prefix = 'chunk', tone = 440 } = options
  mkdirSync(dir, { recursive: true })
  ffmpeg(dir, [
    ...SOURCES(seconds, tone),
    ...['-map', '0:v', '-map', '1:a'],
    ...CODECS,
    ...['-b:v', '100k', '-f', 'dash', '-seg_duration', '1', '-use_timeline', '1', '-use_template', '1'],
    ...['-init_seg_name', `${prefix}-init-$RepresentationID$.m4s`, '-media_seg_name', `${prefix}-$RepresentationID$-$Number%05d$.m4s`, 'manifest.mpd'],
  ])
}

function ffmpeg(cwd: string, args: string[]): void {
  const run = spawnSync('ffmpeg', ['-v', 'error', '-y', ...args], { cwd, encoding: 'utf8' })
  if (run.status !== 0) throw new Error(`ffmpeg failed: ${run.stderr}`)
}

/**
 * What ffprobe reads of a package through its manifest: each stream's codec and packet count
 * (`-count_packets` reads every segment, so a missing or damaged one shows).
 */
export function probe(manifest: string): string {
  const run = spawnSync('ffprobe', ['-v', 'error', '-count_packets', '-show_entries', 'stream=codec_name,nb_read_packets', '-of', 'csv=p=0', manifest], { encoding: 'utf8' })
  if (run.status !== 0) throw new Error(`ffprobe failed on ${manifest}: ${run.stderr}`)
  return run.stdout
}

/** Every file below `dir`, relative, sorted, with its size. */
export function tree(dir: string): Map<string, number> {
  const files = new Map<string, number>()
  const visit = (path: string): void => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name)
      if (entry.isDirectory()) visit(full)
      else files.set(relative(dir, full), statSync(full).size)
    }
  }
  visit(dir)
  return new Map([...files].sort(([a], [b]) => a.localeCompare(b)))
}
