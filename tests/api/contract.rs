//! The served schema against the API contract (`shared/api/schema.graphql`): every type, field,
//! argument, default and enum value of the contract must be served exactly as written (the
//! server may add types and fields, never rename or drop). An item marked
//! `@planned(issue: …)` is what an open issue will add: it may be absent from the served
//! schema, and once served it is checked like everything else.

use std::collections::{BTreeMap, BTreeSet};

use async_graphql::Positioned;
use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{
    ConstDirective, InputValueDefinition, ServiceDocument, TypeKind, TypeSystemDefinition,
};

/// One argument or input field: `type` or `type = default`.
#[derive(Debug)]
struct Value {
    sig: String,
    planned: bool,
}

#[derive(Debug)]
struct Field {
    ty: String,
    args: BTreeMap<String, Value>,
    planned: bool,
}

#[derive(Debug)]
enum Shape {
    Object(BTreeMap<String, Field>),
    Input(BTreeMap<String, Value>),
    /// Enum value → planned.
    Enum(BTreeMap<String, bool>),
    Scalar,
}

#[derive(Debug)]
struct Type {
    shape: Shape,
    planned: bool,
}

fn planned(directives: &[Positioned<ConstDirective>]) -> bool {
    directives.iter().any(|d| d.node.name.node == "planned")
}

fn value(v: &InputValueDefinition) -> Value {
    let sig = match &v.default_value {
        Some(d) => format!("{} = {}", v.ty.node, d.node),
        None => v.ty.node.to_string(),
    };
    Value {
        sig,
        planned: planned(&v.directives),
    }
}

fn values(list: &[Positioned<InputValueDefinition>]) -> BTreeMap<String, Value> {
    list.iter()
        .map(|v| (v.node.name.node.to_string(), value(&v.node)))
        .collect()
}

fn types(doc: &ServiceDocument) -> BTreeMap<String, Type> {
    let mut out = BTreeMap::new();
    for def in &doc.definitions {
        let TypeSystemDefinition::Type(t) = def else {
            continue;
        };
        let t = &t.node;
        let shape = match &t.kind {
            TypeKind::Object(o) => Shape::Object(
                o.fields
                    .iter()
                    .map(|f| {
                        let f = &f.node;
                        let field = Field {
                            ty: f.ty.node.to_string(),
                            args: values(&f.arguments),
                            planned: planned(&f.directives),
                        };
                        (f.name.node.to_string(), field)
                    })
                    .collect(),
            ),
            TypeKind::InputObject(i) => Shape::Input(values(&i.fields)),
            TypeKind::Enum(e) => Shape::Enum(
                e.values
                    .iter()
                    .map(|v| (v.node.value.node.to_string(), planned(&v.node.directives)))
                    .collect(),
            ),
            TypeKind::Scalar => Shape::Scalar,
            _ => continue,
        };
        let planned = planned(&t.directives);
        out.insert(t.name.node.to_string(), Type { shape, planned });
    }
    out
}

/// Named values (arguments or input fields) of `within`: each of the contract's is served
/// with its type and default unless it is planned and absent; any the server adds must be
/// optional, so that no request written against the contract is refused.
fn compare_values(
    within: &str,
    want: &BTreeMap<String, Value>,
    got: &BTreeMap<String, Value>,
    out: &mut Vec<String>,
) {
    for (name, w) in want {
        match got.get(name) {
            Some(g) if g.sig == w.sig => {}
            Some(g) => out.push(format!("{within}{name} is `{}`, not `{}`", g.sig, w.sig)),
            None if w.planned => {}
            None => out.push(format!("{within}{name} is not served")),
        }
    }
    for (name, g) in got.iter().filter(|(n, _)| !want.contains_key(*n)) {
        if g.sig.ends_with('!') {
            out.push(format!(
                "{within}{name} is required but not in the contract"
            ));
        }
    }
}

/// Every difference between the contract and the served schema, one line each.
fn differences(contract: &BTreeMap<String, Type>, served: &BTreeMap<String, Type>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, want) in contract {
        let Some(got) = served.get(name) else {
            if !want.planned {
                out.push(format!("{name} is not served"));
            }
            continue;
        };
        match (&want.shape, &got.shape) {
            // Objects may gain fields; the contract's are served as written.
            (Shape::Object(want), Shape::Object(got)) => {
                for (field, w) in want {
                    let Some(g) = got.get(field) else {
                        if !w.planned {
                            out.push(format!("{name}.{field} is not served"));
                        }
                        continue;
                    };
                    if g.ty != w.ty {
                        out.push(format!("{name}.{field} is `{}`, not `{}`", g.ty, w.ty));
                    }
                    compare_values(&format!("{name}.{field}("), &w.args, &g.args, &mut out);
                }
            }
            (Shape::Input(want), Shape::Input(got)) => {
                compare_values(&format!("{name}."), want, got, &mut out)
            }
            (Shape::Enum(want), Shape::Enum(got)) => {
                for (v, planned) in want {
                    if !planned && !got.contains_key(v) {
                        out.push(format!("enum {name}: {v} is not served"));
                    }
                }
                let extra: BTreeSet<_> = got.keys().filter(|v| !want.contains_key(*v)).collect();
                for v in extra {
                    out.push(format!(
                        "enum {name}: {v} is served but not in the contract"
                    ));
                }
            }
            (Shape::Scalar, Shape::Scalar) => {}
            _ => out.push(format!(
                "{name} is a different kind of type than in the contract"
            )),
        }
    }
    out
}

fn parse(text: &str) -> BTreeMap<String, Type> {
    types(&parse_schema(text).expect("schema parses"))
}

fn contract() -> BTreeMap<String, Type> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api/schema.graphql");
    parse(&std::fs::read_to_string(path).expect("the contract copy in docs/api"))
}

fn served() -> BTreeMap<String, Type> {
    parse(&pupmatch::graphql::sdl())
}

/// The folder of the shared API contract: `TEST_CONTRACT_DIR` (`scripts/test.sh` finds it
/// next to the checkout or next to the repository it was cloned from), else `../shared/api`
/// when that exists. `TEST_CONTRACT_DIR=absent` says on purpose that there is none on this
/// machine; a folder named that does not exist is an error.
fn shared_contract_dir() -> Option<std::path::PathBuf> {
    match std::env::var("TEST_CONTRACT_DIR")
        .ok()
        .filter(|dir| !dir.is_empty())
    {
        Some(dir) if dir == "absent" => None,
        Some(dir) => Some(dir.into()),
        None => {
            let beside: std::path::PathBuf =
                concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/api").into();
            beside.join("schema.graphql").exists().then_some(beside)
        }
    }
}

#[test]
fn the_contract_copy_matches_the_shared_contract() {
    // docs/api/ is the repository's copy of the contract the mobile app is written against.
    let Some(dir) = shared_contract_dir() else {
        eprintln!(
            "SKIPPED: no shared API contract here (TEST_CONTRACT_DIR unset or `absent`, and no \
             ../shared/api): docs/api/ is not compared with it"
        );
        return;
    };
    for file in ["schema.graphql", "websocket.md"] {
        let path = dir.join(file);
        let shared = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "the API contract {} cannot be read ({e}): set TEST_CONTRACT_DIR to the \
                 folder holding it (or to `absent` where there is none)",
                path.display()
            )
        });
        let ours = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("docs/api")
                .join(file),
        )
        .expect("the contract copy in docs/api");
        assert_eq!(ours, shared, "docs/api/{file} is out of date");
    }
}

#[test]
fn the_served_schema_matches_the_contract() {
    let problems = differences(&contract(), &served());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

const PLANNED: &str = "
    directive @planned(issue: String!) on OBJECT | FIELD_DEFINITION | ARGUMENT_DEFINITION | ENUM | ENUM_VALUE | INPUT_FIELD_DEFINITION
    enum Kind { A B C @planned(issue: \"x\") }
    enum Mood @planned(issue: \"x\") { HAPPY }
    type Walk @planned(issue: \"x\") { id: ID! minutes: Int! }
    input Filter { near: Int tag: String @planned(issue: \"x\") }
    type Query {
      me: Int!
      walks(first: Int = 20, mood: Mood @planned(issue: \"x\")): [Walk!]! @planned(issue: \"x\")
      kind(filter: Filter): Kind!
    }
";

#[test]
fn planned_items_may_be_absent() {
    let served = "
        enum Kind { A B }
        input Filter { near: Int }
        type Query { me: Int! kind(filter: Filter): Kind! }
    ";
    assert_eq!(
        differences(&parse(PLANNED), &parse(served)),
        Vec::<String>::new()
    );
}

#[test]
fn planned_items_once_served_are_checked_as_written() {
    let served = "
        enum Kind { A B C D }
        enum Mood { HAPPY SAD }
        type Walk { id: ID! minutes: Float! }
        input Filter { near: Int tag: Int extra: Int }
        type Query {
          me: Int!
          walks(first: Int = 10, mood: String, after: String, must: Int!): [Walk!]
          kind(filter: Filter): Kind!
        }
    ";
    let problems = differences(&parse(PLANNED), &parse(served));
    let want = [
        "Filter.tag is `Int`, not `String`",
        "Query.walks is `[Walk!]`, not `[Walk!]!`",
        "Query.walks(first is `Int = 10`, not `Int = 20`",
        "Query.walks(mood is `String`, not `Mood`",
        "Query.walks(must is required but not in the contract",
        "Walk.minutes is `Float!`, not `Int!`",
        "enum Kind: D is served but not in the contract",
        "enum Mood: SAD is served but not in the contract",
    ];
    let mut problems = problems;
    problems.sort();
    assert_eq!(problems, want);
}

#[test]
fn items_not_planned_must_be_served() {
    let served = "
        enum Kind { A }
        enum Mood { HAPPY }
        input Filter { tag: String }
        type Query { kind(filter: Filter): Kind! }
    ";
    let mut problems = differences(&parse(PLANNED), &parse(served));
    problems.sort();
    assert_eq!(
        problems,
        [
            "Filter.near is not served",
            "Query.me is not served",
            "enum Kind: B is not served",
        ]
    );
}
