// A frontend's first day with inkgraph: Apollo Client core + InMemoryCache over the operations
// graphql-codegen (client preset) generated from schema.graphql and tests/clients/documents.
//
//   node dist/proof.js http://127.0.0.1:PORT "a new title" "a retitle"
//
// Prints one JSON report as its last line (tests/clients/scenario.py says what it must hold;
// the Python client proof prints the same report); anything unexpected throws (exit 1).

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from "@apollo/client";
import { SetContextLink } from "@apollo/client/link/context";
import { getFragmentData } from "./gql/fragment-masking.js";
import {
  CreatePostDocument,
  LoginDocument,
  NodeByIdDocument,
  PostSummaryFragmentDoc,
  ProblemFragmentDoc,
  UpdatePostDocument,
  UserCardFragmentDoc,
  UsersWithPostsDocument,
  ViewerPostsDocument,
  type ProblemFragment,
} from "./gql/graphql.js";

const [url, newTitle, retitle] = process.argv.slice(2);
if (!url || !newTitle || !retitle) {
  throw new Error("usage: node dist/proof.js URL NEW_TITLE RETITLE");
}

let token: string | null = null;
let requests = 0;

const countingFetch: typeof fetch = (input, init) => {
  requests += 1;
  return fetch(input, init);
};

const cache = new InMemoryCache();
const client = new ApolloClient({
  link: ApolloLink.from([
    new SetContextLink((previous) => ({
      headers: { ...previous.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    })),
    new HttpLink({ uri: `${url}/graphql`, fetch: countingFetch }),
  ]),
  cache,
});

function problems(errors: ReadonlyArray<{ " $fragmentRefs"?: { ProblemFragment: ProblemFragment } }>) {
  return errors.map((error) => {
    const problem = getFragmentData(ProblemFragmentDoc, error);
    return { field: problem.field, code: problem.code };
  });
}

function required<T>(value: T | null | undefined, what: string): T {
  if (value === null || value === undefined) throw new Error(`${what} is missing`);
  return value;
}

const ISO_WITH_OFFSET = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

// 1. A page of users with a nested connection, through fragments; then the next page.
const page1 = required(
  (await client.query({ query: UsersWithPostsDocument, variables: { first: 3, postsPerUser: 2 } }))
    .data,
  "page 1",
).users;
const page2 = required(
  (
    await client.query({
      query: UsersWithPostsDocument,
      variables: { first: 3, after: page1.pageInfo.endCursor, postsPerUser: 2 },
    })
  ).data,
  "page 2",
).users;
const ada = page1.nodes[0];
const adaPosts = required(ada, "the first user").posts;
const latest = adaPosts.nodes.map((node) => getFragmentData(PostSummaryFragmentDoc, node));

// 2. Refetch the newest of those posts by its global ID.
const latestId = required(latest[0], "a post").id;
const node = required(
  (await client.query({ query: NodeByIdDocument, variables: { id: latestId } })).data?.node,
  "node",
);
const refetched =
  node.__typename === "Post"
    ? {
        typename: node.__typename,
        title: getFragmentData(PostSummaryFragmentDoc, node).title,
        username: getFragmentData(UserCardFragmentDoc, node.user).username,
      }
    : { typename: node.__typename, title: null, username: null };

// 3. A wrong password is a userError, not an exception; the right one gives a token.
const bad = required(
  (await client.mutate({ mutation: LoginDocument, variables: { username: "ada", password: "not-her-password" } }))
    .data?.login,
  "login",
);
const good = required(
  (await client.mutate({ mutation: LoginDocument, variables: { username: "ADA", password: "ada-lovelace-1843" } }))
    .data?.login,
  "login",
);
token = good.token;
const viewer = getFragmentData(UserCardFragmentDoc, required(good.user, "login.user"));

// 4. A blank title is refused with a userError; a real one creates the post as the viewer.
const blank = required(
  (await client.mutate({ mutation: CreatePostDocument, variables: { title: "   " } })).data?.createPost,
  "createPost",
);
const created = required(
  (await client.mutate({ mutation: CreatePostDocument, variables: { title: newTitle } })).data?.createPost,
  "createPost",
);
const post = required(created.post, "createPost.post");
const createdPost = getFragmentData(PostSummaryFragmentDoc, post);

// 5. Read it back: the viewer's newest post.
const readBack = required(
  (await client.query({ query: ViewerPostsDocument, variables: { first: 3 } })).data?.viewer,
  "viewer",
).posts;
const newest = readBack.nodes.map((node) => getFragmentData(PostSummaryFragmentDoc, node));

// 6. Retitle it: the mutation's result lands in the cache under the post's global ID, so the
//    cached list shows the new title without asking the server again.
const updated = required(
  (await client.mutate({ mutation: UpdatePostDocument, variables: { id: createdPost.id, title: retitle } }))
    .data?.updatePost,
  "updatePost",
);
const requestsBeforeRead = requests;
const cachedList = required(
  client.readQuery({ query: ViewerPostsDocument, variables: { first: 3 } })?.viewer,
  "the cached viewer list",
).posts.nodes.map((node) => getFragmentData(PostSummaryFragmentDoc, node));
const cacheOnly = required(
  (await client.query({ query: ViewerPostsDocument, variables: { first: 3 }, fetchPolicy: "cache-only" }))
    .data?.viewer,
  "the cache-only viewer list",
).posts.nodes.map((node) => getFragmentData(PostSummaryFragmentDoc, node));
const cacheId = cache.identify({ __typename: "Post", id: createdPost.id });

const report = {
  users: {
    totalCount: page1.totalCount,
    page1: page1.nodes.map((user) => getFragmentData(UserCardFragmentDoc, user).username),
    hasNextPage: page1.pageInfo.hasNextPage,
    page2: page2.nodes.map((user) => getFragmentData(UserCardFragmentDoc, user).username),
    firstUserPosts: { totalCount: adaPosts.totalCount, titles: latest.map((p) => p.title) },
    createdAtHasOffset: latest.every((p) => ISO_WITH_OFFSET.test(p.createdAt) && !Number.isNaN(Date.parse(p.createdAt))),
  },
  node: refetched,
  badLogin: { token: bad.token, user: bad.user, errors: problems(bad.userErrors) },
  login: { username: viewer.username, isEditor: viewer.isEditor, hasToken: typeof good.token === "string" },
  blankPost: { post: blank.post, errors: problems(blank.userErrors) },
  created: {
    title: createdPost.title,
    username: getFragmentData(UserCardFragmentDoc, post.user).username,
    errors: problems(created.userErrors),
  },
  readBack: {
    totalCount: readBack.totalCount,
    firstTitle: newest[0]?.title ?? null,
    firstIsCreated: newest[0]?.id === createdPost.id,
  },
  updated: {
    title: updated.post ? getFragmentData(PostSummaryFragmentDoc, updated.post).title : null,
    errors: problems(updated.userErrors),
  },
  cache: {
    id: cacheId ?? null,
    normalised: cacheId !== undefined && cacheId in cache.extract(),
    listTitleAfterUpdate: cachedList[0]?.title ?? null,
    cacheOnlyTitle: cacheOnly[0]?.title ?? null,
    requestsForCachedReads: requests - requestsBeforeRead,
  },
};

console.log(JSON.stringify(report));
process.exit(0);
