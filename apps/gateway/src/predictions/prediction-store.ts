// Async predictions: a Prediction row (status, refs) in Postgres, tensors in the artifact store,
// and a BullMQ job per prediction. The row is written before the job, and a sweep re-enqueues
// rows still queued without a job, so an accepted prediction survives any single process dying.
import { Readable } from "node:stream";
import type { PrismaClient } from "@kiln/db";
import type { NamedTensor } from "@kiln/serving";
import { decodeInferRequest, encodeInferRequest } from "@kiln/serving";
import type { StorageProvider } from "@kiln/storage";

export const inputsKey = (id: string) => `predictions/${id}/inputs.bin`;
export const outputsKey = (id: string) => `predictions/${id}/outputs.json`;

export async function saveInputs(storage: StorageProvider, id: string, inputs: NamedTensor[]): Promise<string> {
  const encoded = encodeInferRequest({ inputs });
  // The header length travels as a 4-byte prefix so the object is self-describing.
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32LE(encoded.headerLength ?? 0);
  await storage.putStream(inputsKey(id), Readable.from([prefix, encoded.body]));
  return inputsKey(id);
}

export async function loadInputs(storage: StorageProvider, ref: string): Promise<NamedTensor[]> {
  const bytes = Buffer.from(await storage.getBytes(ref));
  return decodeInferRequest(bytes.subarray(4), bytes.readUInt32LE(0)).inputs;
}

export async function saveOutputs(storage: StorageProvider, id: string, outputsJson: unknown[]): Promise<string> {
  await storage.putStream(outputsKey(id), Readable.from([Buffer.from(JSON.stringify(outputsJson))]));
  return outputsKey(id);
}

export async function loadOutputs(storage: StorageProvider, ref: string): Promise<unknown[]> {
  return JSON.parse(Buffer.from(await storage.getBytes(ref)).toString("utf8")) as unknown[];
}

/** Deletes predictions past their retention, tensors first (a row without tensors is never left pointing at them). */
export async function deleteExpired(prisma: PrismaClient, storage: StorageProvider, now = new Date()): Promise<number> {
  const expired = await prisma.prediction.findMany({
    where: { expiresAt: { lte: now } },
    select: { id: true, inputsRef: true, outputsRef: true },
    take: 500,
  });
  for (const p of expired) {
    await storage.delete(p.inputsRef);
    if (p.outputsRef) await storage.delete(p.outputsRef);
  }
  if (expired.length > 0) await prisma.prediction.deleteMany({ where: { id: { in: expired.map((p) => p.id) } } });
  return expired.length;
}
