//! docs/configuration.md against the tables: every key and variable with its
//! status, and every implemented key with an example that loads.

use super::super::keys::{self, Key, Shape, Status};
use super::super::vars::VARS;
use super::yaml;

const DOCS: &str = include_str!("../../../../docs/configuration.md");

fn word(status: Status) -> &'static str {
    match status {
        Status::Works => "works",
        Status::Warned => "warned",
        Status::Ours => "ours",
    }
}

/// The text between `<!-- NAME:begin -->` and `<!-- NAME:end -->`.
fn block(name: &str) -> &'static str {
    let begin = format!("<!-- {name}:begin -->\n");
    let start = DOCS
        .find(&begin)
        .unwrap_or_else(|| panic!("docs/configuration.md has no {begin}"))
        + begin.len();
    let end = DOCS[start..]
        .find(&format!("<!-- {name}:end -->"))
        .expect("block end");
    &DOCS[start..start + end]
}

fn assert_block(name: &str, expected: &str) {
    assert!(
        block(name) == expected,
        "docs/configuration.md, block {name}, should read:\n{expected}"
    );
}

/// The lists of maps that select processes, grouped by the fields they take.
fn selector_lists() -> Vec<(&'static [Key], Vec<String>)> {
    let mut groups: Vec<(&'static [Key], Vec<String>)> = Vec::new();
    for (path, key) in keys::all() {
        if let Shape::Entries(fields) = key.shape {
            if !fields.iter().any(|f| f.name == "exe_path") {
                continue;
            }
            match groups.iter_mut().find(|(f, _)| std::ptr::eq(*f, fields)) {
                Some((_, lists)) => lists.push(path),
                None => groups.push((fields, vec![path])),
            }
        }
    }
    groups
}

/// Whether a path is inside one of the selector lists.
fn in_selector(path: &str) -> bool {
    let lists = selector_lists();
    lists
        .iter()
        .flat_map(|(_, paths)| paths)
        .any(|list| path.starts_with(&format!("{list}[].")))
}

/// Every setting outside the selector lists, with its status.
fn key_rows() -> String {
    let mut out = String::from("| key | status |\n|---|---|\n");
    for (path, key) in keys::all() {
        if let Some(status) = key.status() {
            if !in_selector(&path) {
                out.push_str(&format!("| `{path}` | {} |\n", word(status)));
            }
        }
    }
    out
}

/// The fields of the selector lists, one column per group of lists.
fn selector_rows() -> String {
    let groups = selector_lists();
    let mut out = String::from("| field |");
    for (_, lists) in &groups {
        let names: Vec<String> = lists.iter().map(|l| format!("`{l}`")).collect();
        out.push_str(&format!(" {} |", names.join(", ")));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(groups.len()));
    out.push('\n');
    let mut fields: Vec<String> = Vec::new();
    for (group, _) in &groups {
        for (path, key) in leaves(group, "") {
            if key.status().is_some() && !fields.contains(&path) {
                fields.push(path);
            }
        }
    }
    fields.sort();
    for field in fields {
        out.push_str(&format!("| `{field}` |"));
        for (group, _) in &groups {
            let status = leaves(group, "")
                .into_iter()
                .find(|(p, _)| *p == field)
                .and_then(|(_, k)| k.status());
            out.push_str(&format!(" {} |", status.map_or("-", word)));
        }
        out.push('\n');
    }
    out
}

/// The settings under some keys, with paths relative to them.
fn leaves(keys: &'static [Key], prefix: &str) -> Vec<(String, &'static Key)> {
    let mut out = Vec::new();
    for key in keys {
        let path = format!("{prefix}{}", key.name);
        out.push((path.clone(), key));
        if let Some(children) = key.shape.children() {
            out.extend(leaves(
                children,
                &format!("{path}{}", key.shape.separator()),
            ));
        }
    }
    out
}

fn variable_rows() -> String {
    let mut out = String::from("| variable | OBI's name | status |\n|---|---|---|\n");
    for var in VARS {
        let obi = var
            .name
            .strip_prefix("BEYLA_")
            .map_or(String::new(), |stem| format!("`OTEL_EBPF_{stem}`"));
        out.push_str(&format!(
            "| `{}` | {obi} | {} |\n",
            var.name,
            word(var.status)
        ));
    }
    out
}

/// How many settings of each kind, over every path (a field of each list counted once per list).
fn counts() -> String {
    let count = |status| {
        keys::all()
            .into_iter()
            .filter(|(_, key)| key.status() == Some(status))
            .count()
    };
    let (works, warned, ours) = (
        count(Status::Works),
        count(Status::Warned),
        count(Status::Ours),
    );
    let variables = |status| VARS.iter().filter(|v| v.status == status).count();
    format!(
        "Of the {} settings of Beyla's reference (every key path, a field of each list of maps counted once per list), {works} work and {warned} are warned; {ours} more are ours. Of its {} variables, {} work and {} are warned; {} more are ours.\n",
        works + warned,
        variables(Status::Works) + variables(Status::Warned),
        variables(Status::Works),
        variables(Status::Warned),
        variables(Status::Ours),
    )
}

#[test]
fn the_counts_are_stated() {
    assert_block("key-counts", &counts());
}

#[test]
fn every_key_is_listed_with_its_status() {
    assert_block("key-status", &key_rows());
    assert_block("selector-status", &selector_rows());
}

#[test]
fn every_variable_is_listed_with_its_status() {
    assert_block("variable-status", &variable_rows());
}

/// Rows of the detail tables (key | type | default | example | meaning).
fn detail_rows() -> Vec<(String, String)> {
    DOCS.lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            line.trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|row| row.len() == 5 && row[0].starts_with('`'))
        .filter(|row| unquote(&row[0]).starts_with(|c: char| c.is_ascii_lowercase()))
        .map(|row| (unquote(&row[0]).to_string(), unquote(&row[3]).to_string()))
        .collect()
}

fn unquote(cell: &str) -> &str {
    cell.strip_prefix('`')
        .and_then(|c| c.strip_suffix('`'))
        .unwrap_or(cell)
}

/// Sets a dotted key in a YAML tree; `x[]` goes into the first entry of list x.
fn set(node: &mut serde_yaml_ng::Value, parts: &[&str], value: serde_yaml_ng::Value) {
    use serde_yaml_ng::Value;
    let map = node.as_mapping_mut().unwrap();
    match parts {
        [last] => {
            map.insert((*last).into(), value);
        }
        [part, rest @ ..] => match part.strip_suffix("[]") {
            Some(list) => {
                let entries = map
                    .entry(list.into())
                    .or_insert_with(|| Value::Sequence(vec![]));
                let entries = entries.as_sequence_mut().unwrap();
                if entries.is_empty() {
                    // An entry must select something before the key is added.
                    entries.push(serde_yaml_ng::from_str("{cmd_args: '--base'}").unwrap());
                }
                set(&mut entries[0], rest, value);
            }
            None => {
                let inner = map
                    .entry((*part).into())
                    .or_insert_with(|| Value::Mapping(Default::default()));
                set(inner, rest, value);
            }
        },
        [] => unreachable!("keys are not empty"),
    }
}

#[test]
fn every_documented_key_loads_with_its_example() {
    let rows = detail_rows();
    assert!(
        rows.len() > 30,
        "docs/configuration.md: key tables not found"
    );
    for (key, example) in rows {
        let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&example)
            .unwrap_or_else(|e| panic!("{key}: example {example:?}: {e}"));
        // A base that selects something, with the key set in it.
        let mut root: serde_yaml_ng::Value = serde_yaml_ng::from_str(
            "discovery: {instrument: [{open_ports: 80}]}\nattributes: {kubernetes: {enable: true}}",
        )
        .unwrap();
        // A map of names gets one name, as a single key.
        let parts: Vec<&str> = key
            .split('.')
            .map(|part| if part == "*" { "http.route" } else { part })
            .collect();
        set(&mut root, &parts, value);
        let text = serde_yaml_ng::to_string(&root).unwrap();
        match yaml(&text) {
            Ok(config) => assert!(
                config.warnings.is_empty(),
                "documented key {key} is warned: {:?}",
                config.warnings
            ),
            Err(e) => {
                panic!("documented key {key} with example {example:?} does not load: {e}\n{text}")
            }
        }
    }
}

/// Implemented keys have a detail row; in the selector lists, one row for
/// the field of `discovery.instrument[]` (globs) or `discovery.services[]`
/// (regular expressions) stands for the lists of the same kind.
#[test]
fn every_implemented_key_is_documented_in_detail() {
    let documented: Vec<String> = detail_rows().into_iter().map(|(k, _)| k).collect();
    for (path, key) in keys::all() {
        if !matches!(key.status(), Some(Status::Works | Status::Ours)) {
            continue;
        }
        let mut row = path.clone();
        for (_, lists) in selector_lists() {
            let representative = lists
                .iter()
                .find(|l| *l == "discovery.instrument" || *l == "discovery.services");
            for list in &lists {
                if let (Some(field), Some(representative)) =
                    (path.strip_prefix(&format!("{list}[].")), representative)
                {
                    row = format!("{representative}[].{field}");
                }
            }
        }
        assert!(
            documented.contains(&row),
            "{path} is implemented but has no row for {row} in docs/configuration.md"
        );
    }
}
