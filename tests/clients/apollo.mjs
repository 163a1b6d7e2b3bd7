// A real Apollo Client 4, set up the way Apollo recommends for mobile bandwidth — automatic
// persisted queries, and GET for hashed queries — signs up, builds a profile and reads it back,
// through one instance and then another. Every HTTP request is recorded, so the script can
// check what the client actually sent: hashes alone once the server knows a document, the full
// document only the first time, through any instance.
//
//   node apollo.mjs <first instance URL> <second instance URL> <photo file> <photo file>
//
// Exits 0 when every check holds; otherwise prints what failed and exits 1.
import { readFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";

const [first, second, ...photos] = process.argv.slice(2);
if (!first || !second || photos.length < 2) {
  console.error("usage: node apollo.mjs <url> <url> <photo> <photo>");
  process.exit(2);
}

let failures = 0;
function check(ok, what, detail) {
  if (ok) {
    console.log(`ok: ${what}`);
  } else {
    failures += 1;
    console.log(`FAILED: ${what}${detail === undefined ? "" : `: ${JSON.stringify(detail)}`}`);
  }
}

/** What the client sent and got, request by request. */
const sent = [];
async function recordingFetch(url, init = {}) {
  const method = (init.method ?? "GET").toUpperCase();
  const body = typeof init.body === "string" ? JSON.parse(init.body) : undefined;
  const params = new URL(url).searchParams;
  const response = await fetch(url, init);
  sent.push({
    instance: new URL(url).origin,
    method,
    withQuery: Boolean(body?.query ?? params.get("query")),
    hashed: Boolean(body?.extensions?.persistedQuery ?? params.get("extensions")),
    status: response.status,
    contentType: response.headers.get("content-type"),
  });
  return response;
}

let token = null;
function client(base, { getForHashed }) {
  const auth = new ApolloLink((operation, forward) => {
    if (token) {
      operation.setContext(({ headers = {} }) => ({
        headers: { ...headers, authorization: `Bearer ${token}` },
      }));
    }
    return forward(operation);
  });
  const persisted = new PersistedQueryLink({
    sha256: (text) => createHash("sha256").update(text).digest("hex"),
    useGETForHashedQueries: getForHashed,
  });
  return new ApolloClient({
    link: ApolloLink.from([auth, persisted, new HttpLink({ uri: `${base}/graphql`, fetch: recordingFetch })]),
    cache: new InMemoryCache(),
    defaultOptions: { query: { fetchPolicy: "network-only" } },
  });
}

const REGISTER = gql`
  mutation Register($input: RegisterInput!) {
    register(input: $input) { accessToken user { id email } }
  }
`;
const CREATE_PROFILE = gql`
  mutation CreateProfile($input: ProfileInput!) {
    createProfile(input: $input) { id name }
  }
`;
const MY_PROFILE = gql`
  query MyProfile {
    me { id email profile { name isComplete photos { id } } }
  }
`;

function since(mark) {
  return sent.slice(mark);
}

async function main() {
  const one = client(first, { getForHashed: false });
  const email = `apollo-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;

  // A mutation: first the hash alone (the server does not know it), then the document.
  let mark = sent.length;
  const registered = await one.mutate({
    mutation: REGISTER,
    variables: { input: { email, password: "correct horse battery staple" } },
  });
  token = registered.data.register.accessToken;
  check(registered.data.register.user.email === email, "register through APQ");
  const register = since(mark);
  check(
    register.length === 2 && register[0].hashed && !register[0].withQuery && register[1].withQuery,
    "an unknown hash is answered PERSISTED_QUERY_NOT_FOUND, and the client then sends the document",
    register,
  );

  const profile = await one.mutate({
    mutation: CREATE_PROFILE,
    variables: { input: { name: "Apollo", age: 4, bio: "Fetches", activityLevel: "HIGH" } },
  });
  check(profile.data.createProfile.name === "Apollo", "createProfile through APQ");

  for (const [i, path] of photos.entries()) {
    const form = new FormData();
    form.append("file", new Blob([await readFile(path)], { type: "image/jpeg" }), `dog${i}.jpg`);
    const res = await fetch(`${first}/v1/photos`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: form,
    });
    check(res.status === 201, `photo ${i + 1} uploaded`, res.status);
  }

  // A query on POST: registered on first use, then sent as its hash alone.
  mark = sent.length;
  const read = await one.query({ query: MY_PROFILE });
  check(read.data.me.profile.isComplete === true, "the profile is complete", read.data.me.profile);
  check(read.data.me.profile.photos.length === 2, "with its two photos");
  await one.query({ query: MY_PROFILE });
  const again = since(mark);
  check(
    again.length === 3 && !again[2].withQuery && again[2].hashed && again[2].status === 200,
    "a known hash is answered without the document being sent again",
    again,
  );

  // The other instance, by GET: the hash registered through the first works at once.
  const two = client(second, { getForHashed: true });
  mark = sent.length;
  const elsewhere = await two.query({ query: MY_PROFILE });
  check(elsewhere.data.me.email === email, "the query by GET through the second instance");
  const get = since(mark);
  check(
    get.length === 1 && get[0].method === "GET" && !get[0].withQuery && get[0].status === 200,
    "a hash registered through one instance is known to another",
    get,
  );

  // A document new to every instance, by GET: not found, sent once by POST, then GET works.
  const NEW = gql`
    query MyName { me { profile { name } } }
  `;
  mark = sent.length;
  const fresh = await two.query({ query: NEW });
  check(fresh.data.me.profile.name === "Apollo", "a new query by GET");
  await two.query({ query: NEW });
  const newGet = since(mark).map(({ method, withQuery, status }) => ({ method, withQuery, status }));
  check(
    newGet.length === 3 &&
      newGet[0].method === "GET" && !newGet[0].withQuery &&
      newGet[1].method === "POST" && newGet[1].withQuery &&
      newGet[2].method === "GET" && !newGet[2].withQuery && newGet[2].status === 200,
    "a new document by GET: not found, registered by POST, then found by GET",
    newGet,
  );

  check(
    sent.every((r) => r.contentType?.startsWith("application/graphql-response+json")),
    "every answer is application/graphql-response+json (what Apollo Client asks for)",
    sent.filter((r) => !r.contentType?.startsWith("application/graphql-response+json")),
  );
}

try {
  await main();
} catch (err) {
  failures += 1;
  console.log(`FAILED: ${err?.stack ?? err}`);
}
process.exit(failures === 0 ? 0 : 1);
