#!/usr/bin/env -S node --no-memory-reducer
import { Command, Option } from 'commander'
import { redact } from '../observability/index.js'
import { addConformanceCommands } from './conformance.js'
import { serve } from './serve.js'
import { listTasks, showTask, type AdminFlags, type TasksFlags } from './tasks.js'
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
      process.stderr.write(`apubi serve: ${redact((e as Error).message)}\n`)
      process.exit(1)
    }
  })

/** Where the server is and who we are to it; the password only from the environment or a flag. */
const endpoint = (command: Command) =>
  command
    .option('--url <url>', 'SOAP endpoint of the server', DEFAULT_URL)
    .addOption(new Option('--user <user>', 'user, when the server requires authentication').env('APUBI_SOAP_USER'))
    .addOption(new Option('--password <password>', 'password of --user (better: the variable)').env('APUBI_SOAP_PASSWORD'))
    .addOption(new Option('--auth <scheme>', 'how to send them: HTTP Basic, or a WS-Security UsernameToken').choices(['basic', 'digest', 'text']).default('basic'))

const wfm = (command: Command) =>
  endpoint(command)
    .option('--wait', 'poll until the task ends; exit 0 on SUCCESS, 1 on FAILED')
    .option('--interval <ms>', 'polling interval with --wait', '1000')
    .option('--progress', 'with --wait, a progress bar on stderr from this server\'s admin API (default: on a terminal)')
    .option('--no-progress', 'no progress bar, even on a terminal')
    .addOption(new Option('--token <token>', 'admin token for the progress bar, when the server has one').env('APUBI_ADMIN_TOKEN'))

wfm(program.command('load <source> <destination>').description('LoadAsset: publish a file or directory (trailing /)')).action(
  async (source: string, destination: string, flags: WfmFlags) => exit(await load(source, destination, flags)),
)
wfm(program.command('purge <destination>').description('PurgeAsset: remove a published file or directory')).action(
  async (destination: string, flags: WfmFlags) => exit(await purge(destination, flags)),
)
endpoint(program.command('status <taskId>').description('GetTaskStatus: print SUCCESS, FAILED or IN_PROGRESS (exit 1 on FAILED)'))
  .action(async (taskId: string, flags: WfmFlags) => exit(await status(taskId, flags)))

/** This server's admin API (not APUBI: other servers have none); the token only from the environment or a flag. */
const admin = (command: Command) =>
  command
    .option('--url <url>', 'any URL of the server (its SOAP endpoint will do)', DEFAULT_URL)
    .addOption(new Option('--token <token>', 'admin token, when the server has one (better: the variable)').env('APUBI_ADMIN_TOKEN'))
    .option('--json', 'print the API\'s JSON answer')

admin(program.command('tasks').description('list tasks: running, retrying and queued first, then newest (admin API)'))
  .option('--state <states>', 'comma-separated, any case: queued, running, retry_wait, succeeded, failed, cancelled, or APUBI\'s SUCCESS, FAILED (with cancelled), IN_PROGRESS')
  .option('--kind <kind>', 'load or purge')
  .option('--since <time>', 'created since: an age (30m, 2h, 1d) or a date-time')
  .option('--until <time>', 'created before: an age or a date-time')
  .option('--search <text>', 'text in the source, destination or target, or a TaskId (whole or its first characters)')
  .option('--sort <order>', 'active (default), newest, oldest, finished, longest or shortest')
  .option('--limit <n>', 'tasks per page (at most 200)', '50')
  .option('--offset <n>', 'tasks to skip', '0')
  .action(async (flags: TasksFlags) => exit(await listTasks(flags)))
admin(program.command('task <taskId>').description('show a task (its TaskId or its first characters): progress, attempt history, files with checksums, metadata (admin API)'))
  .action(async (taskId: string, flags: AdminFlags) => exit(await showTask(taskId, flags)))

addConformanceCommands(program)

function exit(code: number): void {
  process.exitCode = code
}

await program.parseAsync()
