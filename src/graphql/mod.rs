//! The GraphQL schema: every domain's `XQuery` / `XMutation` merged into one, with its limits
//! (depth 5, complexity, no introspection or suggestions in production), the services its
//! resolvers use, and the cache of parsed documents. What resolvers share (the request's
//! context, the signed-in check, paging) is in [`crate::resolvers`].

pub mod persisted;

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{EmptySubscription, MergedObject, Schema, ServerError, ServerResult};

use crate::app::App;
use crate::auth::graphql::{AuthMutation, AuthQuery};
use crate::chat::graphql::{ChatMutation, ChatQuery};
use crate::discovery::graphql::{DiscoveryMutation, DiscoveryQuery};
use crate::error::ApiError;
use crate::identity::Sessions;
use crate::infra::rate_limit::{Bucket, RateLimiter};
use crate::notifications::graphql::{NotificationMutation, NotificationQuery};
use crate::playgrounds::graphql::{PlaygroundMutation, PlaygroundQuery};
use crate::profiles::graphql::{ProfileMutation, ProfileQuery};
use crate::resolvers::RequestContext;

/// Deepest selection nesting a client may send, not counting the `edges` and `node` levels of
/// Relay connections (plumbing, not data: `recommendations { edges { node { profile { photos
/// { url } } } } }` is depth 4 of data).
pub const MAX_DEPTH: usize = 5;
/// The engine's own limit, a backstop for the rule above: 5 plus two connection levels.
const ENGINE_MAX_DEPTH: usize = MAX_DEPTH + 2;
/// Most work a client may ask for in one request: each field counts 1, and a list field counts
/// its page size (the largest it may return) times the fields selected in each item, so
/// `recommendations(first: 50)` with names and photos costs about 850, and a person's 200
/// favourite places with every field about 2 400.
pub const MAX_COMPLEXITY: usize = 2500;

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    AuthQuery,
    ProfileQuery,
    DiscoveryQuery,
    ChatQuery,
    NotificationQuery,
    PlaygroundQuery,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    AuthMutation,
    ProfileMutation,
    DiscoveryMutation,
    ChatMutation,
    NotificationMutation,
    PlaygroundMutation,
);

pub type AppSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// The schemas clients use. In production, introspection and "did you mean" suggestions are off.
///
/// A mutation document with more than one root field runs on `batch`, which spends the caller's
/// budget per field as it runs; everything else runs on `plain`, which has no extension at all
/// (an extension puts a lookup and two boxed futures on every resolved field).
pub struct Schemas {
    pub plain: AppSchema,
    pub batch: AppSchema,
    /// Development only: the unlimited schema for introspection-only queries (GraphiQL).
    pub introspection: Option<AppSchema>,
}

impl Schemas {
    /// The schemas, with `app`'s services for their resolvers.
    pub fn new(production: bool, app: &App) -> Self {
        Schemas {
            plain: build_schema(production, false, Some(app)),
            batch: build_schema(production, true, Some(app)),
            introspection: (!production).then(build_introspection_schema),
        }
    }

    /// The schema a document runs on, or the error that refuses it before it runs.
    pub fn for_document(&self, document: &Prepared) -> Result<&AppSchema, ServerError> {
        match &self.introspection {
            // Development only, and without the depth limit (GraphiQL's query is deeper).
            Some(unlimited) if document.introspection_only => Ok(unlimited),
            _ if document.too_deep => Err(ServerError::new("Query is nested too deep.", None)),
            _ if document.mutation_batch => Ok(&self.batch),
            _ => Ok(&self.plain),
        }
    }
}

fn build_schema(production: bool, mutation_budget: bool, app: Option<&App>) -> AppSchema {
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
    .limit_depth(ENGINE_MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY);
    // Each resolver asks for the services it uses, by type (`resolvers::service`).
    if let Some(app) = app {
        builder = builder
            .data(app.auth.clone())
            .data::<Arc<dyn Sessions>>(app.auth.clone())
            .data(app.profiles.clone())
            .data(app.discovery.clone())
            .data(app.chat.clone())
            .data(app.notifications.clone())
            .data(app.playgrounds.clone())
            .data(app.rate_limiter.clone());
    }
    if mutation_budget {
        builder = builder.extension(MutationBudget);
    }
    if production {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}

/// A parsed document and what the server decides from its shape alone.
pub struct Prepared {
    pub document: ExecutableDocument,
    /// Every root field is `__schema`, `__type` or `__typename`.
    pub introspection_only: bool,
    /// Nested deeper than [`MAX_DEPTH`].
    pub too_deep: bool,
    /// A mutation whose root selects more than one field (or a fragment): each field spends
    /// the caller's budget.
    pub mutation_batch: bool,
    /// Holds a mutation: it runs to its end even if the client goes away.
    pub writes: bool,
}

impl Prepared {
    /// The kind of the operation a request with `operation_name` runs (None when the name
    /// selects none, or none is named among several: the engine refuses those).
    pub fn operation_type(&self, operation_name: Option<&str>) -> Option<OperationType> {
        let op = match (&self.document.operations, operation_name) {
            (DocumentOperations::Single(op), _) => op,
            (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name)?,
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?,
            (DocumentOperations::Multiple(_), None) => return None,
        };
        Some(op.node.ty)
    }
}

/// Total length of the documents [`DocumentCache`] keeps (the parsed form is a few times that).
pub const DOCUMENT_CACHE_BYTES: u64 = 4 << 20;

/// Documents already parsed, by their text. Clients send the same few documents again and
/// again, and parsing is a large part of a small request's cost. Bounded by the total length of
/// the documents held; a document that does not parse is not kept (the engine reports why).
pub struct DocumentCache {
    documents: moka::sync::Cache<String, Arc<Prepared>>,
}

impl DocumentCache {
    pub fn new(max_bytes: u64) -> Self {
        DocumentCache {
            documents: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|text: &String, _| u32::try_from(text.len()).unwrap_or(u32::MAX))
                .build(),
        }
    }

    /// The prepared document for `query`, parsed now or earlier, or why it does not parse.
    pub fn prepare(&self, query: &str) -> Result<Arc<Prepared>, ServerError> {
        if let Some(found) = self.documents.get(query) {
            return Ok(found);
        }
        let document = async_graphql::parser::parse_query(query).map_err(syntax_error)?;
        let prepared = Arc::new(Prepared {
            introspection_only: is_introspection_only(&document),
            too_deep: data_depth(&document) > MAX_DEPTH,
            mutation_batch: is_mutation_batch(&document),
            writes: document
                .operations
                .iter()
                .any(|(_, op)| op.node.ty == OperationType::Mutation),
            document,
        });
        self.documents.insert(query.to_string(), prepared.clone());
        Ok(prepared)
    }
}

/// A document that does not parse, said in one sentence with where (the parser's own message
/// draws the line with a caret under it, over several lines).
fn syntax_error(err: async_graphql::parser::Error) -> ServerError {
    let positions: Vec<_> = err.positions().collect();
    let message = match &err {
        async_graphql::parser::Error::Syntax { message, start, .. } => {
            // The drawing ends with "= expected …"; keep that, in words.
            let wanted = message
                .rsplit_once("= ")
                .map(|(_, wanted)| wanted.trim())
                .unwrap_or("something else")
                .replace('_', " ");
            format!(
                "The document is not valid GraphQL: at line {}, column {}, {wanted}.",
                start.line, start.column
            )
        }
        async_graphql::parser::Error::RecursionLimitExceeded => {
            "The document is nested too deep to read.".to_string()
        }
        other => {
            let mut text = other.to_string();
            if let Some(first) = text.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            format!("{}.", text.trim_end_matches('.'))
        }
    };
    let mut error = ServerError::new(message, None);
    error.locations = positions;
    error
}

fn is_mutation_batch(doc: &ExecutableDocument) -> bool {
    doc.operations.iter().any(|(_, op)| {
        let items = &op.node.selection_set.node.items;
        op.node.ty == OperationType::Mutation
            && !(items.len() == 1 && matches!(items[0].node, Selection::Field(_)))
    })
}

/// The deepest nesting of any operation, fragments included, where connection `edges` and
/// `node` levels do not count.
pub fn data_depth(doc: &ExecutableDocument) -> usize {
    fn walk(doc: &ExecutableDocument, set: &SelectionSet, budget: usize) -> usize {
        if budget == 0 {
            // Fragment cycles are rejected by validation; stop counting rather than loop.
            return usize::MAX / 2;
        }
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(f) => {
                    let name = f.node.name.node.as_str();
                    let own = usize::from(name != "edges" && name != "node");
                    own + walk(doc, &f.node.selection_set.node, budget - 1)
                }
                Selection::InlineFragment(fr) => walk(doc, &fr.node.selection_set.node, budget - 1),
                Selection::FragmentSpread(sp) => doc
                    .fragments
                    .get(&sp.node.fragment_name.node)
                    .map_or(0, |fr| walk(doc, &fr.node.selection_set.node, budget - 1)),
            })
            .max()
            .unwrap_or(0)
    }
    doc.operations
        .iter()
        .map(|(_, op)| walk(doc, &op.node.selection_set.node, 64))
        .max()
        .unwrap_or(0)
}

/// Every mutation field spends one unit of the caller's per-minute request budget (the request
/// itself paid for the first), so 150 aliased mutations in one request cost 150, not 1.
struct MutationBudget;

impl ExtensionFactory for MutationBudget {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(MutationBudgetExtension {
            fields: std::sync::atomic::AtomicUsize::new(0),
        })
    }
}

struct MutationBudgetExtension {
    /// Root mutation fields of this request seen so far.
    fields: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Extension for MutationBudgetExtension {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<async_graphql::Value>> {
        if info.parent_type == "Mutation" && info.path_node.parent.is_none() {
            let seen = self
                .fields
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if seen > 0
                && let Err(err) = spend_user_budget(ctx).await
            {
                return Err(async_graphql::Error::from(err)
                    .into_server_error(async_graphql::Pos::default()));
            }
        }
        next.run(ctx, info).await
    }
}

/// One unit of the signed-in caller's request budget (nothing for anonymous callers: the
/// mutations they can use have the per-IP auth budget).
async fn spend_user_budget(ctx: &ExtensionContext<'_>) -> Result<(), ApiError> {
    let (Ok(limiter), Ok(request)) = (ctx.data::<RateLimiter>(), ctx.data::<RequestContext>())
    else {
        return Ok(());
    };
    let Some(Ok(claims)) = &request.credentials else {
        return Ok(());
    };
    limiter
        .check(Bucket::User, &claims.sub.to_string())
        .await
        .map_err(ApiError::RateLimited)
}

/// Development only: the same schema without depth and complexity limits, used for queries that
/// select nothing but introspection (GraphiQL's introspection query nests deeper than 5).
pub fn build_introspection_schema() -> AppSchema {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
    .finish()
}

/// The schema in SDL, as served.
pub fn sdl() -> String {
    build_schema(false, false, None).sdl()
}

/// Whether every root field of every operation is `__schema`, `__type` or `__typename`.
pub fn is_introspection_only(doc: &ExecutableDocument) -> bool {
    doc.operations.iter().all(|(_, op)| {
        op.node.ty == OperationType::Query
            && op
                .node
                .selection_set
                .node
                .items
                .iter()
                .all(|sel| match &sel.node {
                    Selection::Field(f) => f.node.name.node.starts_with("__"),
                    _ => false,
                })
    })
}

#[cfg(test)]
mod document_cache_tests {
    use super::*;

    #[test]
    fn a_document_is_parsed_once_and_judged_by_its_shape() {
        let cache = DocumentCache::new(DOCUMENT_CACHE_BYTES);
        let me = "{ me { id } }";
        let first = cache.prepare(me).expect("parses");
        assert!(Arc::ptr_eq(&first, &cache.prepare(me).expect("parses")));
        assert!(!first.too_deep && !first.mutation_batch && !first.introspection_only);

        let refused = cache.prepare("{ me { id }").err().expect("does not parse");
        assert!(!refused.message.contains('\n'), "{}", refused.message);
        assert!(
            refused.message.contains("line 1, column 12"),
            "{}",
            refused.message
        );
        assert_eq!(refused.locations.len(), 1);
        let deep = "{ a { b { c { d { e { f } } } } } }";
        assert!(cache.prepare(deep).expect("parses").too_deep);
        assert!(
            cache
                .prepare("{ __schema { types { name } } }")
                .expect("parses")
                .introspection_only
        );
    }

    #[test]
    fn every_way_to_put_several_mutations_in_one_document_is_a_batch() {
        let cache = DocumentCache::new(DOCUMENT_CACHE_BYTES);
        let batch = |doc: &str| cache.prepare(doc).expect("parses").mutation_batch;
        assert!(!batch("mutation { logout }"));
        assert!(batch("mutation { a: logout b: logout }"));
        // A fragment or an inline fragment at the root can hold any number of fields.
        assert!(batch(
            "mutation { ...F } fragment F on Mutation { a: logout b: logout }"
        ));
        assert!(batch(
            "mutation { ... on Mutation { a: logout b: logout } }"
        ));
        // One mutation among several operations of one document.
        assert!(batch(
            "query Q { me { id } } mutation M { a: logout b: logout }"
        ));
        assert!(
            !batch("{ a: me { id } b: me { id } }"),
            "queries spend per request"
        );
    }

    #[test]
    fn the_cache_is_bounded_by_the_length_of_its_documents() {
        let cache = DocumentCache::new(10_000);
        for i in 0..2_000 {
            let _ = cache.prepare(&format!("{{ me {{ id }} a{i}: me {{ email }} }}"));
        }
        cache.documents.run_pending_tasks();
        let held: u64 = cache.documents.weighted_size();
        assert!(held <= 10_000, "{held} bytes held");
    }
}
