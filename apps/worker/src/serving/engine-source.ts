// Where a worker reads engine bytes from. The fs artifact store keeps an object under
// <artifactDir>/<storageKey>; keys are checked so a stored key can never escape that folder.
import { readFile } from "node:fs/promises";
import { resolve, sep } from "node:path";

export type EngineSource = (engineStorageKey: string) => Promise<Uint8Array>;

export function fsEngineSource(artifactDir: string): EngineSource {
  const root = resolve(artifactDir);
  return async (key) => {
    const path = resolve(root, key);
    if (!path.startsWith(root + sep)) throw new Error(`engine storage key '${key}' leaves the artifact folder`);
    return new Uint8Array(await readFile(path));
  };
}
