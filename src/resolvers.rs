//! What every resolver shares: the request's context (who is calling, from where), the
//! signed-in check, the per-IP auth budget, and the pieces of paged lists (page sizes, their
//! cost, `PageInfo`), and batching loads per viewer. Resolvers depend on this module and on the services they use; the schema
//! that assembles them lives above (`crate::graphql`), and gives the schema the session check
//! as an `Arc<dyn Sessions>`.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{Context, SimpleObject};
use uuid::Uuid;

use crate::error::ApiError;
use crate::identity::tokens::{Claims, TokenError};
use crate::identity::{AuthUser, Sessions};
use crate::infra::rate_limit::{Bucket, RateLimiter};

/// A service (or other shared value) the schema was built with.
pub fn service<'a, T: Send + Sync + 'static>(ctx: &Context<'a>) -> Result<&'a T, ApiError> {
    ctx.data::<T>()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!(e.message)))
}

/// The page size a client asked for, when it is within `1..=max`.
pub fn page_size(first: i32, max: i32) -> Result<usize, ApiError> {
    match usize::try_from(first) {
        Ok(n) if (1..=max).contains(&first) => Ok(n),
        _ => Err(ApiError::bad_input(
            "first",
            format!("first must be between 1 and {max}"),
        )),
    }
}

/// Where a connection's page ends.
#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

/// A paged list's two types as the schema names them: `$edge` (the `cursor` after one item,
/// and the item as its `node`) and `$connection` (the page's `edges` and its `pageInfo`).
/// `|$item| $cursor` is an item's cursor.
macro_rules! connection {
    ($connection:ident, $edge:ident, $node:ty, |$item:ident| $cursor:expr) => {
        pub struct $edge(pub $node);

        #[async_graphql::Object]
        impl $edge {
            async fn cursor(&self) -> String {
                let $item = &self.0;
                $cursor
            }
            async fn node(&self) -> &$node {
                &self.0
            }
        }

        #[derive(async_graphql::SimpleObject)]
        pub struct $connection {
            pub edges: Vec<$edge>,
            pub page_info: $crate::resolvers::PageInfo,
        }

        impl $connection {
            /// One page: its nodes in order, and whether another page follows.
            pub fn page(nodes: impl IntoIterator<Item = $node>, has_next_page: bool) -> Self {
                let edges: Vec<$edge> = nodes.into_iter().map($edge).collect();
                let end_cursor = edges.last().map(|edge| {
                    let $item = &edge.0;
                    $cursor
                });
                $connection {
                    edges,
                    page_info: $crate::resolvers::PageInfo {
                        has_next_page,
                        end_cursor,
                    },
                }
            }
        }
    };
}
pub(crate) use connection;

/// A data loader's batch of `(viewer, person)` keys, one `load` per viewer (which answers for
/// that viewer's people, keyed by person).
pub async fn per_viewer<V, E, Found>(
    keys: &[(Uuid, Uuid)],
    mut load: impl FnMut(Uuid, Vec<Uuid>) -> Found,
) -> Result<HashMap<(Uuid, Uuid), V>, E>
where
    Found: Future<Output = Result<HashMap<Uuid, V>, E>>,
{
    let mut by_viewer: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for &(viewer, person) in keys {
        by_viewer.entry(viewer).or_default().push(person);
    }
    let mut out = HashMap::with_capacity(keys.len());
    for (viewer, people) in by_viewer {
        let found = load(viewer, people).await?;
        out.extend(found.into_iter().map(|(person, v)| ((viewer, person), v)));
    }
    Ok(out)
}

/// The complexity of a list field: `first` (or `default` when absent), clamped to `1..=max`,
/// times the complexity of one item.
pub fn page_cost(first: Option<i32>, default: i32, max: i32, child: usize) -> usize {
    let n = first.unwrap_or(default).clamp(1, max.max(1));
    usize::try_from(n).unwrap_or(1).saturating_mul(child.max(1))
}

/// Per-request facts, inserted by the HTTP layer.
pub struct RequestContext {
    /// The client's rate-limit key (its address, behind trusted proxies; an IPv6 /64).
    pub client_key: String,
    /// The bearer token as verified (signature and expiry), if one was sent.
    pub credentials: Option<Result<Claims, TokenError>>,
    /// The session check, done at most once per request.
    user: tokio::sync::OnceCell<AuthUser>,
}

impl RequestContext {
    pub fn new(client_key: String, credentials: Option<Result<Claims, TokenError>>) -> Self {
        RequestContext {
            client_key,
            credentials,
            user: tokio::sync::OnceCell::new(),
        }
    }
}

/// The signed-in caller, or UNAUTHENTICATED (missing, invalid, expired or revoked token).
pub async fn require_user(ctx: &Context<'_>) -> Result<AuthUser, ApiError> {
    let sessions = service::<Arc<dyn Sessions>>(ctx)?;
    let request = service::<RequestContext>(ctx)?;
    let claims = match &request.credentials {
        None => return Err(ApiError::unauthenticated()),
        Some(Err(_)) => return Err(ApiError::Unauthenticated("invalid or expired token".into())),
        Some(Ok(claims)) => claims,
    };
    request
        .user
        .get_or_try_init(|| sessions.signed_in(claims))
        .await
        .copied()
}

/// Spends one attempt of the caller's IP on the strict login/register/reset budget. Each aliased
/// field in one request calls this, so 20 `login`s in one document are 20 attempts.
pub async fn limit_auth_attempt(ctx: &Context<'_>) -> Result<(), ApiError> {
    let limiter = service::<RateLimiter>(ctx)?;
    let request = service::<RequestContext>(ctx)?;
    limiter
        .check(Bucket::Auth, &request.client_key)
        .await
        .map_err(ApiError::RateLimited)
}

/// Spends one unit of the caller's people budget per person a field returns (so 150 aliased
/// `profile` fields cost 150, and a page of 20 recommendations costs 20). RATE_LIMITED when the
/// budget cannot pay for all of them.
pub async fn spend_on_people(
    ctx: &Context<'_>,
    user_id: uuid::Uuid,
    people: usize,
) -> Result<(), ApiError> {
    let limiter = service::<RateLimiter>(ctx)?;
    limiter
        .check_n(
            Bucket::People,
            &user_id.to_string(),
            u32::try_from(people).unwrap_or(u32::MAX),
        )
        .await
        .map_err(ApiError::RateLimited)
}

/// [`require_user`], whose email address is confirmed when confirmation is required (FORBIDDEN
/// otherwise, saying so): what liking, messaging, reporting and adding places need.
pub async fn require_confirmed_user(ctx: &Context<'_>) -> Result<AuthUser, ApiError> {
    let user = require_user(ctx).await?;
    service::<Arc<dyn Sessions>>(ctx)?.confirmed(user).await?;
    Ok(user)
}
