//! The key and variable tables against Beyla's reference (`reference-keys.tsv`,
//! flattened from Beyla's JSON schema by scripts/beyla-reference-keys.py).

use std::collections::BTreeSet;

use super::super::keys::{self, Shape, Status};
use super::super::vars::{self, VARS};

/// (path, shape, variable) rows of the reference.
fn reference() -> Vec<(&'static str, &'static str, &'static str)> {
    include_str!("../reference-keys.tsv")
        .lines()
        .map(|line| {
            let mut cells = line.split('\t');
            let mut next = || cells.next().unwrap_or("");
            (next(), next(), next())
        })
        .collect()
}

fn shape_word(shape: Shape) -> &'static str {
    match shape {
        Shape::Section(_) => "section",
        Shape::Entries(_) => "entries",
        Shape::Named(_) => "named",
        Shape::Leaf(keys::Value::Scalar, _) => "scalar",
        Shape::Leaf(keys::Value::List, _) => "list",
        Shape::Leaf(keys::Value::Map, _) => "map",
    }
}

#[test]
fn the_key_table_is_beylas_reference_plus_ours() {
    let table: BTreeSet<(String, &str)> = keys::all()
        .into_iter()
        .filter(|(_, key)| key.status() != Some(Status::Ours))
        .map(|(path, key)| (path, shape_word(key.shape)))
        .collect();
    let reference: BTreeSet<(String, &str)> = reference()
        .into_iter()
        .filter(|(path, _, _)| *path != "-")
        .map(|(path, shape, _)| (path.to_string(), shape))
        .collect();
    let missing: Vec<_> = reference.difference(&table).collect();
    let extra: Vec<_> = table.difference(&reference).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "Beyla's keys missing from the table: {missing:?}\nin the table but not Beyla's (mark them Ours): {extra:?}"
    );
    // Ours are not Beyla's, or they would be Works.
    for (path, key) in keys::all() {
        if key.status() == Some(Status::Ours) {
            assert!(
                !reference.iter().any(|(p, _)| *p == path),
                "{path} is Beyla's"
            );
        }
    }
}

#[test]
fn the_variable_table_is_beylas_reference_plus_ours() {
    let table: BTreeSet<&str> = VARS
        .iter()
        .filter(|v| v.status != Status::Ours)
        .map(|v| v.name)
        .collect();
    let reference: BTreeSet<String> = reference()
        .into_iter()
        .filter(|(_, _, var)| !var.is_empty())
        .map(|(_, _, var)| vars::canonical(var))
        .collect();
    let reference: BTreeSet<&str> = reference.iter().map(String::as_str).collect();
    assert_eq!(table, reference);
}

/// A variable works when a key it sets works (the same variable may set
/// several keys, `OTEL_EXPORTER_OTLP_PROTOCOL` both signals'), and is warned
/// when all its keys are.
#[test]
fn a_variable_has_the_status_of_its_keys() {
    for (path, _, var) in reference() {
        if var.is_empty() || path == "-" {
            continue;
        }
        let key_status = keys::find(path).and_then(|k| k.status());
        let var_status = vars::find(var).map(|v| v.status);
        if key_status == Some(Status::Works) {
            assert_eq!(var_status, Some(Status::Works), "{var} sets {path}");
        }
        if var_status == Some(Status::Warned) {
            assert_eq!(key_status, Some(Status::Warned), "{var} sets {path}");
        }
    }
}

#[test]
fn every_path_is_found_again() {
    for (path, key) in keys::all() {
        assert!(
            std::ptr::eq(keys::find(&path).unwrap(), key),
            "{path} not found"
        );
    }
    assert!(keys::find("discovery.instrument[].nope").is_none());
    assert!(keys::find("ebpf.wakeup_len.x").is_none());
}
