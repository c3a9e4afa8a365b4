// The cold-sync progress bar: on a terminal only (stderr a TTY), never in logs or pipes.
import { SingleBar } from 'cli-progress';
import type { SyncProgress } from '../client/index.ts';
import { formatBytes } from '../format.ts';

export interface ProgressSink {
  update(progress: SyncProgress): void;
  stop(): void;
}

export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): ProgressSink | undefined {
  if (!stream.isTTY) return undefined;
  let bar: SingleBar | undefined;
  return {
    update(progress) {
      const payload = { size: `${formatBytes(progress.bytes)}/${formatBytes(progress.totalBytes)}` };
      if (!bar) {
        bar = new SingleBar({ stream, format: '[livemod sync] {bar} {value}/{total} blobs | {size}', hideCursor: true, clearOnComplete: true, barsize: 30 });
        bar.start(progress.total, progress.done, payload);
      } else {
        bar.update(progress.done, payload);
      }
    },
    stop() {
      bar?.stop();
    },
  };
}
