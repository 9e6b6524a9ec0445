/** Resolves or rejects with `promise`, or rejects naming `what` once `ms` milliseconds pass. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A logger that records every entry, for asserting what toni logged. */
export function captureLogger() {
  const entries: { level: string; details: Record<string, unknown>; message: string | undefined }[] = [];
  const record = (level: string) => (details: object, message?: string) => {
    entries.push({ level, details: details as Record<string, unknown>, message });
  };
  return { entries, error: record('error'), warn: record('warn'), info: record('info'), debug: record('debug') };
}
