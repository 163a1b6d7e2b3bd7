// The GraphQL-over-HTTP specification's own audit suite (graphql-http's auditServer) against
// one server's /graphql. Prints one JSON line per audit: {id, name, status, reason}, status
// being "ok", "warn" (a SHOULD or MAY not met) or "error" (a MUST not met).
//
//   node audit.mjs <server URL>
import { auditServer } from "graphql-http";

const [base] = process.argv.slice(2);
if (!base) {
  console.error("usage: node audit.mjs <server URL>");
  process.exit(2);
}
const results = await auditServer({ url: `${base}/graphql` });
for (const result of results) {
  console.log(JSON.stringify({
    id: result.id,
    name: result.name,
    status: result.status,
    reason: result.status === "ok" ? undefined : result.reason,
  }));
}
