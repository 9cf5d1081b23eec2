import { hash, verify } from "@node-rs/argon2";

// Argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): about 50 ms per hash here,
// slow enough to make offline guessing expensive and fast enough for a sign-in.
const OPTIONS = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return hash(password, OPTIONS);
}

export async function verifyPassword(input: { hash: string; password: string }): Promise<boolean> {
  try {
    return await verify(input.hash, input.password);
  } catch {
    // A hash in another format (or corrupted) simply does not match.
    return false;
  }
}
