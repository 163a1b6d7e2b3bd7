//! The served schema against the API contract (`shared/api/schema.graphql`): every type, field,
//! argument, default and enum value of the contract must be served exactly as written (the
//! server may add to it, never rename or drop).

use std::collections::{BTreeMap, BTreeSet};

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{ServiceDocument, TypeKind, TypeSystemDefinition};

#[derive(Debug, PartialEq)]
enum Shape {
    /// Field name → `(args) : type`.
    Fields(BTreeMap<String, String>),
    Values(BTreeSet<String>),
    Scalar,
}

fn shapes(doc: &ServiceDocument) -> BTreeMap<String, Shape> {
    let mut out = BTreeMap::new();
    for def in &doc.definitions {
        let TypeSystemDefinition::Type(t) = def else {
            continue;
        };
        let t = &t.node;
        let shape = match &t.kind {
            TypeKind::Object(o) => Shape::Fields(
                o.fields
                    .iter()
                    .map(|f| {
                        let f = &f.node;
                        let args: Vec<String> = f
                            .arguments
                            .iter()
                            .map(|a| {
                                let a = &a.node;
                                match &a.default_value {
                                    Some(d) => {
                                        format!("{}: {} = {}", a.name.node, a.ty.node, d.node)
                                    }
                                    None => format!("{}: {}", a.name.node, a.ty.node),
                                }
                            })
                            .collect();
                        (
                            f.name.node.to_string(),
                            format!("({}): {}", args.join(", "), f.ty.node),
                        )
                    })
                    .collect(),
            ),
            TypeKind::InputObject(i) => Shape::Fields(
                i.fields
                    .iter()
                    .map(|f| (f.node.name.node.to_string(), f.node.ty.node.to_string()))
                    .collect(),
            ),
            TypeKind::Enum(e) => Shape::Values(
                e.values
                    .iter()
                    .map(|v| v.node.value.node.to_string())
                    .collect(),
            ),
            TypeKind::Scalar => Shape::Scalar,
            _ => continue,
        };
        out.insert(t.name.node.to_string(), shape);
    }
    out
}

fn contract() -> BTreeMap<String, Shape> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api/schema.graphql");
    let text = std::fs::read_to_string(path).expect("the contract copy in docs/api");
    shapes(&parse_schema(text).expect("contract parses"))
}

fn served() -> BTreeMap<String, Shape> {
    shapes(&parse_schema(pupmatch::graphql::sdl()).expect("served SDL parses"))
}

/// The folder of the shared API contract: `TEST_CONTRACT_DIR` (`scripts/test.sh` finds it
/// next to the checkout or next to the repository it was cloned from), else `../shared/api`.
/// `TEST_CONTRACT_DIR=absent` says on purpose that there is none on this machine.
fn shared_contract_dir() -> Option<std::path::PathBuf> {
    match std::env::var("TEST_CONTRACT_DIR") {
        Ok(dir) if dir == "absent" => None,
        Ok(dir) => Some(dir.into()),
        Err(_) => Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/api").into()),
    }
}

#[test]
fn the_contract_copy_matches_the_shared_contract() {
    // docs/api/ is the repository's copy of the contract the mobile app is written against.
    let Some(dir) = shared_contract_dir() else {
        eprintln!("TEST_CONTRACT_DIR=absent: docs/api/ is not compared with a shared contract");
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
fn every_contract_type_and_field_is_served_as_written() {
    // Additions are allowed (the contract may grow); nothing in it may be missing or differ.
    let (contract, served) = (contract(), served());
    for (name, want) in &contract {
        let got = served
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not served"));
        match (want, got) {
            (Shape::Fields(want), Shape::Fields(got)) => {
                for (field, sig) in want {
                    assert_eq!(
                        got.get(field),
                        Some(sig),
                        "{name}.{field} is missing or differs from the contract"
                    );
                }
            }
            (Shape::Values(want), Shape::Values(got)) => assert_eq!(got, want, "enum {name}"),
            (Shape::Scalar, Shape::Scalar) => {}
            _ => panic!("{name} is a different kind of type than in the contract"),
        }
    }
}

#[test]
fn nothing_served_contradicts_the_contract() {
    let (contract, served) = (contract(), served());
    for (name, got) in &served {
        let Some(want) = contract.get(name) else {
            continue;
        };
        match (want, got) {
            (Shape::Fields(want), Shape::Fields(got)) => {
                for (field, sig) in got {
                    if let Some(want_sig) = want.get(field) {
                        assert_eq!(sig, want_sig, "{name}.{field} differs from the contract");
                    }
                }
            }
            (Shape::Values(want), Shape::Values(got)) => assert_eq!(got, want, "enum {name}"),
            (Shape::Scalar, Shape::Scalar) => {}
            _ => panic!("{name} is a different kind of type than in the contract"),
        }
    }
}
