#!/usr/bin/env node
import { Command } from 'commander'
import { serve } from './serve.js'
import { load, purge, status, type WfmFlags } from './wfm.js'

const DEFAULT_URL = 'http://127.0.0.1:8080/apubi'

// `apubi load … | head -1`: a reader that stopped early is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  throw e
})

const program = new Command('apubi').description('APUBI publishing server, and a client that acts as the WFM')

program
  .command('serve')
  .description('run the publishing server in the foreground (configured by APUBI_* variables)')
  .option('--port <port>', 'TCP port (APUBI_PORT)')
  .option('--data-dir <dir>', 'data folder (APUBI_DATA_DIR)')
  .action(async (flags) => {
    try {
      await serve(flags)
    } catch (e) {
      // A bad setting or a busy port: say which, without a stack.
      process.stderr.write(`apubi serve: ${(e as Error).message}\n`)
      process.exit(1)
    }
  })

const wfm = (command: Command) =>
  command
    .option('--url <url>', 'SOAP endpoint of the server', DEFAULT_URL)
    .option('--wait', 'poll until the task ends; exit 0 on SUCCESS, 1 on FAILED')
    .option('--interval <ms>', 'polling interval with --wait', '1000')

wfm(program.command('load <source> <destination>').description('LoadAsset: publish a file or directory (trailing /)')).action(
  async (source: string, destination: string, flags: WfmFlags) => exit(await load(source, destination, flags)),
)
wfm(program.command('purge <destination>').description('PurgeAsset: remove a published file or directory')).action(
  async (destination: string, flags: WfmFlags) => exit(await purge(destination, flags)),
)
program
  .command('status <taskId>')
  .description('GetTaskStatus: print SUCCESS, FAILED or IN_PROGRESS (exit 1 on FAILED)')
  .option('--url <url>', 'SOAP endpoint of the server', DEFAULT_URL)
  .action(async (taskId: string, flags: WfmFlags) => exit(await status(taskId, flags)))

function exit(code: number): void {
  process.exitCode = code
}

await program.parseAsync()
