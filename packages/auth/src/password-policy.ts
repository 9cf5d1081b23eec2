// The password rules, with the messages people see. apps/web/lib/credentials.ts repeats them in the
// browser for instant feedback; this is the authority (checked on every sign-up).

export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 128;

/** Every rule the password breaks, in the order a person would fix them; empty when it is fine. */
export function passwordProblems(password: string): string[] {
  const problems: string[] = [];
  if (password.length < MIN_PASSWORD_LENGTH) {
    problems.push(`Use at least ${MIN_PASSWORD_LENGTH} characters (${password.length} so far).`);
  }
  if (password.length > MAX_PASSWORD_LENGTH) problems.push(`Use at most ${MAX_PASSWORD_LENGTH} characters.`);
  if (!/[A-Za-z]/.test(password)) problems.push("Include at least one letter.");
  if (!/[^A-Za-z]/.test(password)) problems.push("Include at least one digit or symbol.");
  return problems;
}
