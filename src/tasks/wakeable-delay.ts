/** A poll loop's pause: it ends after `ms`, or at once when `wake` is called (work just arrived). */
export function wakeableDelay(ms: number): { readonly done: Promise<void>; wake(): void } {
  let wake = (): void => {}
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms)
    wake = () => {
      clearTimeout(timer)
      resolve()
    }
  })
  return { done, wake }
}
