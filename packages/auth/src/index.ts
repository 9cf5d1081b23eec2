// @kiln/auth: email + password accounts (better-auth, argon2id, Redis-backed sign-in rate limit).
export { type Auth, type CreateAuthOptions, createAuth, sessionFromHeaders } from "./create-auth.ts";
export { auth, getAuth, getSession } from "./default-auth.ts";
export { hashPassword, verifyPassword } from "./password-hash.ts";
export { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, passwordProblems } from "./password-policy.ts";
