import { SaxesParser } from 'saxes'
import { isAbsolute, type PackageReference } from './reference.js'

/** An XML element with its local name, attributes and children; text is kept for BaseURL only. */
interface Element {
  readonly name: string
  readonly attrs: Readonly<Record<string, string>>
  readonly children: Element[]
  text: string
}

/** A base URL, and whether an absolute BaseURL took part in it. */
interface Base {
  readonly url: URL
  readonly absolute: boolean
}

// Beyond this a duration-based template describes a channel, not an asset: refuse rather than list it.
const MAX_SEGMENTS_PER_REPRESENTATION = 100_000

/** What an MPD says of its package. */
export interface Mpd {
  readonly references: PackageReference[]
  /** Representations over all periods. */
  readonly representations: number
  /** @mediaPresentationDuration, else the periods' durations summed; undefined when unknown. */
  readonly durationSeconds?: number
}

/**
 * The files of a static MPD (ISO/IEC 23009-1), resolved against `manifest`: per Representation and
 * per BaseURL of its chain (MPD → Period → AdaptationSet → Representation; every BaseURL of a level
 * is an alternative location, so each is followed), the first of SegmentTemplate (initialization,
 * index, media over $Number$, $SubNumber$ or a SegmentTimeline's $Time$), SegmentList
 * (Initialization, SegmentURL) or SegmentBase / nothing (the Representation's single file).
 * Segment elements inherit from the levels above, as the standard says.
 * @throws Error for a document that is not an MPD, a live (dynamic) MPD, or one whose segments cannot be counted.
 */
export function readMpd(xml: string, manifest: URL): Mpd {
  const mpd = parseXml(xml)
  if (mpd.name !== 'MPD') throw new Error(`not a DASH MPD (root element ${mpd.name})`)
  // A live presentation has no end: what it lists now is not a package that can be copied.
  if (mpd.attrs.type === 'dynamic') throw new Error('a live (dynamic) MPD is not a package')
  const references: PackageReference[] = []
  let representations = 0
  const mpdBases = basesOf(mpd, [{ url: manifest, absolute: false }])
  const total = seconds(mpd.attrs.mediaPresentationDuration)
  const periods = childrenNamed(mpd, 'Period')
  let start = 0
  periods.forEach((period, i) => {
    start = seconds(period.attrs.start) ?? start
    const nextStart = seconds(periods[i + 1]?.attrs.start)
    const duration = seconds(period.attrs.duration) ?? (nextStart ?? total ?? NaN) - start
    const periodBases = basesOf(period, mpdBases)
    for (const set of childrenNamed(period, 'AdaptationSet')) {
      const setBases = basesOf(set, periodBases)
      for (const rep of childrenNamed(set, 'Representation')) {
        representations++
        for (const base of basesOf(rep, setBases)) references.push(...representationFiles([period, set, rep], base, duration))
      }
    }
    if (Number.isFinite(duration)) start += duration
  })
  return { references, representations, durationSeconds: total ?? (Number.isFinite(start) && start > 0 ? start : undefined) }
}

/** The files of a static MPD; see `readMpd`. */
export function mpdReferences(xml: string, manifest: URL): PackageReference[] {
  return readMpd(xml, manifest).references
}

/** The files of one Representation; `levels` are its Period, AdaptationSet and itself. */
function representationFiles(levels: Element[], base: Base, periodSeconds: number): PackageReference[] {
  const rep = levels[levels.length - 1]!
  const vars = { RepresentationID: rep.attrs.id ?? '', Bandwidth: rep.attrs.bandwidth ?? '' }
  const at = (uri: string | undefined): PackageReference[] =>
    uri === undefined ? [] : [{ url: new URL(uri, base.url), absolute: base.absolute || isAbsolute(uri) }]
  const templates = levels.flatMap((l) => childrenNamed(l, 'SegmentTemplate'))
  if (templates.length > 0) {
    const template: Record<string, string> = Object.assign({}, ...templates.map((t) => t.attrs))
    const timeline = templates.map((t) => childrenNamed(t, 'SegmentTimeline')[0]).filter((t) => t !== undefined).pop()
    const refs = [...at(fill(template.initialization, vars)), ...at(fill(template.index, vars))]
    if (template.media === undefined) return refs
    // $SubNumber$ names the k sub-segments (S@k) of each segment; without it, a segment is one file.
    const subSegmented = /\$SubNumber(%0\d+d)?\$/.test(template.media)
    for (const { subSegments, ...segment } of templateSegments(template, timeline, periodSeconds)) {
      for (let sub = 1; sub <= (subSegmented ? subSegments : 1); sub++) refs.push(...at(fill(template.media, { ...vars, ...segment, SubNumber: String(sub) })))
    }
    return refs
  }
  const list = levels.map((l) => childrenNamed(l, 'SegmentList')[0]).filter((l) => l !== undefined).pop()
  if (list) {
    const sources = [...childrenNamed(list, 'Initialization'), ...childrenNamed(list, 'RepresentationIndex')]
    // A SegmentURL without @media is a byte range of the BaseURL itself.
    const segments = childrenNamed(list, 'SegmentURL').map((s) => s.attrs.media ?? '')
    return [...sources.flatMap((s) => at(s.attrs.sourceURL)), ...segments.flatMap((m) => at(m))]
  }
  const segmentBase = levels.map((l) => childrenNamed(l, 'SegmentBase')[0]).filter((b) => b !== undefined).pop()
  const sources = segmentBase ? [...childrenNamed(segmentBase, 'Initialization'), ...childrenNamed(segmentBase, 'RepresentationIndex')] : []
  return [...sources.flatMap((s) => at(s.attrs.sourceURL)), ...at('')]
}

interface TemplateSegment {
  readonly Number: string
  readonly Time: string
  /** S@k: sub-segments of this segment, each its own file where the template says $SubNumber$. */
  readonly subSegments: number
}

/** `$Number$` and `$Time$` of each segment of a SegmentTemplate, from its timeline or its duration. */
function templateSegments(template: Record<string, string>, timeline: Element | undefined, periodSeconds: number): TemplateSegment[] {
  const timescale = Number(template.timescale ?? 1)
  const startNumber = Number(template.startNumber ?? 1)
  const segments: TemplateSegment[] = []
  const push = (time: number, subSegments = 1): void => {
    if (segments.length >= MAX_SEGMENTS_PER_REPRESENTATION) throw new Error(`more than ${MAX_SEGMENTS_PER_REPRESENTATION} segments in a representation`)
    if (!(Number.isInteger(subSegments) && subSegments >= 1 && subSegments <= MAX_SEGMENTS_PER_REPRESENTATION)) throw new Error(`a SegmentTimeline S element with @k ${subSegments}`)
    segments.push({ Number: String(startNumber + segments.length), Time: String(time), subSegments })
  }
  if (timeline) {
    // Media time of the period's end, for a last S repeated "until the end" (r = -1).
    const end = Number(template.presentationTimeOffset ?? 0) + periodSeconds * timescale
    const entries = childrenNamed(timeline, 'S')
    let time = 0
    entries.forEach((s, i) => {
      time = s.attrs.t === undefined ? time : Number(s.attrs.t)
      const d = Number(s.attrs.d)
      if (!(d > 0)) throw new Error('a SegmentTimeline S element without a positive @d')
      let repeat = Number(s.attrs.r ?? 0)
      if (repeat < 0) {
        const until = entries[i + 1]?.attrs.t !== undefined ? Number(entries[i + 1]!.attrs.t) : end
        if (!Number.isFinite(until)) throw new Error('a SegmentTimeline repeated to the end of a period of unknown duration')
        repeat = Math.ceil((until - time) / d - 1e-9) - 1
      }
      const k = Number(s.attrs.k ?? 1)
      for (let n = 0; n <= repeat; n++, time += d) push(time, k)
    })
    return segments
  }
  const duration = Number(template.duration)
  if (!(duration > 0)) throw new Error('a SegmentTemplate with @media but neither @duration nor a SegmentTimeline')
  const count =
    template.endNumber !== undefined
      ? Number(template.endNumber) - startNumber + 1
      : Math.ceil((periodSeconds * timescale) / duration - 1e-9)
  if (!Number.isFinite(count)) throw new Error('a SegmentTemplate in a period of unknown duration')
  for (let k = 0; k < count; k++) push(k * duration)
  return segments
}

/**
 * A template with its `$Identifier$` and `$Identifier%0Nd$` replaced and `$$` turned into `$`.
 * @throws Error for an identifier this template cannot know.
 */
export function fill(template: string | undefined, vars: Readonly<Record<string, string>>): string | undefined {
  return template?.replace(/\$(\w*)(?:%0(\d+)d)?\$/g, (_, name: string, width: string | undefined) => {
    if (name === '') return '$'
    const value = vars[name]
    if (value === undefined) throw new Error(`$${name}$ cannot be filled in ${template}`)
    return width ? value.padStart(Number(width), '0') : value
  })
}

/** Each of `bases` moved by each of the element's BaseURL children; `bases` as they are without one. */
function basesOf(element: Element, bases: readonly Base[]): Base[] {
  const texts = childrenNamed(element, 'BaseURL').map((b) => b.text.trim()).filter(Boolean)
  if (texts.length === 0) return [...bases]
  return bases.flatMap((base) => texts.map((text) => ({ url: new URL(text, base.url), absolute: base.absolute || isAbsolute(text) })))
}

function childrenNamed(element: Element, name: string): Element[] {
  return element.children.filter((c) => c.name === name)
}

/** An xs:duration (`PT1H2M3.5S`, `P1DT2H`) in seconds; undefined when absent or unreadable. */
export function seconds(duration: string | undefined): number | undefined {
  const m = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(duration?.trim() ?? '')
  if (!m) return undefined
  const [d = 0, h = 0, min = 0, s = 0] = m.slice(1).map((v) => Number(v ?? 0))
  return d * 86_400 + h * 3_600 + min * 60 + s
}

/**
 * The document as a tree of elements with local names (namespaces are not needed to read an MPD).
 * saxes expands no external or custom entities, so a hostile DOCTYPE cannot blow the tree up.
 */
function parseXml(xml: string): Element {
  const parser = new SaxesParser()
  const stack: Element[] = []
  let root: Element | undefined
  parser.on('opentag', (tag) => {
    const element: Element = { name: localName(tag.name), attrs: attributes(tag.attributes), children: [], text: '' }
    const parent = stack[stack.length - 1]
    if (parent) parent.children.push(element)
    else root = element
    stack.push(element)
  })
  const onText = (text: string): void => {
    const current = stack[stack.length - 1]
    if (current?.name === 'BaseURL') current.text += text
  }
  parser.on('text', onText)
  parser.on('cdata', onText)
  parser.on('closetag', () => void stack.pop())
  parser.write(xml).close()
  if (!root) throw new Error('empty document')
  return root
}

function localName(name: string): string {
  return name.slice(name.indexOf(':') + 1)
}

function attributes(attrs: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(attrs)) out[localName(name)] = value
  return out
}
