// The checks the sign-up form runs in the browser before sending. The server is the authority
// (packages/auth applies the password policy again); these give the same messages sooner.

export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 128;

export function emailProblem(email: string): string | undefined {
  const trimmed = email.trim();
  if (!trimmed) return "Enter your email address.";
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(trimmed)) return "Enter an email address like name@example.com.";
  return undefined;
}

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
