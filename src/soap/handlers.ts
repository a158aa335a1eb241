import type { TaskService, TaskStatus } from '../tasks/index.js'
import type { SoapRequest } from './parse.js'
import type { SoapResponse } from './render.js'

export type Handled = { response: SoapResponse; taskId: string }

/**
 * A GetTaskStatus answered without waiting, where the task store reads without waiting (SQLite);
 * undefined for every other request, and where the store must wait: then `handle` it.
 */
export function handleNow(request: SoapRequest, tasks: TaskService): Handled | undefined {
  if (request.operation !== 'GetTaskStatus') return undefined
  const status = tasks.statusNow(request.taskId)
  return status && statusAnswer(request.taskId, status)
}

function statusAnswer(taskId: string, status: TaskStatus): Handled {
  // Spelled out rather than spread: a spread costs a poll more than the rest of handleNow.
  return { response: { operation: 'GetTaskStatus', status: status.status, destinationAsset: status.destinationAsset }, taskId }
}

/** One request to one answer; errors propagate to the edge, which turns them into faults. */
export async function handle(request: SoapRequest, tasks: TaskService): Promise<Handled> {
  switch (request.operation) {
    case 'LoadAsset': {
      const { id } = await tasks.submitLoad({
        sourceAssetUrl: request.sourceAssetUrl,
        destinationAsset: request.destinationAsset,
        ...(request.metadata && { metadata: request.metadata }),
      })
      return { response: { operation: 'LoadAsset', taskId: id }, taskId: id }
    }
    case 'PurgeAsset': {
      const { id } = await tasks.submitPurge({
        destinationAsset: request.destinationAsset,
        ...(request.metadata && { metadata: request.metadata }),
      })
      return { response: { operation: 'PurgeAsset', taskId: id }, taskId: id }
    }
    case 'GetTaskStatus':
      return statusAnswer(request.taskId, await tasks.status(request.taskId))
  }
}
