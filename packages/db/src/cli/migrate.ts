// `npm run db:migrate`: applies prisma/migrations to DATABASE_URL. Works offline, unlike Prisma's CLI.
import { migrate } from "../migrate.ts";

const url = process.env.DATABASE_URL;
if (!url) {
  console.error("DATABASE_URL is not set: point it at your Postgres, e.g. postgresql://postgres@127.0.0.1:5432/kiln");
  process.exit(1);
}
try {
  const { applied, alreadyApplied } = await migrate(url);
  for (const name of applied) console.log(`applied ${name}`);
  console.log(`${applied.length} applied, ${alreadyApplied.length} already applied`);
} catch (error) {
  console.error(`db:migrate failed: ${(error as Error).message}`);
  process.exit(1);
}
