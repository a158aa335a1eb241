import { loadConfig } from '../config/index.js'
import { createLogger, secretValuesIn } from '../observability/index.js'
import { startServer } from '../main.js'

/** `apubi serve`: runs in the foreground until SIGTERM or SIGINT, then shuts down gracefully. */
export async function serve(flags: { port?: string; dataDir?: string }): Promise<void> {
  const config = loadConfig(process.env, { ...(flags.port && { port: flags.port }), ...(flags.dataDir && { dataDir: flags.dataDir }) })
  const pretty = config.logFormat === 'pretty' || (config.logFormat === 'auto' && process.stdout.isTTY)
  // The configuration's passwords and keys are hidden from every log line, wherever they would show.
  // No destination: the logger's own synchronous stdout (see createLogger).
  const logger = createLogger(config.logLevel, undefined, secretValuesIn(config), pretty ? 'pretty' : 'json')
  const running = await startServer(config, logger)
  const stop = (signal: string) => {
    logger.info({ signal }, 'signal received')
    running.shutdown().then(
      () => process.exit(0),
      (e) => {
        logger.error({ err: e }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.once('SIGTERM', () => stop('SIGTERM'))
  process.once('SIGINT', () => stop('SIGINT'))
}
