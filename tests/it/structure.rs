//! The shape of `src/`: the folders are the layers, each imports only the
//! layers below it, modules import each other without cycles, analyses do
//! not read each other, and files stay small enough to read. Read from the
//! `crate::` paths in the code (comments skipped; a file's `#[cfg(test)]`
//! module, at its end, may use test helpers such as `craft` and is not
//! counted).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom up: a folder may import its own and those before it.
const LAYERS: [&str; 8] = [
    "core", "host", "analyses", "pipeline", "input", "report", "lab", "command",
];

/// Files directly in `src/` that are not a layer: the crate's root, the
/// binary, the error type and the test tools.
const ROOT_FILES: [&str; 4] = ["lib", "main", "error", "craft"];

fn sources() -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    let mut dirs = vec![src];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A file's module as `layer::name` (`report::text`, `analyses::keepalive`,
/// `error`): the first two parts of its path under `src/`.
fn module_of(path: &Path) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let parts: Vec<String> = path
        .strip_prefix(&src)
        .unwrap()
        .components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .collect();
    match &parts[..] {
        [one] => one.clone(),
        [layer, name, ..] if name != "mod" => format!("{layer}::{name}"),
        [layer, ..] => layer.clone(),
        [] => unreachable!(),
    }
}

/// The `crate::a::b` paths a line names, as `a::b` (or `a`).
fn named(line: &str) -> Vec<String> {
    line.split("crate::")
        .skip(1)
        .filter_map(|piece| {
            let mut parts = piece.split("::").map(|p| {
                p.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            });
            let first = parts.next().filter(|p| !p.is_empty())?;
            if ROOT_FILES.contains(&first.as_str()) {
                return Some(first);
            }
            match parts
                .next()
                .filter(|p| p.chars().next().is_some_and(|c| c.is_lowercase()))
            {
                Some(second) => Some(format!("{first}::{second}")),
                None => Some(first),
            }
        })
        .collect()
}

/// Module → the modules its code names.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in sources() {
        let module = module_of(&path);
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let deps = graph.entry(module.clone()).or_default();
        // `super::x` in `src/<layer>/<file>.rs` names `<layer>::x` (deeper,
        // `super` is the file's own module).
        let rel = path
            .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
            .unwrap();
        let parent = match rel.components().count() {
            2 if rel.file_name().is_some_and(|f| f != "mod.rs") => {
                Some(module.split("::").next().unwrap().to_string())
            }
            _ => None,
        };
        for line in text.lines() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            if line.trim_start().starts_with("//") {
                continue;
            }
            let line = match &parent {
                Some(p) => line.replace("super::", &format!("crate::{p}::")),
                None => line.to_string(),
            };
            for name in named(&line) {
                if name != module {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

fn layer(module: &str) -> &str {
    module.split("::").next().unwrap()
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
    assert!(graph.len() > 40, "read too few modules: {graph:?}");
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = cycle(&graph, node, &mut vec![], &mut done) {
            panic!("import cycle: {}", c.join(" → "));
        }
    }
}

#[test]
fn each_layer_imports_only_the_layers_below_it() {
    for (module, deps) in imports() {
        let Some(mine) = LAYERS.iter().position(|l| *l == layer(&module)) else {
            assert!(
                ROOT_FILES.contains(&layer(&module)),
                "{module} is in no layer"
            );
            continue;
        };
        for dep in deps {
            let Some(theirs) = LAYERS.iter().position(|l| *l == layer(&dep)) else {
                continue;
            };
            assert!(
                theirs <= mine,
                "{module} ({}) imports {dep} ({}), a layer above it",
                LAYERS[mine],
                LAYERS[theirs]
            );
        }
    }
}

/// The analyses: the folders under `src/analyses/` (the files beside them
/// are the API every analysis uses: the trait, the records, the verdicts,
/// the registry).
fn analyses() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/analyses");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn analyses_do_not_read_each_other() {
    let analyses = analyses();
    assert!(analyses.len() >= 5, "{analyses:?}");
    for (module, deps) in imports() {
        let Some(name) = module.strip_prefix("analyses::") else {
            continue;
        };
        if !analyses.iter().any(|a| a == name) {
            continue;
        }
        for dep in &deps {
            if let Some(other) = dep.strip_prefix("analyses::") {
                assert!(
                    other == name || !analyses.iter().any(|a| a == other),
                    "the {name} analysis imports {dep}: analyses never read each other (a fact more than one needs belongs in `analyses::Ctx`, or in `analyses::event::Shared`)"
                );
            }
        }
    }
}

#[test]
fn files_stay_small_and_src_shows_the_layers() {
    for path in sources() {
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(
            lines <= 600,
            "{} has {lines} lines (at most 600)",
            path.display()
        );
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let top: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| p.file_stem().unwrap().to_string_lossy().to_string())
        .collect();
    assert!(
        top.len() <= 8,
        "{} files directly in src/: {top:?}",
        top.len()
    );
    for f in &top {
        assert!(
            ROOT_FILES.contains(&f.as_str()),
            "src/{f}.rs belongs in a layer's folder"
        );
    }
}
