//! Dog playgrounds: public places people save as favourites, find by distance or name, and
//! share into a chat.
//!
//! - Adding a place also favourites it. A new place with the same (normalised) name within
//!   [`DUPLICATE_RADIUS_M`] of an existing one is that place (near-duplicate protection).
//! - Name search is fuzzy: case- and accent-insensitive (names are matched in a normalised
//!   form, [`normalize_name`]), tolerant of typos through trigram similarity (pg_trgm's
//!   definition, [`trigram_similarity`]); the database finds candidates (a GIN trigram index on
//!   PostgreSQL, the FTS5 trigram index on SQLite) and [`rank_search`] orders them the same way
//!   on both backends: whole-name prefix, then word prefix, then substring, then similarity.
//! - Places are read through an in-process cache (2 minutes), invalidated on every instance
//!   over the bus when a favourite count changes.

pub mod graphql;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use uuid::Uuid;

use crate::ids::{PlaygroundId, uuids};

use crate::discovery::geo::Coordinates;
use crate::error::{ApiError, ApiResult};
use crate::infra::bus::Bus;
use crate::infra::cache::{CachePolicy, TwoTierCache};
use crate::infra::replicas::Reads;
use crate::infra::time;
use crate::text::Kind;
use store::{NewPlayground, Placed, PlaygroundRecord, PlaygroundStore, SearchCandidate};

/// Longest name, in characters.
pub const MAX_NAME: usize = 80;
/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 500;
/// Largest `playgroundsNear` radius, in kilometres.
pub const MAX_RADIUS_KM: f64 = 100.0;
/// A new place named like an existing one closer than this (metres) is the existing one.
pub const DUPLICATE_RADIUS_M: f64 = 50.0;
/// Most favourite places a person may keep.
pub const MAX_FAVORITES: i32 = 200;
/// Most places `playgroundsNear` returns.
pub const NEAR_LIMIT: i64 = 100;
/// Most results of `searchPlaygrounds`.
pub const MAX_SEARCH: usize = 100;
/// Candidates the database hands to ranking.
const SEARCH_CANDIDATES: i64 = 200;
/// Least trigram similarity for a match that is not a substring.
pub const MIN_SIMILARITY: f64 = 0.3;

/// What a user typed when adding a place.
#[derive(Debug, Clone)]
pub struct PlaygroundDraft {
    pub name: String,
    pub description: String,
    pub latitude: f64,
    pub longitude: f64,
}

/// Lower case, accents removed (NFKD, combining marks dropped), runs of whitespace as one
/// space, trimmed: "  Tempelhofer  FELD " and "tempelhöfer feld" both become "tempelhofer feld".
pub fn normalize_name(name: &str) -> String {
    let folded: String = name
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The trigrams of a normalised string as pg_trgm makes them: each word (alphanumeric run)
/// padded with two spaces in front and one behind.
fn trigrams(s: &str) -> std::collections::HashSet<[char; 3]> {
    let mut out = std::collections::HashSet::new();
    for word in s
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let padded: Vec<char> = "  "
            .chars()
            .chain(word.chars())
            .chain(" ".chars())
            .collect();
        for w in padded.windows(3) {
            out.insert([w[0], w[1], w[2]]);
        }
    }
    out
}

/// pg_trgm's `similarity`: shared trigrams over all trigrams of both, 0 to 1.
pub fn trigram_similarity(a: &str, b: &str) -> f64 {
    let (ta, tb) = (trigrams(a), trigrams(b));
    let union = ta.union(&tb).count();
    if union == 0 {
        return 0.0;
    }
    ta.intersection(&tb).count() as f64 / union as f64
}

/// Orders search candidates for a normalised query and drops the ones that do not match:
/// the name starts with the query, then a word of it does, then it contains the query, then
/// similar names (≥ [`MIN_SIMILARITY`]), each group by similarity, then name and id.
pub fn rank_search(
    query: &str,
    candidates: Vec<SearchCandidate>,
    first: usize,
) -> Vec<PlaygroundId> {
    let mut ranked: Vec<(u8, f64, SearchCandidate)> = candidates
        .into_iter()
        .filter_map(|c| {
            let similarity = trigram_similarity(query, &c.name_search);
            let group = if c.name_search.starts_with(query) {
                0
            } else if c.name_search.split(' ').any(|word| word.starts_with(query)) {
                1
            } else if c.name_search.contains(query) {
                2
            } else if similarity >= MIN_SIMILARITY {
                3
            } else {
                return None;
            };
            Some((group, similarity, c))
        })
        .collect();
    ranked.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(b.1.total_cmp(&a.1))
            .then_with(|| a.2.name_search.cmp(&b.2.name_search))
            .then(a.2.id.cmp(&b.2.id))
    });
    ranked
        .into_iter()
        .take(first)
        .map(|(_, _, c)| c.id)
        .collect()
}

/// Valid coordinates and the field limits: the draft as it will be stored, or the first problem.
pub fn validate(draft: &PlaygroundDraft) -> ApiResult<(String, String, Coordinates)> {
    let name = crate::text::clean("name", &draft.name, Kind::Name, 1, MAX_NAME)?;
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    let description = crate::text::clean(
        "description",
        &draft.description,
        Kind::Multiline,
        0,
        MAX_DESCRIPTION,
    )?;
    for (field, text) in [("name", &name), ("description", &description)] {
        if let Some(what) = crate::text::contact_details(text) {
            return Err(ApiError::bad_input(
                field,
                format!("a place's {field} cannot hold {what}"),
            ));
        }
    }
    let at = Coordinates::parse(draft.latitude, draft.longitude)?;
    Ok((name, description, at))
}

/// `playgroundsNear`'s radius in kilometres: above 0, at most [`MAX_RADIUS_KM`].
pub fn check_radius(radius_km: f64) -> ApiResult<f64> {
    if !radius_km.is_finite() || radius_km <= 0.0 || radius_km > MAX_RADIUS_KM + 1e-9 {
        return Err(ApiError::bad_input(
            "radius",
            format!("the radius must be above 0 and at most {MAX_RADIUS_KM} km"),
        ));
    }
    Ok(radius_km)
}

/// Places one person may add in a day.
pub const PLACES_PER_DAY: i64 = 5;

/// In this process only: places are cheap to read and change rarely.
const PLACES_CACHE: CachePolicy = CachePolicy::in_process("playgrounds", 120, 50_000);

pub struct PlaygroundService {
    store: PlaygroundStore,
    cache: Arc<TwoTierCache<PlaygroundRecord>>,
}

impl PlaygroundService {
    pub fn new(reads: &Reads, bus: Bus) -> Self {
        let store = PlaygroundStore::new(reads);
        let cache = TwoTierCache::new(PLACES_CACHE, None, bus);
        PlaygroundService { store, cache }
    }

    pub fn store(&self) -> &PlaygroundStore {
        &self.store
    }

    /// Drops a place from every instance's cache (a moderator removed or merged it).
    pub async fn forget(&self, id: PlaygroundId) {
        self.cache.invalidate(id.uuid()).await;
    }

    /// Adds a place (or saves the one already at that spot) to the user's favourites. Only
    /// people with a complete profile add places, at most [`PLACES_PER_DAY`] a day.
    pub async fn add(
        &self,
        user_id: Uuid,
        draft: PlaygroundDraft,
        has_complete_profile: bool,
    ) -> ApiResult<Arc<PlaygroundRecord>> {
        if !has_complete_profile {
            return Err(ApiError::Forbidden(
                "adding a place needs a complete profile (at least 2 photos)".into(),
            ));
        }
        let (name, description, at) = validate(&draft)?;
        let now = time::now();
        let placed = self
            .store
            .add_and_favorite(
                NewPlayground {
                    id: PlaygroundId::new(),
                    name_search: normalize_name(&name),
                    name,
                    description,
                    latitude: at.latitude(),
                    longitude: at.longitude(),
                    created_by: user_id,
                    now,
                    duplicate_radius_m: DUPLICATE_RADIUS_M,
                },
                PLACES_PER_DAY,
            )
            .await?;
        let (id, created) = match placed {
            Placed::Stored { id, created } => (id, created),
            Placed::DailyLimit { earliest } => {
                let wait = (earliest + chrono::Duration::days(1) - now)
                    .to_std()
                    .unwrap_or(std::time::Duration::from_secs(60));
                return Err(ApiError::RateLimited(wait));
            }
        };
        if created {
            metrics::counter!("playgrounds_created_total").increment(1);
        } else {
            self.cache.invalidate(id.uuid()).await;
        }
        self.one(id)
            .await?
            .ok_or_else(|| ApiError::NotFound("the playground is gone".into()))
    }

    pub async fn favorite(
        &self,
        user_id: Uuid,
        id: PlaygroundId,
    ) -> ApiResult<Arc<PlaygroundRecord>> {
        if !self.store.favorite(user_id, id, time::now()).await? {
            return Err(ApiError::NotFound("no such playground".into()));
        }
        self.cache.invalidate(id.uuid()).await;
        self.one(id)
            .await?
            .ok_or_else(|| ApiError::NotFound("no such playground".into()))
    }

    /// Removes a place from the user's favourites; false when it was not one.
    pub async fn unfavorite(&self, user_id: Uuid, id: PlaygroundId) -> ApiResult<bool> {
        let removed = self.store.unfavorite(user_id, id).await?;
        if removed {
            self.cache.invalidate(id.uuid()).await;
        }
        Ok(removed)
    }

    /// The user's favourites, most recently saved first.
    pub async fn favorites(&self, user_id: Uuid) -> ApiResult<Vec<Arc<PlaygroundRecord>>> {
        let ids = self.store.favorite_ids(user_id).await?;
        self.in_order(&ids).await
    }

    /// The ids of every place the user has saved.
    pub async fn favorite_set(
        &self,
        user_id: Uuid,
    ) -> ApiResult<std::collections::HashSet<PlaygroundId>> {
        Ok(self
            .store
            .favorite_ids(user_id)
            .await?
            .into_iter()
            .collect())
    }

    /// Places within `radius_km` of a point, nearest first.
    pub async fn near(
        &self,
        latitude: f64,
        longitude: f64,
        radius_km: f64,
    ) -> ApiResult<Vec<Arc<PlaygroundRecord>>> {
        let at = Coordinates::parse(latitude, longitude)?;
        let radius_km = check_radius(radius_km)?;
        let ids = self.store.near(at, radius_km, NEAR_LIMIT).await?;
        self.in_order(&ids).await
    }

    /// Fuzzy name search (see the module docs).
    pub async fn search(&self, query: &str, first: usize) -> ApiResult<Vec<Arc<PlaygroundRecord>>> {
        let query = normalize_name(query);
        if query.is_empty() {
            return Err(ApiError::bad_input("query", "the query must not be empty"));
        }
        if query.chars().count() > MAX_NAME {
            return Err(ApiError::bad_input(
                "query",
                format!("the query must be at most {MAX_NAME} characters"),
            ));
        }
        if !(1..=MAX_SEARCH).contains(&first) {
            return Err(ApiError::bad_input(
                "first",
                format!("first must be between 1 and {MAX_SEARCH}"),
            ));
        }
        let candidates = self
            .store
            .search_candidates(&query, SEARCH_CANDIDATES)
            .await?;
        let ids = rank_search(&query, candidates, first);
        self.in_order(&ids).await
    }

    /// One place, through the cache.
    /// Places, newest first, at most `limit`; with `search`, those whose name contains it
    /// (case and accents aside): the moderators' list.
    pub async fn newest(
        &self,
        search: Option<&str>,
        limit: i64,
    ) -> ApiResult<Vec<PlaygroundRecord>> {
        let search = search.map(normalize_name).filter(|s| !s.is_empty());
        Ok(self.store.newest(search.as_deref(), limit).await?)
    }

    /// One place as the database has it now (not through the cache).
    pub async fn stored(&self, id: PlaygroundId) -> ApiResult<Option<PlaygroundRecord>> {
        Ok(self.store.by_ids(&[id]).await?.pop())
    }

    pub async fn one(&self, id: PlaygroundId) -> ApiResult<Option<Arc<PlaygroundRecord>>> {
        Ok(self.many(&[id]).await?.remove(&id))
    }

    /// Places by id, through the cache (one query for the misses).
    pub async fn many(
        &self,
        ids: &[PlaygroundId],
    ) -> ApiResult<HashMap<PlaygroundId, Arc<PlaygroundRecord>>> {
        // The cache is keyed by the places' UUIDs.
        let mut found: HashMap<PlaygroundId, Arc<PlaygroundRecord>> = self
            .cache
            .get_many(&uuids(ids))
            .await
            .into_iter()
            .map(|(id, place)| (id.into(), place))
            .collect();
        let missing: Vec<PlaygroundId> = ids
            .iter()
            .filter(|id| !found.contains_key(id))
            .copied()
            .collect();
        if !missing.is_empty() {
            let loaded: Vec<(PlaygroundId, Arc<PlaygroundRecord>)> = self
                .store
                .by_ids(&missing)
                .await?
                .into_iter()
                .map(|r| (r.id, Arc::new(r)))
                .collect();
            self.cache
                .insert_many(
                    loaded
                        .iter()
                        .map(|(id, p)| (id.uuid(), p.clone()))
                        .collect(),
                )
                .await;
            found.extend(loaded);
        }
        Ok(found)
    }

    async fn in_order(&self, ids: &[PlaygroundId]) -> ApiResult<Vec<Arc<PlaygroundRecord>>> {
        let mut found = self.many(ids).await?;
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(name: &str) -> SearchCandidate {
        SearchCandidate {
            id: PlaygroundId::new(),
            name_search: normalize_name(name),
        }
    }

    #[test]
    fn names_are_folded_for_matching() {
        assert_eq!(normalize_name("  Tempelhöfer   FELD "), "tempelhofer feld");
        assert_eq!(normalize_name("Café Ñandú"), "cafe nandu");
        assert_eq!(normalize_name("ＦＵＬＬ"), "full");
    }

    #[test]
    fn similarity_matches_pg_trgm() {
        // pg_trgm: similarity('word', 'two words') = 0.363636…
        let s = trigram_similarity("word", "two words");
        assert!((s - 4.0 / 11.0).abs() < 1e-9, "{s}");
        assert_eq!(trigram_similarity("abc", "abc"), 1.0);
        assert_eq!(trigram_similarity("abc", "xyz"), 0.0);
    }

    #[test]
    fn prefix_matches_come_first_then_words_then_substrings_then_typos() {
        let names = [
            "Volkspark Hasenheide",
            "Hasenheide",
            "Park am Hasensee",
            "Hasenheyde Wiese",
            "Görlitzer Park",
        ];
        let cands: Vec<SearchCandidate> = names.iter().map(|n| cand(n)).collect();
        let lookup: HashMap<PlaygroundId, String> = cands
            .iter()
            .map(|c| (c.id, c.name_search.clone()))
            .collect();
        let ranked: Vec<String> = rank_search("hasenheide", cands, 10)
            .into_iter()
            .map(|id| lookup[&id].clone())
            .collect();
        assert_eq!(
            ranked,
            vec!["hasenheide", "volkspark hasenheide", "hasenheyde wiese"],
        );
    }

    #[test]
    fn radius_and_fields_are_checked() {
        assert!(check_radius(0.0).is_err());
        assert!(check_radius(1000.0).is_err());
        assert!(check_radius(f64::NAN).is_err());
        assert!(check_radius(100.0).is_ok());
        let draft = |name: &str, lat: f64| PlaygroundDraft {
            name: name.into(),
            description: String::new(),
            latitude: lat,
            longitude: 0.0,
        };
        assert!(validate(&draft("   ", 0.0)).is_err());
        assert!(validate(&draft(&"x".repeat(81), 0.0)).is_err());
        assert!(validate(&draft("Park", 91.0)).is_err());
        assert_eq!(
            validate(&draft("  Big   Park ", 1.0)).expect("valid").0,
            "Big Park"
        );
    }
}
