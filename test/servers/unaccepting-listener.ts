import { spawn } from 'node:child_process'
import { connect, type Socket } from 'node:net'

export interface UnacceptingListener {
  readonly port: number
  close(): void
}

/**
 * A port where a connection is never made: a listener that never accepts, its one-connection backlog
 * filled, so the kernel leaves new handshakes unanswered, as a firewall that drops packets does.
 * Python (from .ci/run's python3-pyftpdlib), as Node always accepts.
 */
export async function startUnacceptingListener(): Promise<UnacceptingListener> {
  const listener = spawn('python3', ['-c', "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(0); print(s.getsockname()[1], flush=True); time.sleep(600)"])
  const port = await new Promise<number>((resolve, reject) => {
    listener.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim())))
    listener.once('error', reject)
  })
  const filler: Socket = connect(port, '127.0.0.1')
  await new Promise((resolve, reject) => filler.once('connect', resolve).once('error', reject))
  return {
    port,
    close() {
      filler.destroy()
      listener.kill()
    },
  }
}
