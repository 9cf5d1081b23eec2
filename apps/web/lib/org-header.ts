// The dashboard acts on the session's active organization (orgs.switch sets it). Scripts and other
// tabs may name one per request in this header instead; packages/api/src/context.ts reads it and
// checks membership either way.
export const ORG_HEADER = "x-kiln-org-id";
