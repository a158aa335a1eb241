// A real Varnish cache in front of an origin, started by the test (Debian `varnish`, see .ci/run).
// Its VCL caches every answer for an hour and takes PURGE (one URL) and BAN (a prefix) from loopback.
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './apubi-server.js'

export interface VarnishServer {
  /** http://127.0.0.1:<port> */
  readonly url: string
  stop(): Promise<void>
}

const VARNISHD = '/usr/sbin/varnishd'

/** Why Varnish cannot run here, or undefined when it can. */
export function varnishMissing(): string | undefined {
  return spawnSync(VARNISHD, ['-V']).status === 0 ? undefined : `${VARNISHD} not found: install the Debian package varnish (.ci/run does)`
}

/** Starts varnishd in the foreground on a free port, caching `origin` (host and port), and waits until it answers. */
export async function startVarnish(origin: { host: string; port: number }): Promise<VarnishServer> {
  // varnishd drops to its own user: the VCL and its folder must be readable by it.
  const dir = mkdtempSync(join(tmpdir(), 'apubi-varnish-'))
  chmodSync(dir, 0o755)
  const vcl = join(dir, 'test.vcl')
  writeFileSync(
    vcl,
    `vcl 4.1;
backend origin { .host = "${origin.host}"; .port = "${origin.port}"; }
acl purgers { "127.0.0.1"; }
sub vcl_recv {
  if (req.method == "PURGE") {
    if (client.ip !~ purgers) { return (synth(405, "Not allowed")); }
    return (purge);
  }
  if (req.method == "BAN") {
    if (client.ip !~ purgers) { return (synth(405, "Not allowed")); }
    ban("req.http.host == " + req.http.host + " && req.url ~ ^" + req.url);
    return (synth(200, "Banned"));
  }
}
sub vcl_backend_response {
  set beresp.ttl = 1h;
}
`,
  )
  chmodSync(vcl, 0o644)
  const port = await freePort()
  const child = spawn(VARNISHD, ['-F', '-a', `127.0.0.1:${port}`, '-f', vcl, '-n', join(dir, 'work'), '-s', 'malloc,32m'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (d) => (output += d))
  child.stderr.on('data', (d) => (output += d))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`varnishd exited at start:\n${output}`)
    if (await fetch(`${url}/`, { method: 'HEAD' }).then(() => true, () => false)) break
    if (i > 300) throw new Error(`varnishd did not answer within 30 s:\n${output}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM')
      await exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
