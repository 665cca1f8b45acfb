//! The shape of `src/`: modules import each other without cycles, and the
//! core (TCP state, decoding, classification) knows nothing of the analyses
//! and reports above it. Read from the `crate::` paths in the code (comments
//! and doc links skipped; a file's `#[cfg(test)]` module, at its end, may use
//! test helpers such as `craft` and is not counted).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its code names.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![];
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for path in files {
        let rel = path.strip_prefix(&src).unwrap();
        let module = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let deps = graph.entry(module.clone()).or_default();
        for line in text.lines() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            if line.trim_start().starts_with("//") {
                continue;
            }
            for piece in line.split("crate::").skip(1) {
                let name: String = piece
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

/// A cycle through `node`, if there is one (depth-first search).
fn cycle(
    graph: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(i) = path.iter().position(|n| n == node) {
        let mut c = path[i..].to_vec();
        c.push(node.to_string());
        return Some(c);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_string());
    for next in graph.get(node).into_iter().flatten() {
        if let Some(c) = cycle(graph, next, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(node.to_string());
    None
}

#[test]
fn src_has_no_import_cycles() {
    let graph = imports();
    assert!(graph.len() > 20, "read too few modules: {graph:?}");
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = cycle(&graph, node, &mut vec![], &mut done) {
            panic!("import cycle: {}", c.join(" → "));
        }
    }
}

#[test]
fn the_core_knows_nothing_of_what_is_built_on_it() {
    let graph = imports();
    let core = ["seq", "time", "tcp", "decode", "flows", "classify"];
    for module in core {
        let deps = &graph[module];
        let above: Vec<&String> = deps
            .iter()
            .filter(|d| !core.contains(&d.as_str()))
            .collect();
        assert!(above.is_empty(), "{module} imports {above:?}");
    }
    // Analyses see the core and the analysis API, not each other or reports.
    for analysis in ["keepalive", "middlebox", "http"] {
        for dep in &graph[analysis] {
            assert!(
                core.contains(&dep.as_str()) || dep == "analysis",
                "{analysis} imports {dep}"
            );
        }
    }
}
