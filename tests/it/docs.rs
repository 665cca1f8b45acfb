//! The documentation's examples are real output: every ```console block
//! that runs `kacap -r fixtures/…` (reproducible without privileges) is run,
//! and each line it shows (`…` marks elided lines) must come out, in order.
//! Live and lab examples were recorded on real traffic and cannot be re-run
//! here.

use crate::kacap;
use std::path::Path;

/// (file, command words, lines shown after it) for each example.
fn examples() -> Vec<(String, Vec<String>, Vec<String>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let mut in_console = false;
        let mut current: Option<(Vec<String>, Vec<String>)> = None;
        for line in text.lines() {
            if line.starts_with("```") {
                in_console = !in_console && line == "```console";
                if let Some((cmd, lines)) = current.take() {
                    out.push((name.clone(), cmd, lines));
                }
                continue;
            }
            if !in_console {
                continue;
            }
            if let Some(cmd) = line.strip_prefix("$ ") {
                if let Some((c, lines)) = current.take() {
                    out.push((name.clone(), c, lines));
                }
                if cmd.starts_with("kacap -r fixtures/") {
                    let words = cmd.split_whitespace().skip(1).map(String::from).collect();
                    current = Some((words, Vec::new()));
                }
            } else if let Some((_, lines)) = &mut current
                && !line.trim().is_empty()
                && line != "…"
            {
                lines.push(line.to_string());
            }
        }
    }
    out
}

#[test]
fn documented_examples_are_real_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let all = examples();
    assert!(all.len() >= 5, "found only {} examples", all.len());
    for (file, cmd, shown) in all {
        let run = kacap().current_dir(root).args(&cmd).output().unwrap();
        let actual = String::from_utf8_lossy(&run.stdout).into_owned();
        let mut lines = actual.lines();
        for want in &shown {
            assert!(
                lines.any(|l| l == want),
                "{file}: `kacap {}` does not print (in this order):\n{want}\n\nit prints:\n{actual}",
                cmd.join(" ")
            );
        }
    }
}

#[test]
fn the_example_finder_finds_the_readme_and_docs_examples() {
    let all = examples();
    let files: std::collections::BTreeSet<&str> = all.iter().map(|e| e.0.as_str()).collect();
    assert!(
        files.contains("README.md") && files.contains("how-kacap-decides.md"),
        "{files:?}"
    );
    assert!(
        all.iter().all(|e| !e.2.is_empty()),
        "an example shows no output"
    );
}

/// The verdicts as the README lists them: one row per verdict, in the
/// verdict table's order, with its meaning (`analyses::verdict::TABLE`);
/// and every verdict named where the docs explain them.
#[test]
fn the_docs_list_every_verdict_as_the_verdict_table_has_it() {
    use kacap::analyses::verdict::TABLE;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let rows: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("| verdict | what happened |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    let want: Vec<String> = TABLE
        .iter()
        .map(|r| format!("| `{}` | {} |", r.name, r.meaning))
        .collect();
    assert_eq!(rows, want, "README.md's verdict table");
    for doc in ["docs/how-kacap-decides.md", "docs/json.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        for r in TABLE {
            assert!(
                text.contains(&format!("`{}`", r.name))
                    || text.contains(&format!("\"{}\"", r.name)),
                "{doc} does not name the verdict {}",
                r.name
            );
        }
    }
}
